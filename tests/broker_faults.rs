//! The fault suite for the brokers beside Upstox (Zerodha Kite, Fyers, Angel One, Dhan):
//! every fault each broker's simulator injects, against the worker's check of a healthy token (`Core::check`, on tokio's paused
//! clock), and against the Fyers refresh-token renewal. Each case is checked against the
//! rules — a passing fault is retried `monitor.max_retries` times and leaves the token
//! usable and its file untouched; only the broker's own dead-token answer marks it invalid
//! — and rendered into the `broker-faults` table of `docs/reliability.md`
//! (`UPDATE_RELIABILITY=1 cargo test --test broker_faults` rewrites it).

mod common;

use common::doc::{cell, sync_doc_block};
use common::{ist_at, paused_runtime};
use std::sync::Arc;
use tokenwatch::brokers::{Broker, Session, session_token};
use tokenwatch::clock::{Clock, TokioClock};
use tokenwatch::config::{
    AccountConfig, FyersConfig, KiteConfig, MonitorConfig, RenewConfig, Strategy, TokenConfig,
};
use tokenwatch::secret::Secret;
use tokenwatch::token::file::read_token_file_as;
use tokenwatch::token::{Token, TokenState};
use tokenwatch::worker::{CheckOutcome, Core};

/// How often each fault is queued: more than `max_retries`, so every attempt meets it.
const INJECTED: u32 = 5;

/// What a fault should do to a check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Retried, then "API unreachable"; the token stays usable.
    Passing,
    /// The broker's dead-token answer: one call, the token is invalid.
    Dead,
}

/// One row of the table.
struct Row {
    broker: Broker,
    fault: &'static str,
    sends: &'static str,
    kind: Kind,
    calls: u64,
    outcome: String,
    state: TokenState,
    file_changed: bool,
}

fn outcome_name(o: &CheckOutcome) -> String {
    match o {
        CheckOutcome::NoToken => "no token".into(),
        CheckOutcome::Valid(_) => "valid".into(),
        CheckOutcome::Rejected(_) => "rejected".into(),
        CheckOutcome::Unreachable(_) => "API unreachable".into(),
    }
}

fn session(access_token: Secret, issued_at: chrono::DateTime<chrono::Utc>) -> Session {
    Session {
        access_token,
        extended_token: None,
        user_id: None,
        user_name: None,
        email: None,
        issued_at: Some(issued_at),
        refresh_token: None,
        expires_at: None,
    }
}

/// An account of `broker` whose token file is in `dir`; strategy none (checks only).
fn account(broker: Broker, dir: &std::path::Path) -> AccountConfig {
    let file = dir.join(format!("{broker}_token.json"));
    AccountConfig {
        name: "fx".into(),
        broker,
        token: TokenConfig {
            path: file,
            backups: vec![],
            env_file: None,
            on_change: vec![],
        },
        renew: RenewConfig {
            strategy: Strategy::None,
            ..RenewConfig::default()
        },
        ..AccountConfig::default()
    }
}

/// Check a healthy `token` of `account` while the profile call meets a fault, and say what
/// happened.
async fn check_with_fault(
    account: AccountConfig,
    clock: Arc<TokioClock>,
    token: &Token,
    calls: impl Fn() -> u64,
) -> (u64, String, TokenState, bool) {
    let store = tokenwatch::token::store::TokenStore::new(account.token.path.clone(), vec![])
        .with_broker(account.broker);
    store.write(token).unwrap();
    let before = std::fs::read(&account.token.path).unwrap();
    let mut core = Core::new(
        account.clone(),
        MonitorConfig::default(),
        clock.clone() as Arc<dyn Clock>,
    )
    .unwrap();
    let outcome = core.check().await;
    let after = std::fs::read(&account.token.path).unwrap();
    let state = core.state(clock.now());
    // The file still reads as this broker's token.
    read_token_file_as(&account.token.path, account.broker)
        .unwrap()
        .unwrap();
    (calls(), outcome_name(&outcome), state, before != after)
}

