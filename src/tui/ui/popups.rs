//! The popups, centred over a cleared background: token details (`d`), help (`?`, from the
//! keymap) and the login overlay (`l`). Each is built as a [`Dialog`] widget, which knows
//! the area it will cover before it is drawn.

use super::text::{self, day_hm, day_hms, fit, wrap_chars};
use super::theme::Theme;
use crate::brokers::Broker;
use crate::config::Strategy;
use crate::messages::Snapshot;
use crate::schedule::{Deferral, Renewal};
use crate::tui::app::{KEYMAP, LoginStatus, LoginView};
use chrono::{DateTime, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Widget};

/// Width of the labels in the details and login popups.
const LABEL: usize = 13;

/// A `w`×`h` rectangle in the middle of `area`, shrunk to fit it.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// A popup's lines, built for its inner width: labelled fields wrap under their value.
struct Body<'a> {
    width: usize,
    lines: Vec<Vec<Span<'a>>>,
}

impl<'a> Body<'a> {
    /// A body for a popup at most `popup_w` wide inside `area` (borders and padding take 4).
    fn new(area: Rect, popup_w: u16) -> Body<'a> {
        Body {
            width: usize::from(popup_width(area, popup_w)).saturating_sub(4),
            lines: Vec::new(),
        }
    }

    fn line(&mut self, spans: Vec<Span<'a>>) {
        self.lines.push(spans);
    }

    fn blank(&mut self) {
        self.lines.push(Vec::new());
    }

    /// `label` then `value`, wrapped under the value's column.
    fn field(&mut self, label: &str, value: impl AsRef<str>, style: Style) {
        self.indented(
            LABEL,
            format!("{label:<LABEL$}"),
            Style::default(),
            value,
            style,
        );
    }

    /// `head` (`indent` cells) then `value`, wrapped under the value's column; from the left
    /// edge when the popup is too narrow for the indent.
    fn indented(
        &mut self,
        indent: usize,
        head: String,
        head_style: Style,
        value: impl AsRef<str>,
        style: Style,
    ) {
        let narrow = self.width < indent + 12;
        let value_w = if narrow {
            self.width
        } else {
            self.width - indent
        };
        let mut parts = text::wrap_all(value.as_ref(), value_w).into_iter();
        let first = parts.next().unwrap_or_default();
        if narrow {
            self.line(vec![Span::styled(head, head_style)]);
            self.line(vec![Span::styled(first, style)]);
        } else {
            self.line(vec![
                Span::styled(head, head_style),
                Span::styled(first, style),
            ]);
        }
        for part in parts {
            let pad = if narrow { 0 } else { indent };
            self.line(vec![Span::raw(" ".repeat(pad)), Span::styled(part, style)]);
        }
    }
}

fn popup_width(area: Rect, width: u16) -> u16 {
    width.min(area.width.saturating_sub(4))
}

/// A popup: `body` in a bordered box titled `title`, at most `width` wide, centred in the
/// area it is drawn over, on a cleared background. Built for one area (the body is wrapped to
/// fit it) and drawn over that same area.
pub struct Dialog<'a> {
    title: &'static str,
    width: u16,
    body: Body<'a>,
    theme: Theme,
}

impl Dialog<'_> {
    /// Where it lands when drawn over `area`: what it covers.
    pub fn area(&self, area: Rect) -> Rect {
        let height = u16::try_from(self.body.lines.len())
            .unwrap_or(u16::MAX)
            .saturating_add(2);
        centered(area, popup_width(area, self.width), height)
    }
}

impl Widget for Dialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rect = self.area(area);
        let t = &self.theme;
        let block = Block::bordered()
            .border_set(t.border())
            .title(format!(" {} ", self.title))
            .title_style(t.bold())
            .padding(Padding::horizontal(1));
        let inner = block.inner(rect);
        Clear.render(rect, buf);
        block.render(rect, buf);
        let w = inner.width as usize;
        let lines: Vec<Line> = self
            .body
            .lines
            .into_iter()
            .map(|spans| fit(spans, w, t.ellipsis()))
            .collect();
        Paragraph::new(lines).render(inner, buf);
    }
}

/// Keys that work in a popup: `r refresh · l login · Esc close`.
fn keys<'a>(pairs: &[(&'static str, &'static str)], t: &Theme) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    for (i, (key, what)) in pairs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(t.dot()));
        }
        spans.push(Span::styled(*key, t.key()));
        spans.push(Span::raw(format!(" {what}")));
    }
    spans
}

/// `renew.strategy` as written in the config.
pub fn strategy_name(s: Strategy) -> &'static str {
    s.as_str()
}

