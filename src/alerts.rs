//! Alerts: the state transitions a trader must hear about even when no dashboard is open,
//! sent to `notifications.webhook_url`, `notifications.command` and (cargo feature
//! `desktop`) the desktop. The worker raises them; [`Alerter`] delivers them on its own task,
//! so a slow or failing channel is logged and never holds up a worker.
//!
//! # Delivery
//!
//! [`Alerter::new`] reads `notifications:`; [`Alerter::spawn`] starts the delivery task and
//! returns an [`AlertSender`], which the workers clone. [`AlertSender::send`] never waits: it
//! puts the alert on a queue of [`QUEUE_CAPACITY`] and, when that is full (or alerts are
//! shut down), logs a warning and drops the alert. The task hands every alert to each
//! configured channel on a task of its own, so a slow webhook never delays the next alert or
//! another channel. At shutdown, [`AlertSender::close`] waits (bounded) for what is in
//! flight.
//!
//! No storm: an alert with the same account and [`AlertEvent`] as one delivered less than
//! [`DEDUPE_WINDOW`] earlier (measured on [`Alert::at`], the worker's clock) is dropped and
//! logged at debug level.
//!
//! A failing channel is logged as a warning and nothing else: alerts never stop a worker.
//! Alerts never hold a token; the text they carry is still treated as untrusted wherever it
//! goes into a header.
//!
//! # Webhook (`notifications.webhook_url`)
//!
//! A `POST` with a JSON body ([`Alert::payload`]):
//!
//! ```json
//! {"account":"default","level":"critical","title":"Token expired!",
//!  "message":"The token expired; press l to log in","state":"expired",
//!  "expires_at":"2026-11-27T03:30:00+05:30","event":"expired",
//!  "at":"2026-11-27T03:30:00+05:30",
//!  "text":"tokenwatch [default] Token expired!: The token expired; press l to log in"}
//! ```
//!
//! - `level`: `info`, `warning` or `critical`; `state`: the token's state (`healthy`,
//!   `warning`, `critical`, `expired`, `invalid`, `missing`); `event`: [`AlertEvent::as_str`];
//! - `expires_at` (or `null` when there is no token) and `at`: RFC 3339 in IST;
//! - `text` repeats the alert in one line, so that Slack and Mattermost incoming webhooks
//!   (which show `text`) work as they are.
//!
//! It also carries the headers `Title` (the title, ASCII only), `Priority` (`urgent` for
//! critical, `high` for warning, `default` for info) and `Tags` (`tokenwatch,<event>`), so an
//! ntfy topic URL shows a proper notification.
//!
//! Each request has a [`WEBHOOK_TIMEOUT`]. At most [`WEBHOOK_ATTEMPTS`] attempts in all:
//! connection errors, time-outs, 5xx and 429 are retried after 1 s, then 2 s (a
//! `Retry-After` in seconds is honoured, up to [`MAX_RETRY_AFTER`]); any other non-2xx
//! answer gives up at once. Logs show the URL only as `scheme://host/…` (Slack and Discord
//! put their secret in the path) and at most ~200 characters of an answer's body.
//!
//! # Command (`notifications.command`)
//!
//! The argv runs once per alert, with no stdin, in its own process group, killed with that
//! whole group after [`ALERT_COMMAND_LIMIT`]. It gets tokenwatch's environment without the
//! client secret and API key (as `token.on_change`), plus ([`Alert::env_vars`]):
//!
//! | variable | value |
//! |---|---|
//! | `TOKENWATCH_ALERT_ACCOUNT` | the account |
//! | `TOKENWATCH_ALERT_EVENT` | [`AlertEvent::as_str`], e.g. `expired` |
//! | `TOKENWATCH_ALERT_LEVEL` | `info`, `warning` or `critical` |
//! | `TOKENWATCH_ALERT_TITLE` | the title |
//! | `TOKENWATCH_ALERT_MESSAGE` | the message |
//! | `TOKENWATCH_ALERT_STATE` | the token's state, e.g. `expired` |
//! | `TOKENWATCH_ALERT_EXPIRES_AT` | the expiry (RFC 3339, IST); empty when there is no token |
//! | `TOKENWATCH_ALERT_AT` | when the alert was raised (RFC 3339, IST) |
//!
//! A non-zero exit, a signal, the time limit or a command that cannot start is logged as a
//! warning with a short excerpt of its stderr.
//!
//! # Desktop (`notifications.desktop`)
//!
//! With the cargo feature `desktop`, a desktop notification (D-Bus on Linux): critical alerts
//! stay until dismissed, others go after `notifications.dismiss_after`. Without the feature,
//! `desktop: true` is logged once as a warning and ignored.

