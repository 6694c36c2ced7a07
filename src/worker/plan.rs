//! The one decision "what should this account do now?", as a pure function of the facts,
//! the policy and the clock. The worker loop and `tokenwatch refresh` both ask [`plan`] and
//! do what it says; no strategy is matched anywhere else.
//!
//! The time rules it builds on (the token's state, when to check, whether a renewal is due
//! and whether it would move the expiry past the 03:30 IST boundary) are in
//! [`crate::schedule`].

use crate::config::Strategy;
use crate::schedule::{self, Deferral, Policy, Renewal};
use chrono::{DateTime, Utc};

/// What the plan decides on, at `schedule.now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    /// The token's clock facts: expiry, the API's verdict, the last check, the last failed
    /// renewal round.
    pub schedule: schedule::Facts,
    /// A check or a renewal round is running.
    pub running: bool,
    /// A login is waiting for the browser.
    pub login_waiting: bool,
    /// A token request waits for the user's approval on the phone until then.
    pub approval_until: Option<DateTime<Utc>>,
    /// Another process holds the renewal lock; look again then.
    pub other_renewal_until: Option<DateTime<Utc>>,
    /// Someone (`r`, `refresh`, the API) asked at this time for a check and, when renewal is
    /// due, a renewal at once: the unattended waits (`renew.not_before`, 30 minutes after a
    /// failed round) do not apply; the 03:30 IST boundary rule does.
    pub forced_at: Option<DateTime<Utc>>,
    /// The first check waits until then (the fleet staggers many accounts' first checks).
    pub first_check_at: Option<DateTime<Utc>>,
    /// The broker refused the last renewal through its API (a wrong PIN): no unattended
    /// round repeats it; a forced one may.
    pub refused: bool,
}

impl Facts {
    /// Nothing running, nothing waited for, nobody asking.
    pub fn idle(schedule: schedule::Facts) -> Facts {
        Facts {
            schedule,
            running: false,
            login_waiting: false,
            approval_until: None,
            other_renewal_until: None,
            forced_at: None,
            first_check_at: None,
            refused: false,
        }
    }
}

/// Why nothing is to be done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// A check or a renewal is already running.
    Running,
    /// Renewal is not due until then.
    NotDue {
        /// When it becomes due.
        due_at: DateTime<Utc>,
    },
    /// `renew.strategy: none`: tokenwatch only alerts.
    Disabled,
    /// A login is already waiting for the browser.
    LoginWaiting,
    /// The broker refused the last renewal through its API; it waits for new settings or a
    /// forced renewal.
    Refused,
}

/// Why the next step waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A time rule: the 03:30 IST boundary, `renew.not_before`, a recent failed round.
    Schedule(Deferral),
    /// A token request was sent; the user has until then to approve it on the phone.
    Approval,
    /// Another tokenwatch process is renewing this token.
    OtherProcess,
    /// This account's first check is staggered.
    FirstCheck,
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing, and why.
    Nothing(Idle),
    /// Ask the API about the token.
    Check,
    /// Run `renew.command` (strategy command).
    RenewByCommand,
    /// Renew through the broker's API, no browser (strategies totp and refresh-token).
    RenewByBroker,
    /// Open the browser login (strategy browser).
    LogIn,
    /// Send a v3 token request for the user to approve (strategy token-request).
    RequestToken,
    /// Nothing before `until`.
    Wait {
        /// When to look again.
        until: DateTime<Utc>,
        /// Why.
        reason: Wait,
    },
}

impl Plan {
    /// When the plan may change without any new fact: the instant to wake up at.
    pub fn wake_at(&self) -> Option<DateTime<Utc>> {
        match *self {
            Plan::Wait { until, .. } => Some(until),
            Plan::Nothing(Idle::NotDue { due_at }) => Some(due_at),
            _ => None,
        }
    }
}

