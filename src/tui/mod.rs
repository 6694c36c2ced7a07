//! The dashboard: a ratatui terminal UI over the token worker.
//!
//! One loop meets the worker's events, the terminal's keys and a once-a-second tick for the
//! countdown. Keys become actions, `App::update` changes the state, says whether the screen
//! changed and may hand back a command for a worker. Drawing is a pure function of the state,
//! done only when something changed or the second shown is over. Nothing is written to
//! stdout or stderr while the dashboard owns the terminal: logs go to the log pane (and
//! `log.file`).

pub mod app;
pub mod ui;

use crate::calendar::Calendar;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::fleet::{self, StartError};
use crate::messages::Event;
use app::App;
use chrono::{DateTime, Utc};
use crossterm::event::Event as TermEvent;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// The longest the dashboard waits, after the terminal is restored, for workers to stop and
/// alerts to go out.
const QUIT_GRACE: Duration = Duration::from_secs(8);
/// How often the open history popup is read again.
const HISTORY_EVERY: Duration = Duration::from_secs(10);
/// Days the history popup shows, today included.
pub const HISTORY_DAYS: u64 = 14;

/// How the dashboard was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Logins complete in-process (the demo's simulator approves at once): no browser.
    pub builtin_browser: bool,
    /// How `Ctrl-R` reads the configuration again (`None`: the demo, which has no file).
    pub reload: Option<Reloader>,
}

/// Reads the configuration again, the way it was read at start.
#[derive(Clone)]
pub struct Reloader(pub Arc<dyn Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync>);

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloader")
    }
}