use crate::config::NotificationsConfig;
use crate::messages::Level;
pub use crate::messages::{Alert, AlertEvent};
use crate::process::{self, Run};
use crate::timefmt::human;
use crate::timefmt::ist_rfc3339;
use backon::Retryable;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// The time limit of one `notifications.command` run.
pub const ALERT_COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// An alert with the same account and event as one delivered less than this earlier is
/// dropped.
pub const DEDUPE_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// How many alerts may wait for the delivery task before [`AlertSender::send`] drops them.
pub const QUEUE_CAPACITY: usize = 64;

/// The time limit of one webhook request (connecting, sending and reading the answer).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Webhook attempts per alert, the first one included.
pub const WEBHOOK_ATTEMPTS: u32 = 3;

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The wait for in-flight deliveries when every [`AlertSender`] is dropped without
/// [`AlertSender::close`].
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The first webhook retry's delay; each further one doubles it.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The most of a webhook answer's body read for the log, and the most shown.
const BODY_READ_LIMIT: usize = 1024;
const BODY_SHOWN_CHARS: usize = 200;

/// The longest `Title` header sent.
const TITLE_HEADER_CHARS: usize = 200;

/// The name used for a level in payloads and `TOKENWATCH_ALERT_LEVEL`.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Critical => "critical",
    }
}

/// The webhook body (see the module docs).
#[derive(Serialize)]
struct Payload<'a> {
    account: &'a str,
    level: &'static str,
    title: &'a str,
    message: &'a str,
    state: &'static str,
    expires_at: Option<String>,
    event: &'static str,
    at: String,
    text: String,
}

impl Alert {
    /// The one-line form: `tokenwatch [account] Title: message`.
    pub fn text(&self) -> String {
        format!(
            "tokenwatch [{}] {}: {}",
            self.account, self.title, self.message
        )
    }

    /// The JSON body POSTed to `notifications.webhook_url` (see the module docs).
    pub fn payload(&self) -> serde_json::Value {
        let payload = Payload {
            account: &self.account,
            level: level_name(self.level),
            title: &self.title,
            message: &self.message,
            state: self.state.as_str(),
            expires_at: self.expires_at.map(ist_rfc3339),
            event: self.event.as_str(),
            at: ist_rfc3339(self.at),
            text: self.text(),
        };
        serde_json::to_value(payload).unwrap_or(serde_json::Value::Null)
    }

