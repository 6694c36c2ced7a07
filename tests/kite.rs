//! The Kite Connect adapter against the Kite simulator over loopback: the login's redirect,
//! the checksum exchange, the profile check through the 06:00 IST expiry, logout, faults,
//! and no token or secret in any text the adapter makes.

mod common;

use common::{Leaks, at_ist, capture_logs, client, fetch};
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::kite::client::{ApiError, KiteClient, Session, checksum};
use tokenwatch::brokers::kite::login::{Callback, CallbackProblem, login_url, read_callback};
use tokenwatch::brokers::kite::sim::{Endpoint, Fault, SimConfig, SimServer, Simulator};
use tokenwatch::clock::FixedClock;
use tokenwatch::secret::Secret;
use url::Url;

const STATE: &str = "kite-test-state-0123456789abcdefghijklmnop";

/// A Kite simulator on a free loopback port, its clock and a client for it.
struct Kite {
    clock: Arc<FixedClock>,
    sim: Simulator,
    server: SimServer,
    client: KiteClient,
    config: SimConfig,
}

impl Kite {
    /// Thursday 26 November 2026, 09:15 IST.
    async fn start(auto_approve: bool) -> Kite {
        let clock = Arc::new(FixedClock::new(at_ist(2026, 11, 26, 9, 15, 0)));
        let config = SimConfig {
            auto_approve,
            ..SimConfig::default()
        };
        let sim = Simulator::new(config.clone(), clock.clone());
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = KiteClient::new(&server.base_url).unwrap();
        Kite {
            clock,
            sim,
            server,
            client,
            config,
        }
    }

    fn secret(&self) -> Secret {
        Secret::new(self.config.api_secret.clone())
    }

    /// The browser's part: open the login address and follow nothing; the redirect.
    async fn browser_login(&self, state: &Secret) -> Url {
        let url = login_url(&self.server.base_url, &self.config.api_key, state);
        let resp = fetch(client(Some(Duration::from_secs(30))).get(url.as_str())).await;
        assert_eq!(resp.status, 302, "{}", resp.everything());
        Url::parse(resp.location().expect("a Location")).unwrap()
    }

    async fn exchange(&self, request_token: &Secret) -> Result<Session, ApiError> {
        self.client
            .exchange(&self.config.api_key, request_token, &self.secret())
            .await
    }

    /// A session from a whole login: browser, redirect, exchange.
    async fn login(&self) -> Session {
        let state = Secret::new(STATE);
        let back = self.browser_login(&state).await;
        let Ok(Callback::Code(request_token)) = read_callback(back.query(), &state) else {
            panic!("no request token in {back}");
        };
        self.exchange(&request_token).await.unwrap()
    }
}

#[tokio::test]
async fn the_login_redirect_carries_the_request_token_and_brings_the_state_back() {
    let kite = Kite::start(true).await;
    let state = Secret::new(STATE);
    let url = login_url(&kite.server.base_url, &kite.config.api_key, &state);
    assert!(
        url.as_str()
            .contains(&format!("redirect_params=state%3D{STATE}")),
        "{url}"
    );
    let back = kite.browser_login(&state).await;
    assert!(
        back.as_str().starts_with(&kite.config.redirect_url),
        "{back}"
    );
    let pairs: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("status"), Some("success"));
    assert_eq!(get("action"), Some("login"));
    assert_eq!(get("state"), Some(STATE));
    assert!(get("request_token").is_some_and(|t| t.len() >= 20));
    assert!(matches!(
        read_callback(back.query(), &state),
        Ok(Callback::Code(_))
    ));
    assert_eq!(kite.sim.calls(Endpoint::Login), 1);

    // The same redirect with another state is refused, and so is one without.
    let mut forged = back.clone();
    forged.set_query(Some(
        &back
            .query()
            .unwrap()
            .replace(&format!("state={STATE}"), "state=forged"),
    ));
    assert_eq!(
        read_callback(forged.query(), &state).unwrap_err(),
        CallbackProblem::WrongState
    );
    let token = get("request_token").unwrap();
    assert_eq!(
        read_callback(
            Some(&format!("request_token={token}&status=success")),
            &state
        )
        .unwrap_err(),
        CallbackProblem::MissingState
    );
}