/// The renewal decision in words.
pub fn renewal_text(r: Renewal, expires_at: Option<DateTime<Utc>>, broker: Broker) -> String {
    match r {
        Renewal::Disabled => "disabled (renew.strategy none: alerts only)".to_string(),
        // Due before the 03:30 IST boundary the token ends at: nothing happens when it comes
        // due, so the popup does not name that time.
        Renewal::NotDue { due_at }
            if expires_at.is_some_and(|exp| Renewal::waits_for_boundary(broker, due_at, exp)) =>
        {
            let end = text::hm(expires_at.unwrap_or(due_at));
            format!("after {end} IST (a token issued before then ends at {end} too)")
        }
        Renewal::NotDue { due_at } => format!("not due until {} IST", day_hm(due_at)),
        Renewal::Due => "due now".to_string(),
        Renewal::Deferred { until, reason } => {
            let why = match reason {
                Deferral::Boundary { expires_at } => format!(
                    "the token ends {} IST and a new one would too",
                    text::hm(expires_at)
                ),
                Deferral::NotBefore => "unattended renewals wait for renew.not_before".to_string(),
                Deferral::RecentFailure => "a renewal failed less than 30 minutes ago".to_string(),
            };
            format!("deferred until {} IST because {why}", day_hm(until))
        }
    }
}

/// Width of the details popup.
const DETAILS_W: u16 = 84;
/// Width of the help popup.
const HELP_W: u16 = 84;
/// Width of the login overlay.
const LOGIN_W: u16 = 84;

/// `d`: everything known about the shown account's token.
pub fn details<'a>(
    area: Rect,
    snap: Option<&'a Snapshot>,
    api: Option<&str>,
    home: Option<&str>,
    now: DateTime<Utc>,
    t: &Theme,
) -> Dialog<'a> {
    let mut b = Body::new(area, DETAILS_W);
    let path = |p: &std::path::Path| text::tilde(&p.display().to_string(), home);
    let plain = t.text();
    match snap {
        None => b.line(vec![Span::raw("No account is configured.")]),
        Some(s) => {
            let tok = s.token.as_ref();
            b.field("Account", &s.account, plain);
            b.field("Broker", s.broker.display_name(), plain);
            // The mask's `…` as this terminal can show it.
            let masked = tok.map_or("none".to_string(), |k| k.masked.replace('…', t.ellipsis()));
            b.field("Token", masked, plain);
            let who: Vec<&str> = tok
                .iter()
                .flat_map(|k| [k.user_id.as_deref(), k.user_name.as_deref()])
                .flatten()
                .collect();
            b.field(
                "User",
                if who.is_empty() {
                    "unknown".to_string()
                } else {
                    who.join(" ")
                },
                plain,
            );
            let mut state = vec![
                Span::raw(format!("{:<LABEL$}", "State")),
                Span::styled(s.state.label(), t.state(s.state)),
            ];
            if let Some(k) = tok.filter(|_| s.state.is_usable()) {
                state.push(Span::raw(format!(
                    " ({} left)",
                    crate::timefmt::human(k.expires_at - now)
                )));
            }
            b.line(state);
            if let Some(k) = tok {
                let issued = k
                    .issued_at
                    .map_or("unknown".to_string(), |i| format!("{} IST", day_hm(i)));
                b.field("Issued", issued, plain);
                b.field("Expires", format!("{} IST", day_hm(k.expires_at)), plain);
                b.field("Expiry from", k.expiry_source.describe(s.broker), plain);
                b.field(
                    "Obtained via",
                    k.obtained_via.as_deref().unwrap_or("unknown"),
                    plain,
                );
            }
            let validated = match (s.last_check_at, s.last_check_result.as_deref()) {
                (Some(at), Some(result)) => format!("{} IST: {result}", day_hms(at)),
                (Some(at), None) => format!("{} IST", day_hms(at)),
                (None, _) => "never".to_string(),
            };
            b.field("Checked", validated, plain);
            let next = s.next_check_at.map_or("none scheduled".to_string(), |n| {
                format!("{} IST", day_hm(n))
            });
            b.field("Next check", next, plain);
            b.field(
                "Renewal",
                renewal_text(s.renewal, tok.map(|k| k.expires_at), s.broker),
                plain,
            );
            b.field("Strategy", strategy_name(s.strategy), plain);
            b.field("Token file", path(&s.token_file), plain);
            if s.backups.is_empty() {
                b.field("Backups", "none configured", plain);
            }
            for (i, p) in s.backups.iter().enumerate() {
                b.field(if i == 0 { "Backups" } else { "" }, path(p), plain);
            }
        }
    }
    if let Some(api) = api {
        b.field("HTTP API", api, plain);
    }
    b.blank();
    b.line(keys(
        &[("r", "refresh"), ("l", "login"), ("Esc", "close")],
        t,
    ));
    Dialog {
        title: "Token details",
        width: DETAILS_W,
        body: b,
        theme: *t,
    }
}

