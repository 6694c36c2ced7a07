//! `tokenwatch init`: the guided setup, from flags (no terminal) and in a real terminal.
//! Every run is the real binary in a sandbox whose working folder has an empty `config/`.

mod common;

use common::{Out, Sandbox, Tmux, bin, mode, sh_quote};
use std::path::Path;

const UPSTOX_ID: &str = "615b1297-d443-3b39-ba19-1927fbcdddc7";
/// The app secret the tests hand `init` through a variable; it must appear in no output.
const SECRET: &str = "zq9S3cr3tV4lue-init";
/// The secret typed into the interactive session; it must never show on the screen.
const TYPED_SECRET: &str = "Typed5ecretNeverShown";

fn sandbox() -> Sandbox {
    Sandbox::named("tw-init-")
}

/// `tokenwatch init <args>` with no terminal, the app secret in `$TW_SECRET`.
fn init(sb: &Sandbox, args: &[&str]) -> Out {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    sb.run_with(&all, &[("TW_SECRET", SECRET)])
}

/// The usual non-interactive Upstox setup.
fn upstox_init(sb: &Sandbox, more: &[&str]) -> Out {
    let token = sb.root.join("engine/upstox_token.json");
    let token = token.to_str().unwrap().to_owned();
    let mut args = vec![
        "--yes",
        "--client-id",
        UPSTOX_ID,
        "--client-secret-env",
        "TW_SECRET",
        "--token-path",
        &token,
    ];
    args.extend_from_slice(more);
    init(sb, &args)
}

fn assert_no_secret(label: &str, out: &Out, secret: &str) {
    assert!(
        !out.all().contains(secret),
        "{label}: the secret is in the output:\n{}",
        out.all()
    );
}

