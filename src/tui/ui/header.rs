//! The top of the screen: who and what state (line 1), the countdown (line 2), the gauge
//! (line 3), and the account tabs when there are several accounts.

use super::pane::Rows;
use super::text::{self, fit, hm, hms};
use super::theme::Theme;
use crate::messages::Snapshot;
use crate::schedule::Verdict;
use crate::token::{TokenState, format_countdown};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// Gap between the state and the clock, and the least kept between the name and the state.
const GAP: usize = 4;

/// ` tokenwatch · default (Upstox AB1234 Jane D.)   HEALTHY · API ✓ 14:02 IST   14:32:05 IST`,
/// or in a narrow terminal ` tokenwatch · default (Upstox)   HEALTHY · API ✓ checked 14:02`.
pub fn title(
    frame: &mut Frame,
    area: Rect,
    snap: Option<&Snapshot>,
    now: DateTime<Utc>,
    t: &Theme,
    narrow: bool,
) {
    let line = if narrow {
        narrow_title(area.width as usize, snap, t)
    } else {
        wide_title(area.width as usize, snap, now, t)
    };
    frame.render_widget(Rows::new(&[line]), area);
}

/// The account, its broker and who it belongs to: `default (Upstox AB1234 Jane D.)`;
/// `broker`, `id` and `name` say which of the three to show.
fn account(snap: Option<&Snapshot>, broker: bool, id: bool, name: bool) -> String {
    let Some(s) = snap else {
        return "no account".to_string();
    };
    let mut out = s.account.clone();
    let who: Vec<&str> = std::iter::once(Some(s.broker.short_name()).filter(|_| broker))
        .chain(s.token.iter().flat_map(|tok| {
            [
                tok.user_id.as_deref().filter(|_| id),
                tok.user_name.as_deref().filter(|_| name),
            ]
        }))
        .flatten()
        .collect();
    if !who.is_empty() {
        out.push_str(&format!(" ({})", who.join(" ")));
    }
    out
}

/// `HEALTHY · API ✓` and, when `time` is given, the time of the API's last answer written
/// that way (`HH:MM` stands for the time): ` 14:02 IST`, ` checked 14:02`.
fn state(snap: Option<&Snapshot>, t: &Theme, time: Option<&str>) -> Vec<Span<'static>> {
    let mut spans: Vec<Span> = Vec::new();
    let Some(s) = snap else { return spans };
    let (yes, no, unknown) = t.verdict_marks();
    spans.push(Span::styled(s.state.label(), t.state(s.state)));
    spans.push(Span::raw(format!("{}API ", t.dot())));
    let (mark, style, at) = match s.verdict() {
        Verdict::Valid(at) => (yes, t.good(), Some(at)),
        Verdict::Invalid(at) => (no, t.bad(), Some(at)),
        Verdict::Unknown => (unknown, t.dim(), s.last_check_at),
    };
    spans.push(Span::styled(mark, style));
    if let (Some(at), Some(time)) = (at, time) {
        spans.push(Span::raw(time.replace("HH:MM", &hm(at))));
    }
    spans
}

fn spans_width(spans: &[Span]) -> usize {
    spans.iter().map(Span::width).sum()
}

/// The wide header: the name, the state with the API's last answer, and the wall clock.
fn wide_title(w: usize, snap: Option<&Snapshot>, now: DateTime<Utc>, t: &Theme) -> Line<'static> {
    let name = format!(" tokenwatch{}{}", t.dot(), account(snap, true, true, true));
    let state = state(snap, t, Some(" HH:MM IST"));
    let state_w = spans_width(&state);
    let clock = format!("{} IST ", hms(now));
    let clock_w = text::width(&clock);

    // The clock goes first when space runs out, then the name is cut; the state stays.
    let show_clock = w >= state_w + clock_w + GAP + 16;
    let right_w = state_w + if show_clock { GAP + clock_w } else { 1 };
    let name_w = w.saturating_sub(right_w + 3);

    let mut spans = fit(vec![Span::styled(name, t.bold())], name_w, t.ellipsis()).spans;
    let used = spans_width(&spans);
    spans.push(Span::raw(" ".repeat(w.saturating_sub(used + right_w))));
    spans.extend(state);
    if show_clock {
        spans.push(Span::raw(" ".repeat(GAP)));
        spans.push(Span::raw(clock));
    }
    fit(spans, w, t.ellipsis())
}

/// The narrow header (a tmux pane beside the engine) has room for one clock, and it is the
/// time of the API's last answer, labelled `checked`: the wall clock is in tmux's status line
/// and the engine's own output, while when Upstox last said the token works is shown nowhere
/// else, and it is what tells a stale "HEALTHY" from a fresh one. When space runs out the
/// user's name goes first, then the program's name (who the token belongs to says more), the
/// user id, the broker and the check time; the account is cut last, and the state word never.
fn narrow_title(w: usize, snap: Option<&Snapshot>, t: &Theme) -> Line<'static> {
    let brand = format!("tokenwatch{}", t.dot());
    let timed = state(snap, t, Some(" checked HH:MM"));
    let bare = state(snap, t, None);
    let choices = [
        (
            format!("{brand}{}", account(snap, true, true, true)),
            &timed,
        ),
        (
            format!("{brand}{}", account(snap, true, true, false)),
            &timed,
        ),
        // Who the token belongs to says more than the program's name.
        (account(snap, true, true, false), &timed),
        (
            format!("{brand}{}", account(snap, true, false, false)),
            &timed,
        ),
        (
            format!("{brand}{}", account(snap, false, false, false)),
            &timed,
        ),
        (account(snap, false, false, false), &timed),
        (account(snap, false, false, false), &bare),
    ];
    // A space on each side and at least two between the name and the state.
    let margins = 1 + 2 + 1;
    let (name, state) = choices
        .iter()
        .find(|(name, state)| text::width(name) + margins + spans_width(state) <= w)
        .unwrap_or(&choices[choices.len() - 1]);
    let right_w = spans_width(state) + 1;
    let name_w = w.saturating_sub(right_w + 2);
    let mut spans = fit(
        vec![Span::styled(format!(" {name}"), t.bold())],
        name_w,
        t.ellipsis(),
    )
    .spans;
    let used = spans_width(&spans);
    spans.push(Span::raw(" ".repeat(w.saturating_sub(used + right_w))));
    spans.extend(state.iter().cloned());
    fit(spans, w, t.ellipsis())
}