/// Run the dashboard until `q`, Ctrl-C, SIGTERM or SIGHUP. Returns the exit code.
pub async fn run(config: Config, options: Options) -> u8 {
    if !std::io::stdout().is_terminal() {
        crate::commands::stderr_line(format_args!(
            "tokenwatch: the dashboard needs a terminal; use `tokenwatch status` or `tokenwatch daemon` in scripts"
        ));
        return 1;
    }
    init_logging(&config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fleet_options = fleet::Options {
        builtin_browser: options.builtin_browser,
        only: None,
        // Beside a daemon that serves the API on the same port, the dashboard carries on.
        api_elsewhere_ok: true,
    };
    let (mut fleet, mut events) = match fleet::start(&config, clock.clone(), fleet_options).await {
        Ok(started) => started,
        Err(StartError::Config(e)) => {
            crate::commands::stderr_line(format_args!("tokenwatch: config error: {e}"));
            return crate::exit::EXIT_CONFIG;
        }
        Err(StartError::Other(e)) => {
            crate::commands::stderr_line(format_args!("tokenwatch: {e}"));
            return 1;
        }
    };
    let snapshots = fleet
        .workers
        .iter()
        .map(|(_, w)| w.status.borrow().clone())
        .collect();
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let unicode = unicode_terminal();
    let mut app = App::new(
        snapshots,
        config.notifications.dismiss_after,
        color,
        unicode,
    );
    app.api = Some(fleet.api().describe());
    app.home = std::env::var("HOME").ok().filter(|h| h.starts_with('/'));
    // Orange needs 24-bit colour; terminals that have it say so in COLORTERM.
    app.truecolor = std::env::var("COLORTERM").is_ok_and(|v| v == "truecolor" || v == "24bit");

    install_panic_hook();
    #[cfg(debug_assertions)]
    test_panic_hook();
    let mut terminal = match enter_terminal() {
        Ok(t) => t,
        Err(e) => {
            leave_terminal();
            crate::commands::stderr_line(format_args!(
                "tokenwatch: cannot take over the terminal: {e}"
            ));
            return 1;
        }
    };
    let mut calendars = calendars_of(&config);
    let code = event_loop(
        &mut terminal,
        &mut app,
        &mut fleet,
        (options.reload.as_ref(), &mut calendars),
        &mut events,
        clock.as_ref(),
    )
    .await;
    // Not dropped: ratatui's Terminal prints to stderr from its Drop when the cursor cannot be
    // shown, which panics when the terminal is gone. leave_terminal shows the cursor instead.
    std::mem::forget(terminal);
    leave_terminal();
    drop(events);
    // Workers finish their step, alerts already raised go out (bounded; see fleet).
    let _ = tokio::time::timeout(QUIT_GRACE, fleet.shutdown()).await;
    code
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    fleet: &mut fleet::Fleet,
    (reload, calendars): (Option<&Reloader>, &mut Calendars),
    events: &mut tokio::sync::mpsc::Receiver<Event>,
    clock: &dyn Clock,
) -> u8 {
    let mut keys = spawn_input();
    // SIGINT too: in raw mode Ctrl-C is a key, but `kill -INT` would otherwise end the
    // process with the terminal left raw.
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    ) else {
        return 1;
    };
    // What the terminal shows of the log pane, and the second the last frame showed.
    let mut shown = ui::Shown::default();
    let mut drawn_second = None;
    let mut changed = true;
    loop {
        let now = clock.now();
        changed |= app.expire(now);
        // The history popup: read when asked for, and again while it stays open.
        let stale = app.history.as_ref().is_none_or(|h| {
            (now - h.read_at).to_std().unwrap_or(Duration::ZERO) >= HISTORY_EVERY || now < h.read_at
        });
        if std::mem::take(&mut app.history_requested)
            || (app.popup == Some(app::Popup::History) && stale)
        {
            changed |= read_history(app, calendars, now);
        }
        // Read before moving: an event that lands in between is counted at the next pass and
        // lays the log pane out again then.
        let log_events = LOG_EVENTS.load(std::sync::atomic::Ordering::Relaxed);
        changed |= log_events != app.log_events;
        app.log_events = log_events;
        tui_logger::move_events();
        // Draw when something changed, or when the second shown (clock, countdown) is over.
        if changed || drawn_second != Some(now.timestamp()) {
            let drawn = terminal.draw(|f| {
                shown = ui::render_frame(app, now, f, ui::Options::default(), shown);
            });
            if drawn.is_err() {
                return 1;
            }
            drawn_second = Some(now.timestamp());
            changed = false;
        }
        if std::mem::take(&mut app.bell) {
            // The terminal bell for a critical notification (the only byte written directly).
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x07").and_then(|_| out.flush());
        }
        if let Some(text) = app.clipboard.take() {
            // `c`: the login address to the terminal's clipboard (OSC 52; tmux passes it on
            // with `set-clipboard on`).
            use base64::Engine;
            use std::io::Write;
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            let mut out = std::io::stdout();
            let _ = write!(out, "\x1b]52;c;{encoded}\x07").and_then(|_| out.flush());
        }
        if app.quit {
            return 0;
        }
        let wait = until_next_second(now).min(
            app.next_expiry()
                .and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::MAX),
        );
        tokio::select! {
            key = keys.recv() => match key {
                Some(Ok(TermEvent::Key(k))) => {
                    if let Some(action) = app.action_for(k) {
                        let update = app.key(action, clock.now());
                        changed |= update.changed;
                        if let Some(send) = update.send
                            && let Some((_, w)) =
                                fleet.workers.iter().find(|(n, _)| *n == send.account)
                        {
                            let _ = w.commands.send(send.command).await;
                        }
                        if std::mem::take(&mut app.reload_requested) {
                            let notice =
                                reload_config(app, fleet, (reload, calendars), clock.now()).await;
                            changed |= app.on_event(Event::Notice(notice), clock.now());
                        }
                    }
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    let area = ratatui::layout::Rect::new(0, 0, w, h);
                    if terminal.resize(area).is_err() {
                        return 1;
                    }
                    // The screen was cleared: every pane is drawn afresh.
                    shown = ui::Shown::default();
                    changed = true;
                }
                Some(Ok(_)) => {} // focus, paste, mouse: nothing shown changes
                Some(Err(_)) | None => return 1,
            },
            event = events.recv() => match event {
                Some(e) => changed |= app.on_event(e, clock.now()),
                None => return 1,
            },
            _ = tokio::time::sleep(wait) => {}
            // Ended by a signal: restore the terminal and exit 128 + its number.
            _ = term.recv() => return 128 + libc::SIGTERM as u8,
            _ = hup.recv() => return 128 + libc::SIGHUP as u8,
            _ = int.recv() => return 128 + libc::SIGINT as u8,
        }
    }
}