/// The rows of `$cases` for `$broker`: each fault against the worker's check of a healthy
/// token, on tokio's paused clock, against the broker's simulator (`Simulator`, `SimConfig`
/// and `Endpoint` of the caller's scope). `$account` builds the account from the simulator's
/// `$config`, its `$server` and the `$base` account; `$session` the login's answer from what
/// the simulator `$issued`.
macro_rules! fault_rows {
    ($broker:expr, $cases:expr,
     |$config:ident, $server:ident, $base:ident| $account:expr,
     |$issued:ident| $session:expr) => {
        $cases
            .into_iter()
            .map(|(fault, name, sends, kind)| {
                let rt = paused_runtime();
                rt.block_on(async {
                    let clock = Arc::new(TokioClock::starting_at(ist_at(26, 10, 0)));
                    let $config = SimConfig::default();
                    let sim = Simulator::new($config.clone(), clock.clone());
                    let $server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
                    let dir = tempfile::tempdir().unwrap();
                    let $base = account($broker, dir.path());
                    let account = $account;
                    let $issued = sim.issue_token();
                    let token = session_token($broker, $session, clock.now(), "oauth").unwrap();
                    sim.inject(Endpoint::Profile, fault, INJECTED);
                    let (calls, outcome, state, file_changed) =
                        check_with_fault(account, clock, &token, || sim.calls(Endpoint::Profile))
                            .await;
                    Row {
                        broker: $broker,
                        fault: name,
                        sends,
                        kind,
                        calls,
                        outcome,
                        state,
                        file_changed,
                    }
                })
            })
            .collect()
    };
}

fn kite_rows() -> Vec<Row> {
    use tokenwatch::brokers::kite::sim::{Endpoint, Fault, SimConfig, Simulator};
    let cases: [(Fault, &str, &str, Kind); 14] = [
        (
            Fault::ServerError,
            "500",
            "HTTP 500, `GeneralException`",
            Kind::Passing,
        ),
        (
            Fault::BadGateway,
            "502",
            "HTTP 502, `DataException`",
            Kind::Passing,
        ),
        (
            Fault::Unavailable,
            "503",
            "HTTP 503, `NetworkException`",
            Kind::Passing,
        ),
        (
            Fault::GatewayTimeout,
            "504",
            "HTTP 504, a gateway's HTML page",
            Kind::Passing,
        ),
        (
            Fault::TooManyRequests { retry_after: None },
            "429",
            "HTTP 429, no `Retry-After`",
            Kind::Passing,
        ),
        (
            Fault::Timeout,
            "timeout",
            "no answer for an hour",
            Kind::Passing,
        ),
        (
            Fault::MalformedJson,
            "malformed JSON",
            "HTTP 200, cut-off JSON",
            Kind::Passing,
        ),
        (
            Fault::HtmlPage,
            "HTML 403",
            "HTTP 403, a firewall's HTML page",
            Kind::Passing,
        ),
        (
            Fault::EndlessBody,
            "endless body",
            "HTTP 200, a body that never ends",
            Kind::Passing,
        ),
        (
            Fault::HugeBody,
            "huge body",
            "HTTP 200 declaring 500 MB",
            Kind::Passing,
        ),
        (
            Fault::TrickleBody,
            "trickle",
            "HTTP 200, one byte a second",
            Kind::Passing,
        ),
        (
            Fault::ConnectionReset,
            "reset",
            "the connection cut mid-answer",
            Kind::Passing,
        ),
        (
            Fault::TokenException,
            "403 TokenException",
            "HTTP 403, `TokenException`: the token is dead",
            Kind::Dead,
        ),
        (
            Fault::TooManyRequests {
                retry_after: Some(2),
            },
            "429 + Retry-After",
            "HTTP 429, `Retry-After: 2`",
            Kind::Passing,
        ),
    ];
    fault_rows!(
        Broker::Kite,
        cases,
        |config, server, base| AccountConfig {
            kite: KiteConfig {
                api_key: Some(config.api_key.clone()),
                api_base: server.base_url.clone(),
                ..KiteConfig::default()
            },
            ..base
        },
        |issued| session(issued.access_token, issued.issued_at)
    )
}

