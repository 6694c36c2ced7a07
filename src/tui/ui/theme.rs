//! Every colour and glyph of the dashboard, in one place. Under `NO_COLOR` the theme hands out
//! styles without any foreground or background colour (bold and reverse stay), so the state
//! word alone carries the meaning; without emoji support the glyphs are plain ASCII.

use crate::history::days::Cell;
use crate::messages::Level;
use crate::token::TokenState;
use ratatui::style::{Color, Modifier, Style};

/// Borders in plain ASCII, for a terminal whose locale is not UTF-8.
const ASCII_BORDER: ratatui::symbols::border::Set<'static> = ratatui::symbols::border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

/// Healthy: more than `warning_before` left.
pub const GREEN: Color = Color::Green;
/// Warning: between `critical_before` and `warning_before` (orange, RGB 255,165,0).
pub const ORANGE: Color = Color::Rgb(255, 165, 0);
/// Critical, expired, invalid, no token.
pub const RED: Color = Color::Red;
/// Secondary text: the gauge's empty part, hints.
pub const DIM: Color = Color::DarkGray;
/// Key names in the footer and popups.
pub const KEY: Color = Color::Cyan;

/// The styles and glyphs for one draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Colours allowed (false under `NO_COLOR`).
    pub color: bool,
    /// Emoji and symbol glyphs allowed.
    pub unicode: bool,
    /// 24-bit colour; without it orange is 256-colour 208.
    pub truecolor: bool,
}

impl Theme {
    /// The theme for these terminal capabilities.
    pub fn new(color: bool, unicode: bool) -> Theme {
        Theme {
            color,
            unicode,
            truecolor: true,
        }
    }

    /// The same theme for a terminal with or without 24-bit colour.
    pub fn with_truecolor(self, truecolor: bool) -> Theme {
        Theme { truecolor, ..self }
    }

    /// `style` as this terminal may show it: without colours under `NO_COLOR`.
    pub fn paint(&self, style: Style) -> Style {
        if self.color && !self.truecolor && style.fg == Some(ORANGE) {
            style.fg(Color::Indexed(208))
        } else if self.color {
            style
        } else {
            Style {
                fg: None,
                bg: None,
                ..style
            }
        }
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::default()
    }

