//! The worker's decisions, as pure functions of the facts and `now`: the token's state, when
//! to validate next, whether a renewal is due and whether it would help (the broker's daily
//! boundary: Upstox 03:30 IST, Kite 06:00 IST) and the deadline alarm on trading days. Which strategy acts on a due renewal is the
//! worker's plan's decision.

use crate::brokers::Broker;
use crate::calendar::Calendar;
use crate::config::Strategy;
use crate::token::expiry::{boundary_time, ist, next_ist_time_after, to_ist};
use crate::token::{Thresholds, TokenState};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use std::sync::Arc;

/// After a renewal round fails, the next unattended one waits this long (strategy browser
/// opens at most one login in this time). `r` and `l` always act at once.
pub const UNATTENDED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How long before `renew.deadline` a missing valid token raises the critical alert.
pub const DEADLINE_WARNING: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// What the API last said about the current token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not asked yet, or the API could not be reached.
    Unknown,
    /// The API accepted the token at this time.
    Valid(DateTime<Utc>),
    /// The API rejected the token at this time (401 / UDAPI100050).
    Invalid(DateTime<Utc>),
}

impl Verdict {
    /// The verdict an API answer gives (none: [`Verdict::Unknown`]).
    pub fn of(answer: Option<&crate::token::verdict::StoredVerdict>) -> Verdict {
        use crate::token::verdict::CheckResult;
        match answer {
            Some(a) if a.result == CheckResult::Valid => Verdict::Valid(a.at),
            Some(a) => Verdict::Invalid(a.at),
            None => Verdict::Unknown,
        }
    }
}

/// The settings the decisions depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `monitor.check_interval`
    pub check_interval: std::time::Duration,
    /// `monitor.refresh_before`
    pub refresh_before: std::time::Duration,
    /// `monitor.warning_before` and `monitor.critical_before`
    pub thresholds: Thresholds,
    /// `renew.strategy`
    pub strategy: Strategy,
    /// `renew.not_before` (IST)
    pub not_before: NaiveTime,
    /// `renew.deadline` (IST)
    pub deadline: NaiveTime,
    /// The trading calendar (`market.holidays_file` over the shipped NSE list).
    pub calendar: Arc<Calendar>,
    /// The account's broker, whose rule says when a token obtained now ends.
    pub broker: Broker,
}

impl Policy {
    /// The time of day (IST) the broker's tokens die, which starts a day's renewals:
    /// 03:30 for Upstox, 06:00 for Kite (03:30 for a broker without such a rule).
    fn boundary(&self) -> NaiveTime {
        self.broker
            .daily_expiry_time()
            .unwrap_or_else(boundary_time)
    }
}

/// The facts about one account at `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Facts {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The stored token's expiry, when there is a readable token.
    pub expires_at: Option<DateTime<Utc>>,
    /// What the API said about that token.
    pub verdict: Verdict,
    /// When the API was last asked about that token (answer or not).
    pub last_check_at: Option<DateTime<Utc>>,
    /// When the last renewal round that failed ended. Only a failed round puts the next
    /// unattended one off; a round that succeeded or was skipped does not.
    pub last_failed_round_at: Option<DateTime<Utc>>,
}

