//! The Dhan adapter against the Dhan simulator over loopback: the consent login once, a
//! tokenId that cannot be used twice, the PIN and TOTP login, RenewToken ending the old token,
//! the profile check, faults, and no token, secret, PIN or code in any text the adapter makes.

mod common;

use common::{Leaks, at_ist, capture_logs, client, fetch};
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::dhan::client::{ApiError, DhanApp, DhanClient, DhanSession};
use tokenwatch::brokers::dhan::login::{Callback, login_url, read_callback};
use tokenwatch::brokers::dhan::sim::{Endpoint, Fault, SimConfig, SimServer, Simulator};
use tokenwatch::brokers::{BrokerClient, Headless, Renewing, Session};
use tokenwatch::clock::{Clock, FixedClock};
use tokenwatch::config::DhanConfig;
use tokenwatch::secret::Secret;
use url::Url;

/// A Dhan simulator on a free loopback port, its clock and a client for it.
struct Dhan {
    clock: Arc<FixedClock>,
    sim: Simulator,
    server: SimServer,
    client: DhanClient,
    config: SimConfig,
}

impl Dhan {
    /// Thursday 26 November 2026, 09:15 IST.
    async fn start(auto_approve: bool) -> Dhan {
        let clock = Arc::new(FixedClock::new(at_ist(2026, 11, 26, 9, 15, 0)));
        let config = SimConfig {
            auto_approve,
            ..SimConfig::default()
        };
        let sim = Simulator::new(config.clone(), clock.clone());
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = DhanClient::new(&server.base_url, &[]).unwrap();
        Dhan {
            clock,
            sim,
            server,
            client,
            config,
        }
    }

    fn base(&self) -> &Url {
        &self.server.base_url
    }

    fn app_secret(&self) -> Secret {
        Secret::new(self.config.app_secret.clone())
    }

    /// The account's `dhan:` section, pointed at the simulator, with the PIN and TOTP secret.
    fn section(&self) -> DhanConfig {
        DhanConfig {
            client_id: Some(self.config.client_id.clone()),
            api_key: Some(self.config.app_id.clone()),
            api_secret: Some(self.app_secret()),
            pin: Some(Secret::new(self.config.pin.clone())),
            totp_secret: Some(Secret::new(self.config.totp_secret.clone())),
            api_base: self.base().clone(),
            login_base: self.base().clone(),
            ..DhanConfig::default()
        }
    }

    fn broker(&self, section: &DhanConfig) -> BrokerClient {
        BrokerClient::dhan(section).unwrap()
    }

    /// The consent's first step and the browser: the redirect's address.
    async fn browser_login(&self) -> Url {
        let secret = self.app_secret();
        let app = DhanApp {
            app_id: &self.config.app_id,
            app_secret: &secret,
        };
        let consent = self
            .client
            .generate_consent(self.base(), &self.config.client_id, app)
            .await
            .unwrap();
        let page = login_url(self.base(), &consent);
        let resp = fetch(client(Some(Duration::from_secs(30))).get(page.as_str())).await;
        assert_eq!(resp.status, 302, "{}", resp.everything());
        Url::parse(resp.location().expect("a Location")).unwrap()
    }

    async fn token_id(&self) -> Secret {
        let back = self.browser_login().await;
        let Ok(Callback::Code(id)) = read_callback(back.query(), &Secret::new("unused")) else {
            panic!("no tokenId in {back}");
        };
        id
    }

    async fn consume(&self, token_id: &Secret) -> Result<DhanSession, ApiError> {
        let secret = self.app_secret();
        let app = DhanApp {
            app_id: &self.config.app_id,
            app_secret: &secret,
        };
        self.client
            .consume_consent(self.base(), token_id, app)
            .await
    }

    async fn renew(
        &self,
        section: &DhanConfig,
        how: Headless,
        current: Option<&Secret>,
    ) -> Result<Session, ApiError> {
        let with = Renewing {
            current,
            refresh_token: None,
            now: self.clock.now(),
        };
        self.broker(section).renew(how, with).await
    }
}

fn refused_before_sending(e: &ApiError) -> bool {
    matches!(e, ApiError::Rejected { status: 0, .. })
}

