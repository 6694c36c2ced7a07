//! Rendering: a pure function of `&App` and `now`. It reads the state and draws; it never
//! changes the state, reads the clock or does I/O. (The log pane reads tui-logger's
//! process-wide buffer; the loop calls `tui_logger::move_events()` before each draw.)
//!
//! The one thing carried from frame to frame is [`Shown`]: what the terminal already shows of
//! the log pane. The loop that owns the terminal keeps it and hands it to [`render_frame`],
//! which returns the next one; an unchanged log pane is then left to the terminal instead of
//! being laid out again.
//!
//! ```text
//!  tokenwatch · default (AB1234 Jane D.)         HEALTHY · API ✓ 14:02 IST    14:32:05 IST
//!  🔑 Token: 12h 57m 55s left · expires Fri 27 Nov 03:30 IST
//!  ██████████████████████████████████████████████████████████░░░░░░░░░░░░░░░░░░░░░░░░  71%
//!   default  HEALTHY    work  WARNING                               Tab/Shift-Tab switch
//! ┌ Notifications (1) ─────────────────┐┌ Log ──────────────────────────────────────────┐
//! │ 14:02 ✓ Token valid (API)          ││ 14:02:11 INFO  Token valid, expires in 15.2 h │
//! │   The API accepted the token; it   ││                                               │
//! └────────────────────────────────────┘└───────────────────────────────────────────────┘
//!  r refresh  l login  d details  x dismiss  ? help  q quit
//! ```
//!
//! Below [`NARROW_BELOW`] columns (a tmux pane beside the engine) the panes are stacked, the
//! notifications only as tall as what they hold, and the header keeps one clock, labelled:
//!
//! ```text
//!  tokenwatch · default (AB1234)    HEALTHY · API ✓ checked 14:02
//!  🔑 Token: 12h 57m 55s left · expires Fri 27 Nov 03:30 IST
//!  ████████████████████████████████████████░░░░░░░░░░░░░░░░░  71%
//! ┌ Notifications ───────────────────────────────────────────────┐
//! │ No notifications                                             │
//! └──────────────────────────────────────────────────────────────┘
//! ┌ Log ─────────────────────────────────────────────────────────┐
//! │ 14:02:11 INFO  [default] Token valid, expires in 12h 57m     │
//! └──────────────────────────────────────────────────────────────┘
//!  r refresh  l login  d details  x dismiss  ? help  q quit
//! ```
//!
//! The tab line shows only with several accounts. Popups are centred below the three header
//! lines, so the state and the countdown stay in view.

mod footer;
mod header;
mod history;
mod log;
mod notifications;
mod pane;
mod popups;
mod text;
mod theme;

pub use header::life_left;
pub use popups::{renewal_text, strategy_name};
pub use theme::{GREEN, ORANGE, RED, Theme};

use super::app::{App, Popup};
use chrono::{DateTime, Utc};
use log::LogPane;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

/// The smallest terminal the dashboard draws in; below it, it says so.
pub const MIN_WIDTH: u16 = 60;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 12;
/// Below this width (a tmux pane beside the engine: `split-window -h -l 64`) the panes are
/// stacked and the header keeps one clock.
pub const NARROW_BELOW: u16 = 90;
/// In the stacked layout the notifications take at most this share (percent) of the panes'
/// height…
const NOTICES_MAX_PERCENT: u16 = 40;
/// …and the log keeps at least this many rows (its border included).
const LOG_MIN_ROWS: u16 = 5;

/// How to draw, beyond the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Show each log line's time (`14:02:11`). On in the dashboard; snapshot tests turn it
    /// off, as the log's times are the wall clock's.
    pub log_timestamps: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            log_timestamps: true,
        }
    }
}

/// What the terminal shows of the last frame, as far as the next frame needs to know. Kept by
/// whoever owns the terminal (the dashboard's loop) and passed to [`render_frame`]; `App`
/// holds nothing of it. The default is "nothing known": everything is drawn afresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shown {
    /// What the log pane's inside was last laid out from; the terminal still shows that.
    log: Option<LogKey>,
}

/// Everything the log pane's inside is drawn from, besides tui-logger's buffer, for which
/// [`App::log_events`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogKey {
    /// The pane.
    area: Rect,
    /// [`App::log_events`] and [`App::log_scrolls`].
    version: (u64, u64),
    /// With timestamps or not.
    timestamps: bool,
    /// The colours.
    theme: Theme,
    /// What a popup covers (closing, moving or shrinking one must redraw what it covered).
    popup: Option<Rect>,
}

