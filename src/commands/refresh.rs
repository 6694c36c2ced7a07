//! `tokenwatch refresh`: check now, and renew when the plan says renewal is due (or the
//! token was rejected), by the account's strategy; exit 0 only with a valid token at the
//! end. When another tokenwatch is renewing this token, wait for it (up to `login.timeout`)
//! and use its token: `tokenwatch refresh && ./start-engine` holds whoever renews.

use super::status::{heading, print_token_lines};
use crate::brokers::Broker;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, Strategy};
use crate::schedule::{Deferral, Renewal, Verdict, boundary_words};
use crate::timefmt::human;
use crate::token::expiry::to_ist;
use crate::worker::core::Lock;
use crate::worker::plan::{self, Plan};
use crate::worker::{CHECK_LIMIT, CheckOutcome, Core, RenewOutcome};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting `refresh` looks whether the other renewal has finished.
const LOCK_POLL: Duration = Duration::from_millis(200);

pub(super) fn run(loaded: Result<Config, ConfigError>) -> u8 {
    let (config, rt) = match super::config_and_runtime(loaded) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    rt.block_on(async {
        let mut core = match Core::new(
            config.account.clone(),
            config.monitor.clone(),
            clock.clone(),
        ) {
            Ok(c) => c
                .with_login(config.login.clone())
                .keep_history(config.history.keep),
            Err(e) => {
                eprintln!("tokenwatch: {e}");
                return 1;
            }
        };
        core.restore().await;
        let (validation, renewed) = drive(&mut core).await;
        core.record_calls(true);
        let now = clock.now();
        let state = core.state(now);
        println!(
            "{}",
            heading(state.label(), core.account_name(), core.token())
        );
        if let Some(token) = core.token() {
            print_token_lines(token, now);
        } else if let Some(e) = core.token_error() {
            println!("{e}");
        }
        match (&validation, &renewed) {
            (_, Some(RenewOutcome::Renewed)) => {
                println!("Renewed: a new token was verified and stored.")
            }
            (_, Some(RenewOutcome::NotUseful(why) | RenewOutcome::Failed(why))) => {
                println!("Not renewed: {why}")
            }
            (Some(CheckOutcome::Valid(_)), None) => {
                println!(
                    "API: ✓ valid; {}.",
                    not_renewed(
                        core.renewal(now),
                        core.token().map(|t| t.expires_at),
                        core.policy().broker,
                    )
                )
            }
            (Some(CheckOutcome::Unreachable(e)), None) => println!("API: ? could not check: {e}"),
            (Some(CheckOutcome::Rejected(e)), None) => println!("API: ✗ rejected: {e}"),
            (Some(CheckOutcome::NoToken) | None, None) => {
                println!("No token, and renew.strategy is none: log in with tokenwatch login.")
            }
        }
        let api_rejected = matches!(core.verdict(), Verdict::Invalid(_));
        if state.is_usable() && !api_rejected {
            0
        } else {
            1
        }
    })
}

