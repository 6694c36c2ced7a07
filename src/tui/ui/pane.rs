//! Two widgets drawn cell by cell: [`Pane`], the frame of the two big panes, and [`Rows`],
//! every single-line row.
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

/// A plain border with a title on its top edge, and one column of padding inside on each
/// side: what `Block::bordered().title(title).padding(Padding::horizontal(1))` draws.
#[derive(Debug, Clone, Copy)]
pub struct Pane<'a> {
    title: &'a str,
    border: border::Set<'static>,
}

impl<'a> Pane<'a> {
    /// A pane titled `title` (spaces around it included), its border drawn with `border`.
    pub fn new(title: &'a str, border: border::Set<'static>) -> Pane<'a> {
        Pane { title, border }
    }

    /// The inside of the pane drawn over `area`, padding excluded.
    pub fn inner(area: Rect) -> Rect {
        Block::bordered()
            .padding(Padding::horizontal(1))
            .inner(area)
    }
}

impl Widget for Pane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.width < 3 || area.height < 2 {
            // Too small to be worth a fast path: let the widget handle the corner cases.
            Block::bordered()
                .border_set(self.border)
                .title(self.title)
                .padding(Padding::horizontal(1))
                .render(area, buf);
            return;
        }
        let b = self.border;
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
        buf.set_line(left + 1, top, &Line::raw(self.title), area.width - 2);
    }
}

/// Lines drawn from the top of the area, one per row, each cut at the area's right edge: what
/// a `Paragraph` without wrapping draws, without restyling the blank cells.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    lines: &'a [Line<'a>],
}

impl<'a> Rows<'a> {
    /// These lines.
    pub fn new(lines: &'a [Line<'a>]) -> Rows<'a> {
        Rows { lines }
    }
}

impl Widget for Rows<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        for (line, y) in self.lines.iter().zip(area.top()..area.bottom()) {
            buf.set_line(area.x, y, line, area.width);
        }
    }
}
