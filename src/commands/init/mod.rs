//! `tokenwatch init`: from a clone to a live token in one guided command. It asks for the
//! broker, the app's keys, the renewal strategy, the redirect URL, the token file and the
//! alerts (or takes them from flags, for scripts), writes a short config file and the
//! secrets (`.env`, or a private config file), checks the result with the normal loader,
//! offers the first login, and prints the next steps.
//!
//! Exit codes: 0 written (and checked), or nothing to change; 1 nothing written because a file exists (without
//! `--force`) or the answers were not confirmed, or writing failed; 3 a missing or bad
//! answer without a terminal; 78 the written configuration does not load; 130 cancelled
//! (Ctrl-C or Esc).

mod ask;
mod brokers;
mod write;

use crate::brokers::Broker;
use crate::cli::{Cli, InitArgs};
use crate::config::{self, LoadOptions, Strategy};
use crate::exit::EXIT_USAGE;
use crate::secret::Secret;
use ask::{Asker, Check, Question, Stop};
use brokers::{Field, explain, fields};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use write::{Plan, SecretsIn};

/// Exit code when nothing was written: a file exists, or the answers were declined.
const EXIT_NOT_WRITTEN: u8 = 1;
/// Exit code of a cancelled `init` (Ctrl-C or Esc), as a shell reports SIGINT.
const EXIT_CANCELLED: u8 = 130;

/// Where alerts go.
#[derive(Debug, Clone)]
enum Alerts {
    None,
    /// `notifications.webhook_url` (an ntfy topic is one too).
    Webhook(url::Url),
    /// `notifications.email`.
    Email {
        url: String,
        from: String,
        to: Vec<String>,
        password: Option<Secret>,
    },
}

/// Everything `init` was told.
struct Answers {
    broker: Broker,
    /// The broker's keys, in the table's order; secrets among them never shown.
    keys: Vec<(Field, Secret)>,
    strategy: Strategy,
    /// `renew.command`, for the command strategy.
    command: Vec<String>,
    /// `renew.notifier_listen` and `renew.notifier_path`, for token-request.
    notifier: Option<(String, String)>,
    /// For brokers that log in through a browser.
    redirect: Option<url::Url>,
    /// Absolute.
    token_path: PathBuf,
    alerts: Alerts,
}

/// Print `text` as a paragraph, its lines broken between words to fit the terminal (80
/// columns when there is none), so a narrow tmux pane never cuts a word.
fn say(text: &str) {
    print!("{}", wrap(text, width(), ""));
}

/// The terminal's width (80 when there is none).
fn width() -> usize {
    crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w.max(20)))
}

/// `text` with its lines broken between words at `width` columns, each line after the
/// first starting with `indent`; ending with a newline.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    // Leading spaces (a step's indent) stay.
    let body = text.trim_start_matches(' ');
    let mut out = " ".repeat(text.len() - body.len());
    let mut line = out.len();
    let lead = line;
    for word in body.split(' ').filter(|w| !w.is_empty()) {
        let w = word.chars().count();
        if line > lead && line + 1 + w > width {
            out.push('\n');
            out.push_str(indent);
            line = indent.chars().count();
            out.push_str(word);
            line += w;
            continue;
        } else if line > lead {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += w;
    }
    out.push('\n');
    out
}

