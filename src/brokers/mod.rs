//! The brokers tokenwatch knows. Each broker has its own API client and login, and its own
//! rule for when a day's token dies; the worker reaches them through this module.

pub mod upstox;
