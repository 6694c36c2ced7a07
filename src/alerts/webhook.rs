//! Delivery to `notifications.webhook_url`: one POST of the JSON payload with ntfy's
//! headers, bounded retries, and logs that never show the URL's path or more than the start
//! of an answer (see the module docs of [`crate::alerts`]).

use super::{Alert, WEBHOOK_ATTEMPTS, WEBHOOK_TIMEOUT, one_line};
use crate::messages::Level;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// The most of a webhook answer's body read for the log, and the most shown.
const BODY_READ_LIMIT: usize = 1024;
const BODY_SHOWN_CHARS: usize = 200;

/// The longest `Title` header sent.
const TITLE_HEADER_CHARS: usize = 200;

/// The configured webhook: one client (with [`WEBHOOK_TIMEOUT`](super::WEBHOOK_TIMEOUT)) for every
/// alert.
#[derive(Clone)]
pub(super) struct Webhook {
    /// The process's shared client ([`crate::http::shared`]).
    pub(super) client: reqwest::Client,
    pub(super) url: url::Url,
}

/// The webhook URL as logs show it: `scheme://host[:port]/…`, never the path, query or
/// credentials (Slack and Discord put the secret in the path).
pub(super) fn shown_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// A reqwest error without its URL, with its causes: "error sending request: client error
/// (Connect): tcp connect error: Connection refused (os error 111)".
pub(super) fn describe_http_error(e: reqwest::Error) -> String {
    one_line(&super::with_causes(&e.without_url()), 300)
}

/// The title as a header value: printable ASCII only (common typographic characters
/// replaced, anything else as `?`, control characters as spaces), one line, bounded.
fn header_title(title: &str) -> String {
    let mut out = String::with_capacity(title.len());
    for c in title.chars() {
        match c {
            ' '..='~' => out.push(c),
            '…' => out.push_str("..."),
            '–' | '—' | '−' => out.push('-'),
            '‘' | '’' => out.push('\''),
            '“' | '”' => out.push('"'),
            c if c.is_control() || c.is_whitespace() => out.push(' '),
            _ => out.push('?'),
        }
    }
    let line = one_line(&out, TITLE_HEADER_CHARS).replace('…', "...");
    if line.is_empty() {
        "tokenwatch".to_string()
    } else {
        line
    }
}

/// Why one webhook attempt failed.
#[derive(Debug)]
struct WebhookFailure {
    /// Worth another attempt: a connection error, a time-out, 5xx or 429.
    transient: bool,
    /// The answer's `Retry-After`, in seconds.
    retry_after: Option<Duration>,
    /// A readable sentence, without the URL.
    why: String,
}

impl std::fmt::Display for WebhookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl crate::retry::Transient for WebhookFailure {
    fn is_transient(&self) -> bool {
        self.transient
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// The ntfy headers: `Title`, `Priority`, `Tags`.
fn webhook_headers(alert: &Alert) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let priority = match alert.level {
        Level::Critical => "urgent",
        Level::Warning => "high",
        Level::Info => "default",
    };
    let mut headers = HeaderMap::new();
    let values = [
        ("title", header_title(&alert.title)),
        ("priority", priority.to_string()),
        ("tags", format!("tokenwatch,{}", alert.event.as_str())),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// One POST.
async fn post_once(
    webhook: &Webhook,
    headers: &reqwest::header::HeaderMap,
    body: &serde_json::Value,
) -> Result<(), WebhookFailure> {
    let response = webhook
        .client
        .post(webhook.url.clone())
        .timeout(WEBHOOK_TIMEOUT)
        .headers(headers.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| WebhookFailure {
            transient: !(e.is_builder() || e.is_redirect()),
            retry_after: None,
            why: describe_http_error(e),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let transient = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    let body = body_excerpt(response).await;
    let why = if body.is_empty() {
        format!("it answered {status}")
    } else {
        format!("it answered {status}: {body}")
    };
    Err(WebhookFailure {
        transient,
        retry_after,
        why,
    })
}

/// The start of an answer's body, one line, at most [`BODY_SHOWN_CHARS`] characters; no more
/// than [`BODY_READ_LIMIT`] bytes are read, however much the answer holds.
async fn body_excerpt(response: reqwest::Response) -> String {
    let bytes = crate::http::read_start(response, BODY_READ_LIMIT).await;
    one_line(
        &crate::printable::printable(&String::from_utf8_lossy(&bytes)),
        BODY_SHOWN_CHARS,
    )
}

/// Deliver one alert to the webhook, with bounded retries; failures are logged, and said.
pub(super) async fn post_webhook(
    webhook: Webhook,
    alert: Arc<Alert>,
    retry_delay: Duration,
) -> Result<(), String> {
    let shown = shown_url(&webhook.url);
    let headers = webhook_headers(&alert);
    let body = alert.payload();
    let policy = crate::retry::RetryPolicy {
        attempts: WEBHOOK_ATTEMPTS,
        initial: retry_delay,
        max: retry_delay.saturating_mul(1 << WEBHOOK_ATTEMPTS),
        jitter: true,
    };
    let what = format!("Alert webhook {shown}:");
    let (result, attempts) = crate::retry::retry_counted(policy, &alert.account, &what, || {
        post_once(&webhook, &headers, &body)
    })
    .await;
    match result {
        Ok(()) => {
            debug!(
                account = %alert.account,
                "Alert '{}' sent to the webhook {shown}",
                alert.event.as_str()
            );
            Ok(())
        }
        Err(e) if e.transient => {
            warn!(
                account = %alert.account,
                "Alert webhook {shown}: attempt {attempts}/{WEBHOOK_ATTEMPTS} failed: {}; \
                 the '{}' alert was not delivered",
                e.why,
                alert.event.as_str()
            );
            Err(e.why)
        }
        Err(e) => {
            warn!(
                account = %alert.account,
                "Alert webhook {shown} refused the '{}' alert: {}; not retried",
                alert.event.as_str(),
                e.why
            );
            Err(e.why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_logs_show_no_path() {
        let url: url::Url = "https://user:pw@hooks.slack.com/services/T000/B000/XXXX?x=1"
            .parse()
            .unwrap();
        assert_eq!(shown_url(&url), "https://hooks.slack.com/…");
        let url: url::Url = "http://127.0.0.1:8080/secret".parse().unwrap();
        assert_eq!(shown_url(&url), "http://127.0.0.1:8080/…");
    }

    #[test]
    fn titles_become_safe_headers() {
        assert_eq!(header_title("Token expired!"), "Token expired!");
        assert_eq!(
            header_title("Renewal failed — retry…\r\nX-Injected: 1"),
            "Renewal failed - retry... X-Injected: 1"
        );
        assert_eq!(header_title("Токен ✓"), "????? ?");
        assert_eq!(header_title("\n\t"), "tokenwatch");
        assert!(header_title(&"x".repeat(500)).len() <= TITLE_HEADER_CHARS + 3);
    }
}
