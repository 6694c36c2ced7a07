//! The key-hint line, generated from the keymap so it cannot drift from the keys.

use super::pane::Rows;
use super::text::fit;
use super::theme::Theme;
use crate::tui::app::KEYMAP;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

/// ` r refresh  l login  d details  x dismiss  ? help  q quit`: every binding with a label.
pub fn render(frame: &mut Frame, area: Rect, t: &Theme) {
    let mut spans = Vec::new();
    for b in KEYMAP.iter().filter(|b| !b.label.is_empty()) {
        spans.push(Span::raw(if spans.is_empty() { " " } else { "  " }));
        spans.push(Span::styled(b.key, t.key()));
        spans.push(Span::raw(format!(" {}", b.label)));
    }
    frame.render_widget(
        Rows::new(&[fit(spans, area.width as usize, t.ellipsis())]),
        area,
    );
}
