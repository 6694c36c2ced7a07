//! The notification pane: a yazi-style stack of banners, newest on top. Each banner is a
//! title line (`14:02 ✓ Token valid`) and its message, wrapped inside the pane.

use super::pane::{Pane, Rows};
use super::text::{fit, hm, wrap_words};
use super::theme::Theme;
use crate::messages::Level;
use crate::tui::app::Banner;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// A message takes at most this many lines; the rest is cut with an ellipsis.
const MESSAGE_LINES: usize = 5;
/// The message's indent under its title.
const MESSAGE_INDENT: usize = 2;

/// The lines the banners alive at `now` take inside a pane `width` wide, all of them shown:
/// one for "No notifications".
pub fn content_lines(
    banners: &[Banner],
    show_account: bool,
    width: u16,
    now: DateTime<Utc>,
    t: &Theme,
) -> usize {
    let w = Pane::inner(Rect::new(0, 0, width, 3)).width as usize;
    let lines: usize = banners
        .iter()
        .filter(|b| b.alive(now))
        .map(|b| banner(b, show_account, w, t).len())
        .sum();
    lines.max(1)
}

/// Draw the banners alive at `now`.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    banners: &[Banner],
    show_account: bool,
    now: DateTime<Utc>,
    t: &Theme,
) {
    let alive: Vec<&Banner> = banners.iter().rev().filter(|b| b.alive(now)).collect();
    let title = if alive.is_empty() {
        " Notifications ".to_string()
    } else {
        format!(" Notifications ({}) ", alive.len())
    };
    frame.render_widget(Pane::new(&title, t.border()), area);
    let inner = Pane::inner(area);
    let (w, h) = (inner.width as usize, inner.height as usize);
    if w == 0 || h == 0 {
        return;
    }
    if alive.is_empty() {
        let line = fit(
            vec![Span::styled("No notifications", t.dim())],
            w,
            t.ellipsis(),
        );
        frame.render_widget(Rows::new(&[line]), inner);
        return;
    }

    let blocks: Vec<Vec<Line>> = alive
        .iter()
        .map(|b| banner(b, show_account, w, t))
        .collect();
    let total: usize = blocks.iter().map(Vec::len).sum();
    let mut lines: Vec<Line> = Vec::new();
    if total <= h {
        lines = blocks.into_iter().flatten().collect();
    } else {
        // Keep one line to say how many did not fit.
        let budget = h - 1;
        let mut shown = 0;
        for block in blocks.iter() {
            if lines.len() + block.len() > budget {
                if shown == 0 {
                    lines.extend(block.iter().take(budget).cloned());
                    shown = 1;
                }
                break;
            }
            lines.extend(block.iter().cloned());
            shown += 1;
        }
        let hidden = alive.len() - shown;
        if hidden > 0 {
            let more = format!("+{hidden} older");
            lines.push(fit(vec![Span::styled(more, t.dim())], w, t.ellipsis()));
        }
    }
    frame.render_widget(Rows::new(&lines), inner);
}

/// One banner: `14:02 ✗ Token expired!` and its message under the title.
fn banner<'a>(b: &'a Banner, show_account: bool, w: usize, t: &Theme) -> Vec<Line<'a>> {
    let style = t.level(b.level);
    let time = format!("{} ", hm(b.created));
    let marker = format!("{} ", t.marker(b.level));
    let mut head = vec![Span::raw(time), Span::styled(marker, style)];
    if show_account {
        head.push(Span::styled(format!("[{}] ", b.account), t.bold()));
    }
    head.push(Span::styled(b.title.as_str(), style.patch(t.bold())));
    let mut lines = vec![fit(head, w, t.ellipsis())];
    let body_style = if b.level == Level::Critical {
        t.paint(ratatui::style::Style::default().fg(super::theme::RED))
    } else {
        t.text()
    };
    // The message is indented a little under its title; the pane is narrow.
    let indent = if w >= 10 { MESSAGE_INDENT } else { 0 };
    for part in wrap_words(&b.message, w - indent, MESSAGE_LINES, t.ellipsis()) {
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::styled(part, body_style),
        ]));
    }
    lines
}
