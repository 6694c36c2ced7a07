//! The key-hint line, generated from the keymap so it cannot drift from the keys.

use super::pane::Rows;
use super::text::{self, fit};
use super::theme::Theme;
use crate::tui::app::{Action, KEYMAP};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;

/// Keys the footer leaves out first when it is too narrow for all (they stay in `?`).
const LEFT_OUT_FIRST: &[Action] = &[Action::History];

/// ` r refresh  l login  d details  h history  x dismiss  ? help  q quit`: every binding
/// with a label, those of [`LEFT_OUT_FIRST`] only when the line has room for them.
pub fn render(frame: &mut Frame, area: Rect, t: &Theme) {
    let labelled = || KEYMAP.iter().filter(|b| !b.label.is_empty());
    let full: usize = labelled()
        .map(|b| 2 + text::width(b.key) + 1 + text::width(b.label))
        .sum::<usize>()
        .saturating_sub(1);
    let room = full <= area.width as usize;
    let mut spans = Vec::new();
    for b in labelled().filter(|b| room || !LEFT_OUT_FIRST.contains(&b.action)) {
        spans.push(Span::raw(if spans.is_empty() { " " } else { "  " }));
        spans.push(Span::styled(b.key, t.key()));
        spans.push(Span::raw(format!(" {}", b.label)));
    }
    frame.render_widget(
        Rows::new(&[fit(spans, area.width as usize, t.ellipsis())]),
        area,
    );
}