fn fyers_rows() -> Vec<Row> {
    use tokenwatch::brokers::fyers::sim::{Endpoint, Fault, SimConfig, Simulator};
    let cases: [(Fault, &str, &str, Kind); 9] = [
        (
            Fault::ServerError,
            "500",
            "HTTP 500 with Fyers' error JSON",
            Kind::Passing,
        ),
        (
            Fault::Unavailable,
            "503",
            "HTTP 503, a gateway's HTML page",
            Kind::Passing,
        ),
        (
            Fault::TooManyRequests { retry_after: None },
            "429",
            "HTTP 429, `-353` \"API Limit exceeded\"",
            Kind::Passing,
        ),
        (
            Fault::RateLimitCode,
            "-353",
            "HTTP 200, `-353`",
            Kind::Passing,
        ),
        (
            Fault::ConnectionError,
            "-204",
            "HTTP 400, `-204` \"Connection error\"",
            Kind::Passing,
        ),
        (
            Fault::Timeout,
            "timeout",
            "no answer for an hour",
            Kind::Passing,
        ),
        (
            Fault::MalformedJson,
            "malformed JSON",
            "HTTP 200, cut-off JSON",
            Kind::Passing,
        ),
        (
            Fault::HtmlPage,
            "HTML 403",
            "HTTP 403, a firewall's HTML page",
            Kind::Passing,
        ),
        (
            Fault::InvalidToken,
            "401 -16",
            "HTTP 401, `-16`: the token is dead",
            Kind::Dead,
        ),
    ];
    fault_rows!(
        Broker::Fyers,
        cases,
        |config, server, base| AccountConfig {
            fyers: FyersConfig {
                client_id: Some(config.client_id.clone()),
                api_base: server.base_url.clone(),
                ..FyersConfig::default()
            },
            ..base
        },
        |issued| session(issued.access_token, issued.issued_at)
    )
}

fn angel_rows() -> Vec<Row> {
    use tokenwatch::brokers::angel::sim::{Endpoint, Fault, SimConfig, Simulator};
    use tokenwatch::config::AngelConfig;
    let cases: [(Fault, &str, &str, Kind); 10] = [
        (
            Fault::ServerError,
            "500",
            "HTTP 500 with Angel One's error JSON",
            Kind::Passing,
        ),
        (
            Fault::Unavailable,
            "503",
            "HTTP 503, a gateway's HTML page",
            Kind::Passing,
        ),
        (
            Fault::TooManyRequests { retry_after: None },
            "429",
            "HTTP 429 with Angel One's error JSON",
            Kind::Passing,
        ),
        (
            Fault::TryLater,
            "AB1004",
            "HTTP 200, `AB1004` \"Something Went Wrong\"",
            Kind::Passing,
        ),
        (
            Fault::Timeout,
            "timeout",
            "no answer for an hour",
            Kind::Passing,
        ),
        (
            Fault::MalformedJson,
            "malformed JSON",
            "HTTP 200, cut-off JSON",
            Kind::Passing,
        ),
        (
            Fault::HtmlPage,
            "HTML 403",
            "HTTP 403, a firewall's HTML page",
            Kind::Passing,
        ),
        (
            Fault::Empty,
            "empty",
            "HTTP 200 with no body",
            Kind::Passing,
        ),
        (
            Fault::InvalidToken,
            "AG8001 in HTTP 200",
            "HTTP 200, `\"success\":false`, `AG8001`: the token is dead",
            Kind::Dead,
        ),
        (
            Fault::TooManyRequests {
                retry_after: Some(2),
            },
            "429 + Retry-After",
            "HTTP 429, `Retry-After: 2`",
            Kind::Passing,
        ),
    ];
    fault_rows!(
        Broker::Angel,
        cases,
        |config, server, base| AccountConfig {
            angel: AngelConfig {
                api_key: Some(config.api_key.clone()),
                api_base: server.base_url.clone(),
                ..AngelConfig::default()
            },
            ..base
        },
        |issued| session(issued.access_token, issued.issued_at)
    )
}