/// ` 🔑 Token: 15h 12m 09s left · expires Fri 27 Nov 03:30 IST`
pub fn countdown(
    frame: &mut Frame,
    area: Rect,
    snap: Option<&Snapshot>,
    now: DateTime<Utc>,
    t: &Theme,
) {
    let mut spans = vec![Span::raw(format!(" {}Token: ", t.key_icon()))];
    let state = snap.map_or(TokenState::Missing, |s| s.state);
    let token = snap.and_then(|s| s.token.as_ref());
    match (state, token) {
        (TokenState::Healthy | TokenState::Warning | TokenState::Critical, Some(tok)) => {
            spans.push(Span::styled(
                format_countdown(tok.expires_at - now),
                t.state(state),
            ));
            spans.push(Span::raw(" left"));
        }
        (state, _) => spans.push(Span::styled(state.label(), t.state(state))),
    }
    if let Some(tok) = token {
        let verb = if tok.expires_at <= now {
            "expired"
        } else {
            "expires"
        };
        spans.push(Span::raw(format!(
            "{}{verb} {} IST",
            t.dot(),
            text::day_hm(tok.expires_at)
        )));
    }
    // "checking…" lasts a moment: left off where it would only fit cut.
    let checking = format!("checking{}", t.ellipsis());
    if snap.is_some_and(|s| s.busy)
        && spans_width(&spans) + text::width(t.dot()) + text::width(&checking)
            <= area.width as usize
    {
        spans.push(Span::raw(t.dot()));
        spans.push(Span::styled(checking, t.dim()));
    }
    frame.render_widget(
        Rows::new(&[fit(spans, area.width as usize, t.ellipsis())]),
        area,
    );
}

/// The share of the token's life still ahead at `now`, 0..=1: remaining / (issued → expiry).
/// Zero for a token that cannot be used (expired, invalid, none) or whose lifetime is
/// unknown or not positive; never NaN.
pub fn life_left(snap: Option<&Snapshot>, now: DateTime<Utc>) -> f64 {
    let Some(s) = snap else { return 0.0 };
    if !s.state.is_usable() {
        return 0.0;
    }
    let Some(tok) = s.token.as_ref() else {
        return 0.0;
    };
    let ratio = match tok.issued_at {
        Some(issued) if tok.expires_at > issued => {
            let life = (tok.expires_at - issued).num_milliseconds() as f64;
            (tok.expires_at - now).num_milliseconds() as f64 / life
        }
        // Without an issue time the lifetime is unknown: no gauge to fill.
        _ => 0.0,
    };
    if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// ` ████████████░░░░░░░░  62%` in the state's colour.
pub fn gauge(
    frame: &mut Frame,
    area: Rect,
    snap: Option<&Snapshot>,
    now: DateTime<Utc>,
    t: &Theme,
) {
    let state = snap.map_or(TokenState::Missing, |s| s.state);
    let ratio = life_left(snap, now);
    let percent = format!("{:>4}", format!("{}%", (ratio * 100.0).round() as u32));
    // A margin on both sides, one space between the bar and the percentage.
    let bar_w = (area.width as usize).saturating_sub(1 + 1 + percent.len() + 1);
    let filled = ((ratio * bar_w as f64).round() as usize).min(bar_w);
    let (full, empty) = t.gauge_cells();
    let line = Line::from(vec![
        Span::raw(" "),
        Span::styled(full.repeat(filled), t.gauge(state)),
        Span::styled(empty.repeat(bar_w - filled), t.dim()),
        Span::raw(" "),
        Span::styled(percent, t.state(state)),
    ]);
    frame.render_widget(Rows::new(&[fit(line.spans, area.width as usize, "")]), area);
}

/// ` default HEALTHY   work WARNING          Tab switch`
pub fn tabs(frame: &mut Frame, area: Rect, accounts: &[Snapshot], selected: usize, t: &Theme) {
    let mut spans = vec![Span::raw(" ")];
    for (i, s) in accounts.iter().enumerate() {
        let name = format!(" {} ", s.account);
        if i == selected {
            spans.push(Span::styled(name, t.selected()));
        } else {
            spans.push(Span::raw(name));
        }
        spans.push(Span::raw(" "));
        spans.push(Span::styled(s.state.label(), t.state(s.state)));
        spans.push(Span::raw("   "));
    }
    let hint = "Tab/Shift-Tab switch ";
    let used: usize = spans.iter().map(Span::width).sum();
    let w = area.width as usize;
    if used + text::width(hint) <= w {
        spans.push(Span::raw(" ".repeat(w - used - text::width(hint))));
        spans.push(Span::styled(hint, t.dim()));
    }
    frame.render_widget(Rows::new(&[fit(spans, w, t.ellipsis())]), area);
}