/// Do what the plan says, forced (the unattended waits do not apply, the 03:30 IST boundary
/// rule does), until it says nothing more is to be done: the last check and the renewal's
/// outcome, if one ran.
async fn drive(core: &mut Core) -> (Option<CheckOutcome>, Option<RenewOutcome>) {
    let asked = core.clock().now();
    let mut validation = None;
    let mut by_other = false;
    loop {
        let mut facts = core.plan_facts(core.clock().now());
        facts.forced_at = Some(asked);
        let step = plan::plan(&facts, core.policy());
        let outcome = match step {
            Plan::Check => {
                let v = core.check_within(CHECK_LIMIT).await;
                let none = v == CheckOutcome::NoToken;
                validation = Some(v);
                if none {
                    break;
                }
                continue;
            }
            Plan::RenewByCommand | Plan::RenewByBroker | Plan::LogIn | Plan::RequestToken => {
                // Whoever renews holds the lock: wait for them, then look at their token.
                let lock = match core.renewal_lock() {
                    Lock::Held(lock) => lock,
                    Lock::Busy(holder) => match wait_for_other(core, &holder).await {
                        Ok(()) => {
                            by_other = core.reload_if_changed();
                            continue;
                        }
                        Err(why) => return (validation, Some(RenewOutcome::Failed(why))),
                    },
                    Lock::Broken(why) => return (validation, Some(RenewOutcome::Failed(why))),
                };
                let since = core.clock().now();
                let (how, person) = match step {
                    Plan::RequestToken => (Strategy::TokenRequest, true),
                    Plan::LogIn => (Strategy::Browser, true),
                    _ => (core.policy().strategy, false),
                };
                let outcome = if matches!(step, Plan::RenewByCommand | Plan::RenewByBroker) {
                    core.renew_holding(lock).await
                } else if step == Plan::RequestToken {
                    by_token_request(core, lock).await
                } else {
                    // The login takes the lock itself.
                    drop(lock);
                    by_login(core).await
                };
                core.record_round(how, person, since, &outcome);
                outcome
            }
            // Another process renewed meanwhile: its token is the outcome, even one that the
            // 03:30 IST rule would not renew again now.
            Plan::Wait { .. } if by_other => break,
            Plan::Wait {
                reason: plan::Wait::Schedule(Deferral::Boundary { expires_at }),
                ..
            } => {
                let end = to_ist(expires_at).format("%H:%M");
                RenewOutcome::NotUseful(format!(
                    "{}; run tokenwatch refresh after {end} IST",
                    boundary_words(expires_at)
                ))
            }
            Plan::Wait { .. } | Plan::Nothing(_) => break,
        };
        return (validation, Some(outcome));
    }
    let renewed =
        (by_other && core.state(core.clock().now()).is_usable()).then_some(RenewOutcome::Renewed);
    (validation, renewed)
}

/// Why a valid token was left as it is, in words that hold however little time it has left.
fn not_renewed(renewal: Renewal, expires_at: Option<DateTime<Utc>>, broker: Broker) -> String {
    let end = expires_at.map_or(String::new(), |t| {
        format!(" before it ends {}", to_ist(t).format("%a %H:%M IST"))
    });
    match renewal {
        Renewal::Disabled => format!(
            "renew.strategy is none, so tokenwatch does not renew: log in{end} with tokenwatch login"
        ),
        Renewal::NotDue { due_at }
            if expires_at.is_some_and(|exp| Renewal::waits_for_boundary(broker, due_at, exp)) =>
        {
            format!(
                "renewal is not due yet: {}",
                boundary_words(expires_at.unwrap_or(due_at))
            )
        }
        Renewal::NotDue { due_at } => format!(
            "renewal is not due yet (due {} IST)",
            to_ist(due_at).format("%a %H:%M")
        ),
        Renewal::Deferred {
            reason: Deferral::Boundary { expires_at },
            ..
        } => boundary_words(expires_at),
        Renewal::Deferred { until, .. } => {
            format!(
                "renewal waits until {} IST",
                to_ist(until).format("%a %H:%M")
            )
        }
        Renewal::Due => "renewal is due; tokenwatch renews it next".to_string(),
    }
}

/// Wait (up to `login.timeout`) until the other process's renewal ends.
async fn wait_for_other(core: &Core, holder: &str) -> Result<(), String> {
    let limit = core.login_timeout();
    println!(
        "Another tokenwatch is renewing this token ({holder}); waiting up to {} for it...",
        human(limit)
    );
    let wait = async {
        loop {
            tokio::time::sleep(LOCK_POLL).await;
            // Taken and let go at once: the other renewal has ended.
            match core.renewal_lock() {
                Lock::Held(_) => return Ok(()),
                Lock::Busy(_) => {}
                Lock::Broken(why) => return Err(why),
            }
        }
    };
    match tokio::time::timeout(limit, wait).await {
        Ok(done) => done,
        Err(_) => Err(format!(
            "another tokenwatch ({holder}) was still renewing after {}",
            human(limit)
        )),
    }
}

