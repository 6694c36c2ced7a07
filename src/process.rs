//! Running the user's commands (`renew.command`, `token.on_change`, alert commands) with a
//! time limit, without ever blocking the async runtime.

use std::time::Duration;

/// Run a program with no stdin, collecting its output, killing it after `limit`.
///
/// Blocking on purpose (run it with `spawn_blocking`): the time limit is real time, so a
/// paused tokio clock in tests never fires it while the child is still running.
pub fn run_with_deadline(
    program: &str,
    args: &[String],
    limit: Duration,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    use std::process::{Command as StdCommand, Stdio};
    let mut child = StdCommand::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(1024 * 1024).read_to_end(&mut buf);
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
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {}s and was stopped",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("{program} failed: {e}")),
        }
    };
    // A background grandchild may keep the pipes open: take what arrived within a second.
    let grace = Duration::from_secs(1);
    Ok(std::process::Output {
        status,
        stdout: stdout.recv_timeout(grace).unwrap_or_default(),
        stderr: stderr.recv_timeout(grace).unwrap_or_default(),
    })
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

