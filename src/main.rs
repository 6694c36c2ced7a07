use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tokenwatch::cli::Cli::parse();
    std::process::ExitCode::from(tokenwatch::commands::run(cli))
}