/// Draw the whole dashboard.
pub fn render(app: &App, now: DateTime<Utc>, frame: &mut Frame) {
    render_with(app, now, frame, Options::default());
}

/// Draw the whole dashboard with these options, everything afresh.
pub fn render_with(app: &App, now: DateTime<Utc>, frame: &mut Frame, options: Options) {
    render_frame(app, now, frame, options, Shown::default());
}

/// Draw the whole dashboard over a terminal that shows `shown`; returns what it will show
/// after this frame. A log pane whose inputs are those it was last laid out from is left to
/// the terminal (its cells are marked for ratatui's diff to skip).
pub fn render_frame(
    app: &App,
    now: DateTime<Utc>,
    frame: &mut Frame,
    options: Options,
    shown: Shown,
) -> Shown {
    let t = Theme::new(app.color, app.unicode).with_truecolor(app.truecolor);
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, &t);
        return Shown::default();
    }
    let snap = app.current();
    let tabs = app.accounts.len() > 1;
    let [title, countdown, gauge, tab_bar, panes, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(u16::from(tabs)),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let narrow = area.width < NARROW_BELOW;
    header::title(frame, title, snap, now, &t, narrow);
    header::countdown(frame, countdown, snap, now, &t);
    header::gauge(frame, gauge, snap, now, &t);
    if tabs {
        header::tabs(frame, tab_bar, &app.accounts, app.selected, &t);
    }
    let [left, right] = if narrow {
        // Stacked: the notifications only as tall as what they hold, within their share.
        let lines = notifications::content_lines(&app.banners, tabs, panes.width, now, &t);
        let want = u16::try_from(lines).unwrap_or(u16::MAX).saturating_add(2);
        let cap = (panes.height * NOTICES_MAX_PERCENT / 100)
            .min(panes.height.saturating_sub(LOG_MIN_ROWS))
            .max(3);
        Layout::vertical([Constraint::Length(want.min(cap)), Constraint::Fill(1)]).areas(panes)
    } else {
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(panes)
    };
    notifications::render(frame, left, &app.banners, tabs, now, &t);

    // Popups keep the three header lines (state, countdown, gauge) in view.
    let below = Rect {
        y: tab_bar.y,
        height: area.height - 3,
        ..area
    };
    let dialog = match app.popup {
        Some(Popup::Details) => Some(popups::details(
            below,
            snap,
            app.api.as_deref(),
            app.home.as_deref(),
            now,
            &t,
        )),
        Some(Popup::Help) => Some(popups::help(below, &t)),
        Some(Popup::Login) => app.login.as_ref().map(|view| {
            let broker = snap.map(|s| s.broker).unwrap_or_default();
            popups::login(below, broker, view, app.input.as_deref(), now, &t)
        }),
        Some(Popup::History) | None => None,
    };
    let history = (app.popup == Some(Popup::History)).then(|| {
        history::HistoryPopup::new(
            snap.map_or("", |s| s.account.as_str()),
            app.history.as_ref(),
            app.home.as_deref(),
            t,
        )
    });
    let key = LogKey {
        area: right,
        version: (app.log_events, app.log_scrolls),
        timestamps: options.log_timestamps,
        theme: t,
        popup: dialog
            .as_ref()
            .map(|d| d.area(below))
            .or_else(|| history.as_ref().map(|h| h.area(below))),
    };
    frame.render_widget(
        LogPane {
            state: &app.log,
            timestamps: options.log_timestamps,
            theme: t,
            keep: shown.log == Some(key),
            home: app.home.as_deref(),
        },
        right,
    );
    footer::render(frame, footer, &t);
    if let Some(dialog) = dialog {
        frame.render_widget(dialog, below);
    }
    if let Some(history) = history {
        frame.render_widget(history, below);
    }
    Shown { log: Some(key) }
}

/// `terminal too small: need at least 60×12`, centred, wrapped if even that does not fit.
fn too_small(frame: &mut Frame, area: Rect, t: &Theme) {
    let msg = format!(
        "terminal too small: need at least {MIN_WIDTH}{}{MIN_HEIGHT}",
        t.times()
    );
    let w = usize::from(area.width.max(1));
    // Word wrapping may take a line more than the bare division says.
    let lines = text::width(&msg).div_ceil(w) + usize::from(text::width(&msg) > w);
    let rect = popups::centered(area, area.width, u16::try_from(lines).unwrap_or(u16::MAX));
    frame.render_widget(
        Paragraph::new(Line::from(msg).style(t.bold()))
            .centered()
            .wrap(Wrap { trim: true }),
        rect,
    );
}
