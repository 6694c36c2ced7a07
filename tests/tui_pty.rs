//! The real dashboard in a real terminal: `tokenwatch demo` (the dashboard against the
//! embedded simulator) runs in a detached tmux session, keys go in with
//! `send-keys`, and the screen comes back with `capture-pane` — the text, and with `-e` the
//! colours.
//!
//! Each test has its own tmux server (`tmux -L tokenwatch-test-<unique>`), killed when the test
//! ends, passes or panics (`Drop`). HOME, the XDG folders and TMPDIR point into a temporary
//! folder, so nothing of the user's is read or touched. Every wait polls the screen against a
//! deadline; none relies on a fixed sleep. Every screen captured is also checked for a token
//! shown in full.
//!
//! Needs `tmux` (CI's `.ci/run` installs it when missing).

mod common;

use common::{Tmux, assert_no_full_token, full_token_in, sh_quote};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long one step may take: the dashboard appearing, a key's effect, a state change.
const STEP: Duration = Duration::from_secs(20);
/// How often the pid file is read while waiting.
const POLL: Duration = Duration::from_millis(100);
/// The terminal's size.
const COLS: u16 = 100;
const ROWS: u16 = 30;

static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// One `tokenwatch` in one terminal (a tmux server of its own). Killed on drop.
struct Term {
    tmux: Tmux,
    /// The server's socket file, removed on drop (tmux leaves it behind).
    socket_path: Option<PathBuf>,
    pid_file: PathBuf,
    home: PathBuf,
    /// Removed after the server (and with it tokenwatch) is gone: `Drop::drop` runs first.
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Term {
    type Target = Tmux;
    fn deref(&self) -> &Tmux {
        &self.tmux
    }
}

impl Term {
    /// Start `tokenwatch demo <demo_args>` in a 100×30 terminal. `no_color` sets `NO_COLOR=1`.
    fn demo(name: &str, demo_args: &[&str], no_color: bool) -> Term {
        Term::demo_env(name, demo_args, no_color, &[])
    }

    /// [`Term::demo`] with extra environment variables.
    fn demo_env(name: &str, demo_args: &[&str], no_color: bool, env: &[(&str, &str)]) -> Term {
        let dir = tempfile::Builder::new()
            .prefix("tw-tui-pty-")
            .tempdir()
            .expect("a temporary folder");
        let home = dir.path().join("home");
        for sub in [
            "",
            ".config",
            ".local/share",
            ".local/state",
            ".cache",
            "run",
            "tmp",
        ] {
            std::fs::create_dir_all(home.join(sub)).expect("the fake home's folders");
        }
        // XDG_RUNTIME_DIR must be the user's alone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.join("run"), std::fs::Permissions::from_mode(0o700))
            .expect("the fake runtime folder's mode");
        let socket = format!(
            "tokenwatch-test-{}-{}-{name}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::SeqCst)
        );
        let pid_file = dir.path().join("tokenwatch.pid");
        let home_env = home_env(&home);
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let mut tmux_env = vec![("PATH".to_string(), path)];
        tmux_env.extend(home_env.iter().cloned());
        let mut exports = vec![("COLORTERM".to_string(), "truecolor".to_string())];
        exports.extend(home_env);
        if no_color {
            exports.push(("NO_COLOR".into(), "1".into()));
        }
        exports.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let bin = assert_cmd::cargo::cargo_bin("tokenwatch");
        let args: Vec<String> = demo_args.iter().map(|a| sh_quote(a)).collect();
        // The inner `sh` writes its pid and then becomes tokenwatch (`exec`), so the pid file
        // holds tokenwatch's own pid; the outer shell prints the exit code once it ends.
        let script = format!(
            "sh -c 'echo $$ > \"$0\"; exec \"$@\"' {pid} {bin} demo {args}; \
             echo EXITED:$?; echo TTY:$(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo|isig)' | tr '\\n' ' '):TTY; \
             sleep 30",
            pid = sh_quote(&pid_file.to_string_lossy()),
            bin = sh_quote(&bin.to_string_lossy()),
            args = args.join(" "),
        );
        let mut tmux = Tmux::start(socket, &tmux_env, &exports, (COLS, ROWS), &script)
            .checking(assert_no_full_token);
        tmux.step = STEP;
        let socket_path = Some(PathBuf::from(tmux.display("#{socket_path}")))
            .filter(|p| p.file_name().is_some_and(|n| *n == *tmux.socket));
        Term {
            tmux,
            socket_path,
            pid_file,
            home,
            _dir: dir,
        }
    }

