use clap::Parser;
use clap::error::ErrorKind;
use tokenwatch::exit::EXIT_USAGE;

fn main() -> std::process::ExitCode {
    // Die quietly when the reader of our output goes away (`tokenwatch status | head -1`),
    // like other command-line tools, instead of panicking on EPIPE.
    // SAFETY: setting a signal disposition at start, before any threads exist.
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
    // The daemon and the dashboard run for long: a closed log stream (the journal restarted,
    // `daemon 2>&1 | less` quit) must never stop them, so SIGPIPE is ignored there (as
    // systemd's IgnoreSIGPIPE asks) and a failed write is an error they pass over.
    if tokenwatch::commands::ignores_sigpipe(cli.command.as_ref()) {
        // SAFETY: as above; parsing the command line started no thread.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
    std::process::ExitCode::from(tokenwatch::commands::run(cli))
}
