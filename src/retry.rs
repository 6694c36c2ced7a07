//! The one retry policy for every outbound call that may be repeated (the token check, the
//! token request, `renew.command`'s verification, alert webhooks): a bounded number of
//! attempts while the failure is transient, with doubling backoff and ±25% jitter; when the
//! server sends a `Retry-After` of up to [`MAX_RETRY_AFTER`], that is the wait instead. A
//! longer `Retry-After` ends the round at once: waiting it out would hold a one-shot command for minutes, and the
//! caller reports the service as unreachable instead. (The login's code exchange is never
//! repeated: a code is single-use.)

use crate::timefmt::human;
use backon::Retryable;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tracing::warn;

/// The longest `Retry-After` a round waits out. A longer one ends the round.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An error that may be worth another attempt.
pub trait Transient: std::fmt::Display {
    /// True when asking again later may succeed (network, 5xx, rate limit).
    fn is_transient(&self) -> bool;
    /// How long the server asked to wait, when it said.
    fn retry_after(&self) -> Option<Duration>;
}

impl Transient for crate::brokers::upstox::client::ApiError {
    fn is_transient(&self) -> bool {
        crate::brokers::upstox::client::ApiError::is_transient(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        crate::brokers::upstox::client::ApiError::retry_after(self)
    }
}

/// How many attempts a round makes and how long it waits between them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in one round, the first included (at least 1).
    pub attempts: u32,
    /// The first wait.
    pub initial: Duration,
    /// No wait is longer than this.
    pub max: Duration,
    /// ±25% jitter on every wait (off only where a test needs exact times).
    pub jitter: bool,
}

impl RetryPolicy {
    /// `monitor.max_retries`, `monitor.backoff_initial`, `monitor.backoff_max`.
    pub fn from_monitor(m: &crate::config::MonitorConfig) -> RetryPolicy {
        RetryPolicy {
            attempts: m.max_retries,
            initial: m.backoff_initial,
            max: m.backoff_max,
            jitter: true,
        }
    }

    /// The waits of one round: `attempts - 1` of them.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        let jitter = self.jitter;
        backoff_delays(self.attempts, self.initial, self.max, move || {
            if jitter { fastrand::f64() } else { 0.5 }
        })
    }
}

/// The retry delays of one round: `max_retries - 1` delays, starting at `initial`, doubled
/// each retry, each with ±25% jitter, never above `max`. `jitter` yields numbers in [0, 1).
pub fn backoff_delays(
    max_retries: u32,
    initial: Duration,
    max: Duration,
    mut jitter: impl FnMut() -> f64 + Send + Sync + Unpin,
) -> impl Iterator<Item = Duration> + Send + Sync + Unpin {
    let mut base = initial;
    (1..max_retries).map(move |_| {
        let factor = 0.75 + 0.5 * jitter().clamp(0.0, 1.0);
        let d = base.mul_f64(factor).min(max);
        base = base.saturating_mul(2).min(max);
        d
    })
}

/// The wait before the next attempt after `e`, given the backoff's `next`: the server's
/// `Retry-After` when it sent one within [`MAX_RETRY_AFTER`] (it knows when it can answer),
/// else the backoff's; `None` (give up now) when it asked for longer, or when the backoff
/// has no attempts left.
pub fn next_wait<E: Transient>(e: &E, next: Option<Duration>) -> Option<Duration> {
    match (next, e.retry_after()) {
        (_, Some(ra)) if ra > MAX_RETRY_AFTER => None,
        (Some(_), Some(ra)) => Some(ra),
        (d, _) => d,
    }
}

/// Run `call` under `policy`: again while it fails transiently and attempts are left.
/// Each failed attempt that is retried is logged as "`what` attempt n/max failed: …;
/// retrying in …", with the account named.
pub async fn retry<T, E, F, Fut>(
    policy: RetryPolicy,
    account: &str,
    what: &str,
    call: F,
) -> Result<T, E>
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_counted(policy, account, what, call).await.0
}

