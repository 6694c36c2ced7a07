//! The log pane: tui-logger's widget (fed by `tracing`) with our own line format —
//! `14:02:11 INFO  Token valid, expires in 15h 12m` — time in IST like the rest of the
//! screen, level and message, no target. Long messages wrap inside the pane, indented.

use super::pane::Pane;
use super::text::{self, hms};
use super::theme::{DIM, ORANGE, RED, Theme};
use chrono::DateTime;
use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use tui_logger::{ExtLogRecord, LogFormatter, TuiLoggerWidget, TuiWidgetState};

/// How log lines are written.
struct Format {
    timestamps: bool,
    theme: Theme,
    /// The home folder, written `~` in paths.
    home: Option<String>,
}

impl Format {
    /// The level word, padded to one width, and its style. (`log::Level` by its name, as
    /// the `log` crate is tui-logger's, not ours.)
    fn level(&self, level: &str) -> (&'static str, Style) {
        let t = &self.theme;
        match level {
            "ERROR" => ("ERROR", t.paint(Style::default().fg(RED))),
            "WARN" => ("WARN ", t.paint(Style::default().fg(ORANGE))),
            "DEBUG" => ("DEBUG", t.paint(Style::default().fg(DIM))),
            "TRACE" => ("TRACE", t.paint(Style::default().fg(DIM))),
            _ => ("INFO ", t.text()),
        }
    }
}

impl LogFormatter for Format {
    fn min_width(&self) -> u16 {
        // The widget draws nothing in a narrower pane.
        8
    }

    fn format(&self, width: usize, evt: &ExtLogRecord) -> Vec<Line<'_>> {
        let (word, style) = self.level(evt.level.as_str());
        let mut prefix = String::new();
        if self.timestamps {
            let secs = evt.timestamp.timestamp().as_second();
            if let Some(at) = DateTime::from_timestamp(secs, 0) {
                prefix.push_str(&hms(at));
                prefix.push(' ');
            }
        }
        prefix.push_str(word);
        prefix.push(' ');
        let indent = text::width(&prefix);
        // Continuation lines line up under the message, unless the pane is too narrow.
        let (msg_w, pad) = if width > indent + 10 {
            (width - indent, indent)
        } else {
            (width, 0)
        };
        // tracing's fields arrive as " account: default Login started…": show the account
        // as a short tag instead.
        let raw = evt.msg().trim_start();
        let tagged;
        let msg = match raw
            .strip_prefix("account: ")
            .and_then(|r| r.split_once(' '))
        {
            Some((account, rest)) => {
                tagged = format!("[{account}] {rest}");
                tagged.as_str()
            }
            None => raw,
        };
        let msg = text::tilde(msg, self.home.as_deref());
        let mut parts = body(&msg, msg_w, width).into_iter();
        let mut out = Vec::new();
        match parts.next() {
            Some(Part::Text(first)) if pad > 0 => out.push(Line::from(vec![
                Span::styled(prefix, style),
                Span::styled(first, style),
            ])),
            first => {
                out.push(Line::from(Span::styled(prefix, style)));
                match first {
                    Some(Part::Text(t) | Part::Address(t)) if !t.is_empty() => {
                        out.push(Line::from(Span::styled(t, style)));
                    }
                    _ => {}
                }
            }
        }
        for part in parts {
            out.push(match part {
                Part::Text(t) => {
                    Line::from(vec![Span::raw(" ".repeat(pad)), Span::styled(t, style)])
                }
                Part::Address(a) => Line::from(Span::styled(a, style)),
            });
        }
        out
    }
}

/// One line of a message under its prefix.
enum Part {
    /// Words, wrapped to the message's column and indented under it.
    Text(String),
    /// A piece of a web address: on lines of its own from the pane's left edge, full to its
    /// right edge, so the address reads (and selects) as one run; in a zoomed pane
    /// (`prefix z`) it fits on one line.
    Address(String),
}

/// A message's lines: its words wrapped to `msg_w`, each address on lines of its own `width`
/// wide.
fn body(msg: &str, msg_w: usize, width: usize) -> Vec<Part> {
    let mut out = Vec::new();
    for line in msg.lines() {
        let mut words = String::new();
        let mut address = false;
        for word in line.split_whitespace() {
            if !(word.starts_with("https://") || word.starts_with("http://")) {
                if !words.is_empty() {
                    words.push(' ');
                }
                words.push_str(word);
                continue;
            }
            if !words.is_empty() {
                out.extend(text::wrap_all(&words, msg_w).into_iter().map(Part::Text));
                words.clear();
            }
            out.extend(
                text::wrap_chars(word, width, usize::MAX, "")
                    .into_iter()
                    .map(Part::Address),
            );
            address = true;
        }
        if !words.is_empty() || !address {
            out.extend(text::wrap_all(&words, msg_w).into_iter().map(Part::Text));
        }
    }
    out
}

/// The log pane: a [`Pane`] titled ` Log ` around tui-logger's widget. With `keep` set, the
/// inside is not laid out: its cells are marked to be skipped, so ratatui neither compares
/// nor writes them and the terminal keeps showing them. (The frame after that writes every
/// one of them again: a skipped cell never equals the one drawn next.) Laying out a full pane
/// was half of a frame's cost, and the once-a-second redraw for the countdown changes nothing
/// in it; the caller says when nothing did (see [`super::Shown`]).
pub struct LogPane<'a> {
    /// The scroll position.
    pub state: &'a TuiWidgetState,
    /// Show each line's time.
    pub timestamps: bool,
    /// The colours.
    pub theme: Theme,
    /// The terminal shows the inside as it would be drawn now: leave it.
    pub keep: bool,
    /// The home folder, written `~` in paths.
    pub home: Option<&'a str>,
}

impl Widget for LogPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Pane::new(" Log ", self.theme.border()).render(area, buf);
        let inner = Pane::inner(area).intersection(buf.area);
        if self.keep {
            for y in inner.top()..inner.bottom() {
                let start = buf.index_of(inner.x, y);
                for cell in &mut buf.content[start..start + usize::from(inner.width)] {
                    cell.set_diff_option(CellDiffOption::Skip);
                }
            }
            return;
        }
        TuiLoggerWidget::default()
            .formatter(Box::new(Format {
                timestamps: self.timestamps,
                theme: self.theme,
                home: self.home.map(str::to_string),
            }))
            .state(self.state)
            .render(inner, buf);
    }
}
