//! The history popup (`h`): the shown account's last 14 IST days, newest first, one row per
//! day: the day, one cell per half hour in the state's glyph and colour (the renewal marked
//! in its cell), and the day's summary. Above, the hour scale with the market's hours; below,
//! the legend, lines that could not be read and where the files are.
//!
//! ```text
//! ┌ History · default · last 14 days, IST ─────────────────────────────────────────────────┐
//! │            00    03    06    09════12════15    18    21                                │
//! │ Fri 04 Dec ███▓▓▓▒xxxxxxxxxx↻████████████                    ↻ 08:30 totp              │
//! │ Thu 03 Dec ███▓▓▓▒xxxxxxxxxxxxx↻███████████████████████████  ↻ 10:00 browser 45m down  │
//! │ Sun 29 Nov xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx  closed                    │
//! │ Mon 23 Nov ················································  no record                 │
//! │ █ healthy  ▓ warning  ▒ critical  x not usable  · no record  ↻ renewed  (blank) to come│
//! │ ══ market 09:15–15:30                                                                  │
//! │ Files: ~/algo/config/upstox_token.json.history                                         │
//! └─────────────────────────────────────────────────────────────────────────── h/Esc close ┘
//! ```
//!
//! Narrower, the day loses its month (`Fri 04`) and the summary its details; below 71 inner
//! columns one cell stands for an hour (the worse of its halves). Shorter, fewer days show.
//! Nothing wraps or overflows.

use super::popups::centered;
use super::text::{self, fit};
use super::theme::Theme;
use crate::history::days::{CELLS, Cell, Day};
use crate::tui::app::HistoryView;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Widget};

/// The popup's width when the terminal has room.
const WIDTH: u16 = 100;
/// Borders and padding.
const FRAME_W: usize = 4;
/// Columns between the cells and the summary.
const GAP: usize = 2;

/// How the rows are laid out for an inner width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    /// `Sat 05 Dec` (else `Sat 05`).
    month: bool,
    /// One cell per hour (else per half hour).
    hourly: bool,
    /// Columns left for the summary (0: none).
    summary: usize,
}

impl Geometry {
    fn for_width(inner: usize) -> Geometry {
        let fits =
            |label: usize, cells: usize, summary: usize| inner >= label + 1 + cells + GAP + summary;
        let (month, hourly) = if fits(10, CELLS, 24) {
            (true, false)
        } else if fits(6, CELLS, 14) {
            (false, false)
        } else {
            (false, true)
        };
        let used = Geometry {
            month,
            hourly,
            summary: 0,
        }
        .before_summary();
        Geometry {
            month,
            hourly,
            summary: inner.saturating_sub(used + GAP),
        }
    }

    fn label_w(self) -> usize {
        if self.month { 10 } else { 6 }
    }

    fn cells(self) -> usize {
        if self.hourly { CELLS / 2 } else { CELLS }
    }

    /// Columns up to the end of the cells.
    fn before_summary(self) -> usize {
        self.label_w() + 1 + self.cells()
    }
}

/// The history popup for the shown account, built for the area it is drawn over.
pub struct HistoryPopup<'a> {
    account: &'a str,
    /// The history read for this account (`None`: not read yet).
    view: Option<&'a HistoryView>,
    home: Option<&'a str>,
    theme: Theme,
}