fn dur(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// The token's state: `missing` with no token; `expired` once its time is up (whatever the
/// API says then); `invalid` when the API rejected it before that; else by time left.
pub fn state(f: &Facts, p: &Policy) -> TokenState {
    match (f.expires_at, f.verdict) {
        (None, _) => TokenState::Missing,
        (Some(exp), _) if exp <= f.now => TokenState::Expired,
        (Some(_), Verdict::Invalid(_)) => TokenState::Invalid,
        (Some(exp), _) => TokenState::by_time(exp, f.now, p.thresholds),
    }
}

/// When to ask the API about the token next: at start, every `check_interval` while it is
/// usable, and once at the expiry instant. `None` when there is nothing to validate (no
/// token, already rejected, or expired and checked since).
pub fn next_check(f: &Facts, p: &Policy) -> Option<DateTime<Utc>> {
    let exp = f.expires_at?;
    if matches!(f.verdict, Verdict::Invalid(_)) {
        return None;
    }
    match f.last_check_at {
        None => Some(f.now),
        Some(last) if last >= exp => None,
        Some(last) => Some((last + dur(p.check_interval)).min(exp)),
    }
}

/// Why a due renewal is not started now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferral {
    /// A token obtained now would die at the same 03:30 IST as the current one.
    Boundary {
        /// The boundary the current token dies at.
        expires_at: DateTime<Utc>,
    },
    /// Unattended renewals wait for `renew.not_before` on the next trading day (today's
    /// when the market opens today).
    NotBefore,
    /// A renewal round failed less than 30 minutes ago.
    RecentFailure,
}

/// The renewal decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// `renew.strategy: none`: alerts only.
    Disabled,
    /// Not due until this instant.
    NotDue {
        /// When it becomes due.
        due_at: DateTime<Utc>,
    },
    /// Due, but waiting until this instant.
    Deferred {
        /// When to try.
        until: DateTime<Utc>,
        /// Why.
        reason: Deferral,
    },
    /// Due now.
    Due,
}

impl Renewal {
    /// A renewal that comes due at `due_at` for a token ending `expires_at` but would be put
    /// off then by `broker`'s rule (Upstox: a token obtained before the 03:30 IST boundary
    /// ends at it too): nothing happens at `due_at`, the renewal comes after `expires_at`.
    pub fn waits_for_boundary(
        broker: Broker,
        due_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> bool {
        expires_at > due_at
            && broker
                .expiry_rule(due_at)
                .is_some_and(|rule| rule <= expires_at)
    }
}

/// Why renewing now gains nothing, in one sentence, the same in the log, the notices,
/// `tokenwatch refresh` and the details popup: `token ends 03:30 IST; renewal after 03:30
/// IST (a token issued before then ends at 03:30 too)`.
pub fn boundary_words(expires_at: DateTime<Utc>) -> String {
    let end = to_ist(expires_at).format("%H:%M");
    format!(
        "token ends {end} IST; renewal after {end} IST (a token issued before then ends at {end} too)"
    )
}

/// Whether an unattended renewal should run now. Renewal is due `refresh_before`
/// the expiry, or at once when the token is expired, invalid or missing. A due renewal is
/// deferred when it would not move the expiry (before the 03:30 IST boundary the current
/// token dies at), until the first `renew.not_before` after that boundary; and, after the
/// boundary, until `renew.not_before`; and until 30 minutes after the last failed round.
/// On a day the market does not open (a weekend or an exchange holiday) nothing is urgent:
/// from 03:30 IST that day, unattended renewals wait for `not_before` on the next trading
/// day.
pub fn renewal(f: &Facts, p: &Policy) -> Renewal {
    if p.strategy == Strategy::None {
        return Renewal::Disabled;
    }
    let now = f.now;
    let rejected = matches!(f.verdict, Verdict::Invalid(_));
    if let Some(exp) = f.expires_at
        && !rejected
    {
        let due_at = exp - dur(p.refresh_before);
        if now < due_at {
            return Renewal::NotDue { due_at };
        }
        if exp > now && p.broker.expiry_rule(now).is_some_and(|rule| rule <= exp) {
            // A not_before earlier than 03:30 cannot pull the renewal before the boundary.
            let until = if p.not_before <= p.boundary() {
                exp
            } else {
                not_before_after(exp, p.not_before)
            };
            let until = morning_wait_until(until, p).unwrap_or(until);
            return Renewal::Deferred {
                until,
                reason: Deferral::Boundary { expires_at: exp },
            };
        }
    }
    if let Some(until) = morning_wait_until(now, p) {
        return Renewal::Deferred {
            until,
            reason: Deferral::NotBefore,
        };
    }
    if let Some(last) = f.last_failed_round_at {
        let next = last + dur(UNATTENDED_INTERVAL);
        if now < next {
            return Renewal::Deferred {
                until: next,
                reason: Deferral::RecentFailure,
            };
        }
    }
    Renewal::Due
}

/// Until when unattended renewals wait at `now`. A day's renewals belong to it from 03:30
/// IST to 03:30 IST the next morning. On a trading day they wait between 03:30 and
/// `not_before` IST; on a day the market does not open (a weekend, an exchange holiday)
/// nothing is urgent and they wait for `not_before` on the next trading day. `None` when they need not wait; always with a `not_before` at or before
/// 03:30, which asks for renewals whenever one is due, closed days included.
fn morning_wait_until(now: DateTime<Utc>, p: &Policy) -> Option<DateTime<Utc>> {
    let boundary = p.boundary();
    if p.not_before <= boundary {
        return None;
    }
    let local = to_ist(now);
    let t = local.time();
    let today = local.date_naive();
    let day = if t < boundary {
        today.pred_opt().unwrap_or(today)
    } else {
        today
    };
    if p.calendar.is_trading_day(day) {
        return (t >= boundary && t < p.not_before).then(|| ist_instant(today, p.not_before));
    }
    let next = p.calendar.next_trading_day(day);
    Some(ist_instant(next, p.not_before))
}

/// `time` IST on `day` (past the end of time: the last instant there is).
fn ist_instant(day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    ist()
        .from_local_datetime(&day.and_time(time))
        .single()
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc))
}

