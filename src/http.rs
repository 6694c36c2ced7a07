//! The one outbound HTTP client of the process, shared by every account and every call
//! (checks, token exchanges and requests, alert webhooks). Building a client reads the
//! system's root certificates (about 160 kB and 2 ms), so a daemon with a thousand accounts
//! builds it once, not a thousand times, and every call reuses its connection pool.
//!
//! It connects within [`CONNECT_TIMEOUT`], follows no redirect (an API that redirects is
//! something else answering), and names itself `tokenwatch/<version>`. Each request sets
//! its own total time limit.

use std::sync::OnceLock;
use std::time::Duration;

/// How long to wait for a TCP/TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client with these settings, for a caller that needs other ones (tests).
pub fn build(connect: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .user_agent(concat!("tokenwatch/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("cannot set up HTTP: {e}{cause}")
        })
}

/// The shared client (built on first use).
pub fn shared() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT.get_or_init(|| build(CONNECT_TIMEOUT)).clone()
}