impl<'a> HistoryPopup<'a> {
    /// The popup for `account`; `view` is used only when it is that account's.
    pub fn new(
        account: &'a str,
        view: Option<&'a HistoryView>,
        home: Option<&'a str>,
        theme: Theme,
    ) -> HistoryPopup<'a> {
        HistoryPopup {
            account,
            view: view.filter(|v| v.account == account),
            home,
            theme,
        }
    }

    fn width(area: Rect) -> u16 {
        WIDTH.min(area.width.saturating_sub(4))
    }

    /// Where it lands when drawn over `area`: what it covers.
    pub fn area(&self, area: Rect) -> Rect {
        let lines = self.lines(area).len();
        let height = u16::try_from(lines).unwrap_or(u16::MAX).saturating_add(2);
        centered(area, Self::width(area), height)
    }

    /// The body's lines for `area`, at most as many as fit.
    fn lines(&self, area: Rect) -> Vec<Line<'a>> {
        let inner_w = usize::from(Self::width(area)).saturating_sub(FRAME_W);
        let inner_h = usize::from(area.height).saturating_sub(2);
        let t = &self.theme;
        let Some(view) = self.view else {
            return vec![Line::from(format!("Reading the history{}", t.ellipsis()))];
        };
        let folder = text::tilde(&view.dir.display().to_string(), self.home);
        if !view.found {
            let mut lines = vec![
                Line::styled("No history yet for this account.", t.bold()),
                Line::default(),
            ];
            let why = format!(
                "The dashboard and the daemon record it as they watch the token (states, \
                 renewals, alerts), one file per IST day in {folder}"
            );
            lines.extend(text::wrap_all(&why, inner_w).into_iter().map(Line::from));
            lines.truncate(inner_h);
            return lines;
        }
        let g = Geometry::for_width(inner_w);
        let legend = legend(inner_w, t);
        let mut notes: Vec<Line<'a>> = Vec::new();
        if let Some(first) = view.skipped.first() {
            let n = view.skipped.len();
            let more = if n > 1 {
                format!(" and {} more", n - 1)
            } else {
                String::new()
            };
            notes.push(Line::styled(
                format!(
                    "Skipped {n} unreadable line{} (torn by a crash?): {first}{more}",
                    if n == 1 { "" } else { "s" }
                ),
                t.warn(),
            ));
        }
        let mut files: Vec<Line<'a>> = text::wrap_all(&format!("Files: {folder}"), inner_w)
            .into_iter()
            .take(2)
            .map(|l| Line::styled(l, t.dim()))
            .collect();
        let days = view.days.len();
        // Days first; then the legend; the folder's name goes when rows would not fit.
        let fixed = |files: usize| 1 + legend.len() + notes.len() + files;
        if inner_h < fixed(files.len()) + days {
            files.clear();
        }
        let room = inner_h.saturating_sub(fixed(files.len()));
        let shown = days.min(room.max(1));
        let mut lines = vec![scale(g, t)];
        lines.extend(
            view.days
                .iter()
                .rev()
                .take(shown)
                .enumerate()
                .map(|(i, day)| row(day, i == 0, g, t)),
        );
        if room > shown {
            lines.push(Line::default());
        }
        lines.extend(legend);
        lines.extend(notes);
        lines.append(&mut files);
        lines.truncate(inner_h.max(1));
        lines
    }
}

impl Widget for HistoryPopup<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let rect = self.area(area);
        let t = self.theme;
        let lines = self.lines(area);
        let title = text::cut(
            &format!(
                " History{dot}{}{dot}last {} days, IST ",
                self.account,
                crate::tui::HISTORY_DAYS,
                dot = t.dot()
            ),
            usize::from(rect.width).saturating_sub(4),
            t.ellipsis(),
        );
        let keys = Line::from(vec![
            Span::raw(" "),
            Span::styled("h", t.key()),
            Span::raw("/"),
            Span::styled("Esc", t.key()),
            Span::raw(" close "),
        ])
        .right_aligned();
        let block = Block::bordered()
            .border_set(t.border())
            .title(title)
            .title_style(t.bold())
            .title_bottom(keys)
            .padding(Padding::horizontal(1));
        let inner = block.inner(rect);
        Clear.render(rect, buf);
        block.render(rect, buf);
        let w = usize::from(inner.width);
        let lines: Vec<Line> = lines
            .into_iter()
            .map(|l| fit(l.spans, w, t.ellipsis()))
            .collect();
        Paragraph::new(lines).render(inner, buf);
    }
}

