//! The Fyers adapter against the Fyers simulator over loopback: the login's redirect, the
//! appIdHash exchange, the profile check through the token's JWT `exp`, logout, faults, and no
//! token or secret in any text the adapter makes.

mod common;

use common::{Leaks, at_ist, capture_logs, client, fetch};
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::fyers::client::{ApiError, FyersClient, Session, app_id_hash};
use tokenwatch::brokers::fyers::login::{Callback, CallbackProblem, login_url, read_callback};
use tokenwatch::brokers::fyers::sim::{Endpoint, Fault, SimConfig, SimServer, Simulator};
use tokenwatch::clock::FixedClock;
use tokenwatch::secret::Secret;
use tokenwatch::token::expiry::ExpiryEvidence;
use url::Url;

const STATE: &str = "fyers-test-state-0123456789abcdefghijklmnop";

/// A Fyers simulator on a free loopback port, its clock and a client for it.
struct Fyers {
    clock: Arc<FixedClock>,
    sim: Simulator,
    server: SimServer,
    client: FyersClient,
    config: SimConfig,
}

impl Fyers {
    /// Thursday 26 November 2026, 09:15 IST.
    async fn start(auto_approve: bool) -> Fyers {
        let clock = Arc::new(FixedClock::new(at_ist(2026, 11, 26, 9, 15, 0)));
        let config = SimConfig {
            auto_approve,
            ..SimConfig::default()
        };
        let sim = Simulator::new(config.clone(), clock.clone());
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = FyersClient::new(&server.base_url, &[]).unwrap();
        Fyers {
            clock,
            sim,
            server,
            client,
            config,
        }
    }

    fn secret(&self) -> Secret {
        Secret::new(self.config.secret_key.clone())
    }

    fn login_url(&self, state: &Secret) -> Url {
        let redirect = Url::parse(&self.config.redirect_url).unwrap();
        login_url(
            &self.server.base_url,
            &self.config.client_id,
            &redirect,
            state,
        )
    }

    /// The browser's part: open the login address and follow nothing; the redirect.
    async fn browser_login(&self, state: &Secret) -> Url {
        let resp =
            fetch(client(Some(Duration::from_secs(30))).get(self.login_url(state).as_str())).await;
        assert_eq!(resp.status, 302, "{}", resp.everything());
        Url::parse(resp.location().expect("a Location")).unwrap()
    }

    async fn exchange(&self, auth_code: &Secret) -> Result<Session, ApiError> {
        self.client
            .exchange(&self.config.client_id, auth_code, &self.secret())
            .await
    }

    async fn auth_code(&self) -> Secret {
        let state = Secret::new(STATE);
        let back = self.browser_login(&state).await;
        let Ok(Callback::Code(code)) = read_callback(back.query(), &state) else {
            panic!("no auth code in {back}");
        };
        code
    }

    async fn login(&self) -> Session {
        let code = self.auth_code().await;
        self.exchange(&code).await.unwrap()
    }
}

#[tokio::test]
async fn the_login_redirect_carries_the_auth_code_and_the_state() {
    let fyers = Fyers::start(true).await;
    let state = Secret::new(STATE);
    let back = fyers.browser_login(&state).await;
    assert!(
        back.as_str().starts_with(&fyers.config.redirect_url),
        "{back}"
    );
    let pairs: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("state".into(), STATE.into())), "{pairs:?}");
    let code = pairs
        .iter()
        .find(|(k, _)| k == "auth_code")
        .map(|(_, v)| v.clone())
        .expect("an auth_code");
    // The auth code is a JWT whose subject says what it is.
    let claims = code.split('.').nth(1).unwrap();
    let claims =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap();
    assert!(String::from_utf8_lossy(&claims).contains(r#""sub":"auth_code""#));
    // A forged state is refused before the code is read.
    assert_eq!(
        read_callback(back.query(), &Secret::new("another-state")).unwrap_err(),
        CallbackProblem::WrongState
    );
    // A wrong client_id (no -100) is refused by the login page.
    let mut wrong = fyers.login_url(&state);
    wrong.set_query(Some(&wrong.query().unwrap().replace("-100", "")));
    let refused = fetch(client(Some(Duration::from_secs(30))).get(wrong.as_str())).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["s"], "error");
}