/// `?`: one line per key of the keymap.
pub fn help(area: Rect, t: &Theme) -> Dialog<'static> {
    let key_w = KEYMAP.iter().map(|b| text::width(b.key)).max().unwrap_or(0) + 2;
    let mut b = Body::new(area, HELP_W);
    for binding in KEYMAP {
        b.indented(
            key_w,
            format!("{:<key_w$}", binding.key),
            t.key(),
            binding.help,
            t.text(),
        );
    }
    // The blank line before the hint only where it does not push the hint out of view.
    if b.lines.len() + 4 <= usize::from(area.height) {
        b.blank();
    }
    b.line(keys(&[("Esc", "close")], t));
    Dialog {
        title: "Keys",
        width: HELP_W,
        body: b,
        theme: *t,
    }
}

/// The time left until `until`, never negative: `2m 58s`.
fn time_left(until: DateTime<Utc>, now: DateTime<Utc>) -> String {
    crate::timefmt::human(until - now)
}

/// The login overlay: the address, where the callback listens, the time left, how the
/// browser was opened, where the login stands, and the paste line when it is open.
pub fn login<'a>(
    area: Rect,
    broker: crate::brokers::Broker,
    view: &'a LoginView,
    input: Option<&str>,
    now: DateTime<Utc>,
    t: &Theme,
) -> Dialog<'a> {
    let mut b = Body::new(area, LOGIN_W);
    let inner_w = b.width;
    let pending = matches!(
        view.status,
        LoginStatus::Starting
            | LoginStatus::Waiting
            | LoginStatus::PasteRejected(_)
            | LoginStatus::Exchanging
    );
    if let Some(url) = view.url.as_deref() {
        b.line(vec![Span::raw(format!(
            "Open this address to log in to {}:",
            broker.display_name()
        ))]);
        // The address gets what the other lines leave; cut with an ellipsis past that.
        let others = 9 + 3 * usize::from(input.is_some());
        let url_lines = usize::from(area.height)
            .saturating_sub(others + 2)
            .clamp(1, 6);
        for part in wrap_chars(url, inner_w, url_lines, t.ellipsis()) {
            b.line(vec![Span::styled(part, t.key())]);
        }
        b.blank();
    }
    if !view.listening.is_empty() {
        let addrs: Vec<String> = view.listening.iter().map(|a| a.to_string()).collect();
        b.field(
            "Callback",
            format!("listening on {}", addrs.join(", ")),
            t.text(),
        );
    }
    if let (Some(until), true) = (view.until, pending) {
        b.field("Time left", time_left(until, now), t.text());
    }
    match &view.browser {
        Some(Ok(how)) => b.field("Browser", format!("opened with {how}"), t.text()),
        Some(Err(why)) => b.field(
            "Browser",
            format!("not opened: {why}; open the address yourself"),
            t.warn(),
        ),
        None => {}
    }
    let ell = t.ellipsis();
    let (status, style) = match &view.status {
        LoginStatus::Starting => (format!("starting{ell}"), t.text()),
        LoginStatus::Waiting => (
            format!("waiting for the browser to come back{ell}"),
            t.text(),
        ),
        LoginStatus::PasteRejected(why) => (format!("pasted address refused: {why}"), t.warn()),
        LoginStatus::Exchanging => (format!("exchanging the code{ell}"), t.text()),
        LoginStatus::Succeeded(until) => (
            format!("logged in, valid until {} IST", day_hm(*until)),
            t.good(),
        ),
        LoginStatus::Failed(why) => (format!("failed: {why}"), t.bad()),
    };
    b.field("Status", status, style);
    b.blank();
    match input {
        Some(typed) => {
            b.line(vec![Span::raw(
                "Paste the address the browser was sent to:",
            )]);
            // The end of long text stays in view, where the cursor is.
            let room = inner_w.saturating_sub(3);
            let shown = if text::width(typed) > room {
                let mut tail = typed;
                while text::width(tail) + text::width(ell) > room && !tail.is_empty() {
                    let mut chars = tail.chars();
                    chars.next();
                    tail = chars.as_str();
                }
                format!("{ell}{tail}")
            } else {
                typed.to_string()
            };
            b.line(vec![
                Span::styled("> ", t.key()),
                Span::raw(shown),
                Span::styled(" ", t.cursor()),
            ]);
            b.line(keys(&[("Enter", "submit"), ("Esc", "cancel the paste")], t));
        }
        None if pending => b.line(keys(
            &[
                ("c", "copy the address"),
                ("p", "paste the redirected address"),
                ("Esc", "cancel"),
            ],
            t,
        )),
        None => b.line(keys(&[("l", "log in again"), ("Esc", "close")], t)),
    }
    Dialog {
        title: match broker {
            crate::brokers::Broker::Upstox => "Log in to Upstox",
            crate::brokers::Broker::Kite => "Log in to Zerodha Kite",
            crate::brokers::Broker::Fyers => "Log in to Fyers",
            crate::brokers::Broker::Angel => "Log in to Angel One",
            crate::brokers::Broker::Dhan => "Log in to Dhan",
        },
        width: LOGIN_W,
        body: b,
        theme: *t,
    }
}
