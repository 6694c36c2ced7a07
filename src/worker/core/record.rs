//! What the account's history gets from the core (see [`crate::history`]): the API calls,
//! counted as they are made and recorded per hour, and the records the worker and the
//! one-shot commands add.

use super::{Core, RenewOutcome};
use crate::brokers::{ApiError, Broker, BrokerClient, Headless, Profile, Renewing, Session};
use crate::config::Strategy;
use crate::history::{CallTally, Event, Recorder, Renewal};
use crate::secret::Secret;
use crate::token::expiry::to_ist;
use chrono::{DateTime, Timelike, Utc};
use std::sync::Arc;
use std::time::Duration;

/// The broker's client with the account's call counter: every request through it counts.
#[derive(Clone)]
pub(super) struct Counted {
    client: BrokerClient,
    calls: Arc<CallTally>,
}

impl Counted {
    pub(super) fn broker(&self) -> Broker {
        self.client.broker()
    }

    pub(super) async fn profile(&self, token: &Secret) -> Result<Profile, ApiError> {
        self.calls.count(self.client.profile(token)).await
    }

    pub(super) async fn renew(
        &self,
        how: Headless,
        with: Renewing<'_>,
    ) -> Result<Session, ApiError> {
        self.calls.count(self.client.renew(how, with)).await
    }
}

/// The start of the IST hour `t` falls in.
fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let ist = to_ist(t);
    ist.with_minute(0)
        .and_then(|h| h.with_second(0))
        .and_then(|h| h.with_nanosecond(0))
        .map_or(t, |h| h.with_timezone(&Utc))
}

impl Core {
    /// From now on, keep the account's history (`history.keep` long): the worker, `refresh`
    /// and `login` do; `status --validate` does not.
    pub fn keep_history(mut self, keep: Duration) -> Core {
        self.history = Some(Recorder::for_token(&self.account.token.path, keep));
        self.calls_since = self.clock.now();
        self
    }

    /// The client that counts its calls.
    pub(super) fn counted(&self) -> Counted {
        Counted {
            client: self.client.clone(),
            calls: self.calls.clone(),
        }
    }

    /// The call counter, for a request made without [`Counted`].
    pub(super) fn call_tally(&self) -> Arc<CallTally> {
        self.calls.clone()
    }

    /// Add `event` to the history, now (nothing when it is not kept).
    pub fn record(&mut self, event: Event) {
        let now = self.clock.now();
        if let Some(history) = self.history.as_mut() {
            history.record(now, event);
        }
    }

    /// A renewal or login that began at `since` ended: with a new token expiring at
    /// `Ok(when)`, or not (`Err(why)`). `how` it went, and whether a person had to act.
    pub fn record_renewal(
        &mut self,
        how: Strategy,
        person: bool,
        since: DateTime<Utc>,
        result: Result<DateTime<Utc>, &str>,
    ) {
        let took = (self.clock.now() - since).to_std().unwrap_or_default();
        let renewal = Renewal::ended(how.as_str(), person, took, result);
        self.record(Event::Renewal(renewal));
    }

    /// [`Core::record_renewal`] for a one-shot command's round; one that was not useful (no
    /// request made) is not a renewal.
    pub fn record_round(
        &mut self,
        how: Strategy,
        person: bool,
        since: DateTime<Utc>,
        outcome: &RenewOutcome,
    ) {
        match outcome {
            RenewOutcome::Renewed => {
                let exp = self.token.as_ref().map_or(since, |t| t.expires_at);
                self.record_renewal(how, person, since, Ok(exp));
            }
            RenewOutcome::Failed(why) => self.record_renewal(how, person, since, Err(why)),
            RenewOutcome::NotUseful(_) => {}
        }
    }

    /// Record the calls counted so far once the hour they began in has ended, or at once
    /// when `closing`.
    pub fn record_calls(&mut self, closing: bool) {
        let now = self.clock.now();
        let hour = hour_of(self.calls_since);
        if !closing && hour_of(now) == hour {
            return;
        }
        let (calls, rate_limited) = self.calls.take();
        self.calls_since = now;
        if calls > 0
            && let Some(history) = self.history.as_mut()
        {
            history.record(
                hour,
                Event::Calls {
                    hour,
                    calls,
                    rate_limited,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_ist_hour_starts_at_half_past_in_utc() {
        let t = Utc.with_ymd_and_hms(2026, 12, 5, 4, 29, 59).unwrap(); // 09:59:59 IST
        assert_eq!(
            hour_of(t),
            Utc.with_ymd_and_hms(2026, 12, 5, 3, 30, 0).unwrap()
        );
    }
}