#[tokio::test]
async fn the_login_page_approves_or_denies() {
    let fyers = Fyers::start(false).await;
    let http = client(Some(Duration::from_secs(30)));
    let page = fetch(http.get(fyers.login_url(&Secret::new(STATE)).as_str())).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Approve") && page.body.contains("Deny"));
    let decide = |decision: &str| {
        let form = [
            ("client_id", fyers.config.client_id.clone()),
            ("redirect_uri", fyers.config.redirect_url.clone()),
            ("state", STATE.to_string()),
            ("decision", decision.to_string()),
        ];
        http.post(fyers.server.base_url.join("sim/decision").unwrap())
            .form(&form)
    };
    let state = Secret::new(STATE);
    let approved = fetch(decide("approve")).await;
    let back = Url::parse(approved.location().unwrap()).unwrap();
    assert!(matches!(
        read_callback(back.query(), &state),
        Ok(Callback::Code(_))
    ));
    let denied = fetch(decide("deny")).await;
    let back = Url::parse(denied.location().unwrap()).unwrap();
    assert!(matches!(
        read_callback(back.query(), &state),
        Ok(Callback::Denied { .. })
    ));
}

#[tokio::test]
async fn an_auth_code_is_exchanged_once() {
    let fyers = Fyers::start(true).await;
    let code = fyers.auth_code().await;
    let session = fyers.exchange(&code).await.unwrap();
    assert!(session.access_token.expose().starts_with("eyJ"));
    assert!(session.refresh_token.is_some());
    assert_eq!(fyers.sim.calls(Endpoint::Exchange), 1);
    // The same code again: refused, and never a dead-token verdict.
    let e = fyers.exchange(&code).await.unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    // The token's JWT exp is the first 06:00 IST after issue.
    let evidence = ExpiryEvidence::of_token_text(session.access_token.expose());
    assert_eq!(evidence.jwt_exp, Some(at_ist(2026, 11, 27, 6, 0, 0)));
}

#[tokio::test]
async fn a_bad_app_id_hash_is_rejected_and_burns_the_code() {
    let fyers = Fyers::start(true).await;
    let code = fyers.auth_code().await;
    let e = fyers
        .client
        .exchange(&fyers.config.client_id, &code, &Secret::new("wrong-secret"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Rejected { code: Some(c), .. } if c == "-371"),
        "{e:?}"
    );
    // The client_id without its -100: the refusal says what the id should look like.
    let code = fyers.auth_code().await;
    let id = fyers.config.client_id.trim_end_matches("-100");
    let e = fyers
        .client
        .exchange(id, &code, &fyers.secret())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("-100"), "{e}");
    // Both codes were used up.
    assert!(fyers.exchange(&code).await.is_err());
    // An empty code is -374.
    let e = fyers.exchange(&Secret::new("")).await.unwrap_err();
    assert!(
        matches!(&e, ApiError::Rejected { code: Some(c), .. } if c == "-374"),
        "{e:?}"
    );
    assert_eq!(app_id_hash("A-100", &Secret::new("s")).len(), 64);
}

#[tokio::test]
async fn a_token_checks_valid_until_its_exp_then_invalid() {
    let fyers = Fyers::start(true).await;
    let session = fyers.login().await;
    let id = &fyers.config.client_id;
    let profile = fyers
        .client
        .profile(id, &session.access_token)
        .await
        .unwrap();
    assert_eq!(profile.user_id.as_deref(), Some("XF12345"));
    assert_eq!(profile.user_name.as_deref(), Some("Jane Doe"));
    assert_eq!(profile.email.as_deref(), Some("jane@example.com"));
    fyers.clock.set(at_ist(2026, 11, 27, 5, 59, 59));
    assert!(
        fyers
            .client
            .profile(id, &session.access_token)
            .await
            .is_ok()
    );
    fyers.clock.set(at_ist(2026, 11, 27, 6, 0, 0));
    let e = fyers
        .client
        .profile(id, &session.access_token)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Invalid { code: Some(c), .. } if c == "-16"),
        "{e:?}"
    );
}