#[tokio::test]
async fn the_consent_login_gives_a_session_once() {
    let dhan = Dhan::start(true).await;
    let back = dhan.browser_login().await;
    assert!(
        back.as_str().starts_with(&dhan.config.redirect_url),
        "{back}"
    );
    let id = match read_callback(back.query(), &Secret::new("unused")).unwrap() {
        Callback::Code(id) => id,
        other => panic!("{other:?}"),
    };
    let session = dhan.consume(&id).await.unwrap();
    assert_eq!(
        session.client_id.as_deref(),
        Some(dhan.config.client_id.as_str())
    );
    assert_eq!(session.client_name.as_deref(), Some("Jane Doe"));
    // expiryTime, written in IST without a zone, read back to the instant: 24 hours on.
    assert_eq!(
        session.expires_at,
        Some(at_ist(2026, 11, 27, 9, 15, 0)),
        "{session:?}"
    );
    assert!(dhan.sim.is_token_live(session.access_token.expose()));
    // The tokenId was used up: a second consume is the login's refusal, not a dead token.
    let again = dhan.consume(&id).await.unwrap_err();
    assert!(
        matches!(&again, ApiError::Rejected { code: Some(c), .. } if c == "DH-905"),
        "{again:?}"
    );
    // The consent was used up too: its login page cannot hand out a second tokenId.
    assert_eq!(dhan.sim.calls(Endpoint::Consume), 2);
    // A forged tokenId is refused the same way.
    let forged = dhan.consume(&Secret::new("forged-token-id")).await;
    assert!(
        matches!(forged, Err(ApiError::Rejected { .. })),
        "{forged:?}"
    );
}

#[tokio::test]
async fn a_consent_is_for_the_right_app_and_used_once() {
    let dhan = Dhan::start(true).await;
    let wrong = Secret::new("not-the-app-secret");
    let app = DhanApp {
        app_id: &dhan.config.app_id,
        app_secret: &wrong,
    };
    let e = dhan
        .client
        .generate_consent(dhan.base(), &dhan.config.client_id, app)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert!(e.to_string().contains("Dhan refused"), "{e}");
    let secret = dhan.app_secret();
    let app = DhanApp {
        app_id: &dhan.config.app_id,
        app_secret: &secret,
    };
    let consent = dhan
        .client
        .generate_consent(dhan.base(), &dhan.config.client_id, app)
        .await
        .unwrap();
    let page = login_url(dhan.base(), &consent);
    let http = client(Some(Duration::from_secs(30)));
    assert_eq!(fetch(http.get(page.as_str())).await.status, 302);
    assert_eq!(fetch(http.get(page.as_str())).await.status, 400);
}

#[tokio::test]
async fn the_login_page_approves_or_denies() {
    let dhan = Dhan::start(false).await;
    let http = client(Some(Duration::from_secs(30)));
    let secret = dhan.app_secret();
    for (decision, want) in [("approve", "tokenId="), ("deny", "error=access_denied")] {
        let app = DhanApp {
            app_id: &dhan.config.app_id,
            app_secret: &secret,
        };
        let consent = dhan
            .client
            .generate_consent(dhan.base(), &dhan.config.client_id, app)
            .await
            .unwrap();
        let page = fetch(http.get(login_url(dhan.base(), &consent).as_str())).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Approve") && page.body.contains("Deny"));
        let back = fetch(
            http.post(dhan.base().join("sim/decision").unwrap())
                .form(&[("consentAppId", consent.as_str()), ("decision", decision)]),
        )
        .await;
        assert_eq!(back.status, 302, "{}", back.everything());
        assert!(back.location().unwrap().contains(want), "{back:?}");
    }
}

#[tokio::test]
async fn the_pin_and_totp_login_renews_without_a_browser() {
    let dhan = Dhan::start(true).await;
    let session = dhan
        .renew(&dhan.section(), Headless::Totp, None)
        .await
        .unwrap();
    assert_eq!(
        session.user_id.as_deref(),
        Some(dhan.config.client_id.as_str())
    );
    assert_eq!(session.expires_at, Some(at_ist(2026, 11, 27, 9, 15, 0)));
    assert!(dhan.sim.is_token_live(session.access_token.expose()));
    assert_eq!(dhan.sim.calls(Endpoint::PinLogin), 1);
    // A wrong PIN is a refusal, asked once.
    let mut wrong = dhan.section();
    wrong.pin = Some(Secret::new("000000"));
    let e = dhan.renew(&wrong, Headless::Totp, None).await.unwrap_err();
    assert!(
        matches!(&e, ApiError::Rejected { status: 400, code: Some(c), .. } if c == "DH-905"),
        "{e:?}"
    );
    assert_eq!(dhan.sim.calls(Endpoint::PinLogin), 2);
    // A code made for another moment than the simulator's is refused too: the code is made
    // for the renewal's `now`.
    let with = Renewing {
        current: None,
        refresh_token: None,
        now: dhan.clock.now() + chrono::Duration::minutes(10),
    };
    let e = dhan
        .broker(&dhan.section())
        .renew(Headless::Totp, with)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { status: 400, .. }), "{e:?}");
}

