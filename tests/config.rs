//! Configuration: discovery, the five layers and their precedence, path resolution, and the
//! error messages (file, key, expectation) for every kind of bad input.

mod common;

use common::ConfigEnv;
use std::path::{Path, PathBuf};
use tokenwatch::brokers::Broker;
use tokenwatch::config::{self, Config, ConfigError, LoadOptions, LogLevel, Strategy};

/// A sandbox for the library's loader, and the environment it gets (HOME in the sandbox).
type Fixture = ConfigEnv;

impl ConfigEnv {
    fn root(&self) -> &Path {
        &self.sb.root
    }

    fn home(&self) -> PathBuf {
        self.sb.home()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.sb.write(rel, text)
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            cwd: self.root().to_path_buf(),
            ..Default::default()
        }
    }

    fn load_with(&self, opts: &LoadOptions) -> Result<Config, ConfigError> {
        config::load(opts, &self.env, None)
    }

    fn load(&self) -> Result<Config, ConfigError> {
        self.load_with(&self.opts())
    }

    fn err(&self) -> ConfigError {
        self.load()
            .expect_err("the configuration should be refused")
    }
}

#[test]
fn no_file_means_defaults_in_the_state_folder() {
    let f = Fixture::new();
    let c = f.load().unwrap();
    let state = f.home().join(".local/state/tokenwatch");
    assert_eq!(c.sources.config_file, None);
    assert_eq!(c.account.name, "default");
    assert_eq!(c.account.token.path, state.join("upstox_token.json"));
    // The second default backup is the primary itself here, so it is dropped.
    assert_eq!(
        c.account.token.backups,
        vec![state.join("backup/upstox_token.json")]
    );
    assert_eq!(
        c.account.upstox.redirect_uri.as_str(),
        "http://localhost:5001/callback"
    );
    assert_eq!(
        c.account.upstox.api_base.as_str(),
        "https://api.upstox.com/"
    );
    assert_eq!(c.account.upstox.client_id, None);
    assert_eq!(c.monitor.check_interval.as_secs(), 1800);
    assert_eq!(c.monitor.warning_before.as_secs(), 3 * 3600);
    assert_eq!(c.monitor.critical_before.as_secs(), 3600);
    assert_eq!(c.monitor.max_retries, 3);
    assert_eq!(c.account.renew.strategy, Strategy::Browser);
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.file, state.join("tokenwatch.log"));
}

#[test]
fn xdg_state_home_moves_the_default_folder() {
    let mut f = Fixture::new();
    let state = f.root().join("state");
    f.set("XDG_STATE_HOME", &state.display().to_string());
    let c = f.load().unwrap();
    assert_eq!(
        c.account.token.path,
        state.join("tokenwatch/upstox_token.json")
    );
}

#[test]
fn the_shipped_config_file_parses_and_equals_the_defaults() {
    let f = Fixture::new();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/tokenwatch.yaml"
    ))
    .unwrap();
    let path = f.write("config/tokenwatch.yaml", &shipped);
    let with_file = f.load().unwrap();
    assert_eq!(
        with_file.sources.config_file.as_deref(),
        Some(path.as_path())
    );
    assert_token_files(&f, &with_file, "upstox_token.json");
    std::fs::remove_file(&path).unwrap();
    let defaults = f.load().unwrap();
    assert_eq!(with_file.monitor, defaults.monitor);
    assert_eq!(with_file.account.renew, defaults.account.renew);
    assert_eq!(with_file.login, defaults.login);
    assert_eq!(with_file.notifications, defaults.notifications);
    assert_eq!(with_file.log, defaults.log);
    assert_eq!(
        with_file.account.upstox.redirect_uri,
        defaults.account.upstox.redirect_uri
    );
    assert_eq!(with_file.account.upstox.client_id, None);
    assert!(with_file.account.upstox.client_secret.is_none());
}

#[test]
fn discovery_order() {
    let mut f = Fixture::new();
    let xdg = f.write(
        "home/.config/tokenwatch/config.yaml",
        "log: { level: warn }\n",
    );
    assert_eq!(
        f.load().unwrap().sources.config_file.as_deref(),
        Some(xdg.as_path())
    );
    assert_eq!(f.load().unwrap().log.level, LogLevel::Warn);

    let local = f.write("config/tokenwatch.yaml", "log: { level: error }\n");
    assert_eq!(
        f.load().unwrap().sources.config_file.as_deref(),
        Some(local.as_path())
    );

    let named = f.write("elsewhere/tw.yaml", "log: { level: debug }\n");
    f.set("TOKENWATCH_CONFIG", &named.display().to_string());
    assert_eq!(
        f.load().unwrap().sources.config_file.as_deref(),
        Some(named.as_path())
    );

    let flag = f.write("flag.yaml", "log: { level: trace }\n");
    let opts = LoadOptions {
        config_file: Some(PathBuf::from("flag.yaml")),
        ..f.opts()
    };
    let c = f.load_with(&opts).unwrap();
    assert_eq!(c.sources.config_file.as_deref(), Some(flag.as_path()));
    assert_eq!(c.log.level, LogLevel::Trace);
}

#[test]
fn a_named_config_file_must_exist() {
    let mut f = Fixture::new();
    let opts = LoadOptions {
        config_file: Some(PathBuf::from("nope.yaml")),
        ..f.opts()
    };
    let e = f.load_with(&opts).unwrap_err();
    assert_eq!(e.origin, "--config");
    assert!(e.message.contains("nope.yaml"), "{e}");

    f.set("TOKENWATCH_CONFIG", "/does/not/exist.yaml");
    let e = f.err();
    assert_eq!(e.origin, "environment variable TOKENWATCH_CONFIG");
    assert!(e.message.contains("/does/not/exist.yaml"), "{e}");
}

