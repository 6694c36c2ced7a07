//! Opening the login page in a browser: `login.browser_command`, then `$BROWSER`, then the
//! system opener. The browser is started on its own thread and never waited for on the async
//! runtime, so a slow or text-mode browser cannot hold up the worker.

use std::process::{Command, Stdio};
use url::Url;

/// Open `url`. `browser_command` is an argv (`{url}` in it is replaced, else the URL is
/// appended); `env_browser` is `$BROWSER` (a `:`-separated list; `%s` is replaced, else the
/// URL is appended). Returns what was used, or why nothing could be.
pub fn open(
    url: &Url,
    browser_command: &[String],
    env_browser: Option<&str>,
) -> Result<String, String> {
    if let Some((program, args)) = browser_command.split_first() {
        return spawn(program, args, url, "{url}")
            .map(|_| format!("login.browser_command ({program})"))
            .map_err(|e| format!("login.browser_command ({program}) could not start: {e}"));
    }
    if let Some(list) = env_browser.filter(|b| !b.trim().is_empty()) {
        let mut last = String::new();
        for entry in list.split(':') {
            let words: Vec<String> = entry.split_whitespace().map(str::to_owned).collect();
            if let Some((program, args)) = words.split_first() {
                match spawn(program, args, url, "%s") {
                    Ok(()) => return Ok(format!("$BROWSER ({program})")),
                    Err(e) => last = format!("$BROWSER ({program}) could not start: {e}"),
                }
            }
        }
        if !last.is_empty() {
            return Err(last);
        }
    }
    // On Linux and the BSDs, the system opener needs a graphical session.
    if cfg!(all(unix, not(target_os = "macos")))
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err("there is no graphical session (no DISPLAY or WAYLAND_DISPLAY)".into());
    }
    open::that_detached(url.as_str())
        .map(|_| "the system's browser".to_string())
        .map_err(|e| format!("no browser could be opened ({e})"))
}

fn spawn(
    program: &str,
    args: &[String],
    url: &Url,
    placeholder: &str,
) -> Result<(), std::io::Error> {
    let mut argv: Vec<String> = args
        .iter()
        .map(|a| a.replace(placeholder, url.as_str()))
        .collect();
    if !args.iter().any(|a| a.contains(placeholder)) {
        argv.push(url.to_string());
    }
    let mut command = Command::new(program);
    // A browser has no use for the client secret or the API key.
    for name in crate::process::hidden_from_hooks() {
        command.env_remove(name);
    }
    let mut child = command
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Reap it on a thread of its own; never wait on the runtime.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_command_gets_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("opened");
        let url = Url::parse("http://127.0.0.1:9/v2/login/authorization/dialog?state=x").unwrap();
        let cmd = vec![
            "sh".to_string(),
            "-c".to_string(),
            format!("echo \"$1\" > '{}'", out.display()),
            "sh".to_string(),
        ];
        assert_eq!(
            open(&url, &cmd, None).unwrap(),
            "login.browser_command (sh)"
        );
        for _ in 0..200 {
            if std::fs::read_to_string(&out).is_ok_and(|s| !s.is_empty()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), url.as_str());
        let missing = vec!["/nonexistent/browser".to_string()];
        assert!(
            open(&url, &missing, None)
                .unwrap_err()
                .contains("could not start")
        );
        assert!(
            open(&url, &[], Some("/nonexistent/a:/nonexistent/b %s"))
                .unwrap_err()
                .contains("/nonexistent/b")
        );
    }
}