    /// The screen with its colours and attributes as SGR escapes.
    fn screen_with_colours(&self) -> String {
        let screen = self.capture(&["-e"]);
        assert_no_full_token(&strip_escapes(&screen));
        screen
    }

    /// Wait until `text` is on the screen.
    fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} on screen"), |s| s.contains(text))
    }

    /// Wait until `text` is gone from the screen.
    fn wait_gone(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} gone"), |s| !s.contains(text))
    }

    /// tokenwatch's pid, from the file its shell wrote before becoming it.
    fn pid(&self) -> libc::pid_t {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(pid) = std::fs::read_to_string(&self.pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "no pid in {} within {STEP:?}",
                self.pid_file.display()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Wait until tokenwatch has ended; its exit code and the screen then.
    fn exit_code(&self) -> (i32, String) {
        // Anywhere on a line: a program that never left the alternate screen gets the shell's
        // text wherever its cursor was.
        let code_in = |s: &str| -> Option<i32> {
            let rest = &s[s.find("EXITED:")? + "EXITED:".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let screen = self.wait_until("the program's exit code", |s| code_in(s).is_some());
        (code_in(&screen).expect("an exit code"), screen)
    }

    /// The terminal is as tokenwatch found it: main screen, cursor shown, no dashboard left.
    fn assert_restored(&self, screen: &str) {
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "the alternate screen is still on after tokenwatch ended:\n{screen}"
        );
        assert_eq!(
            self.display("#{cursor_flag}"),
            "1",
            "the cursor is still hidden after tokenwatch ended:\n{screen}"
        );
        // Raw mode off: the shell after tokenwatch printed the terminal's line discipline.
        let modes = self.wait_until("the terminal modes after exit", |s| {
            s.contains("TTY:") && s.contains(":TTY")
        });
        let modes = &modes[modes.find("TTY:").map_or(0, |i| i + "TTY:".len())..];
        let modes = &modes[..modes.find(":TTY").unwrap_or(modes.len())];
        for mode in ["icanon", "echo", "isig"] {
            assert!(
                modes.split_whitespace().any(|m| m == mode),
                "raw mode is still on after tokenwatch ended ({mode} is off): {modes:?}\n{screen}"
            );
        }
        for piece in ["┌", "└", "│", "Notifications", "HEALTHY"] {
            assert!(
                !screen.contains(piece),
                "the dashboard ({piece:?}) is still on screen after tokenwatch ended:\n{screen}"
            );
        }
    }
}
impl Drop for Term {
    fn drop(&mut self) {
        // Ends the session, and with it (SIGHUP) tokenwatch and the shell's sleep; then the
        // socket file can go.
        let _ = self.tmux.run(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// HOME and the XDG folders, inside the temporary folder `home`.
fn home_env(home: &std::path::Path) -> Vec<(String, String)> {
    let at = |p: &str| home.join(p).to_string_lossy().into_owned();
    vec![
        ("HOME".into(), at("")),
        ("XDG_CONFIG_HOME".into(), at(".config")),
        ("XDG_DATA_HOME".into(), at(".local/share")),
        ("XDG_STATE_HOME".into(), at(".local/state")),
        ("XDG_CACHE_HOME".into(), at(".cache")),
        ("XDG_RUNTIME_DIR".into(), at("run")),
        ("TMPDIR".into(), at("tmp")),
    ]
}

/// A cell's colour as the terminal holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colour {
    Default,
    /// The 256-colour palette (0–7 the basic colours, whether set by `3x` or `38;5;x`).
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    ch: char,
    fg: Colour,
    bg: Colour,
}

/// `capture-pane -e` output as rows of cells with their colours.
fn cells(capture: &str) -> Vec<Vec<Cell>> {
    let (mut fg, mut bg) = (Colour::Default, Colour::Default);
    let mut rows = Vec::new();
    for line in capture.lines() {
        let mut row = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\x1b' {
                row.push(Cell { ch: c, fg, bg });
                continue;
            }
            if chars.peek() != Some(&'[') {
                chars.next(); // some other escape: skip its one character
                continue;
            }
            chars.next();
            let mut params = String::new();
            let mut last = None;
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    last = Some(c);
                    break;
                }
                params.push(c);
            }
            if last == Some('m') {
                sgr(&params, &mut fg, &mut bg);
            }
        }
        rows.push(row);
    }
    rows
}

