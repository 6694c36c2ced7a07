//! `tokenwatch completions <shell>` and `tokenwatch man`: shell completion scripts and the
//! tokenwatch(1) manual page, generated from the clap definitions in [`crate::cli`].
//!
//! Neither loads the configuration, the `.env` file or the logging: they must work on a
//! machine where the config is broken or absent (a package build, a fresh install).

use crate::cli::Cli;
use clap::CommandFactory;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};
use std::io::Write;

/// The name the scripts complete and the page documents.
const BIN: &str = "tokenwatch";

/// Exit code when stdout cannot be written (a full disk, a closed descriptor).
const EXIT_WRITE: u8 = 1;

/// Print the completion script for `shell` on stdout; returns the exit code.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    write_stdout(&completion_script(shell))
}

/// Print the tokenwatch(1) manual page (roff) on stdout; returns the exit code.
pub fn man() -> u8 {
    match man_page() {
        Ok(page) => write_stdout(&page),
        Err(e) => {
            eprintln!("tokenwatch: cannot render the manual page: {e}");
            EXIT_WRITE
        }
    }
}

/// The completion script for `shell`, as the shell's own source text.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    // Into a buffer first: `generate` panics on a write error, and stdout may fail.
    clap_complete::generate(shell, &mut cmd, BIN, &mut out);
    out
}

/// Write all of `bytes` to stdout; a failure is reported on stderr and exits 1.
fn write_stdout(bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tokenwatch: cannot write to stdout: {e}");
            EXIT_WRITE
        }
    }
}

/// The whole manual page: clap_mangen's NAME, SYNOPSIS, DESCRIPTION and OPTIONS for the
/// global flags, then every command with its own flags on this one page, then the sections
/// clap cannot know about (exit status, environment, files).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(Cli::command())
        .title("TOKENWATCH")
        .section("1")
        .manual("User Commands");
    // Each `render_*` starts with the same apostrophe preamble (the output of an empty
    // `Roff`); keep one copy at the top.
    let preamble = Roff::new().render();
    let mut page = preamble.clone().into_bytes();
    let mut piece = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut buf = Vec::new();
        render(&mut buf)?;
        page.extend_from_slice(buf.strip_prefix(preamble.as_bytes()).unwrap_or(&buf));
        Ok::<(), std::io::Error>(())
    };

    // `.TH` by hand: the roff crate drops an empty argument, which would shift the source
    // and manual fields into the date's place.
    piece(&|w| {
        writeln!(
            w,
            ".TH {} 1 \"\" \"{} {}\" \"User Commands\"",
            BIN.to_uppercase(),
            BIN,
            env!("CARGO_PKG_VERSION")
        )
    })?;
    piece(&|w| man.render_name_section(w))?;
    piece(&|w| man.render_synopsis_section(w))?;
    piece(&|w| man.render_description_section(w))?;
    piece(&|w| man.render_options_section(w))?;
    piece(&|w| commands_section().to_writer(w))?;
    piece(&|w| reference_sections().to_writer(w))?;
    piece(&|w| man.render_version_section(w))?;
    Ok(page)
}

/// COMMANDS: each visible subcommand (and `config check`) with its synopsis, its long
/// description and its own flags.
fn commands_section() -> Roff {
    let mut root = Cli::command();
    root.build();
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    paragraphs(
        &mut roff,
        "With no command, tokenwatch opens the dashboard (the same as `tokenwatch tui`). The \
         global options above work with every command.",
    );
    for sub in visible_subcommands(&root) {
        command_entry(&mut roff, BIN, sub);
    }
    roff
}

/// The subcommands a user sees: not hidden, and not clap's own `help`.
fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// One command's entry; a command with subcommands (`config`) lists each of them instead.
fn command_entry(roff: &mut Roff, parent: &str, cmd: &clap::Command) {
    let path = format!("{parent} {}", cmd.get_name());
    if cmd.has_subcommands() {
        for sub in visible_subcommands(cmd) {
            command_entry(roff, &path, sub);
        }
        return;
    }
    let args: Vec<&clap::Arg> = own_args(cmd).collect();

    roff.control("SS", [path.as_str()]);
    if !args.is_empty() {
        let mut synopsis = vec![bold(path.clone())];
        for arg in &args {
            synopsis.push(roman(" "));
            synopsis.extend(synopsis_arg(arg));
        }
        roff.text(synopsis);
    }
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        paragraphs(roff, &about.to_string());
    }
    for arg in args {
        roff.control("TP", []);
        roff.text(arg_label(arg));
        let mut help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && arg.get_action().takes_values() {
            help.push_str(&format!(" [default: {}]", defaults.join(", ")));
        }
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !possible.is_empty() && arg.get_action().takes_values() {
            help.push_str(&format!(" [possible values: {}]", possible.join(", ")));
        }
        roff.text([roman(help.trim().to_owned())]);
    }
}