/// The hour scale: `00    03    06    09════12════15    18    21` (hourly: `00 03 06 09═12═15 18 21`),
/// the fill marking the market's hours (09:15–15:30 IST).
fn scale<'a>(g: Geometry, t: &Theme) -> Line<'a> {
    let per_hour = if g.hourly { 1 } else { 2 };
    let mut spans = vec![Span::raw(" ".repeat(g.label_w() + 1))];
    for hour in (0..24).step_by(3) {
        spans.push(Span::styled(format!("{hour:02}"), t.dim()));
        let gap = 3 * per_hour - 2;
        if hour == 21 {
            break;
        }
        if (9..15).contains(&hour) {
            spans.push(Span::styled(t.market_hours().repeat(gap), t.text()));
        } else {
            spans.push(Span::raw(" ".repeat(gap)));
        }
    }
    Line::from(spans)
}

/// One day: its label, its cells, its summary.
fn row<'a>(day: &Day, today: bool, g: Geometry, t: &Theme) -> Line<'a> {
    let label = day
        .date
        .format(if g.month { "%a %d %b" } else { "%a %d" })
        .to_string();
    let label_style = if !day.trading_day {
        t.closed_day()
    } else if today {
        t.bold()
    } else {
        t.text()
    };
    let mut spans = vec![Span::styled(label, label_style), Span::raw(" ")];
    let renewed = |i: usize| day.renewed_in.contains(&i);
    for i in 0..g.cells() {
        let (cell, renewal) = if g.hourly {
            let (a, b) = (day.cells[2 * i], day.cells[2 * i + 1]);
            (a.max(b), renewed(2 * i) || renewed(2 * i + 1))
        } else {
            (day.cells[i], renewed(i))
        };
        let (glyph, style) = if renewal {
            t.history_renewed()
        } else {
            t.history_cell(cell)
        };
        spans.push(Span::styled(glyph, style));
    }
    let summary = summary(day, g.summary, t);
    if !summary.is_empty() {
        spans.push(Span::raw(" ".repeat(GAP)));
        spans.extend(summary);
    }
    Line::from(spans)
}

/// A part of a day's summary: its long and short text, its style, and how soon it goes
/// when the room is short (the higher, the sooner).
struct Part {
    long: String,
    short: String,
    style: Style,
    drop_order: u8,
}

/// The alerts' part of a summary: the first to go.
const ALERTS: u8 = 5;

/// The day's summary in at most `room` columns: the renewal (time and how), the minutes not
/// usable in market hours, failed renewals, alerts; or that the market was closed, or that
/// nothing was recorded. Whole parts are dropped, least important first, rather than cut.
fn summary<'a>(day: &Day, room: usize, t: &Theme) -> Vec<Span<'a>> {
    if room == 0 {
        return Vec::new();
    }
    let mut parts: Vec<Part> = Vec::new();
    if !day.trading_day {
        parts.push(Part {
            long: "closed".into(),
            short: "closed".into(),
            style: t.closed_day(),
            drop_order: 3,
        });
    }
    let mark = t.history_renewed().0;
    let mut ok = day.renewed();
    if let Some(first) = ok.next() {
        let more = ok.count();
        let more = if more > 0 {
            format!(" +{more}")
        } else {
            String::new()
        };
        let at = text::hm(first.at);
        parts.push(Part {
            long: format!("{mark} {at} {}{more}", first.how),
            short: format!("{mark}{at}{}", more.trim_start()),
            style: t.text(),
            drop_order: 2,
        });
    }
    if day.trading_day && day.down_minutes > 0 {
        let down = format!("{} down", crate::history::days::minutes(day.down_minutes));
        parts.push(Part {
            short: down.clone(),
            long: down,
            style: t.bad(),
            drop_order: 1,
        });
    }
    let failed = day.failed();
    if failed > 0 {
        parts.push(Part {
            long: format!(
                "{failed} failed renewal{}",
                if failed == 1 { "" } else { "s" }
            ),
            short: format!("{failed} failed"),
            style: t.warn(),
            drop_order: 4,
        });
    }
    let alerts = day.alerts.len();
    if alerts > 0 {
        let text = format!("{alerts} alert{}", if alerts == 1 { "" } else { "s" });
        parts.push(Part {
            short: text.clone(),
            long: text,
            style: t.text(),
            drop_order: ALERTS,
        });
    }
    let recorded = day
        .cells
        .iter()
        .any(|c| !matches!(c, Cell::NoRecord | Cell::Ahead));
    if parts.is_empty() && !recorded && day.cells.contains(&Cell::NoRecord) {
        parts.push(Part {
            long: "no record".into(),
            short: "no record".into(),
            style: t.dim(),
            drop_order: 1,
        });
    }
    // Each part in its long words until the row lacks room; then the least important part
    // first takes its short words (so "2 failed renewals" shortens before the renewal's
    // method goes), then parts go, least important first. Alerts go before anything.
    fn shown(p: &Part) -> &str {
        if p.long.is_empty() { &p.short } else { &p.long }
    }
    let width = |parts: &[Part]| -> usize {
        let texts = parts.iter().map(|p| text::width(shown(p)));
        texts.sum::<usize>() + parts.len().saturating_sub(1)
    };
    while !parts.is_empty() && width(&parts) > room {
        let shortenable = (0..parts.len())
            .filter(|&i| !parts[i].long.is_empty() && parts[i].long != parts[i].short)
            .max_by_key(|&i| parts[i].drop_order);
        if let Some(alerts) = parts.iter().position(|p| p.drop_order == ALERTS) {
            parts.remove(alerts);
        } else if let Some(i) = shortenable {
            parts[i].long.clear();
        } else if parts.len() > 1 {
            let worst = (0..parts.len())
                .max_by_key(|&i| parts[i].drop_order)
                .unwrap_or(0);
            parts.remove(worst);
        } else {
            break;
        }
    }
    let mut spans = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        let words = if p.long.is_empty() { p.short } else { p.long };
        spans.push(Span::styled(words, p.style));
    }
    // A lone part wider than the room is cut (the line's fit adds the ellipsis).
    spans
}