#[tokio::test]
async fn the_login_page_approves_or_denies_and_refuses_a_wrong_api_key() {
    let kite = Kite::start(false).await;
    let state = Secret::new(STATE);
    let url = login_url(&kite.server.base_url, &kite.config.api_key, &state);
    let http = client(Some(Duration::from_secs(30)));
    let page = fetch(http.get(url.as_str())).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Approve") && page.body.contains("Deny"),
        "{}",
        page.body
    );
    let decide = |decision: &str| {
        let form = [
            ("api_key", kite.config.api_key.clone()),
            ("redirect_params", format!("state={STATE}")),
            ("decision", decision.to_string()),
        ];
        http.post(kite.server.base_url.join("connect/decision").unwrap())
            .form(&form)
    };
    let approved = fetch(decide("approve")).await;
    let back = Url::parse(approved.location().unwrap()).unwrap();
    assert!(matches!(
        read_callback(back.query(), &state),
        Ok(Callback::Code(_))
    ));
    let denied = fetch(decide("deny")).await;
    let back = Url::parse(denied.location().unwrap()).unwrap();
    let Ok(Callback::Denied { error, .. }) = read_callback(back.query(), &state) else {
        panic!("not a denial: {back}");
    };
    assert_eq!(error, "cancelled");

    let mut wrong = url.clone();
    wrong.set_query(Some(&url.query().unwrap().replace("api_key=", "api_key=x")));
    let refused = fetch(http.get(wrong.as_str())).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error_type"], "InputException");
}

#[tokio::test]
async fn a_request_token_is_exchanged_once() {
    let kite = Kite::start(true).await;
    let state = Secret::new(STATE);
    let back = kite.browser_login(&state).await;
    let Ok(Callback::Code(request_token)) = read_callback(back.query(), &state) else {
        panic!("no request token in {back}");
    };
    let session = kite.exchange(&request_token).await.unwrap();
    assert_eq!(session.user_id.as_deref(), Some("ZK1234"));
    assert_eq!(session.user_name.as_deref(), Some("Jane Doe"));
    assert_eq!(session.email.as_deref(), Some("jane@example.com"));
    assert!(session.refresh_token.is_none());
    // Opaque, not a JWT.
    assert!(!session.access_token.expose().contains('.'));
    assert!(session.access_token.len() >= 20);
    // login_time is the simulator's clock, read as IST; the token dies at 06:00 IST next day.
    let now = at_ist(2026, 11, 26, 9, 15, 0);
    assert_eq!(session.login_time, Some(now));
    assert_eq!(
        session.expires_at(now + chrono::Duration::seconds(1)),
        at_ist(2026, 11, 27, 6, 0, 0)
    );

    // The second exchange of the same request token is refused: the login failed, the
    // stored token is not declared dead.
    let again = kite.exchange(&request_token).await.unwrap_err();
    assert!(
        matches!(&again, ApiError::Rejected { status: 403, code: Some(c), .. } if c == "TokenException"),
        "{again:?}"
    );
    assert_eq!(kite.sim.calls(Endpoint::Exchange), 2);
}