/// A command's own arguments: not the propagated global flags, `--help` or `--version`.
fn own_args(cmd: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_hide_set() && !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version")
    })
}

/// `[--json]`, `[--listen ADDR]`, `SHELL`: how an argument reads in a synopsis.
fn synopsis_arg(arg: &clap::Arg) -> Vec<Inline> {
    let mut parts = Vec::new();
    let optional = !arg.is_required_set();
    if optional {
        parts.push(roman("["));
    }
    if let Some(long) = arg.get_long() {
        parts.push(bold(format!("--{long}")));
        if arg.get_action().takes_values() {
            parts.push(roman(" "));
            parts.push(italic(value_name(arg)));
        }
    } else if let Some(short) = arg.get_short() {
        parts.push(bold(format!("-{short}")));
    } else {
        parts.push(italic(value_name(arg)));
    }
    if optional {
        parts.push(roman("]"));
    }
    parts
}

/// `-s, --long VALUE` (or the positional's name) for an option list.
fn arg_label(arg: &clap::Arg) -> Vec<Inline> {
    let mut parts = Vec::new();
    if let Some(short) = arg.get_short() {
        parts.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !parts.is_empty() {
            parts.push(roman(", "));
        }
        parts.push(bold(format!("--{long}")));
    }
    if arg.get_action().takes_values() {
        if !parts.is_empty() {
            parts.push(roman(" "));
        }
        parts.push(italic(value_name(arg)));
    }
    parts
}

