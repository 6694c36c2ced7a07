//! A process's peak memory, measured exactly: the child is reaped with `wait4`, which hands
//! back that one child's resource usage (its peak resident set, `ru_maxrss`), whatever other
//! tests run beside it. A child whose resident set passes `kill_above` is killed at once, so a
//! regression that balloons cannot take the machine down with it.

use super::sandbox::Out;
use chrono::Utc;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a measured run did.
#[derive(Debug)]
pub struct Measured {
    pub out: Out,
    /// The peak resident set of the process, in KiB (`ru_maxrss`).
    pub peak_rss_kib: u64,
    /// From start to exit.
    pub elapsed: Duration,
    /// It was killed for passing `kill_above`.
    pub killed_for_memory: bool,
}

/// The resident set of `pid` now, in KiB (`VmRSS`), if it is still there.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Run `cmd` to its end (killed and the test failed after `limit`), stdout and stderr
/// captured, and measure its peak memory; kill it early when its resident set passes
/// `kill_above_kib`.
// The child is reaped by `wait4` below, which also hands back its resource usage.
#[allow(clippy::zombie_processes)]
pub fn run_measured(mut cmd: Command, limit: Duration, kill_above_kib: u64) -> Measured {
    let what = format!("{cmd:?}");
    let before = Utc::now();
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let readers = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    });
    let mut killed_for_memory = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: plain syscalls on our own child, with valid out-pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid as i32 {
            break (status, usage);
        }
        assert!(r == 0, "wait4 on {what} failed");
        if !killed_for_memory && rss_kib(pid).is_some_and(|kib| kib > kill_above_kib) {
            killed_for_memory = true;
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if start.elapsed() > limit {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let mut status = 0;
            unsafe { libc::waitpid(pid as i32, &mut status, 0) };
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let [stdout, stderr] = readers.map(|r| r.join().unwrap());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Measured {
        out: Out {
            code,
            stdout,
            stderr,
            before,
            after: Utc::now(),
        },
        peak_rss_kib: usage.ru_maxrss as u64,
        elapsed,
        killed_for_memory,
    }
}
