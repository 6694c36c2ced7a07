//! What every broker's client does with an answer before reading its JSON: send the request,
//! note the status, `Retry-After` and content type, read at most [`MAX_BODY`] of the body,
//! and say what went wrong in the broker's name (a network failure, an answer too large, a
//! page that is not the API). Each client's `classify` then reads its own JSON shapes.

use super::ApiError;
use crate::http::BodyError;
use crate::printable::printable;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use std::time::Duration;

/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Brokers answer bodies far smaller than this (a profile is under 1 KiB); anything larger is
/// not the API, and no more than this is ever read of it.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest piece of an answer's text shown (a code, a message, a name).
pub const SHOWN_CHARS: usize = 300;

/// An answer, read within [`MAX_BODY`].
#[derive(Debug)]
pub struct Received {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<Duration>,
    /// The content type, empty when absent.
    pub content_type: String,
    /// The body.
    pub bytes: Vec<u8>,
}

/// Send `req` to `broker` (its name for people) and read the answer; `what` names the call
/// in errors ("profile check").
pub async fn receive(
    broker: &str,
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<Received, ApiError> {
    let resp = req
        .send()
        .await
        .map_err(|e| network_error(broker, what, e))?;
    let status = resp.status().as_u16();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header(RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let content_type = header(CONTENT_TYPE).unwrap_or_default();
    match crate::http::read_limited(resp, MAX_BODY).await {
        Ok(bytes) => Ok(Received {
            status,
            retry_after,
            content_type,
            bytes,
        }),
        Err(BodyError::Network(e)) => Err(network_error(broker, what, e)),
        Err(BodyError::TooLarge { .. }) => Err(too_large(broker, what, status, retry_after)),
    }
}

/// A request that got no whole answer. The URL is dropped first (a logout's can hold the
/// token); the innermost cause says what really happened ("Connection refused").
/// Words every broker's rate-limit answer carries, which [`ApiError::is_rate_limit`] looks for.
pub(crate) const RATE_LIMITED: &str = "rate limited by";

/// The reason of a rate-limit answer: `Check: rate limited by Kite (HTTP 429: Too many
/// requests)`. Every client words it here, so the history can count them.
pub fn rate_limited(broker: &str, what: &str, detail: &str) -> String {
    format!("{what}: {RATE_LIMITED} {broker} ({detail})")
}

pub fn network_error(broker: &str, what: &str, e: reqwest::Error) -> ApiError {
    let e = e.without_url();
    let kind = if e.is_timeout() {
        format!("{broker} timed out: it did not answer in time")
    } else if e.is_connect() {
        format!("cannot connect to {broker}")
    } else {
        format!("the connection to {broker} broke off")
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(next) = cause.and_then(std::error::Error::source) {
        cause = Some(next);
    }
    let detail = cause
        .map(|c| format!(" ({})", shown(&c.to_string())))
        .unwrap_or_default();
    ApiError::Transient {
        reason: format!("{what}: {kind}{detail}"),
        retry_after: None,
    }
}

/// An answer past [`MAX_BODY`]: not the API (a proxy, a download page, an endless stream).
pub fn too_large(broker: &str, what: &str, status: u16, retry_after: Option<Duration>) -> ApiError {
    ApiError::Transient {
        reason: format!(
            "{what}: HTTP {status} with an answer larger than {} (not {} API: a proxy, \
             firewall or outage page)",
            crate::http::size_text(MAX_BODY),
            possessive(broker)
        ),
        retry_after,
    }
}

/// An answer that is not the broker's JSON: an HTML page (Cloudflare, a proxy, a captive
/// portal), an empty or cut-off body. Whatever the status, it says nothing of the token.
pub fn not_the_api(
    broker: &str,
    what: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ApiError {
    let looks_html = content_type.contains("html") || body.trim_ascii_start().starts_with(b"<");
    let shape = if looks_html {
        "an HTML page".to_string()
    } else if body.trim_ascii().is_empty() {
        "an empty answer".to_string()
    } else {
        format!("an answer that is not {} JSON", possessive(broker))
    };
    ApiError::Transient {
        reason: format!(
            "{what}: HTTP {status} with {shape} (not {} API: a proxy, firewall or outage page)",
            possessive(broker)
        ),
        retry_after,
    }
}

/// Text from an answer, safe to show: no control characters, at most [`SHOWN_CHARS`].
pub fn shown(text: &str) -> String {
    let clean = printable(text);
    let clean = clean.trim();
    match clean.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean.to_owned(),
    }
}

/// `Kite's`, `Fyers'`.
fn possessive(name: &str) -> String {
    if name.ends_with('s') {
        format!("{name}'")
    } else {
        format!("{name}'s")
    }
}