/// Apply one SGR sequence's parameters to the current colours.
fn sgr(params: &str, fg: &mut Colour, bg: &mut Colour) {
    let nums: Vec<u16> = params
        .split([';', ':'])
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let mut i = 0;
    while i < nums.len() {
        let n = nums[i];
        let target = if matches!(n, 38 | 48) {
            if n == 38 { &mut *fg } else { &mut *bg }
        } else {
            match n {
                0 => {
                    *fg = Colour::Default;
                    *bg = Colour::Default;
                }
                30..=37 => *fg = Colour::Indexed((n - 30) as u8),
                39 => *fg = Colour::Default,
                40..=47 => *bg = Colour::Indexed((n - 40) as u8),
                49 => *bg = Colour::Default,
                90..=97 => *fg = Colour::Indexed((n - 90 + 8) as u8),
                100..=107 => *bg = Colour::Indexed((n - 100 + 8) as u8),
                _ => {}
            }
            i += 1;
            continue;
        };
        let byte = |k: usize| nums.get(k).copied().unwrap_or(0) as u8;
        match nums.get(i + 1) {
            Some(5) => {
                *target = Colour::Indexed(byte(i + 2));
                i += 3;
            }
            Some(2) => {
                *target = Colour::Rgb(byte(i + 2), byte(i + 3), byte(i + 4));
                i += 5;
            }
            _ => i += 1,
        }
    }
}

/// The screen's text without its escapes.
fn strip_escapes(capture: &str) -> String {
    cells(capture)
        .iter()
        .map(|row| row.iter().map(|c| c.ch).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The foreground colours of the first occurrence of `word` on the screen (top to bottom).
fn colours_of(capture: &str, word: &str) -> Option<Vec<Colour>> {
    let word: Vec<char> = word.chars().collect();
    cells(capture).into_iter().find_map(|row| {
        row.windows(word.len())
            .find(|w| w.iter().map(|c| c.ch).eq(word.iter().copied()))
            .map(|w| w.iter().map(|c| c.fg).collect())
    })
}

/// The countdown `0h 04m 57s` after `Token: `, in seconds, with its text.
fn countdown(screen: &str) -> Option<(u64, String)> {
    let line = screen.lines().find(|l| l.contains("Token: "))?;
    let rest = &line[line.find("Token: ")? + "Token: ".len()..];
    let parts: Vec<&str> = rest.split_whitespace().take(3).collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    let num = |part: &str, unit: char| part.strip_suffix(unit)?.parse::<u64>().ok();
    let secs = num(h, 'h')? * 3600 + num(m, 'm')? * 60 + num(sec, 's')?;
    Some((secs, parts.join(" ")))
}

/// The log pane's rows: what is right of the notifications pane.
fn log_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter_map(|l| l.split_once("││").map(|(_, log)| log))
        .collect()
}

/// The screen helpers themselves: they find what they look for, and only that.
#[test]
fn screen_helpers_catch_what_they_look_for() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQjEyMzQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    assert!(full_token_in(&format!("│ Token  {jwt} │")).is_some());
    assert!(full_token_in("│ Token  eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOi│").is_some());
    assert!(full_token_in("│ Token        eyJ0…d1MM     │ /tmp/x/upstox_token.json").is_none());
    assert!(full_token_in("http://127.0.0.1:42957/v2/login/authorization/dialog?x=1").is_none());

    let capture = " \x1b[1m\x1b[38;2;255;165;0mWARNING\x1b[0m\x1b[39m\x1b[49m · \
                   \x1b[31mCRITICAL\x1b[39m \x1b[38;5;2mOK\x1b[39m\n\x1b[44mx";
    let orange = Colour::Rgb(255, 165, 0);
    assert_eq!(colours_of(capture, "WARNING"), Some(vec![orange; 7]));
    assert_eq!(
        colours_of(capture, "CRITICAL"),
        Some(vec![Colour::Indexed(1); 8])
    );
    assert_eq!(colours_of(capture, "OK"), Some(vec![Colour::Indexed(2); 2]));
    assert_eq!(colours_of(capture, " · "), Some(vec![Colour::Default; 3]));
    assert_eq!(cells(capture)[1][0].bg, Colour::Indexed(4));
    assert_eq!(
        strip_escapes(capture),
        " WARNING · CRITICAL OK\nx".to_string()
    );

    assert_eq!(
        countdown(" 🔑 Token: 0h 04m 57s left · expires"),
        Some((297, "0h 04m 57s".to_string()))
    );
    assert_eq!(countdown(" Token: EXPIRED · expired Thu"), None);
}

