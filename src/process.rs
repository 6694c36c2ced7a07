//! Running the user's commands (`renew.command`, `token.on_change`, alert commands) with a
//! time limit, without ever blocking the async runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes read so far from one output stream, and whether it has ended.
type Captured = Arc<Mutex<(Vec<u8>, bool)>>;

/// At most this much of each output stream is kept; the rest is read and dropped, so a
/// chatty command never blocks on a full pipe.
const CAPTURE_LIMIT: u64 = 64 * 1024;

/// How long to wait, after the command exits, for output still held open by a process it
/// left running in the background.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// How a command run ended.
pub enum Run {
    /// It exited (or was ended by a signal) within the limit.
    Exited(std::process::Output),
    /// It ran past the limit and was killed with its whole process group.
    TimedOut,
    /// It could not be started, and why.
    NotStarted(String),
}

/// Run a program with no stdin, these extra environment variables and without the `hidden`
/// ones, in its own process group so that the time limit kills everything the hook started (`sh -c 'a; b'` leaves
/// `b` running otherwise), and with output beyond `CAPTURE_LIMIT` drained instead of left
/// in a full pipe. Blocking: call it on `spawn_blocking`. The limit is real time.
pub fn run(
    program: &str,
    args: &[String],
    envs: &[(String, String)],
    hidden: &[&str],
    limit: Duration,
) -> Run {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut command = Command::new(program);
    command.args(args).envs(envs.iter().map(|(k, v)| (k, v)));
    for name in hidden {
        command.env_remove(name);
    }
    let mut child = match command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Run::NotStarted(e.to_string()),
    };
    // Each stream is read on a thread into a shared buffer, so that what arrived is kept even
    // when a process left in the background holds the pipe open past the command's exit.
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        let captured = Arc::new(Mutex::new((Vec::new(), false)));
        let sink = captured.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            if let Some(mut r) = r {
                while let Ok(n) = r.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let mut guard = sink.lock().unwrap_or_else(|e| e.into_inner());
                    let room = (CAPTURE_LIMIT as usize).saturating_sub(guard.0.len());
                    guard.0.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
            sink.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        });
        captured
    };
    let stdout = pipe(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = pipe(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Run::TimedOut;
            }
            Err(e) => {
                kill_group(&mut child);
                let _ = child.wait();
                return Run::NotStarted(format!("cannot wait for it: {e}"));
            }
        }
    };
    // Wait for both streams to end, but no longer than the grace period.
    let grace_end = Instant::now() + OUTPUT_GRACE;
    let ended = |c: &Captured| c.lock().map(|g| g.1).unwrap_or(true);
    while !(ended(&stdout) && ended(&stderr)) && Instant::now() < grace_end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let take = |c: &Captured| std::mem::take(&mut c.lock().unwrap_or_else(|e| e.into_inner()).0);
    let (stdout, stderr) = (take(&stdout), take(&stderr));
    Run::Exited(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

/// Kill the command's whole process group (it is the group leader, not yet reaped, so the
/// group id cannot have been reused); fall back to the hook alone.
fn kill_group(child: &mut std::process::Child) {
    match libc::pid_t::try_from(child.id()) {
        Ok(pid) if pid > 0 => {
            // SAFETY: killpg only sends a signal; `pid` is our unreaped child's process group.
            let rc = unsafe { libc::killpg(pid, libc::SIGKILL) };
            if rc != 0 {
                let _ = child.kill();
            }
        }
        _ => {
            let _ = child.kill();
        }
    }
}

/// The first line of a command's stderr, short, with anything that may be a secret hidden.
pub fn stderr_excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return String::new();
    };
    // Hide what could be a secret: long words (tokens) and the values of key=value or
    // key: value pairs (passwords, TOTP seeds, PINs).
    let mut safe: Vec<String> = Vec::new();
    let mut hide_next = false;
    for w in line.split_whitespace() {
        if hide_next {
            safe.push("[hidden]".into());
            hide_next = false;
        } else if let Some((key, _)) = w.split_once('=') {
            safe.push(format!("{key}=[hidden]"));
        } else if w.ends_with(':') && w.len() > 1 {
            safe.push(w.to_string());
            hide_next = true;
        } else if w.len() > 20 {
            safe.push("[hidden]".into());
        } else {
            safe.push(w.to_string());
        }
    }
    let mut s = safe.join(" ");
    if s.len() > 200 {
        s.truncate(s.floor_char_boundary(200));
        s.push('…');
    }
    format!(": {s}")
}