    /// The `TOKENWATCH_ALERT_*` variables `notifications.command` gets (see the module docs).
    pub fn env_vars(&self) -> Vec<(String, String)> {
        [
            ("TOKENWATCH_ALERT_ACCOUNT", self.account.clone()),
            ("TOKENWATCH_ALERT_EVENT", self.event.as_str().to_string()),
            ("TOKENWATCH_ALERT_LEVEL", level_name(self.level).to_string()),
            ("TOKENWATCH_ALERT_TITLE", self.title.clone()),
            ("TOKENWATCH_ALERT_MESSAGE", self.message.clone()),
            ("TOKENWATCH_ALERT_STATE", self.state.as_str().to_string()),
            (
                "TOKENWATCH_ALERT_EXPIRES_AT",
                self.expires_at.map(ist_rfc3339).unwrap_or_default(),
            ),
            ("TOKENWATCH_ALERT_AT", ist_rfc3339(self.at)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The configured webhook: one client (with [`WEBHOOK_TIMEOUT`]) for every alert.
#[derive(Clone)]
struct Webhook {
    client: reqwest::Client,
    url: url::Url,
}

/// The alert channels of `notifications:` and how to deliver to them. Build it with
/// [`Alerter::new`], adjust it with the `with_*` methods, start it with [`Alerter::spawn`].
#[derive(Clone)]
pub struct Alerter {
    webhook: Option<Webhook>,
    command: Vec<String>,
    /// `Some(notifications.dismiss_after)` when desktop notifications are on.
    #[cfg(feature = "desktop")]
    desktop: Option<Duration>,
    retry_delay: Duration,
    command_limit: Duration,
    dedupe_window: chrono::Duration,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the webhook's full URL: it may hold a secret.
        f.debug_struct("Alerter")
            .field("webhook", &self.webhook.as_ref().map(|w| shown_url(&w.url)))
            .field("command", &self.command.first())
            .field("desktop", &self.desktop_on())
            .field("retry_delay", &self.retry_delay)
            .field("command_limit", &self.command_limit)
            .field("dedupe_window", &self.dedupe_window)
            .finish()
    }
}

impl Alerter {
    /// The channels `notifications:` configures. Problems (an HTTP client that cannot be
    /// set up, `desktop: true` without the cargo feature `desktop`) are logged as warnings
    /// and leave that channel off; this never fails.
    pub fn new(config: &NotificationsConfig) -> Alerter {
        let webhook = config.webhook_url.as_ref().and_then(|url| {
            match reqwest::Client::builder()
                .timeout(WEBHOOK_TIMEOUT)
                .user_agent(concat!("tokenwatch/", env!("CARGO_PKG_VERSION")))
                .build()
            {
                Ok(client) => Some(Webhook {
                    client,
                    url: url.clone(),
                }),
                Err(e) => {
                    warn!(
                        "Cannot set up HTTP for the alert webhook {}: {}; webhook alerts are off",
                        shown_url(url),
                        describe_http_error(e)
                    );
                    None
                }
            }
        });
        #[cfg(not(feature = "desktop"))]
        if config.desktop {
            warn!(
                "notifications.desktop needs tokenwatch built with `--features desktop`; \
                 desktop alerts are off"
            );
        }
        Alerter {
            webhook,
            command: config.command.clone(),
            #[cfg(feature = "desktop")]
            desktop: config.desktop.then_some(config.dismiss_after),
            retry_delay: DEFAULT_RETRY_DELAY,
            command_limit: ALERT_COMMAND_LIMIT,
            dedupe_window: DEDUPE_WINDOW,
        }
    }

    /// The first webhook retry's delay (default 1 s); the next one is twice as long.
    pub fn with_retry_delay(mut self, delay: Duration) -> Alerter {
        self.retry_delay = delay;
        self
    }

    /// The command's time limit (default [`ALERT_COMMAND_LIMIT`]).
    pub fn with_command_limit(mut self, limit: Duration) -> Alerter {
        self.command_limit = limit;
        self
    }

    /// The window in which a repeated (account, event) is dropped (default
    /// [`DEDUPE_WINDOW`]); zero or less turns the suppression off.
    pub fn with_dedupe_window(mut self, window: chrono::Duration) -> Alerter {
        self.dedupe_window = window;
        self
    }

    /// True when no channel is configured (nothing would ever be delivered).
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.command.is_empty() && !self.desktop_on()
    }

    #[cfg(feature = "desktop")]
    fn desktop_on(&self) -> bool {
        self.desktop.is_some()
    }

    #[cfg(not(feature = "desktop"))]
    fn desktop_on(&self) -> bool {
        false
    }

    /// Start the delivery task and return the sender the workers use. Call it inside a
    /// tokio runtime; outside one (or when [`Alerter::is_empty`]) it logs why when it
    /// matters and returns [`AlertSender::disabled`].
    pub fn spawn(self) -> AlertSender {
        if self.is_empty() {
            return AlertSender::disabled();
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!("Alerts cannot start outside the async runtime; alerts are off");
            return AlertSender::disabled();
        };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = runtime.spawn(self.deliver_all(rx, stop_rx));
        AlertSender {
            tx: Some(tx),
            shared: Some(Arc::new(Mutex::new(Shutdown {
                stop: Some(stop_tx),
                task: Some(task),
            }))),
        }
    }

    /// The delivery task: dispatch every alert until told to stop (or every sender is
    /// gone), then dispatch what is still queued and wait, bounded, for the deliveries.
    /// True when every delivery finished.
    async fn deliver_all(
        self,
        mut rx: mpsc::Receiver<Alert>,
        mut stop: oneshot::Receiver<Duration>,
    ) -> bool {
        let mut delivered: HashMap<(String, AlertEvent), DateTime<Utc>> = HashMap::new();
        let mut deliveries = JoinSet::new();
        let grace = loop {
            tokio::select! {
                alert = rx.recv() => match alert {
                    Some(alert) => self.dispatch(alert, &mut delivered, &mut deliveries),
                    None => break CLOSE_GRACE,
                },
                Some(done) = deliveries.join_next(), if !deliveries.is_empty() => {
                    report_join(done);
                }
                grace = &mut stop => break grace.unwrap_or(CLOSE_GRACE),
            }
        };
        rx.close();
        while let Some(alert) = rx.recv().await {
            self.dispatch(alert, &mut delivered, &mut deliveries);
        }
        let finished = tokio::time::timeout(grace, async {
            while let Some(done) = deliveries.join_next().await {
                report_join(done);
            }
        })
        .await
        .is_ok();
        if !finished {
            warn!(
                "{} alert deliveries still running after {}; they were abandoned",
                deliveries.len(),
                human(grace)
            );
            deliveries.abort_all();
        }
        finished
    }

    /// Start delivering one alert to every channel, unless the same (account, event) was
    /// delivered within the dedupe window.
    fn dispatch(
        &self,
        alert: Alert,
        delivered: &mut HashMap<(String, AlertEvent), DateTime<Utc>>,
        deliveries: &mut JoinSet<()>,
    ) {
        let key = (alert.account.clone(), alert.event);
        if let Some(previous) = delivered.get(&key)
            && (alert.at - *previous).abs() < self.dedupe_window
        {
            debug!(
                account = %alert.account,
                "Alert '{}' ({}) not sent again: the same alert went out at {}",
                alert.event.as_str(),
                alert.title,
                ist_rfc3339(*previous)
            );
            return;
        }
        delivered.insert(key, alert.at);
        let alert = Arc::new(alert);
        if let Some(webhook) = &self.webhook {
            deliveries.spawn(post_webhook(
                webhook.clone(),
                alert.clone(),
                self.retry_delay,
            ));
        }
        if !self.command.is_empty() {
            deliveries.spawn(run_command(
                self.command.clone(),
                alert.clone(),
                self.command_limit,
            ));
        }
        #[cfg(feature = "desktop")]
        if let Some(dismiss_after) = self.desktop {
            deliveries.spawn(show_desktop(alert.clone(), dismiss_after));
        }
    }
}

/// Log a delivery task that panicked (it never should) or was aborted.
fn report_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        warn!("An alert delivery stopped unexpectedly");
    }
}

