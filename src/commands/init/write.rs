//! What `init` writes: a short, commented config file holding only what was chosen, and the
//! secrets in `.env` (merged with the lines already there) or, for a config file elsewhere,
//! in the config file itself. Both are written atomically and private (0600); nothing that
//! exists is replaced without `--force`, and a replaced config keeps a `.bak` copy.

use super::Answers;
use super::brokers::explain;
use crate::secret::Secret;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The variable that holds the e-mail channel's SMTP password.
pub(super) const EMAIL_PASSWORD_VAR: &str = "TOKENWATCH__NOTIFICATIONS__EMAIL__PASSWORD";

/// Where the secrets go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SecretsIn {
    /// `./.env`, beside the working folder's `config/`.
    DotEnv(PathBuf),
    /// The config file itself (then private).
    Config,
}

/// What one `.env` variable would become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EnvChange {
    /// Not there yet.
    Added,
    /// There with another value.
    Replaced,
    /// There with this value already.
    Same,
}

/// Everything `init` would write, worked out before anything is written.
pub(super) struct Plan {
    pub config_path: PathBuf,
    pub config_text: String,
    /// The config text with secrets masked, for diffs and the screen.
    pub config_shown: String,
    pub old_config: Option<String>,
    pub secrets_in: SecretsIn,
    /// Each secret variable and what would happen to it (`.env` only).
    pub env_changes: Vec<(String, EnvChange)>,
    /// The new `.env` text (`.env` only).
    pub env_text: Option<String>,
    pub env_exists: bool,
}

impl Plan {
    /// Work out the files from the answers; reads what exists, writes nothing.
    pub(super) fn new(
        answers: &Answers,
        config_path: PathBuf,
        secrets_in: SecretsIn,
    ) -> Result<Plan, String> {
        let config_text = render(answers, &secrets_in, false);
        let config_shown = render(answers, &secrets_in, true);
        let old_config = match std::fs::read_to_string(&config_path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", config_path.display())),
        };
        let mut plan = Plan {
            config_path,
            config_text,
            config_shown,
            old_config,
            secrets_in: secrets_in.clone(),
            env_changes: Vec::new(),
            env_text: None,
            env_exists: false,
        };
        if let SecretsIn::DotEnv(path) = &secrets_in {
            let entries = secret_entries(answers);
            let (old_text, old_values) = read_env(path)?;
            plan.env_exists = old_text.is_some();
            plan.env_changes = entries
                .iter()
                .map(|(var, value)| {
                    let change = match old_values.iter().find(|(k, _)| k == var) {
                        None => EnvChange::Added,
                        Some((_, v)) if v.same_as(value) => EnvChange::Same,
                        Some(_) => EnvChange::Replaced,
                    };
                    (var.clone(), change)
                })
                .collect();
            plan.env_text = Some(merge_env(old_text.as_deref().unwrap_or(""), &entries));
        }
        Ok(plan)
    }

    /// Whether writing would replace something: the config file, or a `.env` value.
    pub(super) fn replaces(&self) -> bool {
        self.old_config
            .as_deref()
            .is_some_and(|old| old != self.config_text)
            || self
                .env_changes
                .iter()
                .any(|(_, c)| *c == EnvChange::Replaced)
    }