/// Each config file (YAML) is refused naming the file, the key (when one is to blame) and
/// what was expected.
fn assert_file_errors(f: &Fixture, cases: &[(&str, Option<&str>, &str)]) {
    for (yaml, key, expectation) in cases {
        let path = f.write("config/tokenwatch.yaml", yaml);
        let e = f.err();
        assert_error(
            &e,
            &format!("config file {}", path.display()),
            *key,
            expectation,
        );
    }
}

/// The token file `name` beside the config file, and the default backups: `backup/<name>`
/// beside it and `<name>` in the state folder.
fn assert_token_files(f: &Fixture, c: &Config, name: &str) {
    let dir = f.root().join("config");
    assert_eq!(c.account.token.path, dir.join(name));
    assert_eq!(
        c.account.token.backups,
        vec![
            dir.join("backup").join(name),
            f.home().join(".local/state/tokenwatch").join(name)
        ]
    );
}

/// The account's Upstox client id, secret and redirect URI.
fn assert_upstox(c: &Config, id: &str, secret: &str, redirect: &str) {
    let u = &c.account.upstox;
    assert_eq!(u.client_id.as_deref(), Some(id));
    assert_eq!(u.client_secret.as_ref().unwrap().expose(), secret);
    assert_eq!(u.redirect_uri.as_str(), redirect);
}

#[test]
fn precedence_across_all_five_layers() {
    let mut f = Fixture::new();
    let legacy = r#"{"api_key":"legacy-id","api_secret":"legacy-secret","redirect_uri":"http://localhost:7001/legacy"}"#;
    // 1. defaults
    assert_eq!(
        f.load().unwrap().account.upstox.redirect_uri.as_str(),
        "http://localhost:5001/callback"
    );
    // 2. the legacy credentials file (its default place is ~/Algo/upstox_credentials.json)
    let legacy_path = f.write("home/Algo/upstox_credentials.json", legacy);
    let c = f.load().unwrap();
    assert_eq!(
        c.sources.legacy_credentials.as_deref(),
        Some(legacy_path.as_path())
    );
    assert_upstox(
        &c,
        "legacy-id",
        "legacy-secret",
        "http://localhost:7001/legacy",
    );
    // 3. the config file beats it
    f.write(
        "config/tokenwatch.yaml",
        "upstox:\n  client_id: file-id\n  redirect_uri: http://localhost:7002/file\nlog:\n  level: warn\n",
    );
    let c = f.load().unwrap();
    assert_upstox(&c, "file-id", "legacy-secret", "http://localhost:7002/file");
    assert_eq!(c.log.level, LogLevel::Warn);
    // 4. the environment beats the file; TOKENWATCH__ beats UPSTOX_
    f.set("UPSTOX_CLIENT_ID", "env-id")
        .set("UPSTOX_REDIRECT_URI", "http://localhost:7003/env");
    f.set("TOKENWATCH__LOG__LEVEL", "error");
    let c = f.load().unwrap();
    assert_eq!(c.account.upstox.client_id.as_deref(), Some("env-id"));
    assert_eq!(
        c.account.upstox.redirect_uri.as_str(),
        "http://localhost:7003/env"
    );
    assert_eq!(c.log.level, LogLevel::Error);
    assert!(
        c.sources
            .environment
            .contains(&"UPSTOX_CLIENT_ID".to_string())
    );
    f.set("TOKENWATCH__UPSTOX__CLIENT_ID", "specific-id");
    assert_eq!(
        f.load().unwrap().account.upstox.client_id.as_deref(),
        Some("specific-id")
    );
    // 5. command-line flags beat the environment
    let opts = LoadOptions {
        log_level: Some(LogLevel::Debug),
        ..f.opts()
    };
    let c = f.load_with(&opts).unwrap();
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.sources.flags, vec!["-v/--verbose".to_string()]);
}

#[test]
fn environment_values_are_typed_like_file_values() {
    let mut f = Fixture::new();
    f.set("TOKENWATCH__MONITOR__MAX_RETRIES", "5")
        .set("TOKENWATCH__MONITOR__CHECK_INTERVAL", "10m")
        .set("TOKENWATCH__NOTIFICATIONS__DESKTOP", "true")
        .set(
            "TOKENWATCH__TOKEN__ON_CHANGE",
            r#"["systemctl","--user","restart","engine"]"#,
        )
        .set("TOKENWATCH__RENEW__NOT_BEFORE", "07:45")
        .set("UPSTOX_CLIENT_SECRET", "")
        .set("UPSTOX_CLIENT_ID", "12345");
    let c = f.load().unwrap();
    assert_eq!(c.monitor.max_retries, 5);
    assert_eq!(c.monitor.check_interval.as_secs(), 600);
    assert!(c.notifications.desktop);
    assert_eq!(
        c.account.token.on_change,
        ["systemctl", "--user", "restart", "engine"]
    );
    assert_eq!(c.account.renew.not_before.to_string(), "07:45:00");
    // An empty variable is "not set", and a numeric-looking id is still text.
    assert!(c.account.upstox.client_secret.is_none());
    assert_eq!(c.account.upstox.client_id.as_deref(), Some("12345"));
}

