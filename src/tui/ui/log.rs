//! The log pane: tui-logger's widget (fed by `tracing`) with our own line format —
//! `14:02:11 INFO  Token valid, expires in 15.2 hours` — time in IST like the rest of the
//! screen, level and message, no target. Long messages wrap inside the pane, indented.

use super::text::{self, hms};
use super::theme::{DIM, ORANGE, RED, Theme};
use crate::tui::app::{App, LogCache};
use chrono::DateTime;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use tui_logger::{ExtLogRecord, LogFormatter, TuiLoggerWidget};

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

/// Draw the log pane of `app`. The inside is laid out by tui-logger only when something it
/// shows may have changed (new events, a scroll, a new size, a popup opened or closed over
/// it); otherwise its cells are marked to be skipped, so ratatui neither compares nor writes
/// them and the terminal keeps what it shows. Laying out a full pane was half of a frame's
/// cost, and the once-a-second redraw for the countdown changes nothing in it.
pub fn render(frame: &mut Frame, area: Rect, app: &App, timestamps: bool, t: &Theme) {
    let inner = super::pane::frame(frame.buffer_mut(), area, " Log ");
    let inner = inner.intersection(frame.buffer_mut().area);
    let key = LogCache {
        area: inner,
        version: (app.log_events, app.log_scrolls),
        timestamps,
        popup: app.popup,
    };
    let mut cache = app.log_cache.borrow_mut();
    if cache.as_ref() == Some(&key) {
        let buf = frame.buffer_mut();
        for y in inner.top()..inner.bottom() {
            let start = buf.index_of(inner.x, y);
            for cell in &mut buf.content[start..start + usize::from(inner.width)] {
                cell.set_diff_option(ratatui::buffer::CellDiffOption::Skip);
            }
        }
        return;
    }
    let widget = TuiLoggerWidget::default()
        .formatter(Box::new(Format {
            timestamps,
            theme: *t,
        }))
        .state(&app.log);
    frame.render_widget(widget, inner);
    *cache = Some(key);
}