/// Secrets in tokenwatch's own environment that no command it runs inherits (hooks,
/// `renew.command`, the browser, alert commands): every broker's app secret and the API
/// key, however they were given (`UPSTOX_CLIENT_SECRET`, `KITE_API_SECRET`, `FYERS_SECRET_KEY`,
/// `TOKENWATCH__UPSTOX__CLIENT_SECRET`, `TOKENWATCH__ACCOUNTS__X__KITE__API_SECRET`,
/// `TOKENWATCH__SERVER__API_KEY`, ...).
pub fn hidden_from_hooks() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| is_secret_variable(k))
        .collect()
}

/// The variables [`hidden_from_hooks`] hides.
fn is_secret_variable(name: &str) -> bool {
    const BROKER_SECRETS: [&str; 9] = [
        "UPSTOX_CLIENT_SECRET",
        "KITE_API_SECRET",
        "FYERS_SECRET_KEY",
        "FYERS_PIN",
        "ANGEL_PIN",
        "ANGEL_TOTP_SECRET",
        "DHAN_API_SECRET",
        "DHAN_PIN",
        "DHAN_TOTP_SECRET",
    ];
    const SECRET_KEYS: [&str; 6] = [
        "__CLIENT_SECRET",
        "__API_SECRET",
        "__SECRET_KEY",
        "__API_KEY",
        "__PIN",
        "__TOTP_SECRET",
    ];
    BROKER_SECRETS.contains(&name)
        || (name.starts_with("TOKENWATCH__") && SECRET_KEYS.iter().any(|k| name.ends_with(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_brokers_secret_is_hidden_from_commands() {
        for name in [
            "UPSTOX_CLIENT_SECRET",
            "KITE_API_SECRET",
            "TOKENWATCH__UPSTOX__CLIENT_SECRET",
            "TOKENWATCH__KITE__API_SECRET",
            "TOKENWATCH__ACCOUNTS__ZERODHA__KITE__API_SECRET",
            "FYERS_SECRET_KEY",
            "TOKENWATCH__FYERS__SECRET_KEY",
            "TOKENWATCH__SERVER__API_KEY",
        ] {
            assert!(is_secret_variable(name), "{name}");
        }
        for name in [
            "KITE_API_KEY",
            "UPSTOX_CLIENT_ID",
            "PATH",
            "TOKENWATCH__TOKEN__PATH",
        ] {
            assert!(!is_secret_variable(name), "{name}");
        }
    }

    fn sh(script: &str, envs: &[(String, String)], hidden: &[&str], limit: Duration) -> Run {
        run(
            "sh",
            &["-c".to_string(), script.to_string()],
            envs,
            hidden,
            limit,
        )
    }

    #[test]
    fn stderr_excerpts_hide_possible_secrets() {
        let e = stderr_excerpt(b"login failed totp_secret=JBSWY3DPEHPK3PXP pin: 123456 eyJhbGciOiJIUzI1NiJ9xyzxyz\nmore");
        assert_eq!(
            e,
            ": login failed totp_secret=[hidden] pin: [hidden] [hidden]"
        );
        assert_eq!(stderr_excerpt(b"\n  \n"), "");
    }

    #[test]
    fn hidden_variables_are_not_inherited() {
        let envs = [
            ("SECRET_FOR_TEST".to_string(), "s3cret".to_string()),
            ("SEEN".to_string(), "yes".to_string()),
        ];
        let Run::Exited(out) = sh(
            "echo \"[$SECRET_FOR_TEST][$SEEN]\"",
            &envs,
            &["SECRET_FOR_TEST"],
            Duration::from_secs(5),
        ) else {
            panic!("sh did not run");
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[][yes]");
    }

    #[test]
    fn the_limit_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        // The grandchild would write the marker after 1 s if it outlived the limit.
        let script = format!("(sleep 1; touch '{}') & sleep 30", marker.display());
        let started = Instant::now();
        let run = sh(&script, &[], &[], Duration::from_millis(200));
        assert!(matches!(run, Run::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !marker.exists(),
            "a process of the group outlived the limit"
        );
        assert!(matches!(run_missing(), Run::NotStarted(_)));
    }

    #[test]
    fn output_is_kept_when_a_background_process_holds_the_pipe() {
        let Run::Exited(out) = sh(
            "sleep 5 & echo printed-token",
            &[],
            &[],
            Duration::from_secs(10),
        ) else {
            panic!("sh did not run");
        };
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "printed-token");
    }

    fn run_missing() -> Run {
        run(
            "/nonexistent/program",
            &[],
            &[],
            &[],
            Duration::from_secs(1),
        )
    }
}