#[tokio::test]
async fn a_wrong_checksum_is_rejected() {
    let kite = Kite::start(true).await;
    let request_token = kite.sim.issue_request_token();
    let e = kite
        .client
        .exchange(
            &kite.config.api_key,
            &request_token,
            &Secret::new("not-the-secret"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Rejected { status: 403, code: Some(c), message, .. } if c == "InputException" && message == "Invalid checksum"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_request_token_lives_five_minutes() {
    let kite = Kite::start(true).await;
    let fresh = kite.sim.issue_request_token();
    kite.clock.advance(chrono::Duration::seconds(299));
    assert!(kite.exchange(&fresh).await.is_ok());
    let old = kite.sim.issue_request_token();
    kite.clock.advance(chrono::Duration::seconds(300));
    assert!(matches!(
        kite.exchange(&old).await,
        Err(ApiError::Rejected { status: 403, .. })
    ));
}

#[tokio::test]
async fn a_token_checks_valid_until_six_ist_then_invalid() {
    let kite = Kite::start(true).await;
    let session = kite.login().await;
    let check = || {
        kite.client
            .profile(&kite.config.api_key, &session.access_token)
    };
    let profile = check().await.unwrap();
    assert_eq!(profile.user_id.as_deref(), Some("ZK1234"));
    assert_eq!(profile.email.as_deref(), Some("jane@example.com"));

    kite.clock.set(at_ist(2026, 11, 27, 5, 59, 59));
    assert!(check().await.is_ok());
    kite.clock.set(at_ist(2026, 11, 27, 6, 0, 0));
    let e = check().await.unwrap_err();
    assert!(
        matches!(&e, ApiError::Invalid { code: Some(c), .. } if c == "TokenException"),
        "{e:?}"
    );
    // With the right token but another app's key: invalid too.
    let fresh = kite.sim.issue_token();
    let e = kite
        .client
        .profile("another-key", &fresh.access_token)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Invalid { .. }), "{e:?}");
    assert!(
        kite.client
            .profile(&kite.config.api_key, &fresh.access_token)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn logout_and_revocation_end_a_token() {
    let kite = Kite::start(true).await;
    let one = kite.sim.issue_token();
    let two = kite.sim.issue_token();
    let key = &kite.config.api_key;
    kite.client.logout(key, &one.access_token).await.unwrap();
    assert!(matches!(
        kite.client.profile(key, &one.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    assert!(matches!(
        kite.client.logout(key, &one.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    assert!(kite.client.profile(key, &two.access_token).await.is_ok());
    kite.sim.revoke_all();
    assert!(matches!(
        kite.client.profile(key, &two.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    assert_eq!(kite.sim.calls(Endpoint::Logout), 2);
}

#[tokio::test]
async fn faults_are_transient_and_only_a_token_exception_is_invalid() {
    let kite = Kite::start(true).await;
    let token = kite.sim.issue_token().access_token;
    let key = &kite.config.api_key;
    // A client that gives up after two seconds, for the two answers that never end; the
    // others come at once and are read with the usual 15-second limit.
    let impatient = KiteClient::with_timeouts(
        &kite.server.base_url,
        Duration::from_secs(2),
        Duration::from_secs(2),
    )
    .unwrap();
    for (fault, words) in [
        (Fault::ServerError, "Kite server error"),
        (Fault::BadGateway, "order system is down"),
        (Fault::Unavailable, "Kite's API is down"),
        (Fault::GatewayTimeout, "HTTP 504 with an HTML page"),
        (
            Fault::TooManyRequests { retry_after: None },
            "rate limited by Kite",
        ),
        (Fault::MalformedJson, "not Kite's JSON"),
        (Fault::HtmlPage, "HTTP 403 with an HTML page"),
        (Fault::EndlessBody, "larger than 64 KiB"),
        (Fault::HugeBody, "larger than 64 KiB"),
        (Fault::ConnectionReset, "broke off"),
        (Fault::TrickleBody, "did not answer in time"),
        (Fault::Timeout, "did not answer in time"),
    ] {
        kite.sim.inject(Endpoint::Profile, fault, 1);
        let endless = matches!(fault, Fault::TrickleBody | Fault::Timeout);
        let client = if endless { &impatient } else { &kite.client };
        let e = client.profile(key, &token).await.unwrap_err();
        assert!(e.is_transient(), "{fault:?}: {e:?}");
        assert!(e.to_string().contains(words), "{fault:?}: {e}");
    }
    kite.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    let e = kite.client.profile(key, &token).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    kite.sim.inject(Endpoint::Profile, Fault::TokenException, 1);
    assert!(matches!(
        kite.client.profile(key, &token).await,
        Err(ApiError::Invalid { .. })
    ));
    // Faults at the exchange and the logout are transient too, and leave the token alive.
    kite.sim.inject(Endpoint::Exchange, Fault::Unavailable, 1);
    let request_token = kite.sim.issue_request_token();
    assert!(
        kite.exchange(&request_token)
            .await
            .unwrap_err()
            .is_transient()
    );
    kite.sim.inject(Endpoint::Logout, Fault::BadGateway, 1);
    assert!(
        kite.client
            .logout(key, &token)
            .await
            .unwrap_err()
            .is_transient()
    );
    assert!(kite.client.profile(key, &token).await.is_ok());
    assert_eq!(kite.sim.calls(Endpoint::Profile), 15);
}

#[tokio::test]
async fn the_api_calls_need_the_version_header() {
    let kite = Kite::start(true).await;
    let token = kite.sim.issue_token().access_token;
    let http = client(Some(Duration::from_secs(30)));
    let resp = fetch(
        http.get(kite.server.base_url.join("user/profile").unwrap())
            .header(
                "Authorization",
                format!("token {}:{}", kite.config.api_key, token.expose()),
            ),
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(resp.json()["error_type"], "InputException");
    // The same request with the header is answered.
    let resp = fetch(
        http.get(kite.server.base_url.join("user/profile").unwrap())
            .header("X-Kite-Version", "3")
            .header(
                "Authorization",
                format!("token {}:{}", kite.config.api_key, token.expose()),
            ),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["status"], "success");
}

#[tokio::test]
async fn no_token_or_secret_in_any_text_the_adapter_makes() {
    let logs = capture_logs();
    let kite = Kite::start(true).await;
    let mut leaks = Leaks::default();
    let state = Secret::new(STATE);
    let back = kite.browser_login(&state).await;
    let Ok(Callback::Code(request_token)) = read_callback(back.query(), &state) else {
        panic!("no request token in {back}");
    };
    leaks.secret("request token", request_token.expose());
    leaks.secret(
        "checksum",
        checksum(&kite.config.api_key, &request_token, &kite.secret()).expose(),
    );
    leaks.secret("api secret", &kite.config.api_secret);
    let session = kite.exchange(&request_token).await.unwrap();
    leaks.token("access token", session.access_token.expose());
    leaks.token(
        "public token",
        session.public_token.as_ref().unwrap().expose(),
    );
    let mut texts = vec![
        format!("{session:?}"),
        format!("{:?}", Callback::Code(request_token.clone())),
        format!("{:?}", kite.client),
        format!("{:?}", kite.config),
        format!("{:?}", kite.sim),
    ];
    let key = &kite.config.api_key;
    let token = &session.access_token;
    let mut errors = vec![kite.exchange(&request_token).await.unwrap_err()];
    for fault in [
        Fault::TokenException,
        Fault::HtmlPage,
        Fault::ConnectionReset,
    ] {
        kite.sim.inject(Endpoint::Profile, fault, 1);
        errors.push(kite.client.profile(key, token).await.unwrap_err());
        kite.sim.inject(Endpoint::Logout, fault, 1);
        errors.push(kite.client.logout(key, token).await.unwrap_err());
    }
    // A logout to a closed port: the URL holding the token must not show in the error.
    let closed = Url::parse(&format!("http://127.0.0.1:{}/", common::free_port())).unwrap();
    errors.push(
        KiteClient::new(&closed)
            .unwrap()
            .logout(key, token)
            .await
            .unwrap_err(),
    );
    kite.client.logout(key, token).await.unwrap();
    errors.push(kite.client.logout(key, token).await.unwrap_err());
    for e in &errors {
        texts.push(format!("{e:?}"));
        texts.push(e.to_string());
    }
    for (i, text) in texts.iter().enumerate() {
        leaks.text(format!("text {i}"), text.clone());
    }
    leaks.text("logs", logs.text());
    assert!(
        logs.text().contains("kite simulator"),
        "the simulator's requests are logged: {}",
        logs.text()
    );
    leaks.assert_clean();
}
