//! A whole simulated day of the worker against the simulator, on tokio's paused clock.

mod common;

use common::*;
use std::collections::BTreeSet;
use tokenwatch::brokers::upstox::sim::Endpoint;
use tokenwatch::messages::{Level, Topic};
use tokenwatch::schedule::Verdict;
use tokenwatch::token::TokenState;
use tokenwatch::token::read_token_file;

#[tokio::test(start_paused = true)]
async fn a_whole_day_checks_warns_waits_for_the_boundary_and_renews_at_not_before() {
    // Thursday 26 Nov 09:00 IST: a token issued now dies Friday 03:30 IST.
    let h = Harness::new(ist_at(26, 9, 0)).await;
    let first = h.store_fresh_token();
    assert_eq!(first.expires_at, ist_at(27, 3, 30));
    let (handle, log) = h.spawn();

    // Just before not_before, a fresh token waits where renew.command reads it.
    h.run_until(ist_at(27, 7, 59)).await;
    assert_eq!(h.command_runs(), 0, "no renewal may run before not_before");
    h.prepare_command_token();
    h.run_until(ist_at(27, 9, 1)).await;
    stop(handle).await;

    // Validations: every 30 minutes from 09:00 to 03:00, once at the 03:30 expiry, the
    // verification of the new token at 08:00, and the 08:30 and 09:00 checks.
    let checks: BTreeSet<_> = snapshots(&log)
        .iter()
        .filter_map(|s| s.last_check_at)
        .collect();
    let mut expected = BTreeSet::new();
    let mut t = ist_at(26, 9, 0);
    while t <= ist_at(27, 3, 30) {
        expected.insert(t);
        t += chrono::Duration::minutes(30);
    }
    expected.extend([ist_at(27, 8, 0), ist_at(27, 8, 30), ist_at(27, 9, 0)]);
    assert_eq!(checks, expected);
    // 38 checks of the first token (09:00..=03:30), the verification of the second at 08:00,
    // and two checks of it: 41 calls in 24 hours, never a loop.
    assert_eq!(h.sim.calls(Endpoint::Profile), 38 + 1 + 2);
    assert_eq!(h.command_runs(), 1);

    // Notifications, in order, at the right moments.
    let seen: Vec<_> = notices(&log)
        .into_iter()
        .map(|n| (n.at, n.level, n.topic, n.title))
        .collect();
    let expect = vec![
        (
            ist_at(27, 0, 30),
            Level::Warning,
            Topic::TokenState,
            "Token expires soon".to_string(),
        ),
        // Exactly 1 h left is still warning; critical is less than critical_before.
        (
            ist_at(27, 2, 30) + chrono::Duration::seconds(1),
            Level::Critical,
            Topic::TokenState,
            "Token about to expire".to_string(),
        ),
        (
            ist_at(27, 3, 30),
            Level::Critical,
            Topic::TokenState,
            "Token expired!".to_string(),
        ),
        (
            ist_at(27, 8, 0),
            Level::Info,
            Topic::Renewal,
            "Token renewed".to_string(),
        ),
        (
            ist_at(27, 8, 0),
            Level::Info,
            Topic::TokenState,
            "Token valid".to_string(),
        ),
    ];
    assert_eq!(seen, expect);

    // The state went healthy → warning → critical → expired → healthy, never invalid.
    let mut states: Vec<TokenState> = snapshots(&log).iter().map(|s| s.state).collect();
    states.dedup();
    assert_eq!(
        states,
        [
            TokenState::Healthy,
            TokenState::Warning,
            TokenState::Critical,
            TokenState::Expired,
            TokenState::Healthy
        ]
    );
    let last = snapshots(&log).pop().unwrap();
    assert!(matches!(last.verdict(), Verdict::Valid(_)));

    // The new token is stored; the first is kept as .prev.
    let stored = read_token_file(&h.token_path()).unwrap().unwrap();
    assert_eq!(stored.expires_at, ist_at(28, 3, 30));
    assert_eq!(stored.obtained_via.as_deref(), Some("command"));
    let prev = read_token_file(&h.token_path().with_file_name("upstox_token.json.prev"))
        .unwrap()
        .unwrap();
    assert!(prev.access_token.same_as(&first.access_token));
}