/// Run `tokenwatch init`; the exit code.
pub(super) fn run(cli: &Cli, args: &InitArgs) -> u8 {
    super::init_stderr_logging(cli.log_level().map(|l| l.as_str()).unwrap_or("info"));
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    ask::style_prompts();
    let asker = Asker {
        interactive,
        yes: args.yes,
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let env: crate::paths::Env = std::env::vars().collect();
    let local = crate::paths::normalize(&cwd.join("config/tokenwatch.yaml"));
    let config_path = match &cli.config {
        Some(p) => crate::paths::normalize(
            &cwd.join(crate::paths::expand_tilde(&p.to_string_lossy(), &env)),
        ),
        None => local.clone(),
    };
    let secrets_in = if config_path == local {
        SecretsIn::DotEnv(cwd.join(".env"))
    } else {
        SecretsIn::Config
    };
    if interactive && !args.yes {
        say(&format!(
            "This sets up tokenwatch in {}: a config file, your app's secrets (kept private), \
             and a first login. Esc or Ctrl-C stops at any question; nothing is written until \
             the end.",
            cwd.display()
        ));
        println!();
    }
    if interactive && !args.force && config_path.exists() {
        say(&format!(
            "{} exists already: at the end init shows what would change, and writes nothing \
             unless you run it with --force (which keeps the old file as .bak).",
            config_path.display()
        ));
        println!();
    }
    let answers = match gather(&asker, args, &cwd, &config_path) {
        Ok(a) => a,
        Err(stop) => return stopped(stop),
    };
    let plan = match Plan::new(&answers, config_path.clone(), secrets_in.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tokenwatch init: {e}; nothing written");
            return EXIT_NOT_WRITTEN;
        }
    };
    if interactive && !args.yes {
        println!();
        println!("{} will hold (comments aside):", config_path.display());
        println!();
        let keys = plan.config_shown.lines();
        for line in keys.filter(|l| !l.trim_start().starts_with('#')) {
            if !line.is_empty() {
                println!("  {line}");
            }
        }
        if let SecretsIn::DotEnv(path) = &secrets_in {
            let vars: Vec<String> = write::secret_entries(&answers)
                .into_iter()
                .map(|(v, _)| v)
                .collect();
            if !vars.is_empty() {
                println!();
                println!(
                    "{} will hold {} (values not shown).",
                    path.display(),
                    vars.join(", ")
                );
            }
        }
        println!();
    }
    if plan.unchanged() {
        // Run again with the same answers (a container's entrypoint, say): nothing to do.
        let env = match &secrets_in {
            SecretsIn::DotEnv(path) => format!(" and {}", path.display()),
            SecretsIn::Config => String::new(),
        };
        println!(
            "{}{env} already hold these answers; nothing changed.",
            config_path.display()
        );
        return 0;
    }
    if plan.old_config.is_some() || plan.replaces() {
        if !args.force {
            eprint!("{}", plan.changes());
            eprintln!(
                "tokenwatch init: {} already exists; nothing written. Run again with --force \
                 to replace it (what it replaces is kept as a .bak copy beside it).",
                existing(&plan)
            );
            return EXIT_NOT_WRITTEN;
        }
        print!("{}", plan.changes());
    } else {
        match asker.confirm("Write these files?", true) {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("tokenwatch init: nothing written");
                return EXIT_NOT_WRITTEN;
            }
            Err(stop) => return stopped(stop),
        }
    }
    match plan.apply() {
        Ok(done) => {
            for line in done {
                println!("✓ {line}");
            }
        }
        Err(e) => {
            eprintln!("tokenwatch init: {e}");
            return EXIT_NOT_WRITTEN;
        }
    }
    let load = || -> Result<config::Config, config::ConfigError> {
        let (env, dotenv) = config::load_env(&cwd)?;
        let opts = LoadOptions {
            config_file: Some(config_path.clone()),
            account: None,
            log_level: None,
            cwd: cwd.clone(),
        };
        config::load(&opts, &env, dotenv)
    };
    match load() {
        Ok(config) => {
            for note in super::config_check::notes(&config) {
                say(&note);
            }
            println!("✓ tokenwatch config check: configuration OK");
        }
        Err(e) => {
            eprintln!("tokenwatch init: the written configuration does not load: {e}");
            return super::EXIT_CONFIG;
        }
    }
    let mut logged_in = false;
    if interactive {
        match asker.confirm(
            &format!("Log in to {} now?", answers.broker.display_name()),
            true,
        ) {
            Ok(true) => {
                println!();
                logged_in = super::login::run(load(), false) == 0;
            }
            Ok(false) => {}
            Err(Stop::Cancelled) => {}
            Err(stop) => return stopped(stop),
        }
    }
    println!();
    print!("{}", next_steps(&answers, &config_path, &local, logged_in));
    0
}

/// "config/tokenwatch.yaml", ".env key UPSTOX_CLIENT_SECRET", or both.
fn existing(plan: &Plan) -> String {
    let mut parts = Vec::new();
    if plan.old_config.is_some() {
        parts.push(plan.config_path.display().to_string());
    }
    let replaced: Vec<&str> = plan
        .env_changes
        .iter()
        .filter(|(_, c)| *c == write::EnvChange::Replaced)
        .map(|(v, _)| v.as_str())
        .collect();
    if !replaced.is_empty() {
        parts.push(format!(".env's {}", replaced.join(", ")));
    }
    parts.join(" and ")
}

