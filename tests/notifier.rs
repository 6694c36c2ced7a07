//! The v3 token-request notifier webhook: `check_delivery`'s rules with a fixed `now`, and
//! the receiver end to end over loopback with the simulator standing in for Upstox (a real
//! v3 request and approval, crafted deliveries for every refusal, the HTTP edges), with the
//! logs captured to prove that no token ever reaches a response or a log line.

mod common;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use common::{LogCapture, at_ist, capture_logs};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::auth::notifier::{
    Expectation, MAX_BODY, NotifierServer, Rejection, check_delivery, serve,
};
use tokenwatch::brokers::BrokerClient;
use tokenwatch::brokers::upstox::client::UpstoxClient;
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault, SimConfig, SimServer, Simulator};
use tokenwatch::clock::{Clock, FixedClock};
use tokenwatch::token::expiry::upstox_expiry;
use tokenwatch::token::{ExpirySource, Token, TokenFileFormat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use url::Url;

const HOOK_PATH: &str = "/upstox/hook/3f9c2d7e51a04b8c";

/// The tests' "now": Thursday 26 November 2026, 09:12 IST.
fn now() -> DateTime<Utc> {
    at_ist(2026, 11, 26, 9, 12, 0)
}

/// The next 03:30 IST after [`now`].
fn boundary() -> DateTime<Utc> {
    at_ist(2026, 11, 27, 3, 30, 0)
}

fn ms(t: DateTime<Utc>) -> String {
    t.timestamp_millis().to_string()
}

fn sim_client_id() -> String {
    SimConfig::default().client_id
}

fn expect_user(user: Option<&str>) -> Expectation {
    Expectation {
        client_id: sim_client_id(),
        user_id: user.map(str::to_owned),
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// End-to-end harness: simulator + receiver on loopback
// ---------------------------------------------------------------------------------------

struct Env {
    logs: LogCapture,
    clock: Arc<FixedClock>,
    sim: Simulator,
    sim_server: SimServer,
    notifier: NotifierServer,
    rx: mpsc::Receiver<Token>,
    http: reqwest::Client,
}

impl Env {
    /// Simulator and receiver at [`now`], expecting user `AB1234`.
    async fn start() -> Env {
        Env::start_with(expect_user(Some("AB1234")), None).await
    }

    /// `api_base` overrides where the receiver verifies tokens (default: the simulator).
    async fn start_with(expect: Expectation, api_base: Option<Url>) -> Env {
        let logs = capture_logs();
        let clock = Arc::new(FixedClock::new(now()));
        let sim = Simulator::new(SimConfig::default(), clock.clone() as Arc<dyn Clock>);
        let sim_server = sim.serve(loopback()).await.unwrap();
        let api_base = api_base.unwrap_or_else(|| sim_server.base_url.clone());
        let client = BrokerClient::Upstox(
            UpstoxClient::with_timeouts(&api_base, Duration::from_secs(2), Duration::from_secs(5))
                .unwrap(),
        );
        let (tx, rx) = mpsc::channel(8);
        let notifier = serve(
            loopback(),
            HOOK_PATH.to_string(),
            false,
            expect,
            client,
            clock.clone() as Arc<dyn Clock>,
            tx,
        )
        .await
        .unwrap();
        let env = Env {
            logs,
            clock,
            sim,
            sim_server,
            notifier,
            rx,
            http: common::client(Some(Duration::from_secs(10))),
        };
        let hook = env.hook_url();
        env.sim.set_config(|c| c.notifier_url = Some(hook));
        env
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.notifier.addr)).unwrap()
    }

    fn hook_url(&self) -> Url {
        self.url(HOOK_PATH)
    }

    /// POST `body` to `path` on the receiver: (status, response body).
    async fn post_to(&self, path: &str, body: impl Into<Vec<u8>>) -> (u16, String) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn post(&self, body: impl Into<Vec<u8>>) -> (u16, String) {
        self.post_to(HOOK_PATH, body).await
    }

    /// Upstox's webhook payload for `token`, as the simulator would send it.
    fn payload(&self, token: &tokenwatch::brokers::upstox::sim::IssuedToken) -> Map<String, Value> {
        let Value::Object(map) = json!({
            "client_id": sim_client_id(),
            "user_id": "AB1234",
            "access_token": token.access_token.expose(),
            "token_type": "Bearer",
            "expires_at": ms(token.expires_at),
            "issued_at": ms(token.issued_at),
            "message_type": "access_token",
        }) else {
            unreachable!()
        };
        map
    }

    /// A payload for a freshly issued, valid token, changed by `edit`: (body, token text).
    fn crafted(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> (Vec<u8>, String) {
        let issued = self.sim.issue_token();
        let mut map = self.payload(&issued);
        edit(&mut map);
        (
            serde_json::to_vec(&Value::Object(map)).unwrap(),
            issued.access_token.expose().to_owned(),
        )
    }

    /// Nothing has been handed to the consumer. (The receiver sends on the channel before
    /// it answers, so once the answer is in, anything delivered is already queued.)
    fn assert_nothing_delivered(&mut self) {
        assert!(
            matches!(self.rx.try_recv(), Err(mpsc::error::TryRecvError::Empty)),
            "a token reached the consumer"
        );
    }

    /// The delivery was refused with `status` and a reason containing `reason`, nothing was
    /// delivered, and neither the answer nor the log holds the token.
    fn assert_refused(
        &mut self,
        (status, body): &(u16, String),
        expected_status: u16,
        reason: &str,
        token: &str,
    ) {
        assert_eq!(*status, expected_status, "answer: {body}");
        let answer: Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer["status"], "error", "answer: {body}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(reason),
            "message {message:?} lacks {reason:?}"
        );
        self.assert_nothing_delivered();
        assert!(!token.is_empty());
        assert!(!body.contains(token), "the answer holds the token");
        let logs = self.logs.text();
        assert!(!logs.contains(token), "the log holds the token:\n{logs}");
        let refusal = logs
            .lines()
            .find(|l| l.contains("delivery refused") && l.contains(reason))
            .unwrap_or_else(|| panic!("no refusal logged for {reason:?}:\n{logs}"));
        assert!(refusal.contains(" WARN "), "{refusal}");
        assert!(refusal.contains("peer=127.0.0.1:"), "{refusal}");
        assert!(
            refusal.contains(&format!("status={expected_status}")),
            "{refusal}"
        );
    }

    /// Post a delivery [`Env::crafted`] with `edit`, and check that it is refused (see
    /// [`Env::assert_refused`]).
    async fn refuse_crafted(
        &mut self,
        edit: impl FnOnce(&mut Map<String, Value>),
        status: u16,
        reason: &str,
    ) {
        let (body, token) = self.crafted(edit);
        let answer = self.post(body).await;
        self.assert_refused(&answer, status, reason, &token);
    }

    async fn next_delivery(&mut self) -> Token {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("no delivery within 5 s")
            .expect("channel closed")
    }
}

// ---------------------------------------------------------------------------------------
// The real flow
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn approved_v3_request_delivers_a_verified_token() {
    let mut env = Env::start().await;
    let secret = SimConfig::default().client_secret;

    // The v3 request, as tokenwatch's client would send it.
    let request = env
        .sim_server
        .base_url
        .join(&format!("v3/login/auth/token/request/{}", sim_client_id()))
        .unwrap();
    let response = env
        .http
        .post(request)
        .json(&json!({ "client_secret": secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let ack: Value = response.json().await.unwrap();
    assert_eq!(ack["status"], "success");
    assert_eq!(ack["data"]["notifier_url"], env.hook_url().as_str());
    assert_eq!(ack["data"]["authorization_expiry"], ms(boundary()));
    assert!(env.rx.try_recv().is_err(), "nothing before approval");

    // The user approves on the phone: the simulator posts the webhook.
    assert_eq!(env.sim.approve_pending(), 1);
    let token = env.next_delivery().await;
    assert_eq!(token.expires_at, boundary());
    assert_eq!(token.expires_at, upstox_expiry(env.clock.now()));
    assert_eq!(token.issued_at, Some(now()));
    assert_eq!(token.user_id.as_deref(), Some("AB1234"));
    assert_eq!(token.user_name.as_deref(), Some("Jane Doe"));
    assert_eq!(token.email.as_deref(), Some("jane@example.com"));
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.obtained_via.as_deref(), Some("token-request"));
    assert_eq!(token.format, TokenFileFormat::Format1);
    assert_eq!(token.expiry_source, ExpirySource::ExpiresAt);
    assert!(token.extended_token.is_none());
    // The receiver verified it once, and it is a token Upstox accepts.
    assert_eq!(env.sim.calls(Endpoint::Profile), 1);
    let client = UpstoxClient::new(&env.sim_server.base_url).unwrap();
    let profile = client.profile(&token.access_token).await.unwrap();
    assert_eq!(profile.user_id.as_deref(), Some("AB1234"));

    // Nothing else pending, nothing else delivered; the log tells of the delivery and
    // never shows the token.
    assert_eq!(env.sim.approve_pending(), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    env.assert_nothing_delivered();
    let logs = env.logs.text();
    assert!(
        logs.contains("token delivered and verified"),
        "logs:\n{logs}"
    );
    assert!(!logs.contains(token.access_token.expose()), "logs:\n{logs}");
    assert!(!logs.contains("delivery refused"), "logs:\n{logs}");
}

#[tokio::test]
async fn duplicate_deliveries_are_passed_on() {
    let mut env = Env::start().await;
    let (body, token) = env.crafted(|_| {});
    assert_eq!(
        env.post(body.clone()).await,
        (200, r#"{"status":"success"}"#.into())
    );
    assert_eq!(
        env.post(body).await,
        (200, r#"{"status":"success"}"#.into())
    );
    assert_eq!(env.next_delivery().await.access_token.expose(), token);
    assert_eq!(env.next_delivery().await.access_token.expose(), token);
    env.assert_nothing_delivered();
}

#[tokio::test]
async fn numeric_epoch_fields_are_accepted_over_http() {
    let mut env = Env::start().await;
    let (body, token) = env.crafted(|m| {
        m.insert("expires_at".into(), json!(boundary().timestamp_millis()));
        m.insert("issued_at".into(), json!(now().timestamp_millis()));
    });
    assert_eq!(env.post(body).await.0, 200);
    let delivered = env.next_delivery().await;
    assert_eq!(delivered.access_token.expose(), token);
    assert_eq!(delivered.expires_at, boundary());
    assert_eq!(delivered.issued_at, Some(now()));
}

// ---------------------------------------------------------------------------------------
// One refusal per reason, over HTTP
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refuses_a_body_that_is_not_json() {
    let mut env = Env::start().await;
    let token = env.sim.issue_token().access_token.expose().to_owned();
    // A form-encoded delivery that carries a real token.
    let body = format!("client_id={}&access_token={token}", sim_client_id());
    let answer = env.post(body).await;
    env.assert_refused(&answer, 400, "not a JSON object", &token);
    assert_eq!(env.sim.calls(Endpoint::Profile), 0);
}

#[tokio::test]
async fn a_message_type_holding_the_token_is_not_echoed() {
    let mut env = Env::start().await;
    let issued = env.sim.issue_token();
    let token = issued.access_token.expose().to_owned();
    let mut map = env.payload(&issued);
    map.insert("message_type".into(), json!(token));
    let answer = env.post(serde_json::to_vec(&map).unwrap()).await;
    env.assert_refused(&answer, 400, "(not shown)", &token);
    // Not even a piece of it.
    let piece = &token[token.len() - 20..];
    assert!(!answer.1.contains(piece));
    assert!(!env.logs.text().contains(piece));
}

#[tokio::test]
async fn refuses_a_token_the_profile_says_is_someone_elses() {
    // No user expected, and the payload claims AB1234, but Upstox says the token is ZZ9999's.
    let mut env = Env::start_with(expect_user(None), None).await;
    let (body, token) = env.crafted(|_| {});
    env.sim.set_config(|c| c.user_id = "ZZ9999".into());
    let answer = env.post(body).await;
    env.assert_refused(&answer, 400, "not for the expected Upstox user", &token);
    assert_eq!(env.sim.calls(Endpoint::Profile), 1);
}

/// One test per refusal: a fresh, valid delivery changed by the edit is refused with the
/// status and the reason (see [`Env::refuse_crafted`]), after `profile calls` calls of the
/// profile API when given.
macro_rules! refusals {
    ($($name:ident: $edit:expr => $status:literal, $reason:expr $(, profile calls $calls:literal)?;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let mut env = Env::start().await;
            env.refuse_crafted($edit, $status, $reason).await;
            $(assert_eq!(env.sim.calls(Endpoint::Profile), $calls);)?
        }
    )*};
}

refusals! {
    refuses_another_message_type: set("message_type", json!("order_update")) =>
        400, r#"message_type is "order_update""#;
    refuses_another_client_id: set("client_id", json!("another-app")) => 400, "client_id";
    refuses_another_user_when_one_is_expected: set("user_id", json!("ZZ9999")) =>
        400, "not for the expected Upstox user", profile calls 0;
    // The token was never sent, so it cannot leak; check nothing else got through.
    refuses_a_delivery_without_a_token: field("access_token", None) => 400, "no access_token";
    refuses_a_blank_token: set("access_token", json!("   ")) => 400, "no access_token";
    refuses_a_missing_expiry: field("expires_at", None) => 400, "expires_at is missing";
    refuses_a_garbage_expiry: set("expires_at", json!("tomorrow morning")) =>
        400, r#"expires_at "tomorrow morning" is not epoch milliseconds"#;
}

#[tokio::test]
async fn refuses_an_expiry_in_the_past() {
    let mut env = Env::start().await;
    // Yesterday's genuine token: issued 25 Nov 09:00 IST, dead since 26 Nov 03:30.
    env.clock.set(at_ist(2026, 11, 25, 9, 0, 0));
    let (body, token) = env.crafted(|_| {});
    env.clock.set(now());
    let answer = env.post(body).await;
    env.assert_refused(
        &answer,
        400,
        "expires_at 2026-11-26T03:30:00+05:30 is not after now (2026-11-26T09:12:00+05:30)",
        &token,
    );
    assert_eq!(env.sim.calls(Endpoint::Profile), 0);
}

#[tokio::test]
async fn refuses_an_expiry_beyond_the_next_0330() {
    let mut env = Env::start().await;
    let (body, token) = env.crafted(|m| {
        m.insert(
            "expires_at".into(),
            json!(ms(boundary() + ChronoDuration::seconds(61))),
        );
    });
    let answer = env.post(body).await;
    env.assert_refused(
        &answer,
        400,
        "expires_at 2026-11-27T03:31:01+05:30 is later than the next 03:30 IST boundary \
         (2026-11-27T03:30:00+05:30",
        &token,
    );
    env.refuse_crafted(
        |m| {
            m.insert(
                "expires_at".into(),
                json!(ms(boundary() + ChronoDuration::days(1))),
            );
        },
        400,
        "later than the next 03:30 IST boundary",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_token_upstox_never_issued() {
    let mut env = Env::start().await;
    let issued = env.sim.issue_token();
    let real = issued.access_token.expose().to_owned();
    // Same header and claims, forged signature.
    let (head, _) = real.rsplit_once('.').unwrap();
    let forged = format!("{head}.Zm9yZ2VkLXNpZ25hdHVyZS1ub3QtYnktdXBzdG94");
    let mut map = env.payload(&issued);
    map.insert("access_token".into(), json!(forged));
    let answer = env.post(serde_json::to_vec(&map).unwrap()).await;
    env.assert_refused(&answer, 400, "Upstox does not accept the token", &forged);
    assert!(answer.1.contains("UDAPI100050"), "{}", answer.1);
    assert_eq!(env.sim.calls(Endpoint::Profile), 1);

    // A genuine token that has since been revoked is refused the same way.
    env.sim.revoke_all();
    let answer = env
        .post(serde_json::to_vec(&env.payload(&issued)).unwrap())
        .await;
    env.assert_refused(&answer, 400, "Upstox does not accept the token", &real);
    assert_eq!(env.sim.calls(Endpoint::Profile), 2);
}

#[tokio::test]
async fn an_unreachable_profile_api_answers_503_and_a_retry_succeeds() {
    let mut env = Env::start().await;
    env.sim.inject(Endpoint::Profile, Fault::ServerError, 1);
    let (body, token) = env.crafted(|_| {});
    let answer = env.post(body.clone()).await;
    env.assert_refused(
        &answer,
        503,
        "cannot verify the token with Upstox now",
        &token,
    );
    assert!(answer.1.contains("server error"), "{}", answer.1);

    // Upstox retries the same delivery once the API is back.
    assert_eq!(
        env.post(body).await,
        (200, r#"{"status":"success"}"#.into())
    );
    assert_eq!(env.next_delivery().await.access_token.expose(), token);
    assert_eq!(env.sim.calls(Endpoint::Profile), 2);
}

#[tokio::test]
async fn a_closed_profile_port_answers_503() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let base = Url::parse(&format!("http://{closed}/")).unwrap();
    let mut env = Env::start_with(expect_user(Some("AB1234")), Some(base)).await;
    env.refuse_crafted(|_| {}, 503, "cannot connect").await;
    assert_eq!(env.sim.calls(Endpoint::Profile), 0);
}

#[tokio::test]
async fn no_consumer_answers_503() {
    let mut env = Env::start().await;
    let (body, token) = env.crafted(|_| {});
    env.rx.close();
    let answer = env.post(body).await;
    assert_eq!(answer.0, 503, "{}", answer.1);
    assert!(answer.1.contains("not taking tokens"), "{}", answer.1);
    assert!(!answer.1.contains(&token));
    assert!(!env.logs.text().contains(&token));
}

// ---------------------------------------------------------------------------------------
// HTTP edges
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn other_paths_are_not_found() {
    let mut env = Env::start().await;
    let (body, _) = env.crafted(|_| {});
    for path in ["/", "/upstox/hook", &format!("{HOOK_PATH}/"), "/other"] {
        let (status, _) = env.post_to(path, body.clone()).await;
        assert_eq!(status, 404, "{path}");
    }
    env.assert_nothing_delivered();
    assert_eq!(env.sim.calls(Endpoint::Profile), 0);
}

#[tokio::test]
async fn other_methods_on_the_path_are_not_allowed() {
    let mut env = Env::start().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = env
            .http
            .request(method.clone(), env.hook_url())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    env.assert_nothing_delivered();
    assert!(env.logs.text().contains("method GET not allowed"));
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused() {
    let mut env = Env::start().await;
    // A valid delivery padded to 100 KiB.
    let (body, token) = env.crafted(|m| {
        m.insert("pad".into(), json!("x".repeat(100 * 1024)));
    });
    assert!(body.len() > 100 * 1024);
    let answer = env.post(body).await;
    env.assert_refused(&answer, 413, "larger than 64 KiB", &token);

    // Padded to exactly the limit it is accepted; one byte more is not.
    let issued = env.sim.issue_token();
    let token = issued.access_token.expose().to_owned();
    let mut map = env.payload(&issued);
    map.insert("pad".into(), json!(""));
    let bare = serde_json::to_vec(&map).unwrap().len();
    map.insert("pad".into(), json!("x".repeat(MAX_BODY - bare + 1)));
    let over = serde_json::to_vec(&map).unwrap();
    assert_eq!(over.len(), MAX_BODY + 1);
    let answer = env.post(over).await;
    env.assert_refused(&answer, 413, "larger than 64 KiB", &token);
    map.insert("pad".into(), json!("x".repeat(MAX_BODY - bare)));
    let exact = serde_json::to_vec(&map).unwrap();
    assert_eq!(exact.len(), MAX_BODY);
    assert_eq!(env.post(exact).await.0, 200);
    assert_eq!(env.next_delivery().await.access_token.expose(), token);
}

/// POST `body` to the hook with `Transfer-Encoding: chunked` (no Content-Length) over a raw
/// connection: the whole answer, status line first.
async fn post_chunked(addr: SocketAddr, body: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {HOOK_PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8 * 1024) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may stop reading once it has refused.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A chunked body (no Content-Length) is held to the same limit, to the byte.
#[tokio::test]
async fn chunked_bodies_over_64_kib_are_refused() {
    let mut env = Env::start().await;
    let (body, token) = env.crafted(|m| {
        m.insert("pad".into(), json!("x".repeat(100 * 1024)));
    });
    let answer = post_chunked(env.notifier.addr, &body).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains(&token));
    env.assert_nothing_delivered();
    assert!(!env.logs.text().contains(&token));

    let issued = env.sim.issue_token();
    let mut map = env.payload(&issued);
    map.insert("pad".into(), json!(""));
    let bare = serde_json::to_vec(&map).unwrap().len();
    map.insert("pad".into(), json!("x".repeat(MAX_BODY - bare + 1)));
    let answer = post_chunked(env.notifier.addr, &serde_json::to_vec(&map).unwrap()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    env.assert_nothing_delivered();
    map.insert("pad".into(), json!("x".repeat(MAX_BODY - bare)));
    let answer = post_chunked(env.notifier.addr, &serde_json::to_vec(&map).unwrap()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        env.next_delivery().await.access_token.expose(),
        issued.access_token.expose()
    );
}

#[tokio::test]
async fn non_loopback_listen_needs_allow_remote() {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
    let client = BrokerClient::Upstox(
        UpstoxClient::new(&Url::parse("http://127.0.0.1:9/").unwrap()).unwrap(),
    );
    for listen in [
        "0.0.0.0:0",
        "192.0.2.10:8765",
        "[::]:0",
        "[::ffff:10.1.2.3]:0",
    ] {
        let (tx, _rx) = mpsc::channel(1);
        let err = serve(
            listen.parse().unwrap(),
            HOOK_PATH.into(),
            false,
            expect_user(None),
            client.clone(),
            clock.clone(),
            tx,
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{listen}");
        assert!(err.to_string().contains("not a loopback address"), "{err}");
    }
    // Allowed explicitly, the wildcard address is served.
    let (tx, _rx) = mpsc::channel(1);
    let server = serve(
        "0.0.0.0:0".parse().unwrap(),
        HOOK_PATH.into(),
        true,
        expect_user(None),
        client.clone(),
        clock.clone(),
        tx,
    )
    .await
    .unwrap();
    assert!(server.addr.ip().is_unspecified());
    assert_ne!(server.addr.port(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn an_empty_path_is_an_error_and_a_bare_one_gets_its_slash() {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
    let client = BrokerClient::Upstox(
        UpstoxClient::new(&Url::parse("http://127.0.0.1:9/").unwrap()).unwrap(),
    );
    let (tx, _rx) = mpsc::channel(1);
    let err = serve(
        loopback(),
        "  ".into(),
        false,
        expect_user(None),
        client.clone(),
        clock.clone(),
        tx.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let server = serve(
        loopback(),
        "hook-abc".into(),
        false,
        expect_user(None),
        client,
        clock,
        tx,
    )
    .await
    .unwrap();
    let response = common::client(Some(Duration::from_secs(10)))
        .get(format!("http://{}/hook-abc", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_receiver() {
    let env = Env::start().await;
    let url = env.hook_url();
    let Env { notifier, http, .. } = env;
    notifier.shutdown().await;
    let err = http.post(url).body("{}").send().await.unwrap_err();
    assert!(err.is_connect(), "{err}");
}

// ---------------------------------------------------------------------------------------
// check_delivery, pure, with a fixed now
// ---------------------------------------------------------------------------------------

const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJrZXlfaWQiOiJza192MS4wIiwiYWxnIjoiSFMyNTYifQ.eyJzdWIiOiJBQjEyMzQifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";

fn payload(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    let Value::Object(mut map) = json!({
        "client_id": sim_client_id(),
        "user_id": "AB1234",
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_at": ms(boundary()),
        "issued_at": ms(now()),
        "message_type": "access_token",
    }) else {
        unreachable!()
    };
    edit(&mut map);
    serde_json::to_vec(&map).unwrap()
}

fn check_at(
    at: DateTime<Utc>,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<Token, Rejection> {
    check_delivery(&payload(edit), &expect_user(Some("AB1234")), at)
}

fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<Token, Rejection> {
    check_at(FixedClock::new(now()).now(), edit)
}

fn expiring(at: DateTime<Utc>) -> impl FnOnce(&mut Map<String, Value>) {
    set("expires_at", json!(ms(at)))
}

/// An edit that sets `key` to `value`.
fn set(key: &'static str, value: Value) -> impl FnOnce(&mut Map<String, Value>) {
    field(key, Some(value))
}

/// An edit that sets `key` to `value`, or removes it (`None`).
fn field(key: &'static str, value: Option<Value>) -> impl FnOnce(&mut Map<String, Value>) {
    move |m| match value {
        None => {
            m.remove(key);
        }
        Some(v) => {
            m.insert(key.into(), v);
        }
    }
}

#[test]
fn a_valid_delivery_becomes_a_token() {
    let t = check(|_| {}).unwrap();
    assert_eq!(t.access_token.expose(), TOKEN);
    assert_eq!(t.token_type, "Bearer");
    assert!(t.extended_token.is_none());
    assert_eq!(t.user_id.as_deref(), Some("AB1234"));
    assert_eq!(t.user_name, None);
    assert_eq!(t.email, None);
    assert_eq!(t.issued_at, Some(now()));
    assert_eq!(t.expires_at, boundary());
    assert_eq!(t.expiry_source, ExpirySource::ExpiresAt);
    assert_eq!(t.obtained_via.as_deref(), Some("token-request"));
    assert_eq!(t.format, TokenFileFormat::Format1);
}

#[test]
fn epoch_fields_may_be_numbers_and_issued_at_may_be_absent() {
    let t = check(|m| {
        m.insert("expires_at".into(), json!(boundary().timestamp_millis()));
        m.insert("issued_at".into(), json!(now().timestamp_millis() - 5000));
    })
    .unwrap();
    assert_eq!(t.expires_at, boundary());
    assert_eq!(t.issued_at, Some(now() - ChronoDuration::seconds(5)));
    // Absent, unparsable, or after the expiry: the issue time is now.
    for issued in [
        None,
        Some(json!("soon")),
        Some(json!(ms(boundary() + ChronoDuration::seconds(1)))),
    ] {
        let t = check(field("issued_at", issued)).unwrap();
        assert_eq!(t.issued_at, Some(now()));
    }
    // Whitespace around the digits is tolerated.
    let t = check(|m| {
        m.insert("expires_at".into(), json!(format!(" {} ", ms(boundary()))));
    })
    .unwrap();
    assert_eq!(t.expires_at, boundary());
}

#[test]
fn expiry_boundaries_are_exact() {
    let bad = |r: Result<Token, Rejection>| matches!(r, Err(Rejection::BadExpiry(_)));
    // Exactly the next 03:30 IST, and up to 60 s of skew beyond it.
    assert_eq!(check(expiring(boundary())).unwrap().expires_at, boundary());
    assert!(check(expiring(boundary() + ChronoDuration::seconds(60))).is_ok());
    assert_eq!(
        check(expiring(boundary() + ChronoDuration::seconds(61))).unwrap_err(),
        Rejection::BadExpiry(
            "expires_at 2026-11-27T03:31:01+05:30 is later than the next 03:30 IST boundary \
             (2026-11-27T03:30:00+05:30, 60s allowed for clock skew)"
                .into()
        )
    );
    assert!(bad(check(expiring(boundary() + ChronoDuration::days(1)))));
    // Must be strictly after now.
    assert!(check(expiring(now() + ChronoDuration::milliseconds(1))).is_ok());
    assert_eq!(
        check(expiring(now())).unwrap_err(),
        Rejection::BadExpiry(
            "expires_at 2026-11-26T09:12:00+05:30 is not after now (2026-11-26T09:12:00+05:30)"
                .into()
        )
    );
    assert!(bad(check(expiring(now() - ChronoDuration::hours(6)))));
}

#[test]
fn expiry_window_around_0330() {
    let bad = |r: Result<Token, Rejection>| matches!(r, Err(Rejection::BadExpiry(_)));
    let same_day = at_ist(2026, 11, 26, 3, 30, 0);
    let next_day = at_ist(2026, 11, 27, 3, 30, 0);
    // At 02:00 a token dies at 03:30 the same morning; one for the next day is too long.
    let two_am = at_ist(2026, 11, 26, 2, 0, 0);
    assert!(check_at(two_am, expiring(same_day)).is_ok());
    assert!(bad(check_at(two_am, expiring(next_day))));
    // At exactly 03:30 the same-morning boundary has passed: only the next day's is valid.
    assert!(bad(check_at(same_day, expiring(same_day))));
    assert!(check_at(same_day, expiring(next_day)).is_ok());
    // In the last minute before 03:30 the sender's clock may already be past it.
    assert!(check_at(at_ist(2026, 11, 26, 3, 29, 30), expiring(next_day)).is_ok());
    assert!(check_at(at_ist(2026, 11, 26, 3, 29, 0), expiring(next_day)).is_ok());
    assert!(bad(check_at(
        at_ist(2026, 11, 26, 3, 28, 59),
        expiring(next_day)
    )));
}

#[test]
fn bad_expiry_values() {
    let with = |v: Value| {
        check(move |m| {
            m.insert("expires_at".into(), v);
        })
        .unwrap_err()
    };
    let missing = Rejection::BadExpiry("expires_at is missing".into());
    assert_eq!(
        check(|m| {
            m.remove("expires_at");
        })
        .unwrap_err(),
        missing
    );
    assert_eq!(with(Value::Null), missing);
    assert_eq!(
        with(json!("tomorrow")),
        Rejection::BadExpiry(r#"expires_at "tomorrow" is not epoch milliseconds"#.into())
    );
    assert_eq!(
        with(json!(1.5)),
        Rejection::BadExpiry("expires_at 1.5 is not epoch milliseconds".into())
    );
    assert_eq!(
        with(json!(true)),
        Rejection::BadExpiry("expires_at a boolean is not epoch milliseconds".into())
    );
    assert_eq!(
        with(json!("")),
        Rejection::BadExpiry(r#"expires_at "" is not epoch milliseconds"#.into())
    );
    // Epoch seconds read as milliseconds land in January 1970: in the past.
    assert!(matches!(
        with(json!(boundary().timestamp())),
        Rejection::BadExpiry(s) if s.contains("is not after now")
    ));
    // A token in the expiry field is not quoted back.
    let r = with(json!(TOKEN));
    assert!(!r.to_string().contains(&TOKEN[..20]), "{r}");
}

#[test]
fn not_json() {
    let e = expect_user(Some("AB1234"));
    for body in [
        &b""[..],
        b"not json",
        b"[1,2]",
        b"\"access_token\"",
        b"42",
        b"null",
        b"\xff\xfe",
        b"{\"a\":",
    ] {
        assert_eq!(
            check_delivery(body, &e, now()).unwrap_err(),
            Rejection::NotJson,
            "{body:?}"
        );
    }
}

#[test]
fn message_type_must_be_access_token() {
    let with = |v: Option<Value>| check(field("message_type", v)).unwrap_err();
    assert_eq!(
        with(Some(json!("order_update"))),
        Rejection::WrongMessageType("\"order_update\"".into())
    );
    assert_eq!(
        with(Some(json!("ACCESS_TOKEN"))),
        Rejection::WrongMessageType("\"ACCESS_TOKEN\"".into())
    );
    assert_eq!(with(None), Rejection::WrongMessageType("missing".into()));
    assert_eq!(
        with(Some(json!(7))),
        Rejection::WrongMessageType("7".into())
    );
    assert_eq!(
        with(Some(json!({"a": 1}))),
        Rejection::WrongMessageType("an object".into())
    );
    // Short pieces of the token, or the token itself, are not echoed.
    assert_eq!(
        with(Some(json!(&TOKEN[10..30]))),
        Rejection::WrongMessageType("a value resembling the token (not shown)".into())
    );
    assert_eq!(
        with(Some(json!(TOKEN))),
        Rejection::WrongMessageType(format!("a {}-character value (not shown)", TOKEN.len()))
    );
    assert_eq!(
        with(Some(json!("order_update"))).to_string(),
        r#"message_type is "order_update", expected "access_token""#
    );
}

#[test]
fn client_id_must_match() {
    for v in [
        Some(json!("another-app")),
        Some(json!(12)),
        Some(json!("")),
        None,
    ] {
        let r = check(field("client_id", v));
        assert_eq!(r.unwrap_err(), Rejection::WrongClient);
    }
}

#[test]
fn user_id_must_match_when_expected() {
    let with = |expect: Option<&str>, v: Option<Value>| {
        check_delivery(&payload(field("user_id", v)), &expect_user(expect), now())
    };
    assert_eq!(
        with(Some("AB1234"), Some(json!("ZZ9999"))).unwrap_err(),
        Rejection::WrongUser
    );
    assert_eq!(
        with(Some("AB1234"), None).unwrap_err(),
        Rejection::WrongUser
    );
    assert_eq!(
        with(Some("AB1234"), Some(json!(""))).unwrap_err(),
        Rejection::WrongUser
    );
    // User ids compare without regard to ASCII case.
    assert_eq!(
        with(Some("ab1234"), Some(json!("AB1234")))
            .unwrap()
            .user_id
            .as_deref(),
        Some("AB1234")
    );
    // No expectation: any user, or none.
    assert_eq!(
        with(None, Some(json!("ZZ9999")))
            .unwrap()
            .user_id
            .as_deref(),
        Some("ZZ9999")
    );
    assert_eq!(with(None, None).unwrap().user_id, None);
}

#[test]
fn access_token_must_be_present() {
    for v in [
        None,
        Some(json!("")),
        Some(json!("   ")),
        Some(json!(123)),
        Some(Value::Null),
    ] {
        let r = check(field("access_token", v));
        assert_eq!(r.unwrap_err(), Rejection::NoToken);
    }
    // Surrounding whitespace is trimmed.
    let t = check(|m| {
        m.insert("access_token".into(), json!(format!(" {TOKEN}\n")));
    })
    .unwrap();
    assert_eq!(t.access_token.expose(), TOKEN);
}

#[test]
fn the_first_failing_check_is_reported() {
    // Wrong type, wrong client, no token, bad expiry: the message type is reported.
    let r = check(|m| {
        m.insert("message_type".into(), json!("order_update"));
        m.insert("client_id".into(), json!("x"));
        m.remove("access_token");
        m.remove("expires_at");
    });
    assert_eq!(
        r.unwrap_err(),
        Rejection::WrongMessageType("\"order_update\"".into())
    );
    let r = check(|m| {
        m.insert("client_id".into(), json!("x"));
        m.insert("user_id".into(), json!("ZZ9999"));
    });
    assert_eq!(r.unwrap_err(), Rejection::WrongClient);
    let r = check(|m| {
        m.insert("user_id".into(), json!("ZZ9999"));
        m.remove("access_token");
    });
    assert_eq!(r.unwrap_err(), Rejection::WrongUser);
    let r = check(|m| {
        m.remove("access_token");
        m.remove("expires_at");
    });
    assert_eq!(r.unwrap_err(), Rejection::NoToken);
}

#[test]
fn rejections_never_show_the_token_and_map_to_statuses() {
    let all = [
        Rejection::NotJson,
        Rejection::WrongMessageType("missing".into()),
        Rejection::WrongClient,
        Rejection::WrongUser,
        Rejection::NoToken,
        Rejection::BadExpiry("x".into()),
        Rejection::RejectedByUpstox("x".into()),
        Rejection::Unverifiable("x".into()),
    ];
    for r in &all {
        let expected = if matches!(r, Rejection::Unverifiable(_)) {
            503
        } else {
            400
        };
        assert_eq!(r.status_code(), expected, "{r:?}");
    }
    // Every refusal check_delivery can produce from a body holding the token.
    let bodies: Vec<Vec<u8>> = vec![
        format!("access_token={TOKEN}").into_bytes(),
        payload(|m| {
            m.insert("message_type".into(), json!(TOKEN));
        }),
        payload(|m| {
            m.insert("client_id".into(), json!(TOKEN));
        }),
        payload(|m| {
            m.insert("user_id".into(), json!(TOKEN));
        }),
        payload(|m| {
            m.insert("expires_at".into(), json!(TOKEN));
        }),
        payload(|m| {
            m.insert("expires_at".into(), json!(&TOKEN[..30]));
        }),
        payload(|m| {
            m.insert("expires_at".into(), json!(ms(now())));
        }),
    ];
    for body in bodies {
        let r = check_delivery(&body, &expect_user(Some("AB1234")), now()).unwrap_err();
        let text = format!("{r} {r:?}");
        assert!(!text.contains(&TOKEN[..12]), "{text}");
        assert!(!text.contains(&TOKEN[TOKEN.len() - 12..]), "{text}");
    }
}
