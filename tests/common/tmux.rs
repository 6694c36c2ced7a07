//! A real terminal: a detached tmux server of the test's own (`tmux -L <socket>`), its one
//! session `main` running a shell script; keys go in with `send-keys`, the screen comes back
//! with `capture-pane`. The server is killed on drop.

use super::sandbox::sh_quote;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How often the screen is read while waiting.
const POLL: Duration = Duration::from_millis(100);

pub struct Tmux {
    pub socket: String,
    /// tmux's environment (and with it the session's), besides SHELL, LANG and TERM.
    env: Vec<(String, String)>,
    /// More `capture-pane` flags (`-J`).
    capture_flags: Vec<&'static str>,
    /// Run on every screen read (a leak check).
    check: Option<fn(&str)>,
    /// Longest wait in [`Tmux::wait_until`].
    pub step: Duration,
}

impl Tmux {
    /// Start `script` (run by `sh`, after exporting `exports`) in a `cols`×`rows` terminal.
    /// The script runs with LANG=C.UTF-8, TERM=xterm-256color and no TMUX, LC_ALL, LC_CTYPE
    /// or NO_COLOR unless `exports` sets them.
    pub fn start(
        socket: String,
        env: &[(String, String)],
        exports: &[(String, String)],
        (cols, rows): (u16, u16),
        script: &str,
    ) -> Tmux {
        let tmux = Tmux {
            socket,
            env: env.to_vec(),
            capture_flags: Vec::new(),
            check: None,
            step: Duration::from_secs(30),
        };
        let exports: Vec<String> = [
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("TERM".to_string(), "xterm-256color".to_string()),
        ]
        .iter()
        .chain(exports)
        .map(|(k, v)| format!("{k}={}", sh_quote(v)))
        .collect();
        let script = format!(
            "unset LC_ALL LC_CTYPE NO_COLOR TMUX; export {}; {script}",
            exports.join(" ")
        );
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &cols,
            "-y",
            &rows,
            &script,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    /// Read screens with these `capture-pane` flags too.
    pub fn capture_with(mut self, flags: &[&'static str]) -> Tmux {
        self.capture_flags = flags.to_vec();
        self
    }

    /// Run `check` on every screen read.
    pub fn checking(mut self, check: fn(&str)) -> Tmux {
        self.check = Some(check);
        self
    }

    /// Run a tmux command against this server, with a clean environment: no user config
    /// (`-f /dev/null`), `/bin/sh` as the shell, UTF-8.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("SHELL", "/bin/sh")
            .env("LANG", "C.UTF-8")
            .env("TERM", "xterm-256color")
            .args(["-u", "-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run tmux ({e}); these tests need it: apt-get install tmux (.ci/run does)")
            })
    }

    /// The screen as text, with `extra` `capture-pane` flags (`-e`: colours as SGR escapes).
    pub fn capture(&self, extra: &[&str]) -> String {
        let mut args = vec!["capture-pane", "-p"];
        args.extend_from_slice(&self.capture_flags);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-t", "main"]);
        String::from_utf8_lossy(&self.run(&args).stdout).into_owned()
    }

    /// The screen, checked.
    pub fn screen(&self) -> String {
        let screen = self.capture(&[]);
        if let Some(check) = self.check {
            check(&screen);
        }
        screen
    }

    /// Wait until `ready` holds for the screen; the screen then. Panics with the last screen
    /// after [`Tmux::step`].
    pub fn wait_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.step;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {:?}; the screen is:\n{screen}",
                self.step
            );
            std::thread::sleep(POLL);
        }
    }

    /// Press keys (tmux key names: `r`, `Escape`, `?`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "send-keys {keys:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A tmux format for the pane (`#{alternate_on}`, `#{cursor_flag}`).
    pub fn display(&self, format: &str) -> String {
        let out = self.run(&["display-message", "-p", "-t", "main", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends the session, and with it (SIGHUP) what runs there.
        let _ = self.run(&["kill-server"]);
    }
}