#[test]
fn relative_paths_follow_the_config_file_and_tilde_expands() {
    let f = Fixture::new();
    f.write(
        "etc/tw/config.yaml",
        "token:\n  path: ../engine/token.json\n  backups: [\"~/bk/t.json\", \"/abs/t.json\"]\n  env_file: tok.env\nlog:\n  file: logs/tw.log\n",
    );
    let opts = LoadOptions {
        config_file: Some(PathBuf::from("etc/tw/config.yaml")),
        ..f.opts()
    };
    let c = f.load_with(&opts).unwrap();
    assert_eq!(c.account.token.path, f.root().join("etc/engine/token.json"));
    assert_eq!(
        c.account.token.backups,
        vec![f.home().join("bk/t.json"), PathBuf::from("/abs/t.json")]
    );
    assert_eq!(
        c.account.token.env_file,
        Some(f.root().join("etc/tw/tok.env"))
    );
    assert_eq!(c.log.file, f.root().join("etc/tw/logs/tw.log"));
}

#[test]
fn accounts_inherit_and_override() {
    let f = Fixture::new();
    f.write(
        "config/tokenwatch.yaml",
        "upstox:\n  client_id: main-id\n  api_base: http://127.0.0.1:9/\nrenew:\n  strategy: none\n\
         accounts:\n  family:\n    upstox:\n      client_id: family-id\n    token:\n      path: family.json\n",
    );
    let opts = LoadOptions {
        account: Some("family".into()),
        ..f.opts()
    };
    let c = f.load_with(&opts).unwrap();
    assert_eq!(c.account.name, "family");
    assert_eq!(c.account.upstox.client_id.as_deref(), Some("family-id"));
    assert_eq!(c.account.upstox.api_base.as_str(), "http://127.0.0.1:9/");
    assert_eq!(c.account.renew.strategy, Strategy::None);
    assert_token_files(&f, &c, "family.json");
    assert_eq!(
        c.accounts["default"].upstox.client_id.as_deref(),
        Some("main-id")
    );
    assert_eq!(c.accounts.len(), 2);
}

fn assert_error(e: &ConfigError, origin: &str, key: Option<&str>, expectation: &str) {
    assert!(
        e.origin.contains(origin),
        "origin {:?} should contain {origin:?} ({e})",
        e.origin
    );
    assert_eq!(e.key.as_deref(), key, "{e}");
    assert!(
        e.message.contains(expectation),
        "message {:?} should contain {expectation:?}",
        e.message
    );
    let shown = e.to_string();
    assert!(
        shown.contains(origin) && shown.contains(expectation),
        "{shown}"
    );
}

#[test]
fn file_errors_name_the_file_the_key_and_the_expectation() {
    let f = Fixture::new();
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "monitor:\n  check_interval: 30x\n",
            Some("monitor.check_interval"),
            "expected a duration like",
        ),
        (
            "monitor:\n  check_interval: 30\n",
            Some("monitor.check_interval"),
            "expected a duration with a unit",
        ),
        (
            "monitor:\n  bogus: 1\n",
            Some("monitor.bogus"),
            "unknown key; expected one of: check_interval",
        ),
        (
            "bogus_section: {}\n",
            Some("bogus_section"),
            "unknown key; expected one of: broker, upstox, kite, fyers, angel, dhan, token",
        ),
        (
            "monitor:\n  max_retries: lots\n",
            Some("monitor.max_retries"),
            "expected a whole number",
        ),
        (
            "server:\n  allow_remote: maybe\n",
            Some("server.allow_remote"),
            "expected true or false",
        ),
        (
            "renew:\n  strategy: phone\n",
            Some("renew.strategy"),
            "expected one of: browser, token-request, command, totp, refresh-token, none",
        ),
        (
            "renew:\n  not_before: 8am\n",
            Some("renew.not_before"),
            "HH:MM",
        ),
        (
            "upstox:\n  api_base: not a url\n",
            Some("upstox.api_base"),
            "expected an http(s) URL",
        ),
        (
            "server:\n  listen: everywhere\n",
            Some("server.listen"),
            "expected an address like",
        ),
        (
            "token:\n  on_change: \"restart engine\"\n",
            Some("token.on_change"),
            "list of strings",
        ),
        (
            "accounts:\n  alt:\n    monitor: {}\n",
            Some("accounts.alt.monitor"),
            "expected one of: broker, upstox, kite, fyers, angel, dhan, token, renew",
        ),
        ("monitor: [\n", None, "not valid YAML"),
        ("- just\n- a list\n", None, "expected sections"),
    ];
    assert_file_errors(&f, cases);
}