fn dhan_rows() -> Vec<Row> {
    use tokenwatch::brokers::dhan::sim::{Endpoint, Fault, SimConfig, Simulator};
    use tokenwatch::config::DhanConfig;
    let cases: [(Fault, &str, &str, Kind); 9] = [
        (
            Fault::ServerError,
            "500",
            "HTTP 500, `DH-908`",
            Kind::Passing,
        ),
        (
            Fault::Unavailable,
            "503",
            "HTTP 503, a gateway's HTML page",
            Kind::Passing,
        ),
        (
            Fault::TooManyRequests { retry_after: None },
            "429",
            "HTTP 429, `DH-904`",
            Kind::Passing,
        ),
        (
            Fault::RateLimitCode,
            "DH-904",
            "HTTP 400, `DH-904`",
            Kind::Passing,
        ),
        (
            Fault::ConnectionError,
            "DH-909",
            "HTTP 400, `DH-909`",
            Kind::Passing,
        ),
        (
            Fault::Timeout,
            "timeout",
            "no answer for an hour",
            Kind::Passing,
        ),
        (
            Fault::MalformedJson,
            "malformed JSON",
            "HTTP 200, cut-off JSON",
            Kind::Passing,
        ),
        (
            Fault::HtmlPage,
            "HTML 403",
            "HTTP 403, a firewall's HTML page",
            Kind::Passing,
        ),
        (
            Fault::InvalidToken,
            "401 DH-901",
            "HTTP 401, `DH-901`: the token is dead",
            Kind::Dead,
        ),
    ];
    fault_rows!(
        Broker::Dhan,
        cases,
        |config, server, base| AccountConfig {
            dhan: DhanConfig {
                client_id: Some(config.client_id.clone()),
                api_base: server.base_url.clone(),
                login_base: server.base_url.clone(),
                ..DhanConfig::default()
            },
            ..base
        },
        |issued| Session {
            expires_at: Some(issued.expires_at),
            ..session(issued.access_token, issued.issued_at)
        }
    )
}

/// One row of the refresh-token table.
struct RenewRow {
    fault: &'static str,
    calls: u64,
    outcome: String,
    file_changed: bool,
}

/// A Fyers account with strategy refresh-token whose token has 30 minutes left (renewal due)
/// renews while the refresh grant meets `fault` (or, with `None`, a wrong PIN).
fn fyers_renew_row(
    fault: Option<tokenwatch::brokers::fyers::sim::Fault>,
    on_profile: bool,
    name: &'static str,
) -> RenewRow {
    use tokenwatch::brokers::fyers::client::FyersClient;
    use tokenwatch::brokers::fyers::sim::{Endpoint, SimConfig, Simulator};
    use tokenwatch::worker::{RenewOutcome, core::Lock};
    let rt = paused_runtime();
    rt.block_on(async {
        let clock = Arc::new(TokioClock::starting_at(ist_at(26, 10, 0)));
        let config = SimConfig {
            token_lifetime: Some(std::time::Duration::from_secs(30 * 60)),
            ..SimConfig::default()
        };
        let sim = Simulator::new(config.clone(), clock.clone());
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let secret = Secret::new(config.secret_key.clone());
        let pin = if fault.is_some() {
            config.pin.clone()
        } else {
            "0000".into()
        };
        let account = AccountConfig {
            fyers: FyersConfig {
                client_id: Some(config.client_id.clone()),
                secret_key: Some(secret.clone()),
                pin: Some(Secret::new(pin)),
                api_base: server.base_url.clone(),
                ..FyersConfig::default()
            },
            renew: RenewConfig {
                strategy: Strategy::RefreshToken,
                not_before: chrono::NaiveTime::MIN,
                ..RenewConfig::default()
            },
            ..account(Broker::Fyers, dir.path())
        };
        // A browser login's session: its token and refresh token are stored.
        let client = FyersClient::new(&server.base_url, &[]).unwrap();
        let fs = client
            .exchange(&config.client_id, &sim.issue_auth_code(), &secret)
            .await
            .unwrap();
        let mut login = session(fs.access_token, clock.now());
        login.refresh_token = fs.refresh_token;
        let token = session_token(Broker::Fyers, login, clock.now(), "oauth").unwrap();
        let store = tokenwatch::token::store::TokenStore::new(account.token.path.clone(), vec![])
            .with_broker(Broker::Fyers);
        store.write(&token).unwrap();
        let before = std::fs::read(&account.token.path).unwrap();
        if let Some(fault) = fault {
            let at = if on_profile {
                Endpoint::Profile
            } else {
                Endpoint::Refresh
            };
            sim.inject(at, fault, INJECTED);
        }
        let mut core = Core::new(
            account.clone(),
            MonitorConfig::default(),
            clock.clone() as Arc<dyn Clock>,
        )
        .unwrap();
        let Lock::Held(lock) = core.renewal_lock() else {
            panic!("the renewal lock is free");
        };
        let outcome = match core.renew_holding(lock).await {
            RenewOutcome::Renewed => "renewed".to_string(),
            RenewOutcome::Failed(why) | RenewOutcome::NotUseful(why) => {
                let why = why.split(" (").next().unwrap_or_default().to_string();
                format!("not renewed: {why}")
            }
        };
        let after = std::fs::read(&account.token.path).unwrap();
        RenewRow {
            fault: name,
            calls: sim.calls(Endpoint::Refresh),
            outcome,
            file_changed: before != after,
        }
    })
}