/// What [`AlertSender::close`] needs: the way to tell the task to stop, and the task.
struct Shutdown {
    stop: Option<oneshot::Sender<Duration>>,
    task: Option<tokio::task::JoinHandle<bool>>,
}

/// Hands alerts to the delivery task started by [`Alerter::spawn`]. Cheap to clone; every
/// worker gets one.
#[derive(Clone)]
pub struct AlertSender {
    tx: Option<mpsc::Sender<Alert>>,
    shared: Option<Arc<Mutex<Shutdown>>>,
}

impl std::fmt::Debug for AlertSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSender")
            .field("enabled", &self.is_enabled())
            .finish()
    }
}

impl AlertSender {
    /// A sender that drops every alert: for when no channel is configured.
    pub fn disabled() -> AlertSender {
        AlertSender {
            tx: None,
            shared: None,
        }
    }

    /// False for [`AlertSender::disabled`].
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queue an alert for delivery. Never waits: when the queue is full or alerts are shut
    /// down, logs a warning and drops the alert.
    pub fn send(&self, alert: Alert) {
        let Some(tx) = &self.tx else {
            debug!(account = %alert.account, "No alert channel configured; alert '{}' not sent", alert.event.as_str());
            return;
        };
        match tx.try_send(alert) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(alert)) => warn!(
                account = %alert.account,
                "Too many alerts waiting; dropped the '{}' alert ({})",
                alert.event.as_str(),
                alert.title
            ),
            Err(mpsc::error::TrySendError::Closed(alert)) => warn!(
                account = %alert.account,
                "Alerts are shut down; dropped the '{}' alert ({})",
                alert.event.as_str(),
                alert.title
            ),
        }
    }

    /// Shut alerts down: deliver what is already queued and wait up to `grace` for the
    /// deliveries in flight; what is still running then is abandoned (a command still runs
    /// to its time limit). Alerts sent afterwards, through any clone, are dropped with a
    /// warning. True when every delivery finished (and for a disabled sender, or when
    /// another clone already closed).
    pub async fn close(mut self, grace: Duration) -> bool {
        self.tx = None;
        let Some(shared) = self.shared.take() else {
            return true;
        };
        let (stop, task) = {
            let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
            (guard.stop.take(), guard.task.take())
        };
        if let Some(stop) = stop {
            let _ = stop.send(grace);
        }
        let Some(task) = task else {
            return true;
        };
        // The task itself bounds its wait by `grace`; the margin covers its bookkeeping.
        match tokio::time::timeout(grace + Duration::from_secs(1), task).await {
            Ok(Ok(finished)) => finished,
            Ok(Err(_)) | Err(_) => false,
        }
    }
}