#[test]
fn cross_key_errors_name_where_the_value_came_from() {
    let f = Fixture::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "monitor:\n  critical_before: 4h\n",
            "monitor.critical_before",
            "must not be longer than monitor.warning_before",
        ),
        (
            "monitor:\n  check_interval: 1s\n",
            "monitor.check_interval",
            "at least 10s",
        ),
        (
            "monitor:\n  max_retries: 0\n",
            "monitor.max_retries",
            "at least 1",
        ),
        (
            "server:\n  listen: 0.0.0.0:8000\n",
            "server.listen",
            "not a loopback address",
        ),
        (
            "server:\n  listen: 0.0.0.0:8000\n  allow_remote: true\n",
            "server.api_key",
            "required when server.allow_remote",
        ),
        (
            "renew:\n  strategy: command\n",
            "renew.command",
            "required when renew.strategy is command",
        ),
        (
            "renew:\n  strategy: token-request\n",
            "renew.notifier_listen",
            "required",
        ),
        (
            "accounts:\n  alt:\n    upstox:\n      client_id: x\n",
            "accounts.alt.token.path",
            "would share",
        ),
        (
            "accounts:\n  \"bad name\": {}\n",
            "accounts.bad name",
            "letters, digits",
        ),
    ];
    let cases: Vec<_> = cases.iter().map(|&(y, k, e)| (y, Some(k), e)).collect();
    assert_file_errors(&f, &cases);
    // The loopback rule holds for a value from the environment too, and names the variable.
    std::fs::remove_file(f.root().join("config/tokenwatch.yaml")).unwrap();
    let mut f = f;
    f.set("TOKENWATCH__SERVER__LISTEN", "192.168.1.5:8000");
    let e = f.err();
    assert_error(
        &e,
        "environment variable TOKENWATCH__SERVER__LISTEN",
        Some("server.listen"),
        "not a loopback",
    );
    // Loopback addresses are fine.
    f.set("TOKENWATCH__SERVER__LISTEN", "localhost:8000");
    assert_eq!(
        f.load().unwrap().server.listen.unwrap().to_string(),
        "127.0.0.1:8000"
    );
}

#[test]
fn environment_errors_name_the_variable() {
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "TOKENWATCH__MONITOR__CHECK_INTERVAL",
            "5",
            Some("monitor.check_interval"),
            "expected a duration",
        ),
        (
            "TOKENWATCH__MONITOR__NOPE",
            "1",
            Some("monitor.nope"),
            "unknown key",
        ),
        (
            "TOKENWATCH__MONITOR__MAX_RETRIES",
            "three",
            Some("monitor.max_retries"),
            "expected a whole number",
        ),
        (
            "TOKENWATCH__TOKEN__ON_CHANGE",
            "[not json",
            Some("token.on_change"),
            "JSON list of strings",
        ),
        ("TOKENWATCH____X", "1", None, "TOKENWATCH__SECTION__KEY"),
        (
            "UPSTOX_REDIRECT_URI",
            "localhost:5001",
            Some("upstox.redirect_uri"),
            "expected an http(s) URL",
        ),
    ];
    for (var, value, key, expectation) in cases {
        let mut f = Fixture::new();
        f.set(var, value);
        let e = f.err();
        assert_error(
            &e,
            &format!("environment variable {var}"),
            *key,
            expectation,
        );
    }
}