/// Report why `init` stopped; the exit code.
fn stopped(stop: Stop) -> u8 {
    match stop {
        Stop::Cancelled => {
            eprintln!("tokenwatch init: cancelled; nothing written");
            EXIT_CANCELLED
        }
        Stop::Usage(why) => {
            eprintln!("tokenwatch init: {why}");
            EXIT_USAGE
        }
        Stop::Failed(why) => {
            eprintln!("tokenwatch init: {why}; nothing written");
            EXIT_NOT_WRITTEN
        }
    }
}

fn check(f: fn(&str) -> Result<(), String>) -> Check {
    Arc::new(f)
}

/// Ask every question, in order.
fn gather(asker: &Asker, args: &InitArgs, cwd: &Path, config_path: &Path) -> Result<Answers, Stop> {
    let brokers: Vec<(Broker, String)> = Broker::ALL
        .iter()
        .map(|b| (*b, b.display_name().to_string()))
        .collect();
    let broker = asker.select(
        "Which broker's token should tokenwatch keep alive?",
        &brokers,
        args.broker,
        Broker::Upstox,
        ("broker", "--broker"),
    )?;
    unused_flags(args, broker)?;
    let mut keys = Vec::new();
    for f in fields(broker).iter().filter(|f| !f.after_strategy()) {
        keys.push((*f, ask_key(asker, args, broker, f)?));
    }

    let strategies: Vec<(Strategy, String)> = broker
        .strategies()
        .iter()
        .map(|s| (*s, format!("{} — {}", s.as_str(), explain(*s))))
        .collect();
    if let Some(s) = args.strategy
        && !broker.strategies().contains(&s)
    {
        return Err(Stop::Usage(format!(
            "--strategy {s}: {} accounts renew with one of: {}",
            broker.display_name(),
            crate::brokers::strategy_list(broker)
        )));
    }
    let strategy = asker.select(
        "How should tokenwatch renew the token when it is due?",
        &strategies,
        args.strategy,
        broker.default_strategy(),
        ("renewal strategy", "--strategy"),
    )?;
    for f in fields(broker)
        .iter()
        .filter(|f| f.after_strategy() && f.needed(Some(strategy)))
    {
        keys.push((*f, ask_key(asker, args, broker, f)?));
    }
    for f in fields(broker)
        .iter()
        .filter(|f| f.after_strategy() && !f.needed(Some(strategy)))
    {
        if given(args, f.flag).is_some() {
            return Err(Stop::Usage(format!(
                "{}: the {} is not used with renew.strategy {strategy}",
                f.flag.name(),
                f.label
            )));
        }
    }
    let mut command = Vec::new();
    if strategy == Strategy::Command {
        let line = asker.text(Question {
            prompt: "The command that prints a new token (words separated by spaces)",
            what: "renewal command",
            flag: "--renew-command",
            given: args.renew_command.clone(),
            default: None,
            help: Some("run with no shell, 60 s limit; its stdout is the token (raw or JSON)"),
            check: check(|s| {
                if s.trim().is_empty() {
                    Err("an answer is needed".into())
                } else {
                    Ok(())
                }
            }),
        })?;
        command = line.split_whitespace().map(String::from).collect();
    } else if args.renew_command.is_some() {
        return Err(Stop::Usage(format!(
            "--renew-command is used only with --strategy command, not {strategy}"
        )));
    }
    let notifier = (strategy == Strategy::TokenRequest).then(|| {
        let mut bytes = [0u8; 8];
        let _ = getrandom::fill(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        ("127.0.0.1:5002".to_string(), format!("/upstox-{hex}"))
    });

    let redirect = if brokers::logs_in_with_browser(broker, strategy) {
        let default = brokers::default_redirect(broker);
        if asker.interactive && !asker.yes && args.redirect_uri.is_none() {
            say(&format!(
                "After you log in, {} sends your browser back to your app's redirect URL, and \
                 tokenwatch waits there on this machine: the URL here and the one in the \
                 console must match character for character, or {0} refuses the login.",
                broker.display_name()
            ));
        }
        let text = asker.text(Question {
            prompt: "Redirect URL",
            what: "redirect URL",
            flag: "--redirect-uri",
            given: args.redirect_uri.clone(),
            default: Some(default.to_string()),
            help: Some("http://localhost:PORT/PATH on this machine; Enter keeps the default"),
            check: Arc::new(move |s| brokers::redirect(broker, s).map(|_| ())),
        })?;
        let url = brokers::redirect(broker, &text).map_err(Stop::Usage)?;
        if asker.interactive && !asker.yes {
            print!(
                "{}",
                wrap(
                    &format!(
                        "  → In {}, set the Redirect URL to exactly:",
                        brokers::console(broker)
                    ),
                    width(),
                    "    "
                )
            );
            println!("      {url}");
        }
        Some(url)
    } else {
        if args.redirect_uri.is_some() {
            return Err(Stop::Usage(format!(
                "--redirect-uri: {} logs in with the PIN and a TOTP code, with no browser and no \
                 redirect URL",
                broker.display_name()
            )));
        }
        None
    };

    let default_path = config_path
        .parent()
        .unwrap_or(cwd)
        .join(default_token_file(broker));
    let path = asker.text(Question {
        prompt: "Where does your engine read the token file?",
        what: "token file",
        flag: "--token-path",
        given: args.token_path.clone(),
        default: Some(default_path.display().to_string()),
        help: Some("tokenwatch writes the token there, atomically, readable by you alone"),
        check: check(|s| {
            if s.trim().is_empty() {
                Err("an answer is needed".into())
            } else if s.ends_with('/') {
                Err("names a folder; name the file, e.g. upstox_token.json".into())
            } else {
                Ok(())
            }
        }),
    })?;
    let env: crate::paths::Env = std::env::vars().collect();
    let token_path = crate::paths::normalize(&cwd.join(crate::paths::expand_tilde(&path, &env)));
    if token_path.is_dir() {
        return Err(Stop::Usage(format!(
            "--token-path {}: is a folder; name the file",
            token_path.display()
        )));
    }
    // A token written over the config, the secrets or the history would destroy them.
    let own = token_path == config_path
        || token_path == cwd.join(".env")
        || token_path
            .components()
            .any(|c| c.as_os_str().to_string_lossy().ends_with(".history"));
    if own {
        return Err(Stop::Usage(format!(
            "--token-path {}: is tokenwatch's own file (the config, .env or the history); \
             name the file your engine reads, e.g. {}",
            token_path.display(),
            default_token_file(broker)
        )));
    }

    let alerts = ask_alerts(asker, args)?;
    Ok(Answers {
        broker,
        keys,
        strategy,
        command,
        notifier,
        redirect,
        token_path,
        alerts,
    })
}

/// The token file an account of `broker` uses when it names none.
fn default_token_file(broker: Broker) -> &'static str {
    match broker {
        Broker::Upstox => "upstox_token.json",
        Broker::Kite => config::KITE_TOKEN_FILE,
        Broker::Fyers => config::FYERS_TOKEN_FILE,
        Broker::Angel => config::ANGEL_TOKEN_FILE,
        Broker::Dhan => config::DHAN_TOKEN_FILE,
    }
}

