//! Alerts: the state transitions a trader must hear about even when no dashboard is open,
//! sent to `notifications.webhook_url`, `notifications.command` and (cargo feature
//! `desktop`) the desktop. The worker raises them; [`Alerter`] delivers them on its own task,
//! so a slow or failing channel is logged and never holds up a worker. Here: the alert, the
//! queue and the dispatch; each channel's delivery is a module of its own (`webhook`,
//! `command`, `desktop`).
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
//!  "message":"log in: tokenwatch login","state":"expired",
//!  "expires_at":"2026-11-27T03:30:00+05:30","event":"expired",
//!  "at":"2026-11-27T03:30:00+05:30",
//!  "text":"tokenwatch [default] Token expired!: log in: tokenwatch login"}
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
//! connection errors, time-outs, 5xx and 429 are retried after about 1 s, then 2 s (±25%;
//! a `Retry-After` in seconds up to [`MAX_RETRY_AFTER`] is the wait instead, a longer one
//! ends the delivery), by the one retry policy of [`crate::retry`]; any other non-2xx answer
//! (a redirect included) gives up at once. Logs show the URL only as `scheme://host/…` (Slack and Discord
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

mod command;
#[cfg(feature = "desktop")]
mod desktop;
pub mod email;
mod webhook;

use crate::config::NotificationsConfig;
use crate::messages::Level;
pub use crate::messages::{Alert, AlertEvent};
use crate::timefmt::{human, ist_rfc3339};
use chrono::{DateTime, Utc};
use command::run_command;
#[cfg(feature = "desktop")]
use desktop::show_desktop;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, warn};
use webhook::{Webhook, post_webhook, shown_url};

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

/// The longest `Retry-After` honoured; a longer one ends the delivery (the one policy of
/// [`crate::retry`]).
pub use crate::retry::MAX_RETRY_AFTER;

/// The wait for in-flight deliveries when every [`AlertSender`] is dropped without
/// [`AlertSender::close`].
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The first webhook retry's delay; each further one doubles it.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

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

/// The alert channels of `notifications:` and how to deliver to them. Build it with
/// [`Alerter::new`], adjust it with the `with_*` methods, start it with [`Alerter::spawn`].
#[derive(Clone)]
pub struct Alerter {
    webhook: Option<Webhook>,
    email: Option<email::Email>,
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
            .field("email", &self.email.as_ref().map(|e| e.shown.clone()))
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
        let webhook = config
            .webhook_url
            .as_ref()
            .and_then(|url| match crate::http::shared() {
                Ok(client) => Some(Webhook {
                    client,
                    url: url.clone(),
                }),
                Err(e) => {
                    warn!(
                        "Cannot set up HTTP for the alert webhook {}: {e}; webhook alerts are off",
                        shown_url(url),
                    );
                    None
                }
            });
        let email = config.email.as_ref().and_then(|c| match email::channel(c) {
            Ok(e) => Some(e),
            Err(why) => {
                warn!("{why}; e-mail alerts are off");
                None
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
            email,
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
        self.webhook.is_none()
            && self.email.is_none()
            && self.command.is_empty()
            && !self.desktop_on()
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
            let (webhook, alert, delay) = (webhook.clone(), alert.clone(), self.retry_delay);
            deliveries.spawn(async move {
                let _ = post_webhook(webhook, alert, delay).await;
            });
        }
        if let Some(email) = &self.email {
            let (email, alert, delay) = (email.clone(), alert.clone(), self.retry_delay);
            deliveries.spawn(async move {
                let _ = email::send_email(email, alert, delay).await;
            });
        }
        if !self.command.is_empty() {
            let (argv, alert, limit) = (self.command.clone(), alert.clone(), self.command_limit);
            deliveries.spawn(async move {
                let _ = run_command(argv, alert, limit).await;
            });
        }
        #[cfg(feature = "desktop")]
        if let Some(dismiss_after) = self.desktop {
            deliveries.spawn(show_desktop(alert.clone(), dismiss_after));
        }
    }
}

impl Alerter {
    /// Deliver `alert` to every configured channel now, one after the other, and say how
    /// each went: `(channel, result)` (for `tokenwatch alerts test`). No dedupe.
    pub async fn test(&self, alert: Alert) -> Vec<(String, Result<(), String>)> {
        let alert = Arc::new(alert);
        let mut results = Vec::new();
        if let Some(webhook) = &self.webhook {
            let r = post_webhook(webhook.clone(), alert.clone(), self.retry_delay).await;
            results.push((format!("webhook {}", shown_url(&webhook.url)), r));
        }
        if let Some(email) = &self.email {
            let r = email::send_email(email.clone(), alert.clone(), self.retry_delay).await;
            results.push((format!("e-mail via {}", email.shown), r));
        }
        if let Some(program) = self.command.first() {
            let r = run_command(self.command.clone(), alert.clone(), self.command_limit).await;
            results.push((format!("command {program}"), r));
        }
        #[cfg(feature = "desktop")]
        if let Some(dismiss_after) = self.desktop {
            show_desktop(alert.clone(), dismiss_after).await;
            results.push(("desktop".to_string(), Ok(())));
        }
        results
    }
}

/// An error with its causes, each said once: "error sending request: client error (Connect):
/// tcp connect error: Connection refused (os error 111)".
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("a\n\n b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