#[test]
fn legacy_file_errors_name_the_file() {
    let f = Fixture::new();
    let path = f.write("home/Algo/upstox_credentials.json", "{ not json");
    let e = f.err();
    assert_error(
        &e,
        &format!("legacy credentials file {}", path.display()),
        None,
        "expected a JSON object",
    );
    f.write("home/Algo/upstox_credentials.json", r#"{"api_key": ["x"]}"#);
    let e = f.err();
    assert_error(
        &e,
        "legacy credentials file",
        Some("api_key"),
        "expected a string",
    );
}

#[test]
fn an_unknown_account_lists_the_known_ones() {
    let f = Fixture::new();
    let opts = LoadOptions {
        account: Some("nope".into()),
        ..f.opts()
    };
    let e = f.load_with(&opts).unwrap_err();
    assert_error(
        &e,
        "--account",
        None,
        "no account named \"nope\"; the configured accounts are: default",
    );
}

#[test]
fn secrets_never_appear_in_errors_or_the_masked_config() {
    let secret = "S3CRET-VALUE-THAT-MUST-NOT-LEAK";
    let f = Fixture::new();
    for yaml in [
        format!("upstox:\n  client_secret: {{ nested: \"{secret}\" }}\n"),
        format!("upstox:\n  client_secret: [\"{secret}\"]\n"),
        format!("server:\n  api_key: [\"{secret}\"]\n"),
        format!("upstox:\n  client_secret: \"{secret}\"\n  bogus: 1\n"),
    ] {
        f.write("config/tokenwatch.yaml", &yaml);
        let e = f.err();
        assert!(!format!("{e} {e:?}").contains(secret), "{e}");
    }
    f.write(
        "config/tokenwatch.yaml",
        &format!("upstox:\n  client_secret: \"{secret}\"\n"),
    );
    let c = f.load().unwrap();
    assert_eq!(
        c.account.upstox.client_secret.as_ref().unwrap().expose(),
        secret
    );
    let shown = c.to_masked_yaml();
    assert!(
        !shown.contains(secret) && !shown.contains("S3CR"),
        "{shown}"
    );
    assert!(
        shown.contains("client_secret: '******** (set, 31 characters)'"),
        "{shown}"
    );
    assert!(!format!("{c:?}").contains(secret));
}

#[test]
fn empty_files_and_empty_keys_mean_not_set() {
    let f = Fixture::new();
    f.write("config/tokenwatch.yaml", "# nothing yet\n");
    assert_eq!(f.load().unwrap().monitor.max_retries, 3);
    f.write(
        "config/tokenwatch.yaml",
        "monitor:\naccounts:\nupstox:\n  client_id:\n",
    );
    let c = f.load().unwrap();
    assert_eq!(c.monitor.max_retries, 3);
    assert_eq!(c.account.upstox.client_id, None);
}

#[test]
fn the_broker_is_upstox_unless_said_and_each_account_has_its_own() {
    let f = Fixture::new();
    // No file: every existing setup keeps watching Upstox, with Upstox's token file.
    let c = f.load().unwrap();
    assert_eq!(c.account.broker, Broker::Upstox);
    f.write("config/tokenwatch.yaml", "renew:\n  strategy: none\n");
    let c = f.load().unwrap();
    assert_eq!(c.account.broker, Broker::Upstox);
    assert_token_files(&f, &c, "upstox_token.json");

    // broker: kite at the top level: Kite's defaults and its own token file name.
    f.write("config/tokenwatch.yaml", "broker: kite\n");
    let c = f.load().unwrap();
    assert_eq!(c.account.broker, Broker::Kite);
    assert_token_files(&f, &c, "kite_token.json");
    let k = &c.account.kite;
    assert_eq!(k.api_base.as_str(), "https://api.kite.trade/");
    assert_eq!(k.login_base.as_str(), "https://kite.zerodha.com/");
    assert_eq!(k.redirect_uri.as_str(), "http://localhost:5001/callback");
    assert_eq!(k.api_key, None);
    assert!(k.api_secret.is_none());
    // A Kite account that names its file keeps it.
    f.write(
        "config/tokenwatch.yaml",
        "broker: KITE\ntoken:\n  path: zerodha.json\n",
    );
    let e = f.err();
    assert!(e.to_string().contains("broker"), "{e}");
    f.write(
        "config/tokenwatch.yaml",
        "broker: kite\ntoken:\n  path: zerodha.json\n",
    );
    assert_token_files(&f, &f.load().unwrap(), "zerodha.json");

    // Side by side: the top level on Upstox, one account on Kite with its own app.
    f.write(
        "config/tokenwatch.yaml",
        "upstox:\n  client_id: up-id\n\
         accounts:\n  zerodha:\n    broker: kite\n    kite:\n      api_key: kite-key\n      api_secret: kite-secret\n      api_base: http://127.0.0.1:9/\n",
    );
    let c = f.load().unwrap();
    assert_eq!(c.accounts["default"].broker, Broker::Upstox);
    let z = &c.accounts["zerodha"];
    assert_eq!(z.broker, Broker::Kite);
    assert_eq!(z.kite.api_key.as_deref(), Some("kite-key"));
    assert_eq!(z.kite.api_secret.as_ref().unwrap().expose(), "kite-secret");
    assert_eq!(z.kite.api_base.as_str(), "http://127.0.0.1:9/");
    assert_eq!(
        z.token.path.file_name().unwrap(),
        "kite_token.json",
        "{:?}",
        z.token.path
    );
    assert_ne!(z.token.path, c.accounts["default"].token.path);
}

#[test]
fn an_unknown_broker_is_a_plain_error_and_each_broker_has_its_strategies() {
    let f = Fixture::new();
    let path = f.write("config/tokenwatch.yaml", "broker: robinhood\n");
    let e = f.err();
    assert_error(
        &e,
        &format!("config file {}", path.display()),
        Some("broker"),
        "upstox",
    );
    for b in ["kite", "fyers", "angel", "dhan"] {
        assert!(e.message.contains(b), "the valid ones are listed: {e}");
    }
    // Upstox's phone approval is Upstox's alone.
    f.write(
        "config/tokenwatch.yaml",
        "broker: kite\nrenew:\n  strategy: token-request\n  notifier_listen: 127.0.0.1:5002\n  notifier_path: /hook/x\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("renew.strategy"), "{e}");
    assert!(e.message.contains("Zerodha Kite"), "{e}");
    // Each broker has its own ways to renew, and the message lists them.
    f.write(
        "config/tokenwatch.yaml",
        "accounts:\n  z:\n    broker: kite\n    renew:\n      strategy: refresh-token\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("accounts.z.renew.strategy"), "{e}");
    assert!(
        e.message
            .contains("Zerodha Kite accounts renew with one of: browser, command, none"),
        "{e}"
    );
    f.write(
        "config/tokenwatch.yaml",
        "accounts:\n  fy:\n    broker: fyers\n    renew:\n      strategy: refresh-token\n",
    );
    // Fyers' refresh grant needs the PIN.
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("accounts.fy.fyers.pin"), "{e}");
    assert!(e.message.contains("FYERS_PIN"), "{e}");
    f.write(
        "config/tokenwatch.yaml",
        "accounts:\n  fy:\n    broker: fyers\n    fyers:\n      pin: \"4321\"\n    renew:\n      strategy: refresh-token\n",
    );
    let c = f.load().unwrap();
    assert_eq!(c.accounts["fy"].renew.strategy, Strategy::RefreshToken);
}

#[test]
fn kite_keys_come_from_the_environment_like_upstox_ones() {
    let secret = "KITE-S3CRET-THAT-MUST-NOT-LEAK";
    let mut f = Fixture::new();
    f.write("config/tokenwatch.yaml", "broker: kite\n");
    f.set("KITE_API_KEY", "env-key");
    f.set("KITE_API_SECRET", secret);
    let c = f.load().unwrap();
    assert_eq!(c.account.kite.api_key.as_deref(), Some("env-key"));
    assert_eq!(c.account.kite.api_secret.as_ref().unwrap().expose(), secret);
    assert!(
        c.sources
            .environment
            .contains(&"KITE_API_SECRET".to_string()),
        "{:?}",
        c.sources.environment
    );
    // Masked like upstox.client_secret, never shown.
    let shown = c.to_masked_yaml();
    assert!(
        !shown.contains(secret) && !shown.contains("KITE-S3"),
        "{shown}"
    );
    assert!(shown.contains("broker: kite"), "{shown}");
    assert!(
        shown.contains("api_secret: '******** (set, 30 characters)'"),
        "{shown}"
    );
    assert!(!format!("{c:?}").contains(secret));
}

#[test]
fn a_kite_login_names_the_kite_keys_it_lacks() {
    let f = Fixture::new();
    f.write("config/tokenwatch.yaml", "broker: kite\n");
    let c = f.load().unwrap();
    let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
    assert!(
        e.contains("kite.api_key") && e.contains("KITE_API_KEY"),
        "{e}"
    );
    f.write(
        "config/tokenwatch.yaml",
        "broker: kite\nkite:\n  api_key: k\n",
    );
    let c = f.load().unwrap();
    let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
    assert!(
        e.contains("kite.api_secret") && e.contains("KITE_API_SECRET"),
        "{e}"
    );
    f.write(
        "config/tokenwatch.yaml",
        "broker: kite\nkite:\n  api_key: k\n  api_secret: s\n  login_base: http://127.0.0.1:9/\n",
    );
    let c = f.load().unwrap();
    let app = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap();
    assert_eq!(app.client_id, "k");
    assert_eq!(app.login_base.as_str(), "http://127.0.0.1:9/");
}

#[test]
fn a_fyers_account_has_its_own_section_file_and_keys() {
    let secret = "FYERS-S3CRET-THAT-MUST-NOT-LEAK";
    let mut f = Fixture::new();
    f.write("config/tokenwatch.yaml", "broker: fyers\n");
    let c = f.load().unwrap();
    assert_eq!(c.account.broker, Broker::Fyers);
    assert_token_files(&f, &c, "fyers_token.json");
    let y = &c.account.fyers;
    assert_eq!(y.api_base.as_str(), "https://api-t1.fyers.in/");
    assert_eq!(y.login_base.as_str(), "https://api-t1.fyers.in/");
    assert_eq!(y.redirect_uri.as_str(), "http://localhost:5001/callback");
    assert_eq!(y.invalid_codes, vec![-8, -15, -16, -17]);
    // The login names what it lacks, and the app id's -100 suffix.
    let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
    assert!(
        e.contains("fyers.client_id") && e.contains("FYERS_CLIENT_ID"),
        "{e}"
    );
    f.set("FYERS_CLIENT_ID", "AB12CD34EF");
    let c = f.load().unwrap();
    let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
    assert!(e.contains("-100"), "{e}");
    f.set("FYERS_CLIENT_ID", "AB12CD34EF-100");
    let c = f.load().unwrap();
    let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
    assert!(
        e.contains("fyers.secret_key") && e.contains("FYERS_SECRET_KEY"),
        "{e}"
    );
    f.set("FYERS_SECRET_KEY", secret);
    let c = f.load().unwrap();
    let app = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap();
    assert_eq!(app.client_id, "AB12CD34EF-100");
    assert_eq!(app.client_secret.expose(), secret);
    let shown = c.to_masked_yaml();
    assert!(
        !shown.contains(secret) && !shown.contains("FYERS-S3"),
        "{shown}"
    );
    assert!(shown.contains("broker: fyers"), "{shown}");
    assert!(!format!("{c:?}").contains(secret));

    // Beside an Upstox account, with its own dead-token codes.
    f.write(
        "config/tokenwatch.yaml",
        "accounts:\n  fy:\n    broker: fyers\n    fyers:\n      client_id: X-100\n      invalid_codes: [-16]\n",
    );
    let c = f.load().unwrap();
    let fy = &c.accounts["fy"];
    assert_eq!(fy.broker, Broker::Fyers);
    assert_eq!(fy.fyers.invalid_codes, vec![-16]);
    assert_eq!(fy.token.path.file_name().unwrap(), "fyers_token.json");
    assert_ne!(fy.token.path, c.accounts["default"].token.path);
    // token-request stays Upstox's.
    f.write(
        "config/tokenwatch.yaml",
        "broker: fyers\nrenew:\n  strategy: token-request\n  notifier_listen: 127.0.0.1:5002\n  notifier_path: /hook/x\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("renew.strategy"), "{e}");
}

#[test]
fn an_angel_account_has_its_own_section_file_keys_and_totp_secret() {
    use std::os::unix::fs::PermissionsExt;
    const PIN: &str = "PIN-ANGEL-7Qz";
    const SECRET: &str = "KRUGKIDROVUWG2ZAMJZG653OEBTG66BAN5SCA";
    let mut f = Fixture::new();
    f.write("config/tokenwatch.yaml", "broker: angel\n");
    let c = f.load().unwrap();
    assert_eq!(c.account.broker, Broker::Angel);
    assert_eq!(c.account.renew.strategy, Strategy::Totp);
    assert_token_files(&f, &c, "angel_token.json");
    let a = &c.account.angel;
    assert_eq!(a.api_base.as_str(), "https://apiconnect.angelone.in/");
    assert_eq!(a.invalid_codes, ["AG8001", "AG8002", "AG8003", "AB1010"]);
    assert_eq!(
        (
            a.client_local_ip.as_str(),
            a.client_public_ip.as_str(),
            a.mac_address.as_str()
        ),
        ("127.0.0.1", "106.193.147.98", "00:00:00:00:00:00")
    );
    // No browser login: the message says what the account does instead.
    let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
    assert!(e.contains("no browser login") && e.contains("totp"), "{e}");
    let user = tokenwatch::brokers::AngelUser::of(a);
    assert_eq!(user.missing(Strategy::Totp).len(), 4);
    assert_eq!(
        user.missing(Strategy::RefreshToken),
        ["angel.api_key (ANGEL_API_KEY)"]
    );

    // The keys from the environment, the secrets masked.
    f.set("ANGEL_API_KEY", "angel-key");
    f.set("ANGEL_CLIENT_CODE", "A123456");
    f.set("ANGEL_PIN", PIN);
    f.set("ANGEL_TOTP_SECRET", SECRET);
    let c = f.load().unwrap();
    let a = &c.account.angel;
    assert_eq!(a.api_key.as_deref(), Some("angel-key"));
    assert_eq!(a.client_code.as_deref(), Some("A123456"));
    assert_eq!(a.pin.as_ref().unwrap().expose(), PIN);
    assert_eq!(a.totp_secret.as_ref().unwrap().expose(), SECRET);
    assert!(
        tokenwatch::brokers::AngelUser::of(a)
            .missing(Strategy::Totp)
            .is_empty()
    );
    let shown = c.to_masked_yaml();
    assert!(!shown.contains(PIN) && !shown.contains(SECRET), "{shown}");
    assert!(shown.contains("broker: angel"), "{shown}");
    assert!(!format!("{c:?}").contains(PIN) && !format!("{c:?}").contains(SECRET));

    // A TOTP secret that cannot make codes is refused now, not at the morning's login.
    f.set("ANGEL_TOTP_SECRET", "not base32 at all! 0189");
    let e = f.err();
    assert_error(
        &e,
        "environment variable ANGEL_TOTP_SECRET",
        Some("angel.totp_secret"),
        "not base32",
    );
    assert!(!e.to_string().contains("0189"), "{e}");

    // Or from a private file beside the configuration, relative to it.
    f.env.remove("ANGEL_TOTP_SECRET");
    let file = f.write("config/angel.totp", &format!("{SECRET}\n"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    f.write(
        "config/tokenwatch.yaml",
        "broker: angel\nangel:\n  totp_secret_file: angel.totp\n",
    );
    let c = f.load().unwrap();
    assert_eq!(
        c.account.angel.totp_secret.as_ref().unwrap().expose(),
        SECRET
    );
    assert_eq!(c.account.angel.totp_secret_file.as_deref(), Some(&*file));
    assert!(!c.to_masked_yaml().contains(SECRET));
    // Readable by others: refused, saying what to run.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("angel.totp_secret_file"), "{e}");
    assert!(e.message.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A file whose secret cannot make codes.
    f.write("config/angel.totp", "0000 1111\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("angel.totp_secret_file"), "{e}");
    assert!(
        e.message.contains("not base32") && !e.message.contains("1111"),
        "{e}"
    );
    f.write("config/angel.totp", &format!("{SECRET}\n"));
    // Both the secret and the file: one too many.
    f.set("ANGEL_TOTP_SECRET", SECRET);
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("angel.totp_secret_file"), "{e}");
    assert!(e.message.contains("both set"), "{e}");
    f.env.remove("ANGEL_TOTP_SECRET");

    // An Angel One account beside the Upstox one, with its own codes, headers and file.
    f.env.remove("ANGEL_PIN");
    f.write(
        "config/tokenwatch.yaml",
        "accounts:\n  ao:\n    broker: angel\n    angel:\n      totp_secret_file: angel.totp\n      invalid_codes: [AG8001]\n      client_public_ip: 203.0.113.9\n",
    );
    let c = f.load().unwrap();
    let ao = &c.accounts["ao"];
    assert_eq!(ao.broker, Broker::Angel);
    assert_eq!(ao.renew.strategy, Strategy::Totp);
    assert_eq!(ao.angel.invalid_codes, ["AG8001"]);
    assert_eq!(ao.angel.client_public_ip, "203.0.113.9");
    assert_eq!(ao.angel.totp_secret.as_ref().unwrap().expose(), SECRET);
    assert_eq!(ao.token.path.file_name().unwrap(), "angel_token.json");
    assert_ne!(ao.token.path, c.accounts["default"].token.path);
    assert_eq!(c.accounts["default"].broker, Broker::Upstox);
    // Angel One has no browser login.
    f.write(
        "config/tokenwatch.yaml",
        "broker: angel\nrenew:\n  strategy: browser\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("renew.strategy"), "{e}");
    assert!(
        e.message.contains("totp, refresh-token, command, none"),
        "{e}"
    );
}

#[test]
fn a_dhan_account_has_its_own_section_file_and_keys() {
    let (secret, pin, totp) = (
        "DHAN-S3CRET-THAT-MUST-NOT-LEAK",
        "864209",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    );
    let mut f = Fixture::new();
    f.write("config/tokenwatch.yaml", "broker: dhan\n");
    let c = f.load().unwrap();
    assert_eq!(c.account.broker, Broker::Dhan);
    assert_eq!(c.account.renew.strategy, Strategy::Browser);
    assert_token_files(&f, &c, "dhan_token.json");
    let d = &c.account.dhan;
    assert_eq!(d.api_base.as_str(), "https://api.dhan.co/");
    assert_eq!(d.login_base.as_str(), "https://auth.dhan.co/");
    // Its own port, so a Dhan login never fights an Upstox, Kite or Fyers one for 5001.
    assert_eq!(d.redirect_uri.as_str(), "http://localhost:5003/callback");
    assert_eq!(d.invalid_codes, ["DH-901", "807", "808", "809"]);
    // The login names each key it lacks, with its variable.
    for (var, value, key) in [
        ("DHAN_CLIENT_ID", "1100000001", "dhan.client_id"),
        ("DHAN_API_KEY", "dhan-app", "dhan.api_key"),
        ("DHAN_API_SECRET", secret, "dhan.api_secret"),
    ] {
        let c = f.load().unwrap();
        let e = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap_err();
        assert!(e.contains(key) && e.contains(var), "{e}");
        f.set(var, value);
    }
    f.set("DHAN_PIN", pin);
    f.set("DHAN_TOTP_SECRET", totp);
    f.set("DHAN_REDIRECT_URI", "http://127.0.0.1:5099/dhan");
    let c = f.load().unwrap();
    let app = tokenwatch::brokers::LoginApp::for_account(&c.account).unwrap();
    assert_eq!(app.client_id, "dhan-app");
    assert_eq!(app.client_secret.expose(), secret);
    assert_eq!(app.user_id.as_deref(), Some("1100000001"));
    assert_eq!(app.redirect_uri.as_str(), "http://127.0.0.1:5099/dhan");
    let d = &c.account.dhan;
    assert_eq!(d.pin.as_ref().unwrap().expose(), pin);
    assert_eq!(d.totp_secret.as_ref().unwrap().expose(), totp);
    // Every secret masked, in the shown configuration and in Debug.
    let shown = c.to_masked_yaml();
    let debug = format!("{c:?}");
    for hidden in [secret, pin, totp] {
        assert!(!shown.contains(hidden), "{shown}");
        assert!(!debug.contains(hidden), "{debug}");
    }
    assert!(shown.contains("broker: dhan"), "{shown}");

    // Beside an Upstox account, its section over the top level's, codes as text or numbers.
    f.write(
        "config/tokenwatch.yaml",
        "dhan:\n  login_base: http://127.0.0.1:9/\naccounts:\n  d:\n    broker: dhan\n    dhan:\n      client_id: 1100000002\n      invalid_codes: [DH-901, 807]\n",
    );
    let c = f.load().unwrap();
    let d = &c.accounts["d"];
    assert_eq!(d.broker, Broker::Dhan);
    assert_eq!(d.dhan.client_id.as_deref(), Some("1100000002"));
    assert_eq!(d.dhan.login_base.as_str(), "http://127.0.0.1:9/");
    assert_eq!(d.dhan.invalid_codes, ["DH-901", "807"]);
    assert_eq!(d.token.path.file_name().unwrap(), "dhan_token.json");
    assert_ne!(d.token.path, c.accounts["default"].token.path);
    for strategy in ["totp", "refresh-token", "command", "none"] {
        let command = if strategy == "command" {
            "\n  command: [\"true\"]"
        } else {
            ""
        };
        f.write(
            "config/tokenwatch.yaml",
            &format!("broker: dhan\nrenew:\n  strategy: {strategy}{command}\n"),
        );
        assert!(f.load().is_ok(), "{strategy}: {:?}", f.load().err());
    }
    f.write(
        "config/tokenwatch.yaml",
        "broker: dhan\nrenew:\n  strategy: token-request\n  notifier_listen: 127.0.0.1:5002\n  notifier_path: /hook/x\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("renew.strategy"), "{e}");
    assert!(
        e.message.contains(
            "Dhan accounts renew with one of: browser, totp, refresh-token, command, none"
        ),
        "{e}"
    );
}

#[test]
fn a_dhan_totp_secret_must_be_usable_and_private_when_the_account_logs_in_with_it() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    // Not base32: an error for the TOTP strategy, naming the key and no part of the secret.
    f.write(
        "config/tokenwatch.yaml",
        "broker: dhan\nrenew:\n  strategy: totp\ndhan:\n  totp_secret: not-base32-!!11\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("dhan.totp_secret"), "{e}");
    assert!(e.message.contains("base32"), "{e}");
    assert!(!e.to_string().contains("not-base32"), "{e}");
    // The browser login never uses it: no error there.
    f.write(
        "config/tokenwatch.yaml",
        "broker: dhan\ndhan:\n  totp_secret: not-base32-!!11\n",
    );
    assert!(f.load().is_ok());
    // A file readable by others is refused; a private one is read.
    let file = f.write("config/dhan_totp", "JBSWY3DPEHPK3PXP\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    f.write(
        "config/tokenwatch.yaml",
        "accounts:\n  d:\n    broker: dhan\n    renew:\n      strategy: totp\n    dhan:\n      totp_secret_file: dhan_totp\n",
    );
    let e = f.err();
    assert_eq!(
        e.key.as_deref(),
        Some("accounts.d.dhan.totp_secret_file"),
        "{e}"
    );
    assert!(e.message.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = f.load().unwrap();
    assert_eq!(
        c.accounts["d"].dhan.totp_secret_file.as_deref(),
        Some(file.as_path())
    );
    let secret = tokenwatch::brokers::dhan::totp_secret(&c.accounts["d"].dhan).unwrap();
    assert_eq!(secret.unwrap().expose(), "JBSWY3DPEHPK3PXP");
    // Both a secret and a file: which one is meant is unclear, whatever the strategy.
    f.write(
        "config/tokenwatch.yaml",
        "broker: dhan\ndhan:\n  totp_secret: JBSWY3DPEHPK3PXP\n  totp_secret_file: dhan_totp\n",
    );
    let e = f.err();
    assert_eq!(e.key.as_deref(), Some("dhan.totp_secret_file"), "{e}");
    assert!(e.message.contains("both set"), "{e}");
}
