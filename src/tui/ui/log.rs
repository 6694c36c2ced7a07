//! The log pane: tui-logger's widget (fed by `tracing`) with our own line format —
//! `14:02:11 INFO  Token valid, expires in 15.2 hours` — time in IST like the rest of the
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
        let mut parts = msg.lines().flat_map(|l| text::wrap_all(l, msg_w));
        let first = parts.next().unwrap_or_default();
        let mut out = Vec::new();
        if pad == 0 {
            out.push(Line::from(Span::styled(prefix, style)));
            if !first.is_empty() {
                out.push(Line::from(Span::styled(first, style)));
            }
        } else {
            out.push(Line::from(vec![
                Span::styled(prefix, style),
                Span::styled(first, style),
            ]));
        }
        for part in parts {
            out.push(Line::from(vec![
                Span::raw(" ".repeat(pad)),
                Span::styled(part, style),
            ]));
        }
        out
    }
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
            }))
            .state(self.state)
            .render(inner, buf);
    }
}