/// The decision. A check comes first when one is due (or was asked for and has not run
/// since); then the renewal decision of [`schedule::renewal`]; a due renewal is carried out
/// by the account's strategy, unless that is already under way.
pub fn plan(f: &Facts, p: &Policy) -> Plan {
    let s = &f.schedule;
    let now = s.now;
    if f.running {
        return Plan::Nothing(Idle::Running);
    }
    let check_due = match f.forced_at {
        Some(asked) => s.expires_at.is_some() && s.last_check_at.is_none_or(|l| l < asked),
        None => schedule::next_check(s, p).is_some_and(|at| at <= now),
    };
    if check_due {
        if let Some(at) = f.first_check_at
            && at > now
            && f.forced_at.is_none()
            && s.last_check_at.is_none()
        {
            return Plan::Wait {
                until: at,
                reason: Wait::FirstCheck,
            };
        }
        return Plan::Check;
    }
    let renewal = match schedule::renewal(s, p) {
        Renewal::Deferred {
            reason: Deferral::NotBefore | Deferral::RecentFailure,
            ..
        } if f.forced_at.is_some() => Renewal::Due,
        other => other,
    };
    match renewal {
        Renewal::Disabled => Plan::Nothing(Idle::Disabled),
        Renewal::NotDue { due_at } => Plan::Nothing(Idle::NotDue { due_at }),
        Renewal::Deferred { until, reason } => Plan::Wait {
            until,
            reason: Wait::Schedule(reason),
        },
        Renewal::Due => {
            if let Some(until) = f.other_renewal_until.filter(|t| *t > now) {
                return Plan::Wait {
                    until,
                    reason: Wait::OtherProcess,
                };
            }
            match p.strategy {
                Strategy::None => Plan::Nothing(Idle::Disabled),
                Strategy::Command => Plan::RenewByCommand,
                Strategy::Totp | Strategy::RefreshToken if f.refused && f.forced_at.is_none() => {
                    Plan::Nothing(Idle::Refused)
                }
                Strategy::Totp | Strategy::RefreshToken => Plan::RenewByBroker,
                Strategy::Browser if f.login_waiting => Plan::Nothing(Idle::LoginWaiting),
                Strategy::Browser => Plan::LogIn,
                Strategy::TokenRequest => match f.approval_until.filter(|t| *t > now) {
                    Some(until) => Plan::Wait {
                        until,
                        reason: Wait::Approval,
                    },
                    None => Plan::RequestToken,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Verdict;
    use crate::schedule::test_support::{at, policy_with as policy};

    /// A token checked (valid) a minute ago, that expires at `exp`.
    fn facts(now: DateTime<Utc>, exp: Option<DateTime<Utc>>) -> Facts {
        let checked = now - chrono::Duration::minutes(1);
        Facts::idle(schedule::Facts {
            now,
            expires_at: exp,
            verdict: if exp.is_some() {
                Verdict::Valid(checked)
            } else {
                Verdict::Unknown
            },
            last_check_at: exp.map(|_| checked),
            last_failed_round_at: None,
        })
    }

    #[test]
    fn a_due_renewal_is_carried_out_by_the_accounts_strategy() {
        let f = facts(at(26, 14, 0), None);
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::RenewByCommand);
        assert_eq!(plan(&f, &policy(Strategy::Browser)), Plan::LogIn);
        assert_eq!(
            plan(&f, &policy(Strategy::TokenRequest)),
            Plan::RequestToken
        );
        assert_eq!(
            plan(&f, &policy(Strategy::None)),
            Plan::Nothing(Idle::Disabled)
        );
    }

    #[test]
    fn a_refused_renewal_through_the_api_waits_for_a_person() {
        let mut f = facts(at(26, 14, 0), None);
        for s in [Strategy::Totp, Strategy::RefreshToken] {
            assert_eq!(plan(&f, &policy(s)), Plan::RenewByBroker);
        }
        // The broker refused (a wrong PIN): no unattended round asks again...
        f.refused = true;
        for s in [Strategy::Totp, Strategy::RefreshToken] {
            assert_eq!(plan(&f, &policy(s)), Plan::Nothing(Idle::Refused));
        }
        // ...but someone pressing r, or running tokenwatch refresh, may.
        f.forced_at = Some(at(26, 14, 0));
        assert_eq!(plan(&f, &policy(Strategy::Totp)), Plan::RenewByBroker);
        // Other strategies have no PIN to protect.
        f.forced_at = None;
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::RenewByCommand);
    }

    #[test]
    fn nothing_starts_while_something_runs_or_waits() {
        let mut f = facts(at(26, 14, 0), None);
        f.running = true;
        assert_eq!(
            plan(&f, &policy(Strategy::Command)),
            Plan::Nothing(Idle::Running)
        );
        f.running = false;
        f.login_waiting = true;
        assert_eq!(
            plan(&f, &policy(Strategy::Browser)),
            Plan::Nothing(Idle::LoginWaiting)
        );
        f.approval_until = Some(at(26, 14, 10));
        assert_eq!(
            plan(&f, &policy(Strategy::TokenRequest)),
            Plan::Wait {
                until: at(26, 14, 10),
                reason: Wait::Approval
            }
        );
        // Once the approval window is over, a new request may go out.
        f.schedule.now = at(26, 14, 10);
        assert_eq!(
            plan(&f, &policy(Strategy::TokenRequest)),
            Plan::RequestToken
        );
        f.other_renewal_until = Some(at(26, 14, 11));
        assert_eq!(
            plan(&f, &policy(Strategy::Command)),
            Plan::Wait {
                until: at(26, 14, 11),
                reason: Wait::OtherProcess
            }
        );
    }

    #[test]
    fn only_a_failed_round_puts_the_next_unattended_one_off() {
        // No failure on record (a round that succeeded or was skipped leaves none): due now.
        let mut f = facts(at(26, 14, 0), None);
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::RenewByCommand);
        // A round failed 10 minutes ago: wait until 30 minutes after it...
        f.schedule.last_failed_round_at = Some(at(26, 13, 50));
        assert_eq!(
            plan(&f, &policy(Strategy::Command)),
            Plan::Wait {
                until: at(26, 14, 20),
                reason: Wait::Schedule(Deferral::RecentFailure)
            }
        );
        // ...unless someone asks.
        f.forced_at = Some(at(26, 14, 0));
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::RenewByCommand);
    }

    #[test]
    fn a_forced_round_checks_first_and_keeps_the_boundary_rule() {
        // 02:45 IST, the token dies at 03:30: a check first, then no renewal (a new token
        // would die at 03:30 too).
        let now = at(27, 2, 45);
        let mut f = facts(now, Some(at(27, 3, 30)));
        f.forced_at = Some(now);
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::Check);
        f.schedule.last_check_at = Some(now);
        assert!(matches!(
            plan(&f, &policy(Strategy::Command)),
            Plan::Wait {
                reason: Wait::Schedule(Deferral::Boundary { .. }),
                ..
            }
        ));
        // At 05:00 (before not_before), forced: renew at once.
        let now = at(27, 5, 0);
        let mut f = facts(now, None);
        f.forced_at = Some(now);
        assert_eq!(plan(&f, &policy(Strategy::Browser)), Plan::LogIn);
        f.forced_at = None;
        assert!(matches!(
            plan(&f, &policy(Strategy::Browser)),
            Plan::Wait {
                reason: Wait::Schedule(Deferral::NotBefore),
                ..
            }
        ));
    }

    #[test]
    fn first_checks_are_staggered_unless_asked_for() {
        let now = at(26, 14, 0);
        let mut f = facts(now, Some(at(27, 3, 30)));
        f.schedule.last_check_at = None;
        f.schedule.verdict = Verdict::Unknown;
        f.first_check_at = Some(now + chrono::Duration::seconds(3));
        assert_eq!(
            plan(&f, &policy(Strategy::Command)),
            Plan::Wait {
                until: now + chrono::Duration::seconds(3),
                reason: Wait::FirstCheck
            }
        );
        f.forced_at = Some(now);
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::Check);
        f.forced_at = None;
        f.schedule.now = now + chrono::Duration::seconds(3);
        assert_eq!(plan(&f, &policy(Strategy::Command)), Plan::Check);
    }

    #[test]
    fn a_healthy_checked_token_is_not_due() {
        let f = facts(at(26, 14, 0), Some(at(27, 3, 30)));
        assert_eq!(
            plan(&f, &policy(Strategy::Command)),
            Plan::Nothing(Idle::NotDue {
                due_at: at(27, 2, 30)
            })
        );
        assert_eq!(
            plan(&f, &policy(Strategy::Command)).wake_at(),
            Some(at(27, 2, 30))
        );
    }
}