/// `tokenwatch init` in a real terminal of `size`, in the sandbox's folder; the shell says
/// `EXITED:<code>` when it ends.
fn init_in_a_terminal(sb: &Sandbox, name: &str, size: (u16, u16)) -> Tmux {
    let script = format!(
        "cd {} && {} init; echo EXITED:$?; sleep 60",
        sh_quote(&sb.root.display().to_string()),
        sh_quote(bin())
    );
    Tmux::start(
        format!("{name}-{}", std::process::id()),
        &sb.env,
        &sb.env,
        size,
        &script,
    )
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn flags_and_yes_write_a_config_that_config_check_accepts_with_the_secret_private() {
    let sb = sandbox();
    let out = upstox_init(&sb, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    out.assert_stdout("configuration OK");
    let check = sb.run(&["config", "check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
    check.assert_stderr("configuration OK");
    let shown = check.yaml();
    assert_eq!(shown["upstox"]["client_id"].as_str(), Some(UPSTOX_ID));
    assert_eq!(
        shown["token"]["path"].as_str().map(Path::new),
        Some(sb.root.join("engine/upstox_token.json").as_path())
    );
    // The secret is in .env alone, private; the config holds none.
    let env = sb.root.join(".env");
    assert_eq!(mode(&env), 0o600);
    assert!(String::from_utf8(read(&env)).unwrap().contains(SECRET));
    assert!(
        !String::from_utf8(read(&sb.config_path()))
            .unwrap()
            .contains(SECRET)
    );
    assert_eq!(mode(&sb.config_path()), 0o600);
    for (label, o) in [("init", &out), ("config check", &check)] {
        assert_no_secret(label, o, SECRET);
    }
}

#[test]
fn a_second_run_refuses_without_force_and_force_replaces_keeping_a_backup() {
    let sb = sandbox();
    assert_eq!(upstox_init(&sb, &[]).code, Some(0));
    let (config, env) = (read(&sb.config_path()), read(&sb.root.join(".env")));
    // Another redirect port, so there is a change to show.
    let again = upstox_init(&sb, &["--redirect-uri", "http://localhost:5002/callback"]);
    assert_eq!(again.code, Some(1), "{}", again.all());
    again.assert_stderr("--force");
    again.assert_stderr("nothing written");
    // Which keys change, never their values.
    again.assert_stderr("~ upstox.redirect_uri (changed)");
    assert!(!again.all().contains("5002"), "{}", again.all());
    assert_eq!(read(&sb.config_path()), config, "the config was touched");
    assert_eq!(read(&sb.root.join(".env")), env, ".env was touched");
    let bak = sb.root.join("config/tokenwatch.yaml.bak");
    assert!(!bak.exists());

    let forced = upstox_init(
        &sb,
        &[
            "--redirect-uri",
            "http://localhost:5002/callback",
            "--force",
        ],
    );
    assert_eq!(forced.code, Some(0), "{}", forced.all());
    assert_eq!(read(&bak), config, "the backup is the replaced config");
    assert_eq!(mode(&bak), 0o600);
    let now = String::from_utf8(read(&sb.config_path())).unwrap();
    assert!(now.contains("http://localhost:5002/callback"), "{now}");
    assert_no_secret("--force", &forced, SECRET);

    // The same answers again: nothing to do, and that is no failure.
    let same = upstox_init(&sb, &["--redirect-uri", "http://localhost:5002/callback"]);
    assert_eq!(same.code, Some(0), "{}", same.all());
    same.assert_stdout("already hold these answers; nothing changed");
    // A second forced change keeps the first backup and adds another.
    let third = upstox_init(
        &sb,
        &[
            "--redirect-uri",
            "http://localhost:5003/callback",
            "--force",
        ],
    );
    assert_eq!(third.code, Some(0), "{}", third.all());
    assert_eq!(read(&bak), config, "the first backup is kept");
    let bak1 = sb.root.join("config/tokenwatch.yaml.bak.1");
    assert!(String::from_utf8(read(&bak1)).unwrap().contains("5002"));
}

#[test]
fn a_refusal_names_keys_and_never_prints_what_an_old_config_holds() {
    let sb = sandbox();
    sb.write(
        "config/tokenwatch.yaml",
        "server: {api_key: \"SERVERKEY7\"}\nupstox:\n  client_secret: |\n    BLOCKSECRET5\n\
         renew:\n  command: [\"fetch\", \"--password\", \"CMDSECRET3\"]\n",
    );
    for force in [false, true] {
        let out = upstox_init(&sb, if force { &["--force"] } else { &[] });
        for secret in ["SERVERKEY7", "BLOCKSECRET5", "CMDSECRET3"] {
            assert_no_secret("a refusal or --force", &out, secret);
        }
        out.assert_says("- server.api_key (removed)");
    }
}

#[test]
fn without_a_terminal_defaults_need_yes_and_the_token_path_is_never_tokenwatchs_own() {
    let sb = sandbox();
    let out = init(
        &sb,
        &["--client-id", UPSTOX_ID, "--client-secret-env", "TW_SECRET"],
    );
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr(
        "no terminal to ask for the broker; pass --broker, or --yes to take the default (Upstox)",
    );
    assert!(!sb.config_path().exists());
    for own in [
        "config/tokenwatch.yaml",
        ".env",
        "config/upstox_token.json.history/x.json",
    ] {
        let path = sb.root.join(own);
        let out = init(
            &sb,
            &[
                "--yes",
                "--client-id",
                UPSTOX_ID,
                "--client-secret-env",
                "TW_SECRET",
                "--token-path",
                path.to_str().unwrap(),
            ],
        );
        assert_eq!(out.code, Some(3), "{own}: {}", out.all());
        out.assert_stderr("is tokenwatch's own file");
    }
}

#[test]
fn a_linked_env_is_not_replaced_and_an_exported_secret_stays_exported() {
    let sb = sandbox();
    let target = sb.root.join("shared.env");
    std::fs::write(&target, "export UPSTOX_CLIENT_SECRET=old-one\n").unwrap();
    std::os::unix::fs::symlink(&target, sb.root.join(".env")).unwrap();
    let out = upstox_init(&sb, &["--force"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr("is a symbolic link; init does not replace links");
    assert!(
        std::fs::symlink_metadata(sb.root.join(".env"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // The secrets go first: no config names a secret that was not written.
    assert!(!sb.config_path().exists());

    std::fs::remove_file(sb.root.join(".env")).unwrap();
    std::fs::rename(&target, sb.root.join(".env")).unwrap();
    let out = upstox_init(&sb, &["--force"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let env = String::from_utf8(read(&sb.root.join(".env"))).unwrap();
    assert!(env.starts_with("export UPSTOX_CLIENT_SECRET="), "{env}");
}

#[test]
fn a_changed_env_value_is_named_masked_and_refused_without_force() {
    let sb = sandbox();
    sb.write(".env", "UPSTOX_CLIENT_SECRET=an-older-secret-value\n");
    let out = upstox_init(&sb, &[]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr("UPSTOX_CLIENT_SECRET would be replaced");
    out.assert_stderr("--force");
    assert_no_secret("refusal", &out, "an-older-secret-value");
    assert_no_secret("refusal", &out, SECRET);
    assert!(!sb.config_path().exists());
}

#[test]
fn no_terminal_and_no_client_id_is_a_usage_error_naming_the_flag() {
    let sb = sandbox();
    let out = init(&sb, &["--yes", "--client-secret-env", "TW_SECRET"]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr("no terminal to ask for the client id; pass --client-id");
    assert!(!sb.config_path().exists());
    assert!(!sb.root.join(".env").exists());
}

#[test]
fn a_redirect_uri_off_this_machine_is_a_usage_error_with_the_reason() {
    let sb = sandbox();
    let out = upstox_init(&sb, &["--redirect-uri", "https://example.com/callback"]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr("is not on this machine (localhost, 127.0.0.1 or [::1])");
    let out = upstox_init(&sb, &["--redirect-uri", "ftp://localhost/callback"]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr("http(s)");
    assert!(!sb.config_path().exists());
}

#[test]
fn a_malformed_client_id_is_a_usage_error() {
    let sb = sandbox();
    let out = init(
        &sb,
        &[
            "--yes",
            "--client-id",
            "615b 1297!",
            "--client-secret-env",
            "TW_SECRET",
        ],
    );
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr("--client-id");
    // A Fyers app id without its app-type suffix.
    let out = init(
        &sb,
        &[
            "--yes",
            "--broker",
            "fyers",
            "--client-id",
            "AB12CD34EF",
            "--client-secret-env",
            "TW_SECRET",
        ],
    );
    assert_eq!(out.code, Some(3), "{}", out.all());
    out.assert_stderr("-100");
    assert!(!sb.config_path().exists());
}

#[test]
fn an_existing_env_keeps_its_other_lines() {
    let sb = sandbox();
    let before = "# my engine's settings\nENGINE_MODE=live\nexport OTHER_KEY='x y'\n";
    sb.write(".env", before);
    let out = upstox_init(&sb, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let env = String::from_utf8(read(&sb.root.join(".env"))).unwrap();
    assert!(env.starts_with(before), "{env}");
    assert!(env.contains("UPSTOX_CLIENT_SECRET="), "{env}");
    assert_eq!(mode(&sb.root.join(".env")), 0o600);
    assert_eq!(sb.run(&["config", "check"]).code, Some(0));
}

#[test]
fn fyers_and_angel_one_accounts_from_flags_pass_config_check() {
    let sb = sandbox();
    let out = init(
        &sb,
        &[
            "--yes",
            "--broker",
            "fyers",
            "--client-id",
            "AB12CD34EF-100",
            "--client-secret-env",
            "TW_SECRET",
            "--ntfy-topic",
            "tw-init-alerts",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let check = sb.run(&["config", "check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
    let shown = check.yaml();
    assert_eq!(shown["broker"].as_str(), Some("fyers"));
    assert_eq!(shown["fyers"]["client_id"].as_str(), Some("AB12CD34EF-100"));
    assert_eq!(
        shown["notifications"]["webhook_url"].as_str(),
        Some("https://ntfy.sh/… (path not shown)")
    );
    let written = String::from_utf8(read(&sb.config_path())).unwrap();
    assert!(
        written.contains("webhook_url: \"https://ntfy.sh/tw-init-alerts\""),
        "{written}"
    );
    assert!(
        shown["token"]["path"]
            .as_str()
            .unwrap()
            .ends_with("config/fyers_token.json")
    );
    assert_no_secret("fyers", &out, SECRET);
    assert_no_secret("fyers check", &check, SECRET);

    // Angel One, with its config elsewhere: the secrets go into that file, 0600.
    let sb = sandbox();
    let config = sb.root.join("elsewhere/angel.yaml");
    let config = config.to_str().unwrap();
    let (pin, totp) = ("4821", "JBSWY3DPEHPK3PXP");
    let out = sb.run_with(
        &[
            "--config",
            config,
            "init",
            "--yes",
            "--broker",
            "angel",
            "--client-id",
            "AbCd1234",
            "--client-code",
            "A123456",
            "--pin-env",
            "TW_PIN",
            "--totp-secret-env",
            "TW_TOTP",
        ],
        &[("TW_PIN", pin), ("TW_TOTP", totp)],
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(mode(Path::new(config)), 0o600);
    assert!(
        !sb.root.join(".env").exists(),
        "no .env for a config elsewhere"
    );
    let check = sb.run(&["--config", config, "config", "check"]);
    assert_eq!(check.code, Some(0), "{}", check.all());
    let shown = check.yaml();
    assert_eq!(shown["broker"].as_str(), Some("angel"));
    assert_eq!(shown["renew"]["strategy"].as_str(), Some("totp"));
    assert_eq!(shown["angel"]["client_code"].as_str(), Some("A123456"));
    for key in ["pin", "totp_secret"] {
        let v = shown["angel"][key].as_str().unwrap_or_default();
        assert!(v.starts_with("******** (set"), "angel.{key}: {v}");
    }
    for o in [&out, &check] {
        assert_no_secret("angel", o, totp);
        assert!(!o.all().contains(&format!("\"{pin}\"")), "{}", o.all());
    }
    out.assert_stdout(&format!("export TOKENWATCH_CONFIG={config}"));
}

/// The screens of the interactive session, kept for the record.
fn keep(screens: &mut Vec<(String, String)>, what: &str, screen: String) -> String {
    screens.push((what.to_string(), screen.clone()));
    screen
}

fn no_typed_secret(screen: &str) {
    assert!(
        !screen.contains(TYPED_SECRET),
        "the typed secret shows on the screen:\n{screen}"
    );
}

#[test]
fn a_session_in_a_terminal_asks_every_question_and_writes_the_files() {
    let sb = sandbox();
    let tmux = init_in_a_terminal(&sb, "tw-init", (110, 40))
        .capture_with(&["-J"])
        .checking(no_typed_secret);
    let mut screens = Vec::new();
    // The question and its whole list (drawn in more than one write).
    let s = tmux.wait_until("the broker question", |s| {
        s.contains("Which broker") && s.contains("Dhan")
    });
    for b in ["Upstox", "Zerodha Kite", "Fyers", "Angel One", "Dhan"] {
        assert!(s.contains(b), "{b} missing:\n{s}");
    }
    keep(&mut screens, "broker", s);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the client id", |s| s.contains("Upstox client id"));
    keep(&mut screens, "client id", s);
    // A bad id is asked again, with the reason.
    tmux.keys(&["-l", "not an id!"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the reason", |s| {
        s.contains("may hold letters, digits, - and _ only")
    });
    keep(&mut screens, "a bad client id", s);
    for _ in 0.."not an id!".len() {
        tmux.keys(&["BSpace"]);
    }
    tmux.keys(&["-l", UPSTOX_ID]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the secret", |s| s.contains("Upstox client secret"));
    keep(&mut screens, "client secret", s);
    tmux.keys(&["-l", TYPED_SECRET]);
    let s = tmux.wait_until("typed, hidden", |s| s.contains("hidden as you type"));
    keep(&mut screens, "secret typed (hidden)", s);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the strategy", |s| {
        s.contains("How should tokenwatch renew")
    });
    assert!(s.contains("token-request"), "{s}");
    assert!(s.contains("opens the login for you"), "{s}");
    keep(&mut screens, "strategy", s);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the redirect URL", |s| s.contains("Redirect URL"));
    keep(&mut screens, "redirect URL", s);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the token file", |s| {
        s.contains("Where does your engine read")
    });
    assert!(
        s.contains("set the Redirect URL to")
            && s.contains("exactly:\n      http://localhost:5001/callback"),
        "{s}"
    );
    keep(&mut screens, "token file", s);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the alerts", |s| s.contains("Where should alerts go"));
    keep(&mut screens, "alerts", s);
    tmux.keys(&["Down"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the ntfy topic", |s| s.contains("ntfy topic"));
    keep(&mut screens, "ntfy topic", s);
    tmux.keys(&["-l", "tw-init-phone"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the summary", |s| s.contains("Write these files?"));
    assert!(s.contains("UPSTOX_CLIENT_SECRET (values not shown)"), "{s}");
    keep(&mut screens, "summary", s);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the login offer", |s| s.contains("Log in to Upstox now?"));
    assert!(s.contains("configuration OK"), "{s}");
    keep(&mut screens, "login offer", s);
    tmux.keys(&["-l", "n"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_until("the end", |s| s.contains("EXITED:"));
    keep(&mut screens, "the end", s.clone());
    assert!(s.contains("EXITED:0"), "{s}");
    assert!(s.contains("Log in: tokenwatch login"), "{s}");

    let record: String = screens
        .iter()
        .map(|(what, screen)| format!("===== {what} =====\n{}\n", screen.trim_end()))
        .collect();
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("init-session.txt"),
        &record,
    );

    let config = String::from_utf8(read(&sb.config_path())).unwrap();
    assert!(
        config.contains(&format!("client_id: \"{UPSTOX_ID}\"")),
        "{config}"
    );
    assert!(
        config.contains("webhook_url: \"https://ntfy.sh/tw-init-phone\""),
        "{config}"
    );
    assert!(!config.contains(TYPED_SECRET));
    let env = String::from_utf8(read(&sb.root.join(".env"))).unwrap();
    assert!(
        env.contains(&format!("UPSTOX_CLIENT_SECRET='{TYPED_SECRET}'")),
        "{env}"
    );
    assert_eq!(mode(&sb.root.join(".env")), 0o600);
    assert_eq!(sb.run(&["config", "check"]).code, Some(0));
}

#[test]
fn escape_at_a_question_writes_nothing() {
    let sb = sandbox();
    let tmux = init_in_a_terminal(&sb, "tw-init-esc", (100, 30));
    tmux.wait_until("the broker question", |s| s.contains("Which broker"));
    tmux.keys(&["Enter"]);
    tmux.wait_until("the client id", |s| s.contains("Upstox client id"));
    tmux.keys(&["Escape"]);
    let s = tmux.wait_until("the end", |s| s.contains("EXITED:"));
    assert!(s.contains("cancelled; nothing written"), "{s}");
    assert!(s.contains("EXITED:130"), "{s}");
    assert!(!sb.config_path().exists());
    assert!(!sb.root.join(".env").exists());
}