/// The value a key's flag gives (for a secret: the variable's name).
fn given(args: &InitArgs, flag: brokers::Flag) -> Option<String> {
    use brokers::Flag::*;
    match flag {
        ClientId => args.client_id.clone(),
        ClientSecretEnv => args.client_secret_env.clone(),
        ClientCode => args.client_code.clone(),
        ApiKey => args.api_key.clone(),
        PinEnv => args.pin_env.clone(),
        TotpSecretEnv => args.totp_secret_env.clone(),
    }
}

/// A key flag the broker has no use for is a usage error, not silently ignored.
fn unused_flags(args: &InitArgs, broker: Broker) -> Result<(), Stop> {
    use brokers::Flag::*;
    for flag in [
        ClientId,
        ClientSecretEnv,
        ClientCode,
        ApiKey,
        PinEnv,
        TotpSecretEnv,
    ] {
        if given(args, flag).is_some() && !fields(broker).iter().any(|f| f.flag == flag) {
            return Err(Stop::Usage(format!(
                "{}: {} accounts have no such key",
                flag.name(),
                broker.display_name()
            )));
        }
    }
    Ok(())
}

/// One of the broker's keys.
fn ask_key(asker: &Asker, args: &InitArgs, broker: Broker, f: &Field) -> Result<Secret, Stop> {
    let prompt = format!("{} {}", broker.display_name(), f.label);
    let what = f.label.split(" (").next().unwrap_or(f.label);
    let q = Question {
        prompt: &prompt,
        what,
        flag: f.flag.name(),
        given: given(args, f.flag),
        default: None,
        help: Some(if f.secret {
            "hidden as you type; kept in a file only you can read"
        } else {
            "from your app's page in the broker's developer console"
        }),
        check: check(f.check),
    };
    if f.secret {
        asker.secret(q)
    } else {
        asker.text(q).map(Secret::new)
    }
}