/// [`retry`], also saying how many attempts were made.
pub async fn retry_counted<T, E, F, Fut>(
    policy: RetryPolicy,
    account: &str,
    what: &str,
    call: F,
) -> (Result<T, E>, u32)
where
    E: Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let max = policy.attempts.max(1);
    let attempt = AtomicU32::new(0);
    let mut call = call;
    let result = (|| {
        attempt.fetch_add(1, Ordering::Relaxed);
        call()
    })
    .retry(policy.delays())
    .sleep(tokio::time::sleep)
    .when(|e: &E| e.is_transient())
    .adjust(next_wait)
    .notify(|e: &E, d: Duration| {
        warn!(
            account = %account,
            "{what} attempt {}/{max} failed: {e}; retrying in {}",
            attempt.load(Ordering::Relaxed),
            human(d)
        );
    })
    .await;
    (result, attempt.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[derive(Debug)]
    struct E(Option<Duration>, bool);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "e")
        }
    }
    impl Transient for E {
        fn is_transient(&self) -> bool {
            self.1
        }
        fn retry_after(&self) -> Option<Duration> {
            self.0
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap_and_a_longer_one_ends_the_round() {
        let s = Std::from_secs;
        assert_eq!(next_wait(&E(None, true), Some(s(2))), Some(s(2)));
        assert_eq!(next_wait(&E(Some(s(30)), true), Some(s(2))), Some(s(30)));
        assert_eq!(next_wait(&E(Some(s(1)), true), Some(s(2))), Some(s(1)));
        assert_eq!(next_wait(&E(Some(s(0)), true), Some(s(20))), Some(s(0)));
        assert_eq!(
            next_wait(&E(Some(MAX_RETRY_AFTER), true), Some(s(2))),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(next_wait(&E(Some(s(999_999)), true), Some(s(2))), None);
        assert_eq!(next_wait(&E(Some(s(5)), true), None), None);
    }

    /// Three attempts of a call that always fails with `e`: how many were made, and how
    /// long the round took (paused clock).
    async fn round_of(e: fn() -> E) -> (u32, Duration) {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let policy = RetryPolicy {
            attempts: 3,
            initial: Std::from_secs(2),
            max: Std::from_secs(60),
            jitter: false,
        };
        let r: Result<(), E> = retry(policy, "a", "Check", || {
            calls.fetch_add(1, Ordering::Relaxed);
            async move { Err(e()) }
        })
        .await;
        assert!(r.is_err());
        (calls.load(Ordering::Relaxed), start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_stops_at_once_on_a_retry_after_beyond_the_cap() {
        let (calls, took) = round_of(|| E(Some(Std::from_secs(999_999)), true)).await;
        assert_eq!(calls, 1);
        assert_eq!(took, Std::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_backoff_and_others_are_not() {
        assert_eq!(round_of(|| E(None, true)).await, (3, Std::from_secs(2 + 4)));
        assert_eq!(round_of(|| E(None, false)).await, (1, Std::ZERO));
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_a_cap() {
        let d: Vec<_> = backoff_delays(5, Std::from_secs(2), Std::from_secs(10), || 0.5).collect();
        assert_eq!(
            d,
            [
                Std::from_secs(2),
                Std::from_secs(4),
                Std::from_secs(8),
                Std::from_secs(10)
            ]
        );
        let lo: Vec<_> =
            backoff_delays(3, Std::from_secs(2), Std::from_secs(300), || 0.0).collect();
        assert_eq!(lo, [Std::from_millis(1500), Std::from_secs(3)]);
        let hi: Vec<_> =
            backoff_delays(3, Std::from_secs(2), Std::from_secs(300), || 0.999_999).collect();
        assert!(
            hi[0] > Std::from_millis(2499) && hi[0] <= Std::from_millis(2500),
            "{hi:?}"
        );
        assert_eq!(
            backoff_delays(1, Std::from_secs(2), Std::from_secs(9), || 0.5).count(),
            0
        );
    }
}