/// `Ctrl-R`: read the configuration again and hand it to the fleet, or say why not. The
/// dashboard's tabs are the accounts it started with: a configuration that adds or removes
/// accounts is not taken (restart the dashboard for that).
async fn reload_config(
    app: &App,
    fleet: &mut fleet::Fleet,
    (reload, calendars): (Option<&Reloader>, &mut Calendars),
    now: DateTime<Utc>,
) -> crate::messages::Notification {
    use crate::messages::{Level, Notification, Topic};
    let account = app.current().map(|s| s.account.clone()).unwrap_or_default();
    let notice = |level, title: &str, message: String| Notification {
        account: account.clone(),
        level,
        topic: Topic::Config,
        title: title.to_string(),
        elsewhere: message.clone(),
        message,
        at: now,
    };
    let Some(reload) = reload else {
        return notice(
            Level::Info,
            "Nothing to reload",
            "the demo has no configuration file".into(),
        );
    };
    let config = match (reload.0)() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "Configuration not reloaded: config error: {e}; the running configuration stays"
            );
            return notice(
                Level::Warning,
                "Configuration not reloaded",
                format!("{e}; the running configuration stays"),
            );
        }
    };
    let mut shown: Vec<&str> = app.accounts.iter().map(|s| s.account.as_str()).collect();
    let mut configured: Vec<&str> = config.accounts.keys().map(String::as_str).collect();
    shown.sort_unstable();
    configured.sort_unstable();
    if shown != configured {
        return notice(
            Level::Warning,
            "Configuration not reloaded",
            "it adds or removes accounts; quit and start the dashboard again to show them".into(),
        );
    }
    match fleet.reload(&config).await {
        Ok(changes) => {
            tracing::info!("Configuration reloaded");
            *calendars = calendars_of(&config);
            let what = if changes.is_empty() {
                "each account's new settings apply from now; the log says what changed".into()
            } else {
                changes.join(", ")
            };
            notice(Level::Info, "Configuration reloaded", what)
        }
        Err(e) => {
            tracing::error!("Configuration not reloaded: {e}; the running configuration stays");
            notice(
                Level::Warning,
                "Configuration not reloaded",
                format!("{e}; the running configuration stays"),
            )
        }
    }
}

/// Each account's trading calendar, by name: the history popup's days are read with it.
type Calendars = BTreeMap<String, Arc<Calendar>>;

fn calendars_of(config: &Config) -> Calendars {
    config
        .accounts
        .iter()
        .map(|(name, a)| (name.clone(), a.renew.calendar.clone()))
        .collect()
}

/// Read the shown account's last [`HISTORY_DAYS`] IST days into `app.history` (a few small
/// files beside its token). True when what the popup shows changed.
fn read_history(app: &mut App, calendars: &Calendars, now: DateTime<Utc>) -> bool {
    let Some(snap) = app.current() else {
        return false;
    };
    let dir = crate::history::dir_for(&snap.token_file);
    let calendar = calendars
        .get(&snap.account)
        .cloned()
        .unwrap_or_else(Calendar::nse);
    let today = crate::history::ist_day(now);
    let first = today
        .checked_sub_days(chrono::Days::new(HISTORY_DAYS - 1))
        .unwrap_or(today);
    let loaded = crate::history::load(&dir, first, today);
    let view = app::HistoryView {
        account: snap.account.clone(),
        found: dir.is_dir(),
        days: crate::history::days::days(&loaded, first, today, &calendar, now),
        skipped: loaded.skipped,
        dir,
        read_at: now,
    };
    let changed = app.history.as_ref().is_none_or(|old| {
        (&old.account, &old.dir, old.found, &old.days, &old.skipped)
            != (
                &view.account,
                &view.dir,
                view.found,
                &view.days,
                &view.skipped,
            )
    });
    app.history = Some(view);
    changed
}

