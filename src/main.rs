use clap::Parser;
use clap::error::ErrorKind;
use tokenwatch::exit::EXIT_USAGE;

fn main() -> std::process::ExitCode {
    // Die quietly when the reader of our output goes away (`tokenwatch status | head -1`),
    // like other command-line tools, instead of panicking on EPIPE.
    // SAFETY: setting a signal disposition to SIG_DFL at start, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match tokenwatch::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => EXIT_USAGE,
            };
            return std::process::ExitCode::from(code);
        }
    };
    std::process::ExitCode::from(tokenwatch::commands::run(cli))
}