#[test]
fn demo_shows_the_dashboard_and_the_countdown_moves() {
    let term = Term::demo("countdown", &["--expires-in", "5m"], false);
    let screen = term.wait_until("the dashboard with a 4-minute countdown", |s| {
        s.contains("HEALTHY") && s.contains("Token: 0h 04m")
    });
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.contains("tokenwatch · demo") && header.contains("HEALTHY"),
        "the header is not `tokenwatch · demo … HEALTHY`:\n{screen}"
    );
    let (first, first_text) =
        countdown(&screen).unwrap_or_else(|| panic!("no countdown on:\n{screen}"));
    assert!(
        (180..300).contains(&first),
        "a 5-minute token shows {first_text}:\n{screen}"
    );

    // The countdown redraws every second on its own, without a key or an event.
    let screen = term.wait_until("the countdown moving", |s| {
        countdown(s).is_some_and(|(_, text)| text != first_text)
    });
    let (now, now_text) = countdown(&screen).expect("a countdown");
    assert!(
        now < first,
        "the countdown went from {first_text} to {now_text}, not down:\n{screen}"
    );
    assert!(
        first - now <= 20,
        "the countdown jumped from {first_text} to {now_text}:\n{screen}"
    );
}

#[test]
fn r_validates_and_l_logs_in_and_q_quits_cleanly() {
    let term = Term::demo("keys", &["--expires-in", "5m"], false);
    term.wait_until("the dashboard, validated once", |s| {
        s.contains("HEALTHY") && log_rows(s).iter().any(|r| r.contains("Token valid"))
    });
    assert_eq!(term.display("#{alternate_on}"), "1", "no alternate screen");
    assert_eq!(term.display("#{cursor_flag}"), "0", "the cursor is shown");

    // r: a real validation, logged after the request.
    term.keys(&["r"]);
    term.wait_until("`Refresh requested` then `Token valid` in the log", |s| {
        let rows = log_rows(s);
        rows.iter()
            .rposition(|r| r.contains("Refresh requested"))
            .is_some_and(|at| rows[at + 1..].iter().any(|r| r.contains("Token valid")))
    });

    // l: a real OAuth round trip through the loopback callback.
    term.keys(&["l"]);
    let screen = term.wait_until("the login's result", |s| {
        s.contains("Logged in") || s.contains("logged in, valid until")
    });
    if screen.contains("┌ Log in to Upstox") {
        term.keys(&["Escape"]);
        term.wait_gone("┌ Log in to Upstox");
    }

    // d: the details show the token masked, never whole.
    term.keys(&["d"]);
    let screen = term.wait_for("Token details");
    let masked = screen
        .match_indices("eyJ")
        .any(|(at, _)| screen[at..].chars().take(8).any(|c| c == '…'));
    assert!(masked, "no masked token (eyJ…) in the details:\n{screen}");
    assert_no_full_token(&screen);
    term.keys(&["Escape"]);
    term.wait_gone("Token details");

    // ?: the help.
    term.keys(&["?"]);
    term.wait_for("┌ Keys");
    term.keys(&["Escape"]);
    term.wait_gone("┌ Keys");

    // q: exit 0, terminal restored.
    term.keys(&["q"]);
    let (code, screen) = term.exit_code();
    assert_eq!(code, 0, "q did not exit 0:\n{screen}");
    term.assert_restored(&screen);
}

#[test]
fn sigterm_sighup_and_sigint_restore_the_terminal() {
    for (name, signal) in [
        ("sigterm", libc::SIGTERM),
        ("sighup", libc::SIGHUP),
        ("sigint", libc::SIGINT),
    ] {
        let term = Term::demo(name, &["--expires-in", "5m"], false);
        term.wait_for("HEALTHY");
        // The dashboard holds the terminal: alternate screen on, cursor hidden.
        assert_eq!(
            term.display("#{alternate_on}"),
            "1",
            "{name}: no alternate screen"
        );
        assert_eq!(
            term.display("#{cursor_flag}"),
            "0",
            "{name}: the cursor is shown"
        );

        let pid = term.pid();
        // SAFETY: kill(2) with a pid this test started and a valid signal number.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "{name}: kill({pid}) failed");

        let (code, screen) = term.exit_code();
        // Handled: the terminal is restored (a process killed by the signal could not do that)
        // and the exit code is the shell's convention for "ended by this signal", non-zero as
        // As the dashboard promises.
        assert_eq!(code, 128 + signal, "{name}: exit {code}:\n{screen}");
        term.assert_restored(&screen);
    }
}

