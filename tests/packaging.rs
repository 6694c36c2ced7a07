//! Packaging: `tokenwatch completions <shell>`, `tokenwatch man` and the systemd user unit
//! `assets/tokenwatch.service` (completions and a man page generated from the clap
//! definitions, with the exit codes and the configuration).
//!
//! The commands run as the real binary in a sandbox like `tests/cli.rs`: an empty environment,
//! HOME and the XDG folders in a temporary folder that is also the working folder. They must
//! not read the configuration at all, so they are also run with every kind of broken config.

mod common;

use clap::CommandFactory;
use common::{Sandbox, bin};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The shells `completions` supports, with a line each script is known to carry.
const SHELLS: [(&str, &str); 5] = [
    ("bash", "complete -F _tokenwatch"),
    ("zsh", "#compdef tokenwatch"),
    ("fish", "complete -c tokenwatch"),
    ("elvish", "edit:completion:arg-completer[tokenwatch]"),
    (
        "powershell",
        "Register-ArgumentCompleter -Native -CommandName 'tokenwatch'",
    ),
];

/// A temporary HOME / XDG / working folder; no config file unless a test writes one. The
/// output must be UTF-8.
fn sandbox() -> Sandbox {
    Sandbox::new().strict_utf8()
}

/// Every command a user can type, as on the man page: `status`, ..., `config check`.
fn command_paths() -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let path = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                walk(sub, &format!("{path} "), out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&tokenwatch::cli::Cli::command(), "", &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// Completions
// ---------------------------------------------------------------------------------------

#[test]
fn completions_for_every_shell_name_the_subcommands_and_flags() {
    let sb = sandbox();
    for (shell, marker) in SHELLS {
        let run = sb.run(&["completions", shell]);
        assert_eq!(run.code, Some(0), "{shell}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{shell}: stderr {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}: no {marker:?}");
        for word in [
            "daemon",
            "status",
            "token",
            "refresh",
            "login",
            "completions",
            "man",
        ] {
            assert!(run.stdout.contains(word), "{shell}: no {word}");
        }
        // fish spells long flags `-l account`; the others `--account`.
        let account = if shell == "fish" {
            "-l account"
        } else {
            "--account"
        };
        assert!(run.stdout.contains(account), "{shell}: no {account}");
        for flag in ["config", "json", "validate", "no-browser"] {
            assert!(run.stdout.contains(flag), "{shell}: no {flag}");
        }
    }
}

#[test]
fn completions_complete_the_shell_names_too() {
    let run = sandbox().run(&["completions", "bash"]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.contains("bash elvish fish powershell zsh"),
        "the completions subcommand's own values are missing"
    );
}

#[test]
fn completions_for_an_unknown_or_missing_shell_is_a_usage_error() {
    let sb = sandbox();
    let run = sb.run(&["completions", "tcsh"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("tcsh"), "{}", run.stderr);
    assert!(run.stderr.contains("possible values"), "{}", run.stderr);

    let run = sb.run(&["completions"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let run = sb.run(&["man", "extra"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

// ---------------------------------------------------------------------------------------
// The man page
// ---------------------------------------------------------------------------------------

/// The page's lines after roff's apostrophe preamble (`.ie \n(.g .ds Aq \(aq` / `.el ...`).
fn page_lines(page: &str) -> Vec<&str> {
    page.lines()
        .skip_while(|l| l.starts_with(".ie ") || l.starts_with(".el "))
        .collect()
}

/// The text of one `.SH` section, up to the next one.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page
        .find(&format!(".SH {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}:\n{page}"));
    let rest = &page[start + 1..];
    let end = rest.find("\n.SH ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

#[test]
fn man_is_a_roff_page_titled_tokenwatch_1() {
    let run = sandbox().run(&["man"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let lines = page_lines(&run.stdout);
    assert!(
        lines[0].starts_with(".TH TOKENWATCH 1 "),
        "first line after the preamble: {:?}",
        lines[0]
    );
    assert!(
        lines[0].contains(&format!("\"tokenwatch {}\"", env!("CARGO_PKG_VERSION"))),
        "{}",
        lines[0]
    );
    assert_eq!(run.stdout.matches("\n.TH ").count(), 1, "one title");
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "\"EXIT STATUS\"",
        "ENVIRONMENT",
        "FILES",
    ] {
        section(&run.stdout, heading);
    }
    // Every line is a control line, text, or empty: nothing that roff would misread.
    for line in &lines {
        assert!(
            !line.starts_with('\''),
            "a line roff reads as a control line: {line}"
        );
    }
}

#[test]
fn man_lists_every_command_and_the_global_flags() {
    let page = sandbox().run(&["man"]).stdout;
    let commands = section(&page, "COMMANDS");
    let paths = command_paths();
    assert!(paths.len() >= 11, "{paths:?}");
    for path in &paths {
        let heading = format!(".SS \"tokenwatch {path}\"\n");
        assert!(
            commands.contains(&heading),
            "no entry for {path}:\n{commands}"
        );
    }
    assert!(commands.contains("tokenwatch config check"));
    assert!(!commands.contains("tokenwatch help"));
    // Command flags (roff escapes '-' as '\-').
    for flag in ["json", "validate", "no\\-browser", "expires\\-in", "listen"] {
        assert!(
            commands.contains(&format!("\\fB\\-\\-{flag}\\fR")),
            "no --{flag}"
        );
    }
    assert!(commands.contains("bash, elvish, fish, powershell, zsh"));
    // The global flags, once, under OPTIONS.
    let options = section(&page, "OPTIONS");
    for flag in ["config", "account", "verbose", "quiet", "version", "help"] {
        assert!(
            options.contains(&format!("\\fB\\-\\-{flag}\\fR")),
            "no --{flag} under OPTIONS"
        );
    }
    assert!(!commands.contains("\\fB\\-\\-account\\fR"));
}

#[test]
fn man_documents_the_exit_codes_files_and_environment() {
    let page = sandbox().run(&["man"]).stdout;

    let exit = section(&page, "\"EXIT STATUS\"");
    for code in ["0", "1", "2", "3", "78"] {
        assert!(
            exit.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit code {code} missing:\n{exit}"
        );
    }
    for words in [
        "Nagios",
        "warning",
        "critical, expired, invalid or missing",
        "usage error",
        "Configuration error",
        "EX_CONFIG",
    ] {
        assert!(exit.contains(words), "{words:?} missing:\n{exit}");
    }

    let env = section(&page, "ENVIRONMENT");
    for var in [
        "UPSTOX_CLIENT_ID",
        "UPSTOX_CLIENT_SECRET",
        "UPSTOX_REDIRECT_URI",
        "TOKENWATCH__SECTION__KEY",
        "TOKENWATCH__UPSTOX__API_BASE",
        "TOKENWATCH_CONFIG",
        "XDG_CONFIG_HOME",
        "XDG_STATE_HOME",
    ] {
        assert!(env.contains(var), "{var} missing:\n{env}");
    }
    assert!(env.contains(".env"));

    let files = section(&page, "FILES");
    let discovery = files
        .find(
            "\\-\\-config FILE, $TOKENWATCH_CONFIG, ./config/tokenwatch.yaml, \
                $XDG_CONFIG_HOME/tokenwatch/config.yaml",
        )
        .is_some();
    assert!(discovery, "config discovery order missing:\n{files}");
    for path in [
        "./config/tokenwatch.yaml",
        "$XDG_CONFIG_HOME/tokenwatch/config.yaml",
        "$XDG_STATE_HOME/tokenwatch/",
        "~/Algo/upstox_credentials.json",
    ] {
        assert!(files.contains(path), "{path} missing:\n{files}");
    }
}

/// groff, where installed, formats the page without a single warning.
#[test]
fn man_page_formats_cleanly_with_groff() {
    let page = sandbox().run(&["man"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenwatch.1");
    std::fs::write(&file, &page).unwrap();
    let out = match std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: groff not available ({e})");
            return;
        }
    };
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "groff warnings:\n{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TOKENWATCH(1)"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Neither command reads the configuration
// ---------------------------------------------------------------------------------------

/// A broken setup: what it is, the flags before the command, and the environment.
type Setup<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);

#[test]
fn completions_and_man_work_with_a_broken_config() {
    let sb = sandbox();
    let clean_man = sb.run(&["man"]);
    let clean_bash = sb.run(&["completions", "bash"]);
    assert_eq!(clean_man.code, Some(0));
    assert_eq!(clean_bash.code, Some(0));

    let garbage = sb.write("garbage.yaml", "upstox: [not, a, map\n\t- {{{\n");
    let unknown_key = sb.write("unknown.yaml", "upstox:\n  no_such_key: 1\n");
    let binary = sb.write("binary.yaml", "\u{0}\u{1}\u{2}\u{fffd}");
    let garbage = garbage.to_str().unwrap();
    let unknown_key = unknown_key.to_str().unwrap();
    let binary = binary.to_str().unwrap();
    let missing = sb.root.join("no/such/config.yaml");
    let missing = missing.to_str().unwrap();
    let folder = sb.root.to_str().unwrap();

    // Each setup really is broken: `config check` refuses it (exit 78).
    let setups: Vec<Setup> = vec![
        ("-c garbage", vec!["-c", garbage], vec![]),
        (
            "--config unknown key",
            vec!["--config", unknown_key],
            vec![],
        ),
        ("-c binary", vec!["-c", binary], vec![]),
        ("-c missing file", vec!["-c", missing], vec![]),
        ("-c a folder", vec!["-c", folder], vec![]),
        (
            "TOKENWATCH_CONFIG garbage",
            vec![],
            vec![("TOKENWATCH_CONFIG", garbage)],
        ),
        (
            "TOKENWATCH_CONFIG missing",
            vec![],
            vec![("TOKENWATCH_CONFIG", missing)],
        ),
        (
            "bad TOKENWATCH__ variable",
            vec![],
            vec![("TOKENWATCH__MONITOR__CHECK_INTERVAL", "soon")],
        ),
    ];
    for (what, flags, env) in &setups {
        let mut args = flags.clone();
        args.extend(["config", "check"]);
        let check = sb.run_with(&args, env);
        assert_eq!(
            check.code,
            Some(78),
            "{what}: config check should fail: {}",
            check.stderr
        );

        for (sub, clean) in [
            (vec!["man"], &clean_man),
            (vec!["completions", "bash"], &clean_bash),
        ] {
            let mut args = flags.clone();
            args.extend(sub.iter().copied());
            let run = sb.run_with(&args, env);
            assert_eq!(run.code, Some(0), "{what} {sub:?}: {}", run.stderr);
            assert!(run.stderr.is_empty(), "{what} {sub:?}: {}", run.stderr);
            assert_eq!(run.stdout, clean.stdout, "{what} {sub:?}: output differs");
        }
    }
}

#[test]
fn completions_and_man_ignore_a_broken_project_config_and_dotenv() {
    let sb = sandbox();
    sb.write("config/tokenwatch.yaml", "token: {path: [\n");
    sb.write(
        ".env",
        "this line is not an assignment\nUPSTOX_CLIENT_ID=\"unterminated\n",
    );
    sb.write(
        "xdg-config/tokenwatch/config.yaml",
        "monitor:\n  check_interval: never\n",
    );
    assert_eq!(sb.run(&["config", "check"]).code, Some(78));
    for args in [
        &["man"][..],
        &["completions", "zsh"],
        &["completions", "fish"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        assert!(!run.stdout.is_empty());
        assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn completions_and_man_need_no_home_at_all() {
    let sb = sandbox();
    for args in [&["man"][..], &["completions", "bash"]] {
        let out = std::process::Command::new(bin())
            .env_clear()
            .envs(common::clock_env())
            .current_dir(&sb.root)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// The systemd user unit
// ---------------------------------------------------------------------------------------

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tokenwatch.service")
}

/// The unit file parsed as INI: section -> key -> values (a key may repeat). Fails on
/// anything that is not a comment, a blank line, a `[Section]` header or `Key=value`.
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let n = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "line {n}: continuation lines are not used: {raw}"
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                !sections.contains_key(name),
                "line {n}: section [{name}] appears twice"
            );
            sections.insert(name.to_owned(), BTreeMap::new());
            current = Some(name.to_owned());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {n}: not key=value: {raw}"));
        assert!(
            !key.is_empty()
                && key.chars().next().unwrap().is_ascii_uppercase()
                && key.chars().all(|c| c.is_ascii_alphanumeric()),
            "line {n}: bad key {key:?}"
        );
        assert_eq!(key, key.trim(), "line {n}: space around the key");
        let section = current
            .as_ref()
            .unwrap_or_else(|| panic!("line {n}: key outside a section"));
        sections
            .get_mut(section)
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    sections
}

fn unit() -> (String, BTreeMap<String, BTreeMap<String, Vec<String>>>) {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let parsed = parse_unit(&text);
    (text, parsed)
}

/// The single value of `key` in `[section]`.
fn one<'a>(
    unit: &'a BTreeMap<String, BTreeMap<String, Vec<String>>>,
    section: &str,
    key: &str,
) -> &'a str {
    let values = unit
        .get(section)
        .unwrap_or_else(|| panic!("no [{section}]"))
        .get(key)
        .unwrap_or_else(|| panic!("no {key}= in [{section}]"));
    assert_eq!(values.len(), 1, "{key}= set {} times", values.len());
    &values[0]
}

#[test]
fn unit_file_parses_with_the_three_sections() {
    let (_, unit) = unit();
    let names: Vec<&str> = unit.keys().map(String::as_str).collect();
    assert_eq!(names, ["Install", "Service", "Unit"]);
    assert!(!one(&unit, "Unit", "Description").is_empty());
    // A user unit: started with the user's manager; no User= (a user manager cannot switch).
    assert_eq!(one(&unit, "Install", "WantedBy"), "default.target");
    assert!(!unit["Service"].contains_key("User"));
    assert!(!unit["Service"].contains_key("Group"));
}

#[test]
fn unit_runs_the_daemon_from_cargo_bin() {
    let (_, unit) = unit();
    let exec = one(&unit, "Service", "ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv, ["%h/.cargo/bin/tokenwatch", "daemon"], "{exec}");
    assert_eq!(
        one(&unit, "Service", "EnvironmentFile"),
        "-%h/.config/tokenwatch/env"
    );
}

#[test]
fn unit_is_hardened() {
    let (text, unit) = unit();
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(&unit, "Service", key), value, "{key}");
    }
    let mut families: Vec<&str> = one(&unit, "Service", "RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    families.sort_unstable();
    assert_eq!(families, ["AF_INET", "AF_INET6", "AF_UNIX"]);

    // Writable: the state folder; the token folder is a commented example to adapt.
    let writable = &unit["Service"]["ReadWritePaths"];
    assert!(
        writable.iter().any(|v| v == "%h/.local/state/tokenwatch"),
        "{writable:?}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("#ReadWritePaths=")),
        "no commented ReadWritePaths= line for the token folder"
    );
    // The user-unit caveat is explained where it matters.
    assert!(text.contains("PrivateUsers"));
}

#[test]
fn unit_restarts_on_failure_but_not_on_a_config_error() {
    let (_, unit) = unit();
    assert_eq!(one(&unit, "Service", "Restart"), "on-failure");
    let delay = one(&unit, "Service", "RestartSec");
    assert!(
        humantime::parse_duration(delay).is_ok_and(|d| d.as_secs() >= 5),
        "RestartSec={delay}"
    );
    let prevent = one(&unit, "Service", "RestartPreventExitStatus");
    assert!(
        prevent.split_whitespace().any(|s| s == "78"),
        "RestartPreventExitStatus={prevent}"
    );
}

#[test]
fn unit_comments_every_directive_it_sets_in_service() {
    // Each directive line is preceded (possibly through other directives of the same group)
    // by a comment: no long runs of uncommented settings.
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let mut run = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() || line.starts_with('[') {
            run = 0;
        } else {
            run += 1;
            assert!(
                run <= 3,
                "more than three settings in a row without a comment, at {line}"
            );
        }
    }
}

/// systemd-analyze, where installed, accepts the unit (as a system unit with the built
/// binary in ExecStart: user-mode verification needs a running user manager).
#[test]
fn unit_passes_systemd_analyze_verify() {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("tokenwatch.service");
    let adapted: String = text
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .map(|l| {
            if l.starts_with("ExecStart=") {
                format!("ExecStart={} daemon", env!("CARGO_BIN_EXE_tokenwatch"))
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&copy, adapted).unwrap();
    let out = match std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: systemd-analyze not available ({e})");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Failed to initialize manager") || stderr.contains("Failed to connect") {
        eprintln!("skipped: systemd-analyze cannot run here: {stderr}");
        return;
    }
    assert!(out.status.success(), "systemd-analyze verify:\n{stderr}");
    assert!(
        !stderr.contains("tokenwatch.service:"),
        "systemd-analyze complains:\n{stderr}"
    );
}