/// The webhook URL as logs show it: `scheme://host[:port]/…`, never the path, query or
/// credentials (Slack and Discord put the secret in the path).
fn shown_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// A reqwest error without its URL, with its causes: "error sending request: client error
/// (Connect): tcp connect error: Connection refused (os error 111)".
fn describe_http_error(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text, 300)
}

/// Control characters turned into spaces, runs of spaces collapsed, at most `max` chars.
fn one_line(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let joined = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        joined
    } else {
        let mut cut: String = joined.chars().take(max).collect();
        cut.push('…');
        cut
    }
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
    /// The answer's `Retry-After`, in seconds, cut to [`MAX_RETRY_AFTER`].
    retry_after: Option<Duration>,
    /// A readable sentence, without the URL.
    why: String,
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
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
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

/// The start of an answer's body, one line, at most [`BODY_SHOWN_CHARS`] characters.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(BODY_READ_LIMIT);
    one_line(&String::from_utf8_lossy(&bytes), BODY_SHOWN_CHARS)
}

/// Deliver one alert to the webhook, with bounded retries; failures are logged.
async fn post_webhook(webhook: Webhook, alert: Arc<Alert>, retry_delay: Duration) {
    let shown = shown_url(&webhook.url);
    let headers = webhook_headers(&alert);
    let body = alert.payload();
    let attempt = std::sync::atomic::AtomicU32::new(0);
    let delays = std::iter::successors(Some(retry_delay), |d| Some(d.saturating_mul(2)))
        .take(WEBHOOK_ATTEMPTS.saturating_sub(1) as usize);
    let result = (|| {
        attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        post_once(&webhook, &headers, &body)
    })
    .retry(delays)
    .sleep(tokio::time::sleep)
    .when(|e: &WebhookFailure| e.transient)
    .adjust(|e: &WebhookFailure, d| d.map(|d| e.retry_after.unwrap_or(d)))
    .notify(|e: &WebhookFailure, d: Duration| {
        warn!(
            account = %alert.account,
            "Alert webhook {shown}: attempt {}/{WEBHOOK_ATTEMPTS} failed: {}; retrying in {}",
            attempt.load(std::sync::atomic::Ordering::Relaxed),
            e.why,
            human(d)
        );
    })
    .await;
    let attempts = attempt.load(std::sync::atomic::Ordering::Relaxed);
    match result {
        Ok(()) => debug!(
            account = %alert.account,
            "Alert '{}' sent to the webhook {shown}",
            alert.event.as_str()
        ),
        Err(e) if e.transient => warn!(
            account = %alert.account,
            "Alert webhook {shown}: attempt {attempts}/{WEBHOOK_ATTEMPTS} failed: {}; \
             the '{}' alert was not delivered",
            e.why,
            alert.event.as_str()
        ),
        Err(e) => warn!(
            account = %alert.account,
            "Alert webhook {shown} refused the '{}' alert: {}; not retried",
            alert.event.as_str(),
            e.why
        ),
    }
}

