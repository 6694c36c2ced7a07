//! tokenwatch keeps a trading account's daily access token (Upstox, Zerodha Kite) alive and
//! visible; each broker's client, login and expiry rule are behind [`brokers`].
//!
//! The library holds everything the `tokenwatch` binary does, so tests can drive it
//! headless: layered [`config`], the [`token`] model with Upstox's expiry rules and the
//! atomic store, the [`status`] report, and the [`commands`] the CLI runs.

pub mod alerts;
pub mod api;
pub mod auth;
pub mod brokers;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod exit;
pub mod filewatch;
pub mod fleet;
pub mod history;
pub mod http;
pub mod messages;
pub mod metrics;
pub mod paths;
pub mod printable;
pub mod process;
pub mod retry;
pub mod schedule;
pub mod secret;
mod serving;
pub mod sink;
pub mod status;
pub mod timefmt;
pub mod token;
pub mod tui;
pub mod worker;