#[test]
fn a_panic_in_a_background_task_restores_the_terminal_and_exits_101() {
    let term = Term::demo_env(
        "panic",
        &["--expires-in", "5m"],
        false,
        &[("TOKENWATCH_TEST_PANIC_AFTER_MS", "1500")],
    );
    term.wait_for("HEALTHY");
    assert_eq!(term.display("#{alternate_on}"), "1", "no alternate screen");
    let (code, screen) = term.exit_code();
    assert_eq!(code, 101, "the panic did not exit 101:\n{screen}");
    term.assert_restored(&screen);
    assert!(
        screen.contains("test panic in a background task"),
        "the panic message is not shown after the terminal was restored:\n{screen}"
    );
}

#[test]
fn a_resize_redraws_the_dashboard_at_the_new_size() {
    let term = Term::demo("resize", &["--expires-in", "5m"], false);
    term.wait_for("HEALTHY");
    for (w, h) in [(70usize, 20usize), (110, 32)] {
        let out = term.run(&[
            "resize-window",
            "-t",
            "main",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
        ]);
        assert!(out.status.success(), "tmux resize-window failed");
        // The panes' top and bottom edges span exactly the new width; the footer is the last
        // line of the new height.
        let screen = term.wait_until(&format!("the dashboard redrawn at {w}x{h}"), |s| {
            let lines: Vec<&str> = s.lines().collect();
            let top = lines
                .iter()
                .find(|l| l.starts_with("┌ Notifications"))
                .map(|l| l.trim_end().chars().count());
            // Below 90 columns the log sits under the notifications, full width too.
            let log = lines
                .iter()
                .find(|l| l.starts_with("┌ Log"))
                .map(|l| l.trim_end().chars().count());
            top == Some(w)
                && (w >= 90 || log == Some(w))
                && lines.len() >= h
                && lines[h - 1].contains("q quit")
                && lines
                    .iter()
                    .any(|l| l.starts_with('└') && l.trim_end().chars().count() == w)
        });
        assert!(screen.contains("HEALTHY"), "{screen}");
    }
    term.keys(&["q"]);
    let (code, screen) = term.exit_code();
    assert_eq!(code, 0, "{screen}");
}

#[test]
fn the_gauge_is_coloured_by_state() {
    let term = Term::demo("colours", &["--expires-in", "70s"], false);
    // 70 s left: under warning_before (3 min), over critical_before (1 min).
    term.wait_for("WARNING");
    let capture = term.screen_with_colours();
    let orange = Colour::Rgb(255, 165, 0);
    assert!(
        capture.contains("38;2;255;165;0"),
        "no orange (38;2;255;165;0) on the screen:\n{capture:?}"
    );
    assert_eq!(
        colours_of(&capture, "WARNING"),
        Some(vec![orange; 7]),
        "WARNING is not orange:\n{capture:?}"
    );
    let (_, left) = countdown(&strip_escapes(&capture)).expect("a countdown");
    assert!(
        colours_of(&capture, &left).is_some_and(|c| c.iter().all(|&c| c == orange)),
        "the countdown {left} is not orange:\n{capture:?}"
    );
    assert!(
        colours_of(&capture, "█").is_some_and(|c| c == [orange]),
        "the gauge is not orange:\n{capture:?}"
    );

    // Under a minute left: critical, red, and a banner saying so.
    term.wait_until("CRITICAL with `Token about to expire`", |s| {
        s.contains("CRITICAL") && s.contains("Token about to expire")
    });
    let capture = term.screen_with_colours();
    // ratatui (through crossterm) writes Color::Red as the palette's colour 1: `38;5;1`.
    assert!(
        capture.contains("\x1b[38;5;1m"),
        "no red (38;5;1) on the screen:\n{capture:?}"
    );
    assert_eq!(
        colours_of(&capture, "CRITICAL"),
        Some(vec![Colour::Indexed(1); 8]),
        "CRITICAL is not red:\n{capture:?}"
    );
    assert!(
        colours_of(&capture, "█").is_some_and(|c| c == [Colour::Indexed(1)]),
        "the gauge is not red:\n{capture:?}"
    );
    assert!(
        !strip_escapes(&capture).contains("WARNING"),
        "WARNING is still shown beside CRITICAL:\n{capture:?}"
    );
}