/// Run `notifications.command` for one alert; failures are logged.
async fn run_command(argv: Vec<String>, alert: Arc<Alert>, limit: Duration) {
    let Some((program, args)) = argv
        .split_first()
        .filter(|(p, _)| !p.trim().is_empty())
        .map(|(p, a)| (p.clone(), a.to_vec()))
    else {
        warn!(account = %alert.account, "notifications.command has an empty program name; it was not run");
        return;
    };
    let envs = alert.env_vars();
    let hidden = crate::process::hidden_from_hooks();
    let prog = program.clone();
    let run = tokio::task::spawn_blocking(move || {
        let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
        process::run(&prog, &args, &envs, &hidden, limit)
    })
    .await
    .unwrap_or_else(|e| Run::NotStarted(format!("it stopped unexpectedly: {e}")));
    let event = alert.event.as_str();
    match run {
        Run::Exited(out) => {
            use std::os::unix::process::ExitStatusExt;
            let stderr = process::stderr_excerpt(&out.stderr);
            match (out.status.code(), out.status.signal()) {
                (Some(0), _) => debug!(
                    account = %alert.account,
                    "notifications.command ({program}) ran for the '{event}' alert"
                ),
                (Some(code), _) => warn!(
                    account = %alert.account,
                    "notifications.command ({program}) exited with code {code} for the '{event}' alert{stderr}"
                ),
                (None, Some(signal)) => warn!(
                    account = %alert.account,
                    "notifications.command ({program}) was ended by signal {signal} for the '{event}' alert{stderr}"
                ),
                (None, None) => warn!(
                    account = %alert.account,
                    "notifications.command ({program}) ended without an exit code for the '{event}' alert{stderr}"
                ),
            }
        }
        Run::TimedOut => warn!(
            account = %alert.account,
            "notifications.command ({program}) did not finish within {} for the '{event}' alert and was stopped",
            human(limit)
        ),
        Run::NotStarted(why) => warn!(
            account = %alert.account,
            "Cannot run notifications.command ({program}) for the '{event}' alert: {why}"
        ),
    }
}

/// Show one alert on the desktop; failures are logged.
#[cfg(feature = "desktop")]
async fn show_desktop(alert: Arc<Alert>, dismiss_after: Duration) {
    /// A notification server that does not answer must not hold a delivery forever.
    const DESKTOP_LIMIT: Duration = Duration::from_secs(10);
    let shown = alert.clone();
    let show = tokio::task::spawn_blocking(move || {
        use notify_rust::{Notification, Timeout};
        let mut n = Notification::new();
        n.appname("tokenwatch")
            .summary(&shown.title)
            .body(&shown.message);
        #[cfg(all(unix, not(target_os = "macos")))]
        n.urgency(match shown.level {
            Level::Critical => notify_rust::Urgency::Critical,
            Level::Warning | Level::Info => notify_rust::Urgency::Normal,
        });
        n.timeout(match shown.level {
            Level::Critical => Timeout::Never,
            Level::Warning | Level::Info => {
                Timeout::Milliseconds(u32::try_from(dismiss_after.as_millis()).unwrap_or(u32::MAX))
            }
        });
        n.show().map(|_| ()).map_err(|e| e.to_string())
    });
    match tokio::time::timeout(DESKTOP_LIMIT, show).await {
        Ok(Ok(Ok(()))) => {
            debug!(account = %alert.account, "Alert '{}' shown on the desktop", alert.event.as_str())
        }
        Ok(Ok(Err(why))) => warn!(
            account = %alert.account,
            "Cannot show the '{}' alert on the desktop: {}",
            alert.event.as_str(),
            one_line(&why, 300)
        ),
        Ok(Err(_)) => {
            warn!(account = %alert.account, "Showing the '{}' alert on the desktop stopped unexpectedly", alert.event.as_str())
        }
        Err(_) => warn!(
            account = %alert.account,
            "The desktop did not show the '{}' alert within {}",
            alert.event.as_str(),
            human(DESKTOP_LIMIT)
        ),
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

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\n\n b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
