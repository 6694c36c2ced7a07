//! Rendering: a pure function of `&App` and `now`.

use super::app::App;
use chrono::{DateTime, Utc};
use ratatui::Frame;

/// Draw the whole dashboard.
pub fn render(_app: &App, _now: DateTime<Utc>, _frame: &mut Frame) {}
