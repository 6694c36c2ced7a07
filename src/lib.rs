//! tokenwatch keeps an Upstox trading account's daily access token alive and visible.
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
pub mod upstox;
pub mod worker;
