//! Brokers beside Upstox, each by its own rules.

pub mod kite;