/// The first `not_before` IST at or after `t`.
fn not_before_after(t: DateTime<Utc>, not_before: NaiveTime) -> DateTime<Utc> {
    if to_ist(t).time() == not_before {
        t
    } else {
        next_ist_time_after(t, not_before)
    }
}

/// The next instant, strictly after `after`, that is 30 minutes before `renew.deadline` IST
/// on a trading day (not a weekend, not an exchange holiday): when a missing valid token
/// raises the critical alert.
pub fn next_deadline_alarm(after: DateTime<Utc>, p: &Policy) -> DateTime<Utc> {
    let alarm_time = p.deadline - dur(DEADLINE_WARNING);
    let mut day = to_ist(after).date_naive();
    if !p.calendar.is_trading_day(day) {
        day = p.calendar.next_trading_day(day);
    }
    let at = ist_instant(day, alarm_time);
    if at > after {
        return at;
    }
    ist_instant(p.calendar.next_trading_day(day), alarm_time)
}

/// Times and a policy for the schedule's and the plan's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use std::time::Duration as Std;

    /// An instant in IST, November 2026 (the 26th is a Thursday).
    pub(crate) fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(2026, 11, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Checks every 30 minutes, renewal 1 h before expiry, warning 3 h and critical 1 h
    /// before, `not_before` 08:00 and the deadline 09:00 IST.
    pub(crate) fn policy_with(strategy: Strategy) -> Policy {
        Policy {
            check_interval: Std::from_secs(30 * 60),
            refresh_before: Std::from_secs(3600),
            thresholds: Thresholds {
                warning_before: Std::from_secs(3 * 3600),
                critical_before: Std::from_secs(3600),
            },
            strategy,
            not_before: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            deadline: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            calendar: Calendar::nse(),
            broker: Broker::Upstox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{at, policy_with};
    use super::*;
    use std::time::Duration as Std;

    fn policy() -> Policy {
        policy_with(Strategy::Command)
    }

    fn facts(now: DateTime<Utc>, exp: Option<DateTime<Utc>>) -> Facts {
        Facts {
            now,
            expires_at: exp,
            verdict: Verdict::Unknown,
            last_check_at: None,
            last_failed_round_at: None,
        }
    }

    #[test]
    fn renewal_is_not_due_before_refresh_before() {
        let f = facts(at(26, 14, 0), Some(at(27, 3, 30)));
        assert_eq!(
            renewal(&f, &policy()),
            Renewal::NotDue {
                due_at: at(27, 2, 30)
            }
        );
    }

    #[test]
    fn the_boundary_rule_defers_a_useless_renewal_to_not_before() {
        // 02:30 IST: a new token would also die at 03:30.
        let f = facts(at(27, 2, 30), Some(at(27, 3, 30)));
        assert_eq!(
            renewal(&f, &policy()),
            Renewal::Deferred {
                until: at(27, 8, 0),
                reason: Deferral::Boundary {
                    expires_at: at(27, 3, 30)
                }
            }
        );
        // After the boundary, the expired token waits for not_before...
        let f = facts(at(27, 3, 31), Some(at(27, 3, 30)));
        assert_eq!(
            renewal(&f, &policy()),
            Renewal::Deferred {
                until: at(27, 8, 0),
                reason: Deferral::NotBefore
            }
        );
        // ...and at not_before it is due.
        let f = facts(at(27, 8, 0), Some(at(27, 3, 30)));
        assert_eq!(renewal(&f, &policy()), Renewal::Due);
    }

    #[test]
    fn a_kite_token_is_renewed_by_kites_0600_rule() {
        let mut p = policy();
        p.broker = Broker::Kite;
        // 05:00 IST, a Kite token dying at 06:00: a new one would die at 06:00 too, so the
        // renewal waits (for not_before after the boundary).
        let f = facts(at(27, 5, 0), Some(at(27, 6, 0)));
        assert_eq!(
            renewal(&f, &p),
            Renewal::Deferred {
                until: at(27, 8, 0),
                reason: Deferral::Boundary {
                    expires_at: at(27, 6, 0)
                }
            }
        );
        assert!(Renewal::waits_for_boundary(
            Broker::Kite,
            at(27, 5, 0),
            at(27, 6, 0)
        ));
        // By Upstox's rule the same renewal would be worth it (its tokens live to 03:30).
        assert!(!Renewal::waits_for_boundary(
            Broker::Upstox,
            at(27, 5, 0),
            at(27, 6, 0)
        ));
        // A Kite day starts at 06:00: between 06:00 and not_before an expired token waits.
        let f = facts(at(27, 6, 30), Some(at(27, 6, 0)));
        assert_eq!(
            renewal(&f, &p),
            Renewal::Deferred {
                until: at(27, 8, 0),
                reason: Deferral::NotBefore
            }
        );
        // A broker whose token says when it ends has no boundary: a due renewal is due.
        p.broker = Broker::Fyers;
        let f = facts(at(27, 9, 0), Some(at(27, 9, 30)));
        assert_eq!(renewal(&f, &p), Renewal::Due);
    }

    #[test]
    fn a_not_before_earlier_than_the_boundary_waits_for_the_boundary() {
        let mut p = policy();
        p.not_before = NaiveTime::from_hms_opt(0, 0, 0).unwrap();
        let f = facts(at(27, 2, 45), Some(at(27, 3, 30)));
        assert_eq!(
            renewal(&f, &p),
            Renewal::Deferred {
                until: at(27, 3, 30),
                reason: Deferral::Boundary {
                    expires_at: at(27, 3, 30)
                }
            }
        );
    }

    #[test]
    fn a_renewal_before_the_boundary_that_moves_the_expiry_is_due() {
        // A token dying 03:30 on the 27th, at 23:00 on the 26th with refresh_before 5h: a new
        // token would also die 03:30 on the 27th → useless. At 04:00 on the 27th with a token
        // that dies at 05:00 (configured lifetime), a new one lives to the 28th → due.
        let mut p = policy();
        p.refresh_before = Std::from_secs(5 * 3600);
        let f = facts(at(26, 23, 0), Some(at(27, 3, 30)));
        assert!(matches!(
            renewal(&f, &p),
            Renewal::Deferred {
                reason: Deferral::Boundary { .. },
                ..
            }
        ));
        p.not_before = NaiveTime::from_hms_opt(3, 45, 0).unwrap();
        let f = facts(at(27, 4, 0), Some(at(27, 5, 0)));
        assert_eq!(renewal(&f, &p), Renewal::Due);
    }

    #[test]
    fn missing_and_invalid_tokens_are_due_at_once_in_the_day() {
        let f = facts(at(26, 14, 0), None);
        assert_eq!(renewal(&f, &policy()), Renewal::Due);
        let mut f = facts(at(26, 14, 0), Some(at(27, 3, 30)));
        f.verdict = Verdict::Invalid(at(26, 14, 0));
        assert_eq!(renewal(&f, &policy()), Renewal::Due);
        assert_eq!(state(&f, &policy()), TokenState::Invalid);
        // Once its time is up, a rejected token is expired.
        f.now = at(27, 3, 30);
        assert_eq!(state(&f, &policy()), TokenState::Expired);
        // But not at 05:00, before not_before.
        let f = facts(at(27, 5, 0), None);
        assert_eq!(
            renewal(&f, &policy()),
            Renewal::Deferred {
                until: at(27, 8, 0),
                reason: Deferral::NotBefore
            }
        );
    }

    #[test]
    fn a_failed_round_puts_the_next_off_30_minutes_and_none_disables() {
        let mut f = facts(at(26, 14, 0), None);
        f.last_failed_round_at = Some(at(26, 13, 45));
        assert_eq!(
            renewal(&f, &policy()),
            Renewal::Deferred {
                until: at(26, 14, 15),
                reason: Deferral::RecentFailure
            }
        );
        f.last_failed_round_at = Some(at(26, 13, 30));
        assert_eq!(renewal(&f, &policy()), Renewal::Due);
        let mut p = policy();
        p.strategy = Strategy::None;
        assert_eq!(renewal(&f, &p), Renewal::Disabled);
    }

    #[test]
    fn validation_schedule() {
        let p = policy();
        let exp = at(27, 3, 30);
        let mut f = facts(at(26, 9, 0), Some(exp));
        assert_eq!(next_check(&f, &p), Some(at(26, 9, 0)));
        f.last_check_at = Some(at(26, 9, 0));
        assert_eq!(next_check(&f, &p), Some(at(26, 9, 30)));
        // The last interval is cut at the expiry instant.
        f.last_check_at = Some(at(27, 3, 10));
        assert_eq!(next_check(&f, &p), Some(exp));
        // Checked at (or after) expiry: no more.
        f.last_check_at = Some(exp);
        assert_eq!(next_check(&f, &p), None);
        // Rejected, or no token: nothing to validate.
        f.last_check_at = Some(at(26, 10, 0));
        f.verdict = Verdict::Invalid(at(26, 10, 0));
        assert_eq!(next_check(&f, &p), None);
        assert_eq!(next_check(&facts(at(26, 9, 0), None), &p), None);
    }

    #[test]
    fn deadline_alarm_is_on_weekdays_only() {
        let p = policy();
        // Thursday 26th 07:00 → 08:30 the same day.
        assert_eq!(next_deadline_alarm(at(26, 7, 0), &p), at(26, 8, 30));
        // Exactly at the alarm → the next weekday.
        assert_eq!(next_deadline_alarm(at(26, 8, 30), &p), at(27, 8, 30));
        // Friday 27th 10:00 → Monday 30th.
        assert_eq!(next_deadline_alarm(at(27, 10, 0), &p), at(30, 8, 30));
    }

    /// An instant in IST, December 2026 (the 24th is a Thursday, the 25th Christmas).
    fn dec(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(2026, 12, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn deadline_alarm_skips_exchange_holidays_and_the_weekend_after() {
        let p = policy();
        // Thursday 24 Dec 10:00: Christmas (Fri), Sat and Sun are closed → Monday 28th.
        assert_eq!(next_deadline_alarm(dec(24, 10, 0), &p), dec(28, 8, 30));
        // Started on Christmas morning itself.
        assert_eq!(next_deadline_alarm(dec(25, 8, 0), &p), dec(28, 8, 30));
        // Monday 23 Nov → Wednesday 25th (Tuesday 24th is Guru Nanak Jayanti).
        assert_eq!(next_deadline_alarm(at(23, 10, 0), &p), at(25, 8, 30));
        // With weekdays only, Christmas would alarm.
        let mut plain = policy();
        plain.calendar = Arc::new(Calendar::weekdays());
        assert_eq!(next_deadline_alarm(dec(24, 10, 0), &plain), dec(25, 8, 30));
    }

    #[test]
    fn a_holidays_file_moves_the_alarm_both_ways() {
        let mut p = policy();
        p.calendar = Arc::new(
            Calendar::nse()
                .with_lines("2026-12-28 Our own day off\n-2026-12-25 Special session\n")
                .unwrap(),
        );
        assert_eq!(next_deadline_alarm(dec(24, 10, 0), &p), dec(25, 8, 30));
        assert_eq!(next_deadline_alarm(dec(25, 8, 30), &p), dec(29, 8, 30));
    }

    #[test]
    fn the_morning_renewal_on_a_holiday_is_not_urgent() {
        let p = policy();
        // Christmas 08:00: the token died at 03:30, nobody trades today; the renewal waits
        // for Monday 08:00.
        let f = facts(dec(25, 8, 0), Some(dec(25, 3, 30)));
        assert_eq!(
            renewal(&f, &p),
            Renewal::Deferred {
                until: dec(28, 8, 0),
                reason: Deferral::NotBefore
            }
        );
        // A missing token on Saturday afternoon waits too.
        let f = facts(dec(26, 15, 0), None);
        assert_eq!(
            renewal(&f, &p),
            Renewal::Deferred {
                until: dec(28, 8, 0),
                reason: Deferral::NotBefore
            }
        );
        // Before 03:30 on the holiday it is still the trading day's night: due.
        let f = facts(dec(25, 1, 0), None);
        assert_eq!(renewal(&f, &p), Renewal::Due);
        // The nights after the holiday and the weekend days wait too.
        for now in [dec(26, 1, 0), dec(27, 23, 0), dec(28, 1, 0)] {
            assert_eq!(
                renewal(&facts(now, None), &p),
                Renewal::Deferred {
                    until: dec(28, 8, 0),
                    reason: Deferral::NotBefore
                },
                "{now}"
            );
        }
        // The boundary rule on Thursday night points at Monday, not Christmas morning.
        let f = facts(dec(25, 2, 30), Some(dec(25, 3, 30)));
        assert_eq!(
            renewal(&f, &p),
            Renewal::Deferred {
                until: dec(28, 8, 0),
                reason: Deferral::Boundary {
                    expires_at: dec(25, 3, 30)
                }
            }
        );
        // On Monday it is due at 08:00 as on any trading day.
        let f = facts(dec(28, 8, 0), Some(dec(25, 3, 30)));
        assert_eq!(renewal(&f, &p), Renewal::Due);
        // not_before 00:00 asks for renewals whenever due: closed days too.
        let mut eager = policy();
        eager.not_before = NaiveTime::from_hms_opt(0, 0, 0).unwrap();
        let f = facts(dec(25, 8, 0), Some(dec(25, 3, 30)));
        assert_eq!(renewal(&f, &eager), Renewal::Due);
        // A day marked as a trading day is urgent again.
        let mut open = policy();
        open.calendar = Arc::new(Calendar::nse().with_lines("-2026-12-25 Session\n").unwrap());
        let f = facts(dec(25, 8, 0), Some(dec(25, 3, 30)));
        assert_eq!(renewal(&f, &open), Renewal::Due);
    }
}