/// The alerts question, and the answers its choice needs.
fn ask_alerts(asker: &Asker, args: &InitArgs) -> Result<Alerts, Stop> {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        None,
        Ntfy,
        Webhook,
        Email,
    }
    let options = [
        (Kind::None, "none".to_string()),
        (
            Kind::Ntfy,
            "ntfy topic (push to your phone through ntfy.sh)".to_string(),
        ),
        (
            Kind::Webhook,
            "webhook URL (Slack, Telegram, your own)".to_string(),
        ),
        (Kind::Email, "e-mail (SMTP)".to_string()),
    ];
    let given = match (&args.ntfy_topic, &args.webhook_url) {
        (Some(_), _) => Some(Kind::Ntfy),
        (_, Some(_)) => Some(Kind::Webhook),
        _ => None,
    };
    let kind = asker.select(
        "Where should alerts go (token expiring, renewal failed)?",
        &options,
        given,
        Kind::None,
        ("alerts", "--ntfy-topic or --webhook-url"),
    )?;
    Ok(match kind {
        Kind::None => Alerts::None,
        Kind::Ntfy => {
            let topic = asker.text(Question {
                prompt: "ntfy topic",
                what: "ntfy topic",
                flag: "--ntfy-topic",
                given: args.ntfy_topic.clone(),
                default: None,
                help: Some("a long random name: anyone who knows it can read your alerts"),
                check: check(|s| {
                    if s.is_empty() || s.len() > 64 {
                        return Err("a topic is 1 to 64 characters".into());
                    }
                    match s
                        .chars()
                        .find(|c| !(c.is_ascii_alphanumeric() || "-_".contains(*c)))
                    {
                        Some(c) => {
                            Err(format!("may hold letters, digits, - and _ only, not {c:?}"))
                        }
                        None => Ok(()),
                    }
                }),
            })?;
            let url = url::Url::parse(&format!("https://ntfy.sh/{topic}"))
                .map_err(|e| Stop::Usage(format!("--ntfy-topic: {e}")))?;
            Alerts::Webhook(url)
        }
        Kind::Webhook => {
            let text = asker.text(Question {
                prompt: "Webhook URL",
                what: "webhook URL",
                flag: "--webhook-url",
                given: args.webhook_url.clone(),
                default: None,
                help: Some("alerts are POSTed there as JSON (docs/alerts.md)"),
                check: check(|s| config::parse_http_url(s).map(|_| ())),
            })?;
            Alerts::Webhook(config::parse_http_url(&text).map_err(Stop::Usage)?)
        }
        Kind::Email => {
            let (u, f, t) = (
                "smtps://user@smtp.example.com:465",
                "a@example.com",
                "b@example.com",
            );
            let url = asker.text(Question {
                prompt: "SMTP server",
                what: "SMTP server",
                flag: "(e-mail is set up from a terminal)",
                given: None,
                default: None,
                help: Some("like smtps://user@smtp.example.com:465 (no password here)"),
                check: Arc::new(move |s| email_part("url", s, f, t)),
            })?;
            let from = asker.text(Question {
                prompt: "From",
                what: "sender",
                flag: "(e-mail is set up from a terminal)",
                given: None,
                default: None,
                help: Some("like tokenwatch <alerts@example.com>"),
                check: Arc::new(move |s| email_part("from", u, s, t)),
            })?;
            let to = asker.text(Question {
                prompt: "To",
                what: "recipients",
                flag: "(e-mail is set up from a terminal)",
                given: None,
                default: None,
                help: Some("one address, or several separated by commas"),
                check: Arc::new(move |s| email_part("to", u, f, s)),
            })?;
            let password = asker.secret(Question {
                prompt: "SMTP password",
                what: "SMTP password",
                flag: "(e-mail is set up from a terminal)",
                given: None,
                default: None,
                help: Some("hidden as you type; Enter for none"),
                check: check(|_| Ok(())),
            })?;
            Alerts::Email {
                url,
                from,
                to: to.split(',').map(|t| t.trim().to_string()).collect(),
                password: (!password.is_empty()).then_some(password),
            }
        }
    })
}