    /// What would change, for a refusal or a question: a line diff of the config (secrets
    /// masked) and the `.env` variables by name only.
    pub(super) fn changes(&self) -> String {
        let mut out = String::new();
        if let Some(old) = &self.old_config {
            if *old == self.config_text {
                let _ = writeln!(out, "{} would not change.", self.config_path.display());
            } else {
                // Key names only: the file there may hold secrets in any YAML form.
                let _ = writeln!(out, "{} would change:", self.config_path.display());
                for line in key_changes(old, &self.config_text) {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
        if let SecretsIn::DotEnv(path) = &self.secrets_in {
            for (var, change) in &self.env_changes {
                let what = match change {
                    EnvChange::Added => "would be added",
                    EnvChange::Replaced => {
                        "would be replaced (the value there now differs; values not shown)"
                    }
                    EnvChange::Same => continue,
                };
                let _ = writeln!(out, "{}: {var} {what}", path.display());
            }
        }
        out
    }

    /// Write the files: each atomically, private, a `.bak` copy of what is replaced.
    /// The secrets go first: a config that names them is never left without them. What was
    /// written before a failure is in the error.
    pub(super) fn apply(&self) -> Result<Vec<String>, String> {
        let mut done = Vec::new();
        self.apply_env(&mut done).map_err(|e| with_done(e, &done))?;
        self.apply_config(&mut done)
            .map_err(|e| with_done(e, &done))?;
        Ok(done)
    }

    fn apply_config(&self, done: &mut Vec<String>) -> Result<(), String> {
        if let Some(dir) = self.config_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot make the folder {}: {e}", dir.display()))?;
        }
        if let Some(old) = &self.old_config
            && *old != self.config_text
        {
            let bak = free_backup(&self.config_path, old.as_bytes());
            write_private(&bak, old.as_bytes())?;
            done.push(format!("kept the old config as {}", bak.display()));
        }
        write_private(&self.config_path, self.config_text.as_bytes())?;
        done.push(format!("wrote {}", self.config_path.display()));
        Ok(())
    }

    fn apply_env(&self, done: &mut Vec<String>) -> Result<(), String> {
        if let (SecretsIn::DotEnv(path), Some(text)) = (&self.secrets_in, &self.env_text) {
            let touched = self.env_changes.iter().any(|(_, c)| *c != EnvChange::Same);
            if touched || !self.env_exists {
                if self
                    .env_changes
                    .iter()
                    .any(|(_, c)| *c == EnvChange::Replaced)
                {
                    let old = std::fs::read(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let bak = free_backup(path, &old);
                    write_private(&bak, &old)?;
                    done.push(format!("kept the old .env as {}", bak.display()));
                }
                write_private(path, text.as_bytes())?;
                let names: Vec<&str> = self.env_changes.iter().map(|(v, _)| v.as_str()).collect();
                done.push(format!(
                    "wrote {} ({}; readable by you alone)",
                    path.display(),
                    names.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Nothing would change: the config is there as it would be written, and `.env` already
    /// holds every secret with its value.
    pub(super) fn unchanged(&self) -> bool {
        self.old_config.as_deref() == Some(self.config_text.as_str())
            && self.env_changes.iter().all(|(_, c)| *c == EnvChange::Same)
            && (self.env_exists || self.env_changes.is_empty())
    }
}

/// `why`, and what had been written before it.
fn with_done(why: String, done: &[String]) -> String {
    if done.is_empty() {
        format!("{why}; nothing written")
    } else {
        format!("{why} (already done: {})", done.join("; "))
    }
}

/// Where to keep a copy of `path`'s old `bytes`: `path.bak`, unless one with other bytes is
/// there (an earlier run's); then the first free `path.bak.N`. Nothing is overwritten.
fn free_backup(path: &Path, bytes: &[u8]) -> PathBuf {
    let first = with_suffix(path, ".bak");
    let taken = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if !taken(&first) || std::fs::read(&first).is_ok_and(|b| b == bytes) {
        return first;
    }
    (1..)
        .map(|n| with_suffix(path, &format!(".bak.{n}")))
        .find(|p| !taken(p) || std::fs::read(p).is_ok_and(|b| b == bytes))
        .unwrap_or(first)
}

/// The keys (as `upstox.client_id`) a config would add, change or remove, without a value.
/// A file there that is not YAML is replaced whole.
fn key_changes(old: &str, new: &str) -> Vec<String> {
    fn leaves(prefix: &str, v: &serde_yaml::Value, out: &mut Vec<(String, serde_yaml::Value)>) {
        match v {
            serde_yaml::Value::Mapping(m) if !m.is_empty() => {
                for (k, v) in m {
                    let k = match k {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, v, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let parse = |t: &str| serde_yaml::from_str::<serde_yaml::Value>(t).ok();
    let (Some(old), Some(new)) = (parse(old), parse(new)) else {
        return vec![
            "(the file there is not YAML tokenwatch reads: it would be replaced whole)".into(),
        ];
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves("", &old, &mut a);
    leaves("", &new, &mut b);
    let mut out = Vec::new();
    for (key, value) in &b {
        match a.iter().find(|(k, _)| k == key) {
            None => out.push(format!("+ {key} (added)")),
            Some((_, v)) if v != value => out.push(format!("~ {key} (changed)")),
            Some(_) => {}
        }
    }
    for (key, _) in &a {
        if !b.iter().any(|(k, _)| k == key) {
            out.push(format!("- {key} (removed)"));
        }
    }
    out
}

/// `path` + `suffix`: `tokenwatch.yaml.bak`.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Write `bytes` to `path` atomically: a temporary file beside it, mode 0600 before the
/// rename, synced, then renamed over `path`.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    // A link would be replaced by a file, leaving its target (and what it holds) behind.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "{} is a symbolic link; init does not replace links: write to the file it points \
             at by hand, or remove the link and run again",
            path.display()
        ));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The secrets the answers hold, as `.env` variables.
pub(super) fn secret_entries(answers: &Answers) -> Vec<(String, Secret)> {
    let mut out: Vec<(String, Secret)> = answers
        .keys
        .iter()
        .filter(|(f, _)| f.secret)
        .map(|(f, v)| (f.var.to_string(), v.clone()))
        .collect();
    if let super::Alerts::Email {
        password: Some(p), ..
    } = &answers.alerts
    {
        out.push((EMAIL_PASSWORD_VAR.to_string(), p.clone()));
    }
    out
}

/// A YAML double-quoted scalar (a JSON string is one).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The config file: only what was chosen, with a comment for each part.
pub(super) fn render(answers: &Answers, secrets_in: &SecretsIn, masked: bool) -> String {
    let b = answers.broker;
    let mut y = String::new();
    let secret = |s: &Secret| {
        if masked { q("********") } else { q(s.expose()) }
    };
    let _ = writeln!(
        y,
        "# tokenwatch configuration, written by `tokenwatch init`."
    );
    let _ = writeln!(
        y,
        "# Only what init asked is here; every other key keeps its default. Every key and its"
    );
    let _ = writeln!(
        y,
        "# default: docs/configuration.md, and the full example config/tokenwatch.yaml in the"
    );
    let _ = writeln!(y, "# source. Check it with `tokenwatch config check`.");
    match secrets_in {
        SecretsIn::DotEnv(path) => {
            let vars: Vec<String> = secret_entries(answers)
                .into_iter()
                .map(|(v, _)| v)
                .collect();
            if !vars.is_empty() {
                let _ = writeln!(
                    y,
                    "# The secrets are in {} ({}), readable by you alone.",
                    path.display(),
                    vars.join(", ")
                );
            }
        }
        SecretsIn::Config => {
            let _ = writeln!(y, "# This file holds secrets: keep it private (mode 0600).");
        }
    }
    let _ = writeln!(y);
    let _ = writeln!(y, "broker: {}", b.as_str());
    let _ = writeln!(y);
    let _ = writeln!(y, "{}:", b.as_str());
    for (f, v) in &answers.keys {
        if f.secret {
            if *secrets_in == SecretsIn::Config {
                let _ = writeln!(y, "  # {}", comment(f));
                let _ = writeln!(y, "  {}: {}", f.key, secret(v));
            }
        } else {
            let _ = writeln!(y, "  # {}", comment(f));
            let _ = writeln!(y, "  {}: {}", f.key, q(v.expose()));
        }
    }
    if let Some(uri) = &answers.redirect {
        let _ = writeln!(
            y,
            "  # Must equal the app's Redirect URL, character for character: in\n  # {}.",
            super::brokers::console(b)
        );
        let _ = writeln!(y, "  redirect_uri: {}", q(uri.as_str()));
    }
    let _ = writeln!(y);
    let _ = writeln!(y, "token:");
    let _ = writeln!(
        y,
        "  # The file your engine reads (written atomically, mode 0600)."
    );
    let _ = writeln!(y, "  path: {}", q(&answers.token_path.to_string_lossy()));
    let _ = writeln!(y);
    let _ = writeln!(y, "renew:");
    let _ = writeln!(
        y,
        "  # {}: {}.",
        answers.strategy,
        explain(answers.strategy)
    );
    let _ = writeln!(y, "  strategy: {}", answers.strategy);
    if !answers.command.is_empty() {
        let words: Vec<String> = match (masked, answers.command.split_first()) {
            (true, Some((program, rest))) if !rest.is_empty() => vec![
                q(program),
                q(&format!("(… {} arguments, not shown)", rest.len())),
            ],
            _ => answers.command.iter().map(|w| q(w)).collect(),
        };
        let _ = writeln!(y, "  command: [{}]", words.join(", "));
    }
    if let Some((listen, path)) = &answers.notifier {
        let _ = writeln!(
            y,
            "  # Upstox posts the approved token here, through your HTTPS reverse proxy or tunnel"
        );
        let _ = writeln!(y, "  # (docs/login.md, Approving on the phone).");
        let _ = writeln!(y, "  notifier_listen: {}", q(listen));
        let _ = writeln!(y, "  notifier_path: {}", q(path));
    }
    match &answers.alerts {
        super::Alerts::None => {}
        super::Alerts::Webhook(url) => {
            let _ = writeln!(y);
            let _ = writeln!(y, "notifications:");
            let _ = writeln!(y, "  # Alerts are POSTed here (docs/alerts.md).");
            let url = if masked {
                shown_url(url)
            } else {
                url.to_string()
            };
            let _ = writeln!(y, "  webhook_url: {}", q(&url));
        }
        super::Alerts::Email {
            url,
            from,
            to,
            password,
        } => {
            let _ = writeln!(y);
            let _ = writeln!(y, "notifications:");
            let _ = writeln!(y, "  # Alerts by e-mail (docs/alerts.md).");
            let _ = writeln!(y, "  email:");
            let _ = writeln!(y, "    url: {}", q(url));
            let _ = writeln!(y, "    from: {}", q(from));
            let to: Vec<String> = to.iter().map(|t| q(t)).collect();
            let _ = writeln!(y, "    to: [{}]", to.join(", "));
            if let (Some(p), SecretsIn::Config) = (password, secrets_in) {
                let _ = writeln!(y, "    password: {}", secret(p));
            }
        }
    }
    y
}

/// `The client id (your app's API key); UPSTOX_CLIENT_ID in the environment wins.`
fn comment(f: &super::brokers::Field) -> String {
    let mut label = f.label.to_string();
    if let Some(first) = label.get(..1) {
        label.replace_range(..1, &first.to_uppercase());
    }
    format!("{label}; {} in the environment wins over this.", f.var)
}

/// A webhook URL as `config check` shows it: services such as Slack (and an ntfy topic)
/// keep the secret in the path.
fn shown_url(u: &url::Url) -> String {
    format!(
        "{}://{}/… (path not shown)",
        u.scheme(),
        u.host_str().unwrap_or("")
    )
}

/// An existing `.env`'s variables.
type EnvValues = Vec<(String, Secret)>;

/// An existing `.env`: its text and its variables (`None` when there is none).
fn read_env(path: &Path) -> Result<(Option<String>, EnvValues), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, Vec::new())),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let iter = dotenvy::from_path_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut values = Vec::new();
    for item in iter {
        match item {
            Ok((k, v)) => values.push((k, Secret::new(v))),
            // Never quote the line: it may hold a secret.
            Err(_) => {
                return Err(format!(
                    "{} has a line that is not KEY=VALUE; fix it first (init merges into it)",
                    path.display()
                ));
            }
        }
    }
    Ok((Some(text), values))
}

/// A `.env` value, quoted so dotenv reads it back unchanged (no `$` expansion).
fn env_value(v: &str) -> String {
    if !v.contains('\'') {
        return format!("'{v}'");
    }
    let mut s = String::from("\"");
    for c in v.chars() {
        if matches!(c, '\\' | '"' | '$') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `old` with `entries` set: a line that sets one of them is replaced in place, the others
/// are appended; every other line is kept as it was.
fn merge_env(old: &str, entries: &[(String, Secret)]) -> String {
    let sets = |line: &str, var: &str| {
        let l = line.trim_start();
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        l.strip_prefix(var)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut out = String::new();
    let mut written: Vec<&str> = Vec::new();
    for line in old.lines() {
        match entries.iter().find(|(var, _)| sets(line, var)) {
            Some((var, value)) if !written.contains(&var.as_str()) => {
                // A line that exported the variable still does.
                let export = if line.trim_start().starts_with("export ") {
                    "export "
                } else {
                    ""
                };
                let _ = writeln!(out, "{export}{var}={}", env_value(value.expose()));
                written.push(var);
            }
            // A second line for the same variable would override ours: dropped.
            Some(_) => {}
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let fresh: Vec<&(String, Secret)> = entries
        .iter()
        .filter(|(var, _)| !written.contains(&var.as_str()))
        .collect();
    if !fresh.is_empty() {
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        let _ = writeln!(out, "# Written by `tokenwatch init`.");
        for (var, value) in fresh {
            let _ = writeln!(out, "{var}={}", env_value(value.expose()));
        }
    }
    // A file with Windows line ends keeps them.
    if old.contains("\r\n") {
        out = out.replace('\n', "\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_read_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let values = ["plain", "with space", "it's", "a$b\"c\\d'e", "#hash"];
        let entries: Vec<(String, Secret)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("K{i}"), Secret::new(*v)))
            .collect();
        let text = merge_env("OTHER=1\nK1=old\n", &entries);
        let path = dir.path().join(".env");
        std::fs::write(&path, &text).unwrap();
        let read: Vec<(String, String)> = dotenvy::from_path_iter(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read[0], ("OTHER".into(), "1".into()));
        for (i, v) in values.iter().enumerate() {
            let got = read.iter().find(|(k, _)| *k == format!("K{i}")).unwrap();
            assert_eq!(got.1, *v);
        }
        // K1 replaced in place, not appended twice.
        assert_eq!(text.matches("K1=").count(), 1);
        assert!(text.starts_with("OTHER=1\nK1="));
    }

    #[test]
    fn changes_name_keys_never_values() {
        let old = "server: {api_key: \"SERVERKEY7\"}\nupstox:\n  client_secret: |\n    BLOCKSECRET5\n  client_id: old\n";
        let new = "upstox:\n  client_id: new\ntoken:\n  path: t.json\n";
        let lines = key_changes(old, new).join("\n");
        for secret in ["SERVERKEY7", "BLOCKSECRET5", "old", "new"] {
            assert!(!lines.contains(secret), "{lines}");
        }
        assert!(lines.contains("~ upstox.client_id (changed)"), "{lines}");
        assert!(lines.contains("+ token.path (added)"), "{lines}");
        assert!(lines.contains("- server.api_key (removed)"), "{lines}");
        assert!(
            lines.contains("- upstox.client_secret (removed)"),
            "{lines}"
        );
    }

    #[test]
    fn an_exported_variable_stays_exported_and_crlf_stays() {
        let entries = [("K".to_string(), Secret::new("v"))];
        assert_eq!(
            merge_env("export K=old\r\nA=1\r\n", &entries),
            "export K='v'\r\nA=1\r\n"
        );
    }
}
