//! Running the user's commands (`renew.command`, `token.on_change`, alert commands) with a
//! time limit, without ever blocking the async runtime.

use std::time::{Duration, Instant};

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
/// `b` running otherwise), and with output beyond [`CAPTURE_LIMIT`] drained instead of left
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
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.by_ref().take(CAPTURE_LIMIT).read_to_end(&mut buf);
                let _ = std::io::copy(&mut r, &mut std::io::sink());
            }
            let _ = tx.send(buf);
        });
        rx
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
    // A process the hook left in the background may hold the pipes open: take what arrived
    // within the grace period (one period for both streams).
    let grace_end = Instant::now() + OUTPUT_GRACE;
    let left = || grace_end.saturating_duration_since(Instant::now());
    let stdout = stdout.recv_timeout(left()).unwrap_or_default();
    let stderr = stderr.recv_timeout(left()).unwrap_or_default();
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

/// The first line of a command's stderr, short, with long words (possible tokens) hidden.
pub fn stderr_excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return String::new();
    };
    let safe: Vec<&str> = line
        .split_whitespace()
        .map(|w| if w.len() > 32 { "[hidden]" } else { w })
        .collect();
    let mut s = safe.join(" ");
    if s.len() > 200 {
        s.truncate(s.floor_char_boundary(200));
        s.push('…');
    }
    format!(": {s}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let started = Instant::now();
        let run = sh("sleep 30; echo late", &[], &[], Duration::from_millis(200));
        assert!(matches!(run, Run::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(run_missing(), Run::NotStarted(_)));
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