/// The e-mail channel's `want` part (`url`, `from`, `to`) checked by the channel's own rule,
/// the other parts standing in with good values.
fn email_part(want: &str, url: &str, from: &str, to: &str) -> Result<(), String> {
    let answer = match want {
        "url" => url,
        "from" => from,
        _ => to,
    };
    if answer.trim().is_empty() {
        return Err("an answer is needed".into());
    }
    let c = config::EmailConfig {
        url: url.into(),
        from: from.into(),
        to: to.split(',').map(|t| t.trim().to_string()).collect(),
        password: None,
    };
    match crate::alerts::email::check(&c) {
        Err((key, why)) if key == want => Err(why),
        _ => Ok(()),
    }
}

/// What to do next: the redirect URL to register, the dashboard in tmux, the engine's side.
fn next_steps(answers: &Answers, config_path: &Path, local: &Path, logged_in: bool) -> String {
    use std::fmt::Write as _;
    let b = answers.broker;
    let mut s = String::from("Next steps:\n");
    let mut n = 0;
    let width = width();
    // Each step's words wrap under it; the lines after them (commands, addresses) stay whole.
    let mut step = |s: &mut String, text: String| {
        n += 1;
        let (words, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let _ = write!(s, "{}", wrap(&format!("  {n}. {words}"), width, "     "));
        for line in rest.lines() {
            let _ = writeln!(s, "{line}");
        }
    };
    if let Some(url) = &answers.redirect {
        step(
            &mut s,
            format!(
                "In {}, set the Redirect URL to exactly\n       {url}\n     (character for character: {} sends the browser back only there).",
                brokers::console(b),
                b.display_name()
            ),
        );
    }
    if let Some((listen, path)) = &answers.notifier {
        step(
            &mut s,
            format!(
                "Register https://YOUR-PUBLIC-HOST{path} as your Upstox app's notifier webhook, \
                 and have your HTTPS reverse proxy or tunnel forward it to {listen} \
                 (docs/login.md, Approving on the phone)."
            ),
        );
    }
    if config_path != local {
        step(
            &mut s,
            format!(
                "Tell every tokenwatch command where the config is:\n       export TOKENWATCH_CONFIG={}",
                config_path.display()
            ),
        );
    }
    if !logged_in {
        step(&mut s, "Log in: tokenwatch login".into());
    }
    step(
        &mut s,
        "The dashboard beside the engine, in tmux (from this folder):\n       tmux new-session -d -s trading -n engine 'tokenwatch refresh && ./start-engine; exec $SHELL'\n       tmux split-window -h -l 64 -t trading:engine 'tokenwatch'\n       tmux attach -t trading".into(),
    );
    step(
        &mut s,
        format!(
            "Your engine reads {}; let its start script refuse a dead token:\n       tokenwatch refresh && ./start-engine",
            answers.token_path.display()
        ),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn paragraphs_break_between_words_at_the_width() {
        let text = "the URL here and the one in the console must match character for character";
        let wrapped = wrap(text, 24, "");
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 24),
            "{wrapped}"
        );
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>().join(" "),
            text
        );
        assert_eq!(
            wrap("  1. one two three", 10, "     "),
            "  1. one\n     two\n     three\n"
        );
        assert_eq!(
            wrap("a-word-longer-than-the-width", 8, ""),
            "a-word-longer-than-the-width\n"
        );
    }
}