#[test]
fn fyers_refresh_fault_table() {
    use tokenwatch::brokers::fyers::sim::Fault;
    let cases = [
        (Some(Fault::ServerError), "500"),
        (Some(Fault::TooManyRequests { retry_after: None }), "429"),
        (Some(Fault::Timeout), "timeout"),
        (Some(Fault::MalformedJson), "malformed JSON"),
        (Some(Fault::HtmlPage), "HTML 403"),
        (Some(Fault::InvalidToken), "401 -16"),
        (None, "wrong PIN (`-1006`)"),
    ];
    // The grant gave a token, but its check fails: it is stored all the same (the grant may
    // have spent what the old token had), and the next check tells.
    let r = fyers_renew_row(Some(Fault::ServerError), true, "the new token's check: 500");
    let mut problems = Vec::new();
    if r.calls != 1 || r.outcome != "renewed" || !r.file_changed {
        problems.push(format!(
            "{}: {} calls, {}, file changed {}",
            r.fault, r.calls, r.outcome, r.file_changed
        ));
    }
    let mut rows = vec![r];
    let mut table =
        String::from("| Refresh grant meets | Calls | Outcome | Token file |\n|---|---|---|---|\n");
    for (fault, name) in cases {
        let r = fyers_renew_row(fault, false, name);
        // The grant is asked once a round, whatever the fault: a request that may have
        // reached Fyers (with the PIN) is never repeated at once. A passing fault waits for
        // the next round; a refusal (a wrong PIN, Fyers' 401) for a person.
        let refusal = matches!(fault, None | Some(Fault::InvalidToken));
        if r.calls != 1 {
            problems.push(format!("{name}: {} calls, not 1", r.calls));
        }
        let want = if refusal {
            "not renewed: refused, not tried again until the configuration changes or you renew by hand"
        } else {
            "not renewed: failed, tried again at the next round"
        };
        if r.outcome != want {
            problems.push(format!("{name}: {}, not {want}", r.outcome));
        }
        if r.file_changed {
            problems.push(format!("{name}: the token file changed"));
        }
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(r.fault),
            r.calls,
            r.outcome,
            if r.file_changed {
                "changed"
            } else {
                "untouched"
            },
        ));
    }
    for r in rows.drain(..) {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(r.fault),
            r.calls,
            r.outcome,
            if r.file_changed {
                "changed"
            } else {
                "untouched"
            },
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    sync_doc_block("fyers-refresh-faults", &table, &[]).unwrap();
}

/// What is wrong with a row, by the rules.
fn violations(r: &Row, m: &MonitorConfig) -> Vec<String> {
    let mut v = Vec::new();
    match r.kind {
        Kind::Passing => {
            if r.calls != u64::from(m.max_retries) {
                v.push(format!(
                    "{} calls, not monitor.max_retries = {}",
                    r.calls, m.max_retries
                ));
            }
            if r.outcome != "API unreachable" {
                v.push(format!("outcome {}, not API unreachable", r.outcome));
            }
            if !r.state.is_usable() {
                v.push(format!(
                    "the token reads {:?} after a passing fault",
                    r.state
                ));
            }
        }
        Kind::Dead => {
            if r.calls != 1 {
                v.push(format!("{} calls for a dead token, not 1", r.calls));
            }
            if r.state != TokenState::Invalid {
                v.push(format!("state {:?}, not invalid", r.state));
            }
        }
    }
    if r.file_changed {
        v.push("the token file was changed by a check".into());
    }
    v
}

#[test]
fn broker_fault_table() {
    let monitor = MonitorConfig::default();
    let rows: Vec<Row> = kite_rows()
        .into_iter()
        .chain(fyers_rows())
        .chain(angel_rows())
        .chain(dhan_rows())
        .collect();
    let mut problems = Vec::new();
    let mut table = String::from(
        "| Broker | Fault | What the simulator sends | Calls | Check | Token after | Token file |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        for v in violations(r, &monitor) {
            problems.push(format!("{} {}: {v}", r.broker.display_name(), r.fault));
        }
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.broker.display_name(),
            cell(r.fault),
            cell(r.sends),
            r.calls,
            r.outcome,
            r.state.as_str(),
            if r.file_changed {
                "changed"
            } else {
                "untouched"
            },
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    sync_doc_block("broker-faults", &table, &[]).unwrap();
}
