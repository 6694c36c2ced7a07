//! What the worker adds to the account's history (see [`crate::history`]): its start and
//! stop, every state it enters, every renewal that ends (how, how long, whether a person had
//! to act), every alert it raises, and the API calls per hour.

use super::Worker;
use crate::config::Strategy;
use crate::history::Event;
use crate::messages::{AlertEvent, Level};
use crate::token::TokenState;
use chrono::{DateTime, Utc};

/// A renewal under way: since when, how, and whether it needs a person.
#[derive(Debug, Clone, Copy)]
pub(super) struct Underway {
    at: DateTime<Utc>,
    how: Strategy,
    person: bool,
}

impl Worker {
    /// A renewal or login starts now: `how` it goes, and whether a person acts (a login in
    /// the browser, an approval on the phone, a key pressed).
    pub(super) fn renewal_begins(&mut self, how: Strategy, person: bool) {
        self.underway = Some(Underway {
            at: self.core.clock.now(),
            how,
            person,
        });
    }

    /// The renewal under way ended: with a new token expiring at `Ok(when)`, or not.
    pub(super) fn record_renewal(&mut self, result: Result<DateTime<Utc>, &str>) {
        let underway = self.underway.take().unwrap_or(Underway {
            at: self.core.clock.now(),
            how: self.core.policy.strategy,
            person: false,
        });
        self.core
            .record_renewal(underway.how, underway.person, underway.at, result);
    }

    pub(super) fn record_state(&mut self, state: TokenState, from: Option<TokenState>) {
        self.state_day = Some(crate::history::ist_day(self.core.clock.now()));
        let expires_at = self.core.token.as_ref().map(|t| t.expires_at);
        self.core.record(Event::State {
            state,
            from,
            expires_at,
        });
    }

    /// A new IST day began with the state unchanged: record it again, so each day's file
    /// says what the day started in (a quiet week is not read as no record).
    pub(super) fn carry_state_into_the_day(&mut self) {
        let today = crate::history::ist_day(self.core.clock.now());
        if let Some(state) = self.last_state
            && self.state_day.is_some_and(|day| day != today)
        {
            self.record_state(state, None);
        }
    }

    pub(super) fn record_alert(&mut self, event: AlertEvent, level: Level) {
        let level = match level {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        };
        self.core.record(Event::Alert {
            alert: event.as_str().to_string(),
            level: level.to_string(),
        });
    }

    pub(super) fn record_start(&mut self) {
        self.core.record(Event::Started {
            pid: std::process::id(),
        });
    }

    pub(super) fn record_stop(&mut self) {
        self.core.record_calls(true);
        self.core.record(Event::Stopped {
            pid: std::process::id(),
        });
    }
}