#[tokio::test]
async fn a_missing_key_is_named_and_nothing_is_sent() {
    let dhan = Dhan::start(true).await;
    let mut cases: Vec<(DhanConfig, &str, &str)> = Vec::new();
    let mut s = dhan.section();
    s.client_id = None;
    cases.push((s, "dhan.client_id", "DHAN_CLIENT_ID"));
    let mut s = dhan.section();
    s.pin = None;
    cases.push((s, "dhan.pin", "DHAN_PIN"));
    let mut s = dhan.section();
    s.totp_secret = None;
    cases.push((s, "dhan.totp_secret", "DHAN_TOTP_SECRET"));
    for (section, key, var) in cases {
        let e = dhan
            .renew(&section, Headless::Totp, None)
            .await
            .unwrap_err();
        assert!(refused_before_sending(&e), "{key}: {e:?}");
        let text = e.to_string();
        assert!(text.contains(key) && text.contains(var), "{text}");
    }
    // RenewToken needs a token to renew, and one that has not expired.
    let e = dhan
        .renew(&dhan.section(), Headless::RefreshToken, None)
        .await
        .unwrap_err();
    assert!(refused_before_sending(&e), "{e:?}");
    assert!(e.to_string().contains("log in"), "{e}");
    let old = dhan.sim.issue_token();
    dhan.clock.set(old.expires_at);
    let e = dhan
        .renew(
            &dhan.section(),
            Headless::RefreshToken,
            Some(&old.access_token),
        )
        .await
        .unwrap_err();
    assert!(refused_before_sending(&e), "{e:?}");
    assert!(e.to_string().contains("expired"), "{e}");
    assert_eq!(dhan.sim.calls(Endpoint::PinLogin), 0);
    assert_eq!(dhan.sim.calls(Endpoint::Renew), 0);
}