#[test]
fn no_color_has_no_colour_escapes() {
    let term = Term::demo("nocolor", &["--expires-in", "70s"], true);
    // Warning (a notification and a WARN log line), then critical: every coloured thing shows.
    for (state, banner) in [
        ("WARNING", "Token expires soon"),
        ("CRITICAL", "Token about to expire"),
    ] {
        term.wait_until(&format!("{state} with {banner:?}"), |s| {
            s.contains(state) && s.contains(banner) && s.contains("Token: 0h 0")
        });
        let capture = term.screen_with_colours();
        for sgr in ["38;", "48;"] {
            assert!(
                !capture.contains(sgr),
                "NO_COLOR, yet a colour ({sgr}) on the {state} screen:\n{capture:?}"
            );
        }
        let coloured: Vec<char> = cells(&capture)
            .iter()
            .flatten()
            .filter(|c| c.fg != Colour::Default || c.bg != Colour::Default)
            .map(|c| c.ch)
            .collect();
        assert!(
            coloured.is_empty(),
            "NO_COLOR, yet {} cells coloured on the {state} screen ({:?}…):\n{capture:?}",
            coloured.len(),
            coloured.iter().take(40).collect::<String>()
        );
        assert!(
            strip_escapes(&capture)
                .lines()
                .next()
                .is_some_and(|h| h.contains(state)),
            "the header does not carry the state word {state}:\n{capture:?}"
        );
    }
}

/// The demo's state folder goes into the fake TMPDIR, not the machine's.
#[test]
fn the_demo_runs_inside_the_fake_home() {
    let term = Term::demo("home", &["--expires-in", "5m"], false);
    term.wait_for("HEALTHY");
    let tmp = term.home.join("tmp");
    let demo_dirs = std::fs::read_dir(&tmp)
        .expect("the fake TMPDIR")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tokenwatch-demo-")
        })
        .count();
    assert_eq!(
        demo_dirs,
        1,
        "the demo's folder is not in the fake TMPDIR {}",
        tmp.display()
    );
}

#[test]
fn closing_the_terminal_ends_the_dashboard_cleanly() {
    // The window closes (or SSH drops): tokenwatch must end without a crash and clean up
    // the demo's temporary folder.
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let err = tmp.path().join("stderr.txt");
    let socket = format!("tokenwatch-test-close-{}", std::process::id());
    let bin = assert_cmd::cargo::cargo_bin("tokenwatch");
    let cmd = format!(
        "env LANG=C.UTF-8 TERM=xterm-256color HOME='{h}' TMPDIR='{t}' '{b}' demo 2>'{e}'",
        h = tmp.path().display(),
        t = tmpdir.display(),
        b = bin.display(),
        e = err.display()
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    };
    assert!(
        tmux(&["new-session", "-d", "-x", "100", "-y", "30", &cmd])
            .status
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
        if screen.contains("HEALTHY") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not start:\n{screen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_dir(&tmpdir).unwrap().count(),
        1,
        "the demo's folder exists"
    );
    tmux(&["kill-server"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(&tmpdir).unwrap().count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo's folder was left behind"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_demo_shows_an_angel_one_tab_whose_token_came_from_the_totp_login() {
    let term = Term::demo(
        "angel",
        &["--expires-in", "5m", "--brokers", "upstox,angel"],
        false,
    );
    term.wait_until(
        "an Angel One tab beside the Upstox one, both checked",
        |s| {
            s.contains("angel  HEALTHY")
                && log_rows(s)
                    .iter()
                    .any(|r| r.contains("[angel] Token valid"))
        },
    );
    term.keys(&["Tab"]);
    let screen = term.wait_until("the Angel One tab", |s| {
        s.lines()
            .next()
            .is_some_and(|h| h.contains("tokenwatch · angel"))
    });
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.contains("Angel S1234567 Jane Doe") && header.contains("HEALTHY"),
        "the Angel One tab's header names the holder its login's profile gave:\n{screen}"
    );
}

#[test]
fn a_dhan_tab_logs_in_through_dhans_consent_login() {
    let term = Term::demo(
        "dhan",
        &["--expires-in", "5m", "--brokers", "upstox,dhan"],
        false,
    );
    term.wait_until("the Upstox and Dhan tabs", |s| {
        s.contains("tokenwatch · demo") && s.contains(" dhan ")
    });
    term.keys(&["Tab"]);
    term.wait_for("tokenwatch · dhan (Dhan 1100000001");
    // l: the consent made, the demo's browser sent through it, the token stored.
    term.keys(&["l"]);
    let screen = term.wait_for("Logged in");
    assert!(screen.contains("[dhan] Logged in"), "{screen}");
}