/// The value's name as `--help` shows it (`DURATION`, `SHELL`).
fn value_name(arg: &clap::Arg) -> String {
    arg.get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

/// Text with blank-line-separated paragraphs as roff paragraphs (`.PP`); single newlines
/// inside a paragraph are joined, so roff can fill the lines.
fn paragraphs(roff: &mut Roff, text: &str) {
    for para in text.split("\n\n") {
        let joined = para.split_whitespace().collect::<Vec<_>>().join(" ");
        if !joined.is_empty() {
            roff.control("PP", []);
            roff.text([roman(joined)]);
        }
    }
}

/// A `.TP` item: a bold tag and a paragraph.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

/// EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO.
fn reference_sections() -> Roff {
    let mut r = Roff::new();

    r.control("SH", ["EXIT STATUS"]);
    paragraphs(
        &mut r,
        "status follows the Nagios plugin convention, so a monitoring system or an engine's \
         start script can use it directly.",
    );
    item(
        &mut r,
        "0",
        "Success. status: the token is healthy. token: a valid token was printed. login: a \
         token was stored. refresh: a valid token is stored at the end. daemon, simulate, tui: \
         stopped cleanly (q, SIGINT or SIGTERM).",
    );
    item(
        &mut r,
        "1",
        "status: warning (less than monitor.warning_before left). login: failed, refused or \
         timed out. refresh: no valid token at the end. completions, man: stdout could not be \
         written.",
    );
    item(
        &mut r,
        "2",
        "status: critical, expired, invalid or missing. token: no valid token (nothing is \
         printed on stdout).",
    );
    item(
        &mut r,
        "3",
        "status: unknown (configuration error, unreadable token file, or the API unreachable \
         under --validate). Any command: a command-line usage error, such as an unknown flag \
         or shell (never 2, which Nagios reads as critical).",
    );
    item(
        &mut r,
        "78",
        "Configuration error (EX_CONFIG from sysexits.h): an unknown key, a wrong type, a bad \
         duration, a missing client_id where a command needs it, or an unreadable config file; \
         from tui, token, login, refresh, daemon and config check. The message names the file, \
         the key and what was expected. The systemd unit does not restart on it.",
    );

    r.control("SH", ["ENVIRONMENT"]);
    paragraphs(
        &mut r,
        "Settings are layered, highest first: command-line flags, the environment, the config \
         file, the legacy credentials file, the defaults. A .env file in the working folder is \
         loaded first and never overrides variables already set.",
    );
    item(
        &mut r,
        "UPSTOX_CLIENT_ID",
        "The Upstox app's API key, for the default account (upstox.client_id).",
    );
    item(
        &mut r,
        "UPSTOX_CLIENT_SECRET",
        "The app's secret (upstox.client_secret). Prefer this, or an EnvironmentFile= under \
         systemd, to writing it in the config file; it is never printed or logged.",
    );
    item(
        &mut r,
        "UPSTOX_REDIRECT_URI",
        "The redirect URI registered with Upstox (upstox.redirect_uri).",
    );
    item(
        &mut r,
        "TOKENWATCH__SECTION__KEY",
        "Any configuration key, sections separated by double underscores, e.g. \
         TOKENWATCH__UPSTOX__API_BASE or TOKENWATCH__MONITOR__CHECK_INTERVAL=15m.",
    );
    item(
        &mut r,
        "TOKENWATCH_CONFIG",
        "The config file to use when --config is not given.",
    );
    item(
        &mut r,
        "XDG_CONFIG_HOME, XDG_STATE_HOME, HOME",
        "Where the user config file and the state folder are (see FILES).",
    );
    item(
        &mut r,
        "BROWSER",
        "The browser login opens when login.browser_command is not set.",
    );
    item(
        &mut r,
        "NO_COLOR",
        "When set, the dashboard uses no colours; the state word carries the meaning.",
    );

    r.control("SH", ["FILES"]);
    paragraphs(
        &mut r,
        "The config file is the first of: --config FILE, $TOKENWATCH_CONFIG, \
         ./config/tokenwatch.yaml, $XDG_CONFIG_HOME/tokenwatch/config.yaml. No file is fine \
         (defaults and the environment). Relative paths inside a config file resolve against \
         that file's folder; with no file, against the state folder. ~ expands.",
    );
    item(
        &mut r,
        "./config/tokenwatch.yaml",
        "The project's config file, beside the trading engine.",
    );
    item(
        &mut r,
        "$XDG_CONFIG_HOME/tokenwatch/config.yaml",
        "The user's config file (default ~/.config/tokenwatch/config.yaml).",
    );
    item(
        &mut r,
        "./.env",
        "Environment variables loaded at start; never overrides the real environment.",
    );
    item(
        &mut r,
        "$XDG_STATE_HOME/tokenwatch/",
        "The state folder (default ~/.local/state/tokenwatch/): the backup token copy, the log \
         file tokenwatch.log, and the base of relative paths when there is no config file.",
    );
    item(
        &mut r,
        "token.path",
        "The token file the trading engine reads (default upstox_token.json), written \
         atomically with mode 0600; beside it <path>.prev (the previous token) and <path>.lock \
         (only one tokenwatch renews at a time).",
    );
    item(
        &mut r,
        "~/Algo/upstox_credentials.json",
        "Legacy credentials file of the older token manager (upstox.legacy_credentials), read \
         when present.",
    );
    item(
        &mut r,
        "~/.config/systemd/user/tokenwatch.service",
        "The systemd user unit shipped as assets/tokenwatch.service; it runs tokenwatch daemon \
         and reads secrets from ~/.config/tokenwatch/env.",
    );

    r.control("SH", ["EXAMPLES"]);
    for (tag, text) in [
        (
            "tokenwatch status || notify-send \"token needs attention\"",
            "Check the token from a script or cron job.",
        ),
        (
            "TOKEN=$(tokenwatch token) || exit 1",
            "Use the token in a script, never a dead one.",
        ),
        (
            "tokenwatch refresh && start-engine",
            "Start the engine only with a valid token.",
        ),
        (
            "systemctl --user enable --now tokenwatch",
            "Run the worker under systemd (see docs/running.md).",
        ),
        (
            "tokenwatch completions bash > ~/.local/share/bash-completion/completions/tokenwatch",
            "Install bash completions.",
        ),
    ] {
        item(&mut r, tag, text);
    }

    r.control("SH", ["SEE ALSO"]);
    r.text([roman(
        "systemctl(1), journalctl(1), loginctl(1), systemd.exec(5), tmux(1)",
    )]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> String {
        String::from_utf8(man_page().unwrap()).unwrap()
    }

    #[test]
    fn the_page_has_one_preamble_and_one_title() {
        let page = page();
        let preamble = Roff::new().render();
        assert!(page.starts_with(&preamble));
        assert_eq!(page.matches(&preamble).count(), 1, "{page}");
        assert_eq!(page.matches(".TH ").count(), 1);
        assert!(
            page.contains(".TH TOKENWATCH 1 \"\" \"tokenwatch "),
            "{page}"
        );
    }

    #[test]
    fn every_command_has_an_entry_without_the_global_flags() {
        let page = page();
        for name in [
            "tui",
            "demo",
            "status",
            "token",
            "login",
            "refresh",
            "daemon",
            "simulate",
            "config check",
            "completions",
            "man",
        ] {
            assert!(
                page.contains(&format!(".SS \"tokenwatch {name}\"\n"))
                    || page.contains(&format!(".SS tokenwatch {name}\n")),
                "no entry for {name}"
            );
        }
        assert!(!page.contains(".SS \"tokenwatch help\""));
        // The global flags are documented once, under OPTIONS, not under every command.
        let start = page.find(".SH COMMANDS").unwrap();
        let end = page.find(".SH \"EXIT STATUS\"").unwrap();
        assert!(!page[start..end].contains("\\fB\\-\\-config\\fR"));
        assert!(page[..start].contains("\\fB\\-\\-config\\fR"));
    }

    #[test]
    fn every_shell_gets_a_script() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let script = String::from_utf8(completion_script(*shell)).unwrap();
            assert!(script.contains("daemon"), "{shell}");
        }
    }
}