#[tokio::test]
async fn renew_token_gives_a_new_token_and_ends_the_old() {
    let dhan = Dhan::start(true).await;
    let old = dhan.sim.issue_token();
    dhan.clock.advance(chrono::Duration::hours(20));
    let session = dhan
        .renew(
            &dhan.section(),
            Headless::RefreshToken,
            Some(&old.access_token),
        )
        .await
        .unwrap();
    assert_ne!(session.access_token.expose(), old.access_token.expose());
    assert!(dhan.sim.is_token_live(session.access_token.expose()));
    assert!(!dhan.sim.is_token_live(old.access_token.expose()));
    // 24 hours from the renewal.
    assert_eq!(session.expires_at, Some(at_ist(2026, 11, 28, 5, 15, 0)));
    let broker = dhan.broker(&dhan.section());
    assert!(broker.profile(&session.access_token).await.is_ok());
    assert!(matches!(
        broker.profile(&old.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    // Renewing the ended token is a refusal: a renewal never calls a token dead.
    let e = dhan
        .renew(
            &dhan.section(),
            Headless::RefreshToken,
            Some(&old.access_token),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Rejected { status: 401, code: Some(c), .. } if c == "DH-901"),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_profile_checks_a_token_until_dhan_ends_it() {
    let dhan = Dhan::start(true).await;
    let token = dhan.sim.issue_token().access_token;
    let profile = dhan
        .client
        .profile(&dhan.config.client_id, &token)
        .await
        .unwrap();
    assert_eq!(
        profile.user_id.as_deref(),
        Some(dhan.config.client_id.as_str())
    );
    dhan.sim.revoke_all();
    let e = dhan
        .client
        .profile(&dhan.config.client_id, &token)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Invalid { code: Some(c), .. } if c == "DH-901"),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("Dhan rejected the token (DH-901)"),
        "{e}"
    );
    // With a list that does not name DH-901, the same answer is only a refusal.
    let other = DhanClient::new(dhan.base(), &["808".to_string()]).unwrap();
    let e = other
        .profile(&dhan.config.client_id, &token)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
}

#[tokio::test]
async fn faults_are_transient() {
    let dhan = Dhan::start(true).await;
    let id = dhan.config.client_id.clone();
    let token = dhan.sim.issue_token().access_token;
    let impatient = DhanClient::with_timeouts(
        dhan.base(),
        &[],
        Duration::from_secs(2),
        Duration::from_millis(300),
    )
    .unwrap();
    for (fault, words) in [
        (Fault::ServerError, "Dhan server error"),
        (Fault::Unavailable, "HTTP 503 with an HTML page"),
        (
            Fault::TooManyRequests { retry_after: None },
            "rate limited by Dhan",
        ),
        (Fault::RateLimitCode, "rate limited by Dhan"),
        (Fault::ConnectionError, "trouble on its side"),
        (Fault::MalformedJson, "not Dhan's JSON"),
        (Fault::HtmlPage, "HTTP 403 with an HTML page"),
        (Fault::Timeout, "did not answer in time"),
    ] {
        dhan.sim.inject(Endpoint::Profile, fault, 1);
        let client = if fault == Fault::Timeout {
            &impatient
        } else {
            &dhan.client
        };
        let e = client.profile(&id, &token).await.unwrap_err();
        assert!(e.is_transient(), "{fault:?}: {e:?}");
        assert!(e.to_string().contains(words), "{fault:?}: {e}");
    }
    dhan.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    let e = dhan.client.profile(&id, &token).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    dhan.sim.inject(Endpoint::Profile, Fault::InvalidToken, 1);
    assert!(matches!(
        dhan.client.profile(&id, &token).await,
        Err(ApiError::Invalid { .. })
    ));
    // At a login or a renewal the same faults are transient, and a dead-token answer is a
    // refusal.
    dhan.sim.inject(Endpoint::PinLogin, Fault::ServerError, 1);
    let e = dhan
        .renew(&dhan.section(), Headless::Totp, None)
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    dhan.sim.inject(Endpoint::Renew, Fault::InvalidToken, 1);
    let e = dhan
        .renew(&dhan.section(), Headless::RefreshToken, Some(&token))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    dhan.sim.inject(Endpoint::Consume, Fault::Unavailable, 1);
    let id_token = dhan.sim.issue_token_id();
    assert!(dhan.consume(&id_token).await.unwrap_err().is_transient());
    dhan.sim.inject(Endpoint::Consent, Fault::HtmlPage, 1);
    let secret = dhan.app_secret();
    let app = DhanApp {
        app_id: &dhan.config.app_id,
        app_secret: &secret,
    };
    let e = dhan
        .client
        .generate_consent(dhan.base(), &dhan.config.client_id, app)
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(dhan.client.profile(&id, &token).await.is_ok());
}

#[tokio::test]
async fn no_token_secret_pin_or_code_in_any_text_the_adapter_makes() {
    let logs = capture_logs();
    let dhan = Dhan::start(true).await;
    let mut leaks = Leaks::default();
    let code = tokenwatch::brokers::totp::code(
        &Secret::new(dhan.config.totp_secret.clone()),
        dhan.clock.now(),
    )
    .unwrap();
    leaks.secret("TOTP code", code.expose());
    leaks.secret("PIN", &dhan.config.pin);
    leaks.secret("TOTP secret", &dhan.config.totp_secret);
    leaks.secret("app secret", &dhan.config.app_secret);
    let id = dhan.token_id().await;
    leaks.secret("tokenId", id.expose());
    let session = dhan.consume(&id).await.unwrap();
    leaks.token("consent token", session.access_token.expose());
    let renewed = dhan
        .renew(&dhan.section(), Headless::Totp, None)
        .await
        .unwrap();
    leaks.token("TOTP token", renewed.access_token.expose());
    let mut texts = vec![
        format!("{session:?}"),
        format!("{renewed:?}"),
        format!("{:?}", Callback::Code(id.clone())),
        format!("{:?}", dhan.client),
        format!("{:?}", dhan.broker(&dhan.section())),
        format!("{:?}", dhan.section()),
        format!("{:?}", dhan.config),
        format!("{:?}", dhan.sim),
    ];
    let mut errors = vec![dhan.consume(&id).await.unwrap_err()];
    let mut wrong = dhan.section();
    wrong.pin = Some(Secret::new("000000"));
    errors.push(dhan.renew(&wrong, Headless::Totp, None).await.unwrap_err());
    for fault in [Fault::InvalidToken, Fault::HtmlPage, Fault::MalformedJson] {
        dhan.sim.inject(Endpoint::Profile, fault, 1);
        errors.push(
            dhan.client
                .profile(&dhan.config.client_id, &renewed.access_token)
                .await
                .unwrap_err(),
        );
        dhan.sim.inject(Endpoint::PinLogin, fault, 1);
        errors.push(
            dhan.renew(&dhan.section(), Headless::Totp, None)
                .await
                .unwrap_err(),
        );
    }
    // Nobody listening: the error of a request whose address holds the PIN and the code.
    let closed = Url::parse(&format!("http://127.0.0.1:{}/", common::free_port())).unwrap();
    let mut gone = dhan.section();
    gone.login_base = closed.clone();
    gone.api_base = closed;
    errors.push(dhan.renew(&gone, Headless::Totp, None).await.unwrap_err());
    errors.push(
        dhan.renew(&gone, Headless::RefreshToken, Some(&renewed.access_token))
            .await
            .unwrap_err(),
    );
    for e in &errors {
        texts.push(format!("{e:?}"));
        texts.push(e.to_string());
    }
    for (i, text) in texts.iter().enumerate() {
        leaks.text(format!("text {i}"), text.clone());
    }
    leaks.text("logs", logs.text());
    assert!(
        logs.text().contains("dhan simulator"),
        "the simulator's requests are logged: {}",
        logs.text()
    );
    leaks.assert_clean();
}

/// The demo's `l` on a Dhan tab: the login makes the consent, the built-in browser follows the
/// consent page's redirect to the callback, and the token comes back for the right client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_browser_runs_the_consent_login() {
    use tokenwatch::auth::login::{self, LoginProgress, LoginSettings};
    use tokenwatch::config::{AccountConfig, LoginConfig};
    use tokenwatch::token::store::TokenStore;
    use tokio::sync::{mpsc, oneshot};
    let port = common::free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let clock = Arc::new(tokenwatch::clock::SystemClock);
    let config = SimConfig {
        redirect_url: redirect.clone(),
        auto_approve: true,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config.clone(), clock.clone());
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let account = AccountConfig {
        name: "dhan".into(),
        broker: tokenwatch::brokers::Broker::Dhan,
        upstox: Default::default(),
        kite: Default::default(),
        fyers: Default::default(),
        angel: Default::default(),
        dhan: DhanConfig {
            client_id: Some(config.client_id.clone()),
            api_key: Some(config.app_id.clone()),
            api_secret: Some(Secret::new(config.app_secret.clone())),
            redirect_uri: Url::parse(&redirect).unwrap(),
            api_base: server.base_url.clone(),
            login_base: server.base_url.clone(),
            ..DhanConfig::default()
        },
        token: Default::default(),
        renew: Default::default(),
    };
    let mut settings = LoginSettings::new(&account, &LoginConfig::default(), false).unwrap();
    settings.builtin_browser = true;
    let store = TokenStore::new(dir.path().join("dhan_token.json"), Vec::new())
        .with_broker(tokenwatch::brokers::Broker::Dhan);
    let (_paste, paste_rx) = mpsc::channel(1);
    let (_cancel, cancel_rx) = oneshot::channel();
    let (progress_tx, mut progress) = mpsc::channel(16);
    let obtained = tokio::time::timeout(
        Duration::from_secs(30),
        login::run(settings, store, clock, paste_rx, cancel_rx, progress_tx),
    )
    .await
    .expect("the login finished")
    .expect("a token");
    let Some(LoginProgress::Waiting { url, .. }) = progress.recv().await else {
        panic!("no waiting step");
    };
    assert!(
        url.as_str()
            .contains("/login/consentApp-login?consentAppId="),
        "{url}"
    );
    assert_eq!(obtained.token.broker, tokenwatch::brokers::Broker::Dhan);
    assert_eq!(
        obtained.token.user_id.as_deref(),
        Some(config.client_id.as_str())
    );
    assert_eq!(obtained.token.token_type, "access-token");
    assert!(sim.is_token_live(obtained.token.access_token.expose()));
    assert_eq!(sim.calls(Endpoint::Consent), 1);
    assert_eq!(sim.calls(Endpoint::Consume), 1);
    obtained.finish(Ok(())).await;
}