/// Strategy browser: the same login as `tokenwatch login`.
async fn by_login(core: &mut Core) -> RenewOutcome {
    let settings = match core.login_settings(true) {
        Ok(s) => s,
        Err(e) => return RenewOutcome::Failed(e.to_string()),
    };
    let clock = core.clock().clone();
    match super::login::interactive_login(core, settings, clock).await {
        Ok(()) => RenewOutcome::Renewed,
        Err(e) => RenewOutcome::Failed(e),
    }
}

/// Strategy token-request: ask Upstox, then wait for the approved token on the notifier.
async fn by_token_request(
    core: &mut Core,
    _renewing: crate::token::store::StoreLock,
) -> RenewOutcome {
    let wait = core.login_timeout();
    let (tx, mut deliveries) = tokio::sync::mpsc::channel(4);
    let server = match core.serve_notifier(tx).await {
        Ok(Some(server)) => server,
        Ok(None) => {
            return RenewOutcome::Failed(
                "renew.notifier_listen and renew.notifier_path must be set for strategy token-request".into(),
            );
        }
        Err(e) => return RenewOutcome::Failed(e),
    };
    let ack = match core.request_call().await {
        Ok(ack) => ack,
        Err(e) => {
            server.shutdown().await;
            return RenewOutcome::Failed(format!("the token request failed: {e}"));
        }
    };
    let until = ack
        .authorization_expiry
        .map(|t| format!(" (before {} IST)", to_ist(t).format("%H:%M")))
        .unwrap_or_default();
    println!(
        "Approve the token request in the Upstox app or on WhatsApp{until}; waiting up to {} on {}...",
        human(wait),
        server.addr
    );
    let outcome = tokio::select! {
        token = deliveries.recv() => match token {
            Some(token) => match core.accept_token(token, true).await {
                Ok(()) => RenewOutcome::Renewed,
                Err(e) => RenewOutcome::Failed(format!("the approved token was not stored: {e}")),
            },
            None => RenewOutcome::Failed("the notifier stopped".into()),
        },
        _ = tokio::time::sleep(wait) => RenewOutcome::Failed(format!(
            "no approved token arrived within {}; approve the request on the phone, or log in",
            human(wait)
        )),
        _ = tokio::signal::ctrl_c() => RenewOutcome::Failed("cancelled".into()),
    };
    server.shutdown().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::schedule::test_support::{at, policy_with};
    use crate::schedule::{Facts, renewal};

    fn words(strategy: Strategy, now: DateTime<Utc>, exp: DateTime<Utc>) -> String {
        let facts = Facts {
            now,
            expires_at: Some(exp),
            verdict: Verdict::Valid(now),
            last_check_at: Some(now),
            last_failed_round_at: None,
        };
        not_renewed(
            renewal(&facts, &policy_with(strategy)),
            Some(exp),
            Broker::Upstox,
        )
    }

    /// However little time is left, a valid token left alone is explained by what is true:
    /// never "not due" for a token in its last minutes.
    #[test]
    fn a_token_left_alone_is_explained_by_what_is_true() {
        let exp = at(27, 3, 30);
        // 03:28, 2 minutes left: Upstox's token would end at 03:30 too.
        let late = words(Strategy::Command, at(27, 3, 28), exp);
        assert_eq!(
            late,
            "token ends 03:30 IST; renewal after 03:30 IST (a token issued before then ends at 03:30 too)"
        );
        // 14:00 the day before: due at 02:30 by refresh_before, when nothing happens.
        let early = words(Strategy::TokenRequest, at(26, 14, 0), exp);
        assert!(
            early.starts_with("renewal is not due yet: token ends 03:30 IST"),
            "{early}"
        );
        assert!(!early.contains("02:30"), "{early}");
        // Strategy none never renews: the command that does.
        let none = words(Strategy::None, at(27, 3, 28), exp);
        assert!(none.contains("with tokenwatch login"), "{none}");
        assert!(!none.contains("not due"), "{none}");
        // A token that does not end at the boundary is renewed when due.
        let other = words(Strategy::Command, at(26, 14, 0), at(26, 20, 0));
        assert_eq!(other, "renewal is not due yet (due Thu 19:00 IST)");
    }
}