    /// Bold text.
    pub fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        self.paint(Style::default().fg(DIM))
    }

    /// A key name (`r`, `Esc`).
    pub fn key(&self) -> Style {
        self.paint(Style::default().fg(KEY).add_modifier(Modifier::BOLD))
    }

    /// Good news.
    pub fn good(&self) -> Style {
        self.paint(Style::default().fg(GREEN))
    }

    /// Needs attention.
    pub fn warn(&self) -> Style {
        self.paint(Style::default().fg(ORANGE))
    }

    /// Bad news.
    pub fn bad(&self) -> Style {
        self.paint(Style::default().fg(RED).add_modifier(Modifier::BOLD))
    }

    /// The colour of a state: the gauge, the state word.
    pub fn state_color(state: TokenState) -> Color {
        match state {
            TokenState::Healthy => GREEN,
            TokenState::Warning => ORANGE,
            TokenState::Critical
            | TokenState::Expired
            | TokenState::Invalid
            | TokenState::Missing => RED,
        }
    }

    /// The state word's style.
    pub fn state(&self, state: TokenState) -> Style {
        self.paint(
            Style::default()
                .fg(Theme::state_color(state))
                .add_modifier(Modifier::BOLD),
        )
    }

    /// The filled part of the gauge.
    pub fn gauge(&self, state: TokenState) -> Style {
        self.paint(Style::default().fg(Theme::state_color(state)))
    }

    /// A notification's marker and title.
    pub fn level(&self, level: Level) -> Style {
        match level {
            Level::Info => self.good(),
            Level::Warning => self.paint(Style::default().fg(ORANGE).add_modifier(Modifier::BOLD)),
            Level::Critical => self.bad(),
        }
    }

    /// The selected account's tab.
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }

    /// The input line's cursor.
    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// The 🔑 before the countdown, or nothing without emoji.
    pub fn key_icon(&self) -> &'static str {
        if self.unicode { "🔑 " } else { "" }
    }

    /// A notification's level marker.
    pub fn marker(&self, level: Level) -> &'static str {
        match (level, self.unicode) {
            (Level::Info, true) => "✓",
            (Level::Warning, _) => "!",
            (Level::Critical, true) => "✗",
            (Level::Info, false) => "i",
            (Level::Critical, false) => "x",
        }
    }

    /// The API verdict marks: accepted, rejected, not known.
    pub fn verdict_marks(&self) -> (&'static str, &'static str, &'static str) {
        if self.unicode {
            ("✓", "✗", "?")
        } else {
            ("ok", "x", "?")
        }
    }

    /// The lines of pane and popup borders: box drawing, or `+`, `-` and `|` where the
    /// terminal's locale is not UTF-8.
    pub fn border(&self) -> ratatui::symbols::border::Set<'static> {
        if self.unicode {
            ratatui::symbols::border::PLAIN
        } else {
            ASCII_BORDER
        }
    }

    /// Marks text cut short.
    pub fn ellipsis(&self) -> &'static str {
        if self.unicode { "…" } else { "..." }
    }

    /// The gauge's filled and empty cells.
    pub fn gauge_cells(&self) -> (&'static str, &'static str) {
        if self.unicode {
            ("█", "░")
        } else {
            ("#", "-")
        }
    }

    /// Between parts of a line.
    pub fn dot(&self) -> &'static str {
        if self.unicode { " · " } else { " - " }
    }

    /// A history cell (`h`): its glyph and style. Each state has a glyph of its own, so the
    /// timeline reads the same without colour: `█ ▓ ▒ x ·` (ASCII `# ~ ! x .`), blank for
    /// time still to come.
    pub fn history_cell(&self, cell: Cell) -> (&'static str, Style) {
        let glyph = match (cell, self.unicode) {
            (Cell::Ahead, _) => " ",
            (Cell::NoRecord, true) => "·",
            (Cell::NoRecord, false) => ".",
            (Cell::Healthy, true) => "█",
            (Cell::Healthy, false) => "#",
            (Cell::Warning, true) => "▓",
            (Cell::Warning, false) => "~",
            (Cell::Critical, true) => "▒",
            (Cell::Critical, false) => "!",
            (Cell::Down, _) => "x",
        };
        let style = match cell {
            Cell::Ahead | Cell::NoRecord => self.dim(),
            Cell::Healthy => self.good(),
            Cell::Warning => self.warn(),
            Cell::Critical => self.paint(Style::default().fg(RED)),
            Cell::Down => self.bad(),
        };
        (glyph, style)
    }

    /// The history cell a renewal stored a new token in: `↻` (ASCII `R`).
    pub fn history_renewed(&self) -> (&'static str, Style) {
        let glyph = if self.unicode { "↻" } else { "R" };
        (
            glyph,
            self.paint(Style::default().fg(KEY).add_modifier(Modifier::BOLD)),
        )
    }

    /// Fills the history's hour scale over the market's hours: `09════12════15`.
    pub fn market_hours(&self) -> &'static str {
        if self.unicode { "═" } else { "=" }
    }

    /// A day the market is closed (weekend, holiday) in the history.
    pub fn closed_day(&self) -> Style {
        self.paint(Style::default().fg(DIM).add_modifier(Modifier::DIM))
    }

    /// The `×` of `60×12`.
    pub fn times(&self) -> &'static str {
        if self.unicode { "×" } else { "x" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orange_falls_back_to_256_colours_and_no_color_strips_it() {
        let orange = Style::default().fg(ORANGE);
        assert_eq!(Theme::new(true, true).paint(orange).fg, Some(ORANGE));
        let t = Theme::new(true, true).with_truecolor(false);
        assert_eq!(t.paint(orange).fg, Some(Color::Indexed(208)));
        assert_eq!(
            Theme::new(false, true)
                .with_truecolor(false)
                .paint(orange)
                .fg,
            None
        );
    }
}