/// Terminal input on a thread of its own, which sleeps in crossterm's blocking `read` until a
/// key, a resize or an error arrives. (crossterm's async `EventStream` hands every wait to a
/// helper thread and spins on a lock while idle: about 13 wakeups a second.) The thread ends
/// when the dashboard stops listening or the terminal is gone.
fn spawn_input() -> tokio::sync::mpsc::Receiver<std::io::Result<TermEvent>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let reader = move || {
        loop {
            let event = crossterm::event::read();
            let failed = event.is_err();
            if tx.blocking_send(event).is_err() || failed {
                break;
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("tokenwatch-input".into())
        .spawn(reader)
    {
        tracing::error!("cannot read the keyboard: {e}");
    }
    rx
}

/// Time to the next whole second of the wall clock, when the countdown changes.
fn until_next_second(now: DateTime<Utc>) -> Duration {
    let ms = u64::from(now.timestamp_subsec_millis());
    Duration::from_millis(1000 - ms.min(999))
}

/// Raw mode and the alternate screen. Done by hand rather than with `ratatui::init`, whose
/// restore prints to stderr on failure: when the terminal is gone (window closed, SSH
/// dropped) that print panics, and a panic inside the panic hook aborts.
fn enter_terminal() -> std::io::Result<ratatui::DefaultTerminal> {
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    // A fixed viewport, resized on the terminal's resize events: ratatui's default asks the
    // terminal for its size before every frame (opening /dev/tty each time).
    let (w, h) = crossterm::terminal::size()?;
    ratatui::Terminal::with_options(
        ratatui::backend::CrosstermBackend::new(std::io::stdout()),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, h)),
        },
    )
}

/// Leave raw mode and the alternate screen and show the cursor; errors are ignored (there is
/// nothing to tell them to when the terminal is gone).
fn leave_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// A panic anywhere (a background task too) restores the terminal and ends the process, so
/// the terminal is never left raw under a half-alive dashboard.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave_terminal();
        previous(info);
        std::process::exit(101);
    }));
}

/// Debug builds only, for the terminal-safety test: `TOKENWATCH_TEST_PANIC_AFTER_MS=N`
/// panics in a background task after N ms, as a bug in a worker would.
#[cfg(debug_assertions)]
fn test_panic_hook() {
    if let Some(ms) = std::env::var("TOKENWATCH_TEST_PANIC_AFTER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            panic!("a test panic in a background task (TOKENWATCH_TEST_PANIC_AFTER_MS)");
        });
    }
}

/// Emoji only where the terminal's locale is UTF-8.
fn unicode_terminal() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .is_some_and(|v| {
            v.to_ascii_uppercase().contains("UTF-8") || v.to_ascii_uppercase().contains("UTF8")
        })
}

/// Logs go to the log pane (tui-logger) and to `log.file`; never to the terminal.
fn init_logging(config: &Config) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = config.log.level.as_str();
    let filter = tracing_subscriber::EnvFilter::new(format!("tokenwatch={level}"));
    tui_logger::set_default_level(tui_level(level));
    let file = open_log_file(&config.log.file).map(|f| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_timer(crate::timefmt::IstLogTime)
            .with_target(false)
            .with_writer(std::sync::Mutex::new(f))
            // A full disk loses log lines; the failure is never printed over the dashboard.
            .log_internal_errors(false)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tui_logger::TuiTracingSubscriberLayer)
        .with(CountEvents)
        .with(file)
        .try_init();
}

/// Log events recorded so far (see [`CountEvents`]).
static LOG_EVENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts the events the log pane receives, so the dashboard knows when to lay it out again.
struct CountEvents;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
    fn on_event(
        &self,
        _event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        LOG_EVENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn tui_level(level: &str) -> log::LevelFilter {
    level.parse().unwrap_or(log::LevelFilter::Info)
}

/// The log file, appended to, created 0600 in a 0700 folder. `None` when it cannot be.
fn open_log_file(path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .ok()?;
    // A log file that already existed keeps its mode when opened: make it private too (it
    // names the account holder and the files).
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    Some(file)
}
