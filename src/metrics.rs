//! Prometheus metrics, encoded by `prometheus-client` in the OpenMetrics text
//! format. The values are read from the workers' latest snapshots at each scrape, so
//! nothing in a worker waits on metrics.
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `tokenwatch_token_expiry_timestamp_seconds` | account, broker | Unix time the token dies; 0 with no token |
//! | `tokenwatch_token_valid` | account, broker | 1 while the token can be used (healthy, warning, critical) |
//! | `tokenwatch_token_last_validation_timestamp_seconds` | account, broker | Unix time of the API's last answer about this token; 0 when never asked |
//! | `tokenwatch_refresh_attempts_total` | account, broker, result=`success`/`failure` | renewal rounds (any strategy, logins included) since start |
//! | `tokenwatch_token_file_writes_total` | account, broker, result=`success`/`failure`/`backup_failure` | token file writes since start |
//! | `tokenwatch_build_info` | version | 1 |

use crate::messages::Snapshot;
use crate::schedule::Verdict;
use crate::status::StatusReport;
use crate::token::Thresholds;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
    broker: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    account: String,
    broker: &'static str,
    result: &'static str,
}

/// The registry and its metric families.
pub struct Metrics {
    /// One scrape at a time: a counter is brought up to date by reading it and adding the
    /// difference, which two scrapes at once would both add.
    scraping: std::sync::Mutex<()>,
    registry: Registry,
    expiry: Family<AccountLabel, Gauge>,
    valid: Family<AccountLabel, Gauge>,
    last_validation: Family<AccountLabel, Gauge>,
    refresh_attempts: Family<ResultLabels, Counter>,
    file_writes: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// An empty registry with every family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            scraping: std::sync::Mutex::new(()),
            registry: Registry::default(),
            expiry: Family::default(),
            valid: Family::default(),
            last_validation: Family::default(),
            refresh_attempts: Family::default(),
            file_writes: Family::default(),
        };
        registry.register(
            "tokenwatch_token_expiry_timestamp_seconds",
            "When the stored token expires, as a Unix timestamp (0 with no token)",
            m.expiry.clone(),
        );
        registry.register(
            "tokenwatch_token_valid",
            "1 while the token can be used (healthy, warning or critical), else 0",
            m.valid.clone(),
        );
        registry.register(
            "tokenwatch_token_last_validation_timestamp_seconds",
            "When the Upstox API last answered a check of the token, as a Unix timestamp (0 if never)",
            m.last_validation.clone(),
        );
        // prometheus-client adds the `_total` suffix to counters.
        registry.register(
            "tokenwatch_refresh_attempts",
            "Renewal rounds since start (any strategy, logins included), by result",
            m.refresh_attempts.clone(),
        );
        registry.register(
            "tokenwatch_token_file_writes",
            "Token file writes since start, by result",
            m.file_writes.clone(),
        );
        // An info metric gets the `_info` suffix: tokenwatch_build_info{version} 1.
        registry.register(
            "tokenwatch_build",
            "The tokenwatch version",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        Metrics { registry, ..m }
    }

    /// Bring every series up to date with these snapshots at `now`, and encode them.
    pub fn render(
        &self,
        snapshots: &[Snapshot],
        now: DateTime<Utc>,
        thresholds: Thresholds,
    ) -> String {
        // A poisoned lock only means another scrape panicked; the counters are still sound.
        let _one_at_a_time = self
            .scraping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for snap in snapshots {
            self.update(snap, now, thresholds);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn update(&self, snap: &Snapshot, now: DateTime<Utc>, thresholds: Thresholds) {
        let account = AccountLabel {
            account: snap.account.clone(),
            broker: snap.broker.as_str(),
        };
        let report = StatusReport::from_snapshot(snap, now, thresholds);
        let expiry = snap.token.as_ref().map_or(0, |t| t.expires_at.timestamp());
        self.expiry.get_or_create(&account).set(expiry);
        self.valid
            .get_or_create(&account)
            .set(i64::from(report.valid));
        let validated = match snap.verdict() {
            Verdict::Valid(t) | Verdict::Invalid(t) => t.timestamp(),
            Verdict::Unknown => 0,
        };
        self.last_validation.get_or_create(&account).set(validated);
        let counters = [
            (&self.refresh_attempts, "success", snap.renewals.succeeded),
            (&self.refresh_attempts, "failure", snap.renewals.failed),
            (&self.file_writes, "success", snap.file_writes.ok),
            (&self.file_writes, "failure", snap.file_writes.failed),
            (
                &self.file_writes,
                "backup_failure",
                snap.file_writes.backup_failed,
            ),
        ];
        for (family, result, total) in counters {
            let labels = ResultLabels {
                account: snap.account.clone(),
                broker: snap.broker.as_str(),
                result,
            };
            let counter = family.get_or_create(&labels);
            // Counters only go up; the snapshot holds the running total.
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }
}