/// Every glyph explained, wrapped to `width` between items.
fn legend<'a>(width: usize, t: &Theme) -> Vec<Line<'a>> {
    let cell = |c: Cell, what: &'static str| {
        let (glyph, style) = t.history_cell(c);
        (Span::styled(glyph, style), what)
    };
    let (renewed, renewed_style) = t.history_renewed();
    let market = t.market_hours().repeat(2);
    let items: Vec<(Span<'a>, &'static str)> = vec![
        cell(Cell::Healthy, "healthy"),
        cell(Cell::Warning, "warning"),
        cell(Cell::Critical, "critical"),
        cell(Cell::Down, "not usable"),
        cell(Cell::NoRecord, "no record"),
        (Span::styled(renewed, renewed_style), "renewed"),
        (Span::raw("(blank)"), "to come"),
        (
            Span::raw(market),
            if t.unicode {
                "market 09:15–15:30"
            } else {
                "market 09:15-15:30"
            },
        ),
    ];
    let mut lines = Vec::new();
    let mut spans: Vec<Span<'a>> = Vec::new();
    let mut used = 0;
    for (glyph, what) in items {
        let w = glyph.width() + 1 + text::width(what);
        let sep = if spans.is_empty() { 0 } else { 2 };
        if !spans.is_empty() && used + sep + w > width {
            lines.push(Line::from(std::mem::take(&mut spans)));
            used = 0;
        }
        if !spans.is_empty() {
            spans.push(Span::raw("  "));
            used += 2;
        }
        spans.push(glyph);
        spans.push(Span::raw(format!(" {what}")));
        used += w;
    }
    if !spans.is_empty() {
        lines.push(Line::from(spans));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fit_the_width_they_are_laid_out_for() {
        for inner in 40..=92 {
            let g = Geometry::for_width(inner);
            assert!(
                g.before_summary() + if g.summary > 0 { GAP + g.summary } else { 0 } <= inner,
                "{inner}: {g:?}"
            );
        }
        assert_eq!(Geometry::for_width(92).cells(), 48);
        assert!(Geometry::for_width(92).month);
        assert_eq!(Geometry::for_width(72).cells(), 48);
        assert!(!Geometry::for_width(72).month);
        assert_eq!(Geometry::for_width(56).cells(), 24);
    }
}