#[tokio::test]
async fn logout_and_revocation_end_a_token() {
    let fyers = Fyers::start(true).await;
    let one = fyers.sim.issue_token();
    let two = fyers.sim.issue_token();
    let id = &fyers.config.client_id;
    fyers.client.logout(id, &one.access_token).await.unwrap();
    assert!(matches!(
        fyers.client.profile(id, &one.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    assert!(fyers.client.profile(id, &two.access_token).await.is_ok());
    fyers.sim.revoke_all();
    assert!(matches!(
        fyers.client.profile(id, &two.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    assert_eq!(fyers.sim.calls(Endpoint::Logout), 1);
}

#[tokio::test]
async fn faults_are_transient_and_only_a_dead_token_code_is_invalid() {
    let fyers = Fyers::start(true).await;
    let token = fyers.sim.issue_token().access_token;
    let id = &fyers.config.client_id;
    let impatient = FyersClient::with_timeouts(
        &fyers.server.base_url,
        &[],
        Duration::from_secs(2),
        Duration::from_secs(2),
    )
    .unwrap();
    for (fault, words) in [
        (Fault::ServerError, "Fyers server error"),
        (Fault::Unavailable, "HTTP 503 with an HTML page"),
        (
            Fault::TooManyRequests { retry_after: None },
            "rate limited by Fyers",
        ),
        (Fault::RateLimitCode, "rate limited by Fyers"),
        (Fault::ConnectionError, "connection error"),
        (Fault::MalformedJson, "not Fyers' JSON"),
        (Fault::HtmlPage, "HTTP 403 with an HTML page"),
        (Fault::Timeout, "did not answer in time"),
    ] {
        fyers.sim.inject(Endpoint::Profile, fault, 1);
        let client = if fault == Fault::Timeout {
            &impatient
        } else {
            &fyers.client
        };
        let e = client.profile(id, &token).await.unwrap_err();
        assert!(e.is_transient(), "{fault:?}: {e:?}");
        assert!(e.to_string().contains(words), "{fault:?}: {e}");
    }
    fyers.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    let e = fyers.client.profile(id, &token).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    fyers.sim.inject(Endpoint::Profile, Fault::InvalidToken, 1);
    assert!(matches!(
        fyers.client.profile(id, &token).await,
        Err(ApiError::Invalid { .. })
    ));
    fyers.sim.inject(Endpoint::Exchange, Fault::Unavailable, 1);
    let code = fyers.sim.issue_auth_code();
    assert!(fyers.exchange(&code).await.unwrap_err().is_transient());
    fyers.sim.inject(Endpoint::Logout, Fault::ServerError, 1);
    assert!(
        fyers
            .client
            .logout(id, &token)
            .await
            .unwrap_err()
            .is_transient()
    );
    assert!(fyers.client.profile(id, &token).await.is_ok());
    assert_eq!(fyers.sim.calls(Endpoint::Profile), 11);
}

#[tokio::test]
async fn no_token_or_secret_in_any_text_the_adapter_makes() {
    let logs = capture_logs();
    let fyers = Fyers::start(true).await;
    let mut leaks = Leaks::default();
    let code = fyers.auth_code().await;
    leaks.secret("auth code", code.expose());
    leaks.secret(
        "appIdHash",
        app_id_hash(&fyers.config.client_id, &fyers.secret()).expose(),
    );
    leaks.secret("secret key", &fyers.config.secret_key);
    let session = fyers.exchange(&code).await.unwrap();
    leaks.token("access token", session.access_token.expose());
    leaks.token(
        "refresh token",
        session.refresh_token.as_ref().unwrap().expose(),
    );
    let mut texts = vec![
        format!("{session:?}"),
        format!("{:?}", Callback::Code(code.clone())),
        format!("{:?}", fyers.client),
        format!("{:?}", fyers.config),
        format!("{:?}", fyers.sim),
    ];
    let id = &fyers.config.client_id;
    let token = &session.access_token;
    let mut errors = vec![fyers.exchange(&code).await.unwrap_err()];
    for fault in [Fault::InvalidToken, Fault::HtmlPage, Fault::MalformedJson] {
        fyers.sim.inject(Endpoint::Profile, fault, 1);
        errors.push(fyers.client.profile(id, token).await.unwrap_err());
        fyers.sim.inject(Endpoint::Logout, fault, 1);
        errors.push(fyers.client.logout(id, token).await.unwrap_err());
    }
    let closed = Url::parse(&format!("http://127.0.0.1:{}/", common::free_port())).unwrap();
    errors.push(
        FyersClient::new(&closed, &[])
            .unwrap()
            .profile(id, token)
            .await
            .unwrap_err(),
    );
    fyers.client.logout(id, token).await.unwrap();
    errors.push(fyers.client.logout(id, token).await.unwrap_err());
    for e in &errors {
        texts.push(format!("{e:?}"));
        texts.push(e.to_string());
    }
    for (i, text) in texts.iter().enumerate() {
        leaks.text(format!("text {i}"), text.clone());
    }
    leaks.text("logs", logs.text());
    assert!(
        logs.text().contains("fyers simulator"),
        "the simulator's requests are logged: {}",
        logs.text()
    );
    leaks.assert_clean();
}

#[tokio::test]
async fn a_check_with_an_app_id_missing_its_suffix_is_not_sent_and_not_a_dead_token() {
    let fyers = Fyers::start(true).await;
    let token = fyers.sim.issue_token().access_token;
    let bare = fyers.config.client_id.trim_end_matches("-100");
    for id in [bare, ""] {
        let client = tokenwatch::brokers::BrokerClient::new(
            tokenwatch::brokers::Broker::Fyers,
            &fyers.server.base_url,
            id,
        )
        .unwrap();
        let e = client.profile(&token).await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(
            e.to_string().contains("-100") && e.to_string().contains("FYERS_CLIENT_ID"),
            "{e}"
        );
    }
    assert_eq!(fyers.sim.calls(Endpoint::Profile), 0);
    let client = tokenwatch::brokers::BrokerClient::new(
        tokenwatch::brokers::Broker::Fyers,
        &fyers.server.base_url,
        &fyers.config.client_id,
    )
    .unwrap();
    assert!(client.profile(&token).await.is_ok());
}

#[tokio::test]
async fn the_refresh_grant_gives_a_new_token_with_the_pin_until_the_refresh_token_dies() {
    let fyers = Fyers::start(true).await;
    let session = fyers.login().await;
    let refresh = session.refresh_token.clone().expect("a refresh token");
    const PIN: &str = "572913";
    fyers.sim.set_config(|c| c.pin = PIN.into());
    let pin = Secret::new(PIN);
    let id = fyers.config.client_id.clone();
    fyers.clock.advance(chrono::Duration::hours(3));
    let renewed = fyers
        .client
        .refresh(&id, &fyers.secret(), &refresh, &pin)
        .await
        .unwrap();
    assert!(!renewed.access_token.same_as(&session.access_token));
    // The refresh token goes on living: the same one is kept.
    assert!(renewed.refresh_token.as_ref().unwrap().same_as(&refresh));
    fyers
        .client
        .profile(&id, &renewed.access_token)
        .await
        .unwrap();
    let exp = ExpiryEvidence::of_token_text(renewed.access_token.expose()).jwt_exp;
    assert_eq!(exp, Some(at_ist(2026, 11, 27, 6, 0, 0)));

    // A wrong PIN, a wrong secret and an unknown refresh token are refusals, never a dead
    // token (the one in the file may be fine).
    let wrong_pin = fyers
        .client
        .refresh(&id, &fyers.secret(), &refresh, &Secret::new("0000"))
        .await
        .unwrap_err();
    assert!(
        matches!(&wrong_pin, ApiError::Rejected { code: Some(c), .. } if c == "-1006"),
        "{wrong_pin:?}"
    );
    let wrong_secret = fyers
        .client
        .refresh(&id, &Secret::new("not-the-secret"), &refresh, &pin)
        .await
        .unwrap_err();
    assert!(
        matches!(&wrong_secret, ApiError::Rejected { code: Some(c), .. } if c == "-371"),
        "{wrong_secret:?}"
    );
    let unknown = fyers
        .client
        .refresh(&id, &fyers.secret(), &Secret::new("eyJ.not.issued"), &pin)
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ApiError::Rejected { code: Some(c), .. } if c == "-501"),
        "{unknown:?}"
    );
    // Fifteen days on, the refresh token is dead too: a browser login is needed again.
    fyers.clock.advance(chrono::Duration::days(15));
    let dead = fyers
        .client
        .refresh(&id, &fyers.secret(), &refresh, &pin)
        .await
        .unwrap_err();
    assert!(matches!(&dead, ApiError::Rejected { .. }), "{dead:?}");
    for e in [&wrong_pin, &wrong_secret, &unknown, &dead] {
        let text = format!("{e} {e:?}");
        let mut leaks = Leaks::default();
        leaks.text("error", text);
        leaks.secret("the PIN", PIN);
        leaks.secret("the app secret", &fyers.config.secret_key);
        leaks.token("the refresh token", refresh.expose());
        leaks.assert_clean();
    }
}
