//! Drawing the dashboard into ratatui's TestBackend, and reading the frame as text: its rows, the whole screen,
//! and the screen with every run of styled cells, the form the dashboard's snapshots take.

use ratatui::buffer::Buffer;
use ratatui::style::Color;
use tokenwatch::tui::app::App;

/// One frame of the dashboard for `app` at `now`, `w`×`h`, with log lines untimed (so
/// snapshots do not depend on the time the events were logged).
pub fn draw_at(app: &App, now: chrono::DateTime<chrono::Utc>, w: u16, h: u16) -> Buffer {
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).expect("a test terminal");
    terminal
        .draw(|f| {
            tokenwatch::tui::ui::render_with(
                app,
                now,
                f,
                tokenwatch::tui::ui::Options {
                    log_timestamps: false,
                },
            )
        })
        .expect("a frame");
    terminal.backend().buffer().clone()
}

/// The columns `s` takes on a terminal.
pub fn width(s: &str) -> usize {
    ratatui::text::Span::raw(s).width()
}

/// The text of row `y`, wide symbols counted once.
pub fn row_text(buf: &Buffer, y: u16) -> String {
    let mut out = String::new();
    let mut skip = 0;
    for x in 0..buf.area.width {
        let sym = buf[(x, y)].symbol();
        if skip > 0 {
            skip -= 1;
            continue;
        }
        out.push_str(sym);
        skip = width(sym).saturating_sub(1);
    }
    out
}

/// Every row, trailing spaces cut.
pub fn screen_text(buf: &Buffer) -> String {
    (0..buf.area.height)
        .map(|y| row_text(buf, y).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The screen, then every run of styled cells: ` 2: 1..45 fg=Green; 45..75 fg=DarkGray`.
pub fn dump(buf: &Buffer) -> String {
    let mut out = screen_text(buf);
    out.push_str("\n---- styles (row: from..to attributes) ----\n");
    for y in 0..buf.area.height {
        let mut runs: Vec<String> = Vec::new();
        let mut x = 0;
        while x < buf.area.width {
            let c = &buf[(x, y)];
            let key = (c.fg, c.bg, c.modifier);
            let start = x;
            while x < buf.area.width {
                let d = &buf[(x, y)];
                if (d.fg, d.bg, d.modifier) != key {
                    break;
                }
                x += 1;
            }
            let mut attrs = Vec::new();
            if key.0 != Color::Reset {
                attrs.push(format!("fg={:?}", key.0));
            }
            if key.1 != Color::Reset {
                attrs.push(format!("bg={:?}", key.1));
            }
            if !key.2.is_empty() {
                attrs.push(format!("{:?}", key.2));
            }
            if !attrs.is_empty() {
                runs.push(format!("{start}..{x} {}", attrs.join(" ")));
            }
        }
        if !runs.is_empty() {
            out.push_str(&format!("{y:>2}: {}\n", runs.join("; ")));
        }
    }
    out
}
