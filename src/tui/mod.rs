//! The dashboard: a ratatui terminal UI over the token worker.

pub mod app;
pub mod ui;
