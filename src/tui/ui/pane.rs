//! The two big panes' frames and every single-line row, drawn cell by cell.
//!
//! `Block::bordered().title(..)` restyles every cell it covers before drawing its border, and
//! a `Paragraph` restyles its whole area again; at 200×60 that was a third of a frame's time
//! for cells that stay blank. These draw exactly what those widgets drew (the snapshot tests
//! hold them to it), touching only the cells that get a symbol.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols::border;
use ratatui::text::Line;
use ratatui::widgets::{Block, Padding, Widget};

/// Draw a plain border around `area` with `title` on its top edge, and return the inside
/// with one column of padding on each side (what `Block::bordered().title(title)
/// .padding(Padding::horizontal(1))` gives).
pub fn frame(buf: &mut Buffer, area: Rect, title: &str) -> Rect {
    let area = area.intersection(buf.area);
    if area.width < 3 || area.height < 2 {
        // Too small to be worth a fast path: let the widget handle the corner cases.
        let block = Block::bordered()
            .title(title)
            .padding(Padding::horizontal(1));
        let inner = block.inner(area);
        block.render(area, buf);
        return inner;
    }
    let b = border::PLAIN;
    let (left, right) = (area.left(), area.right() - 1);
    let (top, bottom) = (area.top(), area.bottom() - 1);
    for x in left + 1..right {
        buf[(x, top)].set_symbol(b.horizontal_top);
        buf[(x, bottom)].set_symbol(b.horizontal_bottom);
    }
    for y in top + 1..bottom {
        buf[(left, y)].set_symbol(b.vertical_left);
        buf[(right, y)].set_symbol(b.vertical_right);
    }
    buf[(left, top)].set_symbol(b.top_left);
    buf[(right, top)].set_symbol(b.top_right);
    buf[(left, bottom)].set_symbol(b.bottom_left);
    buf[(right, bottom)].set_symbol(b.bottom_right);
    buf.set_line(left + 1, top, &Line::raw(title), area.width - 2);
    Rect {
        x: left + 2,
        y: top + 1,
        width: area.width.saturating_sub(4),
        height: area.height - 2,
    }
}

/// Draw `lines` from the top of `area`, one per row, each cut at the area's right edge (what
/// a `Paragraph` without wrapping draws, without restyling the blank cells).
pub fn lines(buf: &mut Buffer, area: Rect, lines: &[Line]) {
    let area = area.intersection(buf.area);
    for (line, y) in lines.iter().zip(area.top()..area.bottom()) {
        buf.set_line(area.x, y, line, area.width);
    }
}
