//! The Angel One adapter against the Angel One simulator over loopback: the TOTP login,
//! wrong PINs and codes refused (never read as a dead token), the refresh through
//! generateTokens, the profile check valid and then dead inside an HTTP 200 (Angel One's
//! quirk), logout, faults, the headless renewals of `BrokerClient`, and no PIN, TOTP secret,
//! code or token in any text the adapter makes.

mod common;

use common::{Leaks, at_ist, capture_logs, client, fetch};
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::angel::client::{AngelClient, ApiError, ClientHeaders, Session};
use tokenwatch::brokers::angel::sim::{
    BAD_HEADERS, Endpoint, Fault, SimConfig, SimServer, Simulator, WRONG_PIN, WRONG_TOTP,
};
use tokenwatch::brokers::{AngelUser, Broker, BrokerClient, Headless, Renewing, totp};
use tokenwatch::clock::{Clock, FixedClock};
use tokenwatch::secret::Secret;
use tokenwatch::token::expiry::ExpiryEvidence;
use url::Url;

/// Distinctive values, so a leak scan cannot miss them.
const PIN: &str = "PIN-7zQx4kW2";
const TOTP_SECRET: &str = "KRUGKIDROVUWG2ZAMJZG653OEBTG66BAN5SCA";
const API_KEY: &str = "angelTestKey-9Hq2";

/// An Angel One simulator on a free loopback port, its clock and a client for it.
struct Angel {
    clock: Arc<FixedClock>,
    sim: Simulator,
    server: SimServer,
    client: AngelClient,
    config: SimConfig,
}

impl Angel {
    /// Thursday 26 November 2026, 09:00 IST.
    async fn start() -> Angel {
        let clock = Arc::new(FixedClock::new(at_ist(2026, 11, 26, 9, 0, 0)));
        let config = SimConfig {
            api_key: API_KEY.into(),
            pin: PIN.into(),
            totp_secret: TOTP_SECRET.into(),
            ..SimConfig::default()
        };
        let sim = Simulator::new(config.clone(), clock.clone());
        let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = AngelClient::new(&server.base_url, &[], &ClientHeaders::default()).unwrap();
        Angel {
            clock,
            sim,
            server,
            client,
            config,
        }
    }

    /// The TOTP code of this moment.
    fn code(&self) -> Secret {
        totp::code(&Secret::new(TOTP_SECRET), self.clock.now()).unwrap()
    }

    async fn login_with(&self, pin: &str, code: &Secret) -> Result<Session, ApiError> {
        self.client
            .login(API_KEY, &self.config.client_code, &Secret::new(pin), code)
            .await
    }

    async fn login(&self) -> Session {
        self.login_with(PIN, &self.code()).await.unwrap()
    }

    /// The account's `BrokerClient`, with `user`.
    fn broker_client(&self, user: AngelUser) -> BrokerClient {
        BrokerClient::Angel {
            client: self.client.clone(),
            user,
        }
    }

    fn user(&self) -> AngelUser {
        AngelUser {
            api_key: API_KEY.into(),
            client_code: Some(self.config.client_code.clone()),
            pin: Some(Secret::new(PIN)),
            totp_secret: Some(Secret::new(TOTP_SECRET)),
        }
    }
}

fn code_of(e: &ApiError) -> Option<&str> {
    match e {
        ApiError::Rejected { code, .. } | ApiError::Invalid { code, .. } => code.as_deref(),
        ApiError::Transient { .. } => None,
    }
}

#[tokio::test]
async fn a_totp_login_gives_a_day_long_jwt_a_refresh_token_and_sends_angel_ones_headers() {
    let angel = Angel::start().await;
    let headers = ClientHeaders {
        local_ip: "10.1.2.3".into(),
        public_ip: "203.0.113.7".into(),
        mac_address: "02:00:5e:10:00:01".into(),
    };
    let client = AngelClient::new(&angel.server.base_url, &[], &headers).unwrap();
    let session = client
        .login(
            API_KEY,
            &angel.config.client_code,
            &Secret::new(PIN),
            &angel.code(),
        )
        .await
        .unwrap();
    assert_eq!(angel.sim.calls(Endpoint::Login), 1);
    let seen = angel.sim.last_headers();
    for (name, value) in [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("x-usertype", "USER"),
        ("x-sourceid", "WEB"),
        ("x-clientlocalip", "10.1.2.3"),
        ("x-clientpublicip", "203.0.113.7"),
        ("x-macaddress", "02:00:5e:10:00:01"),
    ] {
        assert_eq!(seen.get(name).map(String::as_str), Some(value), "{seen:?}");
    }
    let evidence = ExpiryEvidence::of_token_text(session.access_token.expose());
    assert_eq!(
        evidence.jwt_exp,
        Some(angel.clock.now() + chrono::Duration::hours(24))
    );
    assert!(session.refresh_token.is_some());
    let profile = client
        .profile(API_KEY, &session.access_token)
        .await
        .unwrap();
    assert_eq!(profile.user_id.as_deref(), Some("S1234567"));
    assert_eq!(profile.user_name.as_deref(), Some("Jane Doe"));
    assert_eq!(profile.email.as_deref(), Some("jane@example.com"));
    // The default headers are sent too.
    angel.login().await;
    assert_eq!(
        angel
            .sim
            .last_headers()
            .get("x-clientpublicip")
            .map(String::as_str),
        Some("106.193.147.98")
    );
}

#[tokio::test]
async fn a_wrong_pin_code_or_api_key_is_a_refusal_never_a_dead_token() {
    let angel = Angel::start().await;
    let e = angel
        .login_with("PIN-wrong", &angel.code())
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some(WRONG_PIN));
    // A code from ten minutes ago is wrong now.
    let stale = totp::code(
        &Secret::new(TOTP_SECRET),
        angel.clock.now() - chrono::Duration::minutes(10),
    )
    .unwrap();
    let e = angel.login_with(PIN, &stale).await.unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some(WRONG_TOTP));
    let e = angel
        .client
        .login(
            "another-key",
            &angel.config.client_code,
            &Secret::new(PIN),
            &angel.code(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some(BAD_HEADERS));
    // A dead-token code at the login is a refusal of the login.
    angel.sim.inject(Endpoint::Login, Fault::InvalidToken, 1);
    let e = angel.login_with(PIN, &angel.code()).await.unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert_eq!(angel.sim.calls(Endpoint::Login), 4);
}

#[tokio::test]
async fn generate_tokens_renews_once_with_the_refresh_token_of_the_same_session() {
    let angel = Angel::start().await;
    let first = angel.login().await;
    let other = angel.login().await;
    let refresh = first.refresh_token.clone().unwrap();
    angel.clock.advance(chrono::Duration::hours(20));
    // Another session's token with this refresh token: refused.
    let e = angel
        .client
        .generate_tokens(API_KEY, &other.access_token, &refresh)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    let renewed = angel
        .client
        .generate_tokens(API_KEY, &first.access_token, &refresh)
        .await
        .unwrap();
    assert_ne!(renewed.access_token.expose(), first.access_token.expose());
    assert_eq!(
        ExpiryEvidence::of_token_text(renewed.access_token.expose()).jwt_exp,
        Some(angel.clock.now() + chrono::Duration::hours(24))
    );
    assert!(
        angel
            .client
            .profile(API_KEY, &renewed.access_token)
            .await
            .is_ok()
    );
    // The refresh token is used up.
    let e = angel
        .client
        .generate_tokens(API_KEY, &first.access_token, &refresh)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert_eq!(code_of(&e), Some("AB8050"));
    assert_eq!(angel.sim.calls(Endpoint::Refresh), 3);
}

#[tokio::test]
async fn a_token_is_valid_until_its_exp_or_its_logout_then_dead_inside_an_http_200() {
    let angel = Angel::start().await;
    let session = angel.login().await;
    let token = &session.access_token;
    assert!(angel.client.profile(API_KEY, token).await.is_ok());
    angel
        .clock
        .advance(chrono::Duration::hours(24) - chrono::Duration::seconds(1));
    assert!(angel.client.profile(API_KEY, token).await.is_ok());
    angel.clock.advance(chrono::Duration::seconds(1));
    let e = angel.client.profile(API_KEY, token).await.unwrap_err();
    assert_eq!(
        e,
        ApiError::Invalid {
            broker: Broker::Angel,
            code: Some("AG8001".into()),
            message: "Invalid Token".into()
        }
    );
    // The answer really is an HTTP 200 with the other envelope.
    let raw = fetch(
        client(Some(Duration::from_secs(30)))
            .get(
                angel
                    .server
                    .base_url
                    .join("rest/secure/angelbroking/user/v1/getProfile")
                    .unwrap(),
            )
            .header("X-PrivateKey", API_KEY)
            .header("X-UserType", "USER")
            .header("X-SourceID", "WEB")
            .header("X-ClientLocalIP", "127.0.0.1")
            .header("X-ClientPublicIP", "127.0.0.1")
            .header("X-MACAddress", "00:00:00:00:00:00")
            .header("Authorization", format!("Bearer {}", token.expose())),
    )
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.json()["success"], false);
    assert_eq!(raw.json()["errorCode"], "AG8001");
    // Logout ends a live token.
    let fresh = angel.login().await;
    angel
        .client
        .logout(API_KEY, &angel.config.client_code, &fresh.access_token)
        .await
        .unwrap();
    assert!(matches!(
        angel.client.profile(API_KEY, &fresh.access_token).await,
        Err(ApiError::Invalid { .. })
    ));
    // And its refresh token with it.
    let e = angel
        .client
        .generate_tokens(
            API_KEY,
            &fresh.access_token,
            fresh.refresh_token.as_ref().unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
}

#[tokio::test]
async fn faults_are_transient_on_every_endpoint() {
    let angel = Angel::start().await;
    let session = angel.login().await;
    let token = &session.access_token;
    let refresh = session.refresh_token.clone().unwrap();
    let impatient = AngelClient::with_timeouts(
        &angel.server.base_url,
        &[],
        &ClientHeaders::default(),
        Duration::from_secs(2),
        Duration::from_secs(2),
    )
    .unwrap();
    for endpoint in [
        Endpoint::Login,
        Endpoint::Refresh,
        Endpoint::Profile,
        Endpoint::Logout,
    ] {
        for (fault, words) in [
            (Fault::ServerError, "Angel One server error"),
            (Fault::Unavailable, "HTTP 503 with an HTML page"),
            (
                Fault::TooManyRequests {
                    retry_after: Some(7),
                },
                "rate limited by Angel One",
            ),
            (Fault::TryLater, "try again later"),
            (Fault::MalformedJson, "not Angel One's JSON"),
            (Fault::HtmlPage, "HTTP 403 with an HTML page"),
            (Fault::Empty, "an empty answer"),
            (Fault::Timeout, "did not answer in time"),
        ] {
            angel.sim.inject(endpoint, fault, 1);
            let client = if fault == Fault::Timeout {
                &impatient
            } else {
                &angel.client
            };
            let e = match endpoint {
                Endpoint::Login => client
                    .login(
                        API_KEY,
                        &angel.config.client_code,
                        &Secret::new(PIN),
                        &angel.code(),
                    )
                    .await
                    .map(|_| ()),
                Endpoint::Refresh => client
                    .generate_tokens(API_KEY, token, &refresh)
                    .await
                    .map(|_| ()),
                Endpoint::Profile => client.profile(API_KEY, token).await.map(|_| ()),
                Endpoint::Logout => {
                    client
                        .logout(API_KEY, &angel.config.client_code, token)
                        .await
                }
            }
            .unwrap_err();
            assert!(e.is_transient(), "{endpoint:?} {fault:?}: {e:?}");
            assert!(e.to_string().contains(words), "{endpoint:?} {fault:?}: {e}");
            if matches!(fault, Fault::TooManyRequests { .. }) {
                assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
            }
        }
    }
    // The next N checks read a dead token, then it is live again.
    angel.sim.inject(Endpoint::Profile, Fault::InvalidToken, 2);
    for _ in 0..2 {
        assert!(matches!(
            angel.client.profile(API_KEY, token).await,
            Err(ApiError::Invalid { .. })
        ));
    }
    assert!(angel.client.profile(API_KEY, token).await.is_ok());
}

#[tokio::test]
async fn the_headless_renewals_log_in_with_totp_and_refresh_with_generate_tokens() {
    let angel = Angel::start().await;
    let client = angel.broker_client(angel.user());
    let now = angel.clock.now();
    let none = Renewing {
        current: None,
        refresh_token: None,
        now,
    };
    let session = client.renew(Headless::Totp, none).await.unwrap();
    assert_eq!(angel.sim.calls(Endpoint::Login), 1);
    let refresh = session.refresh_token.clone().expect("a refresh token");
    let token = tokenwatch::brokers::session_token(Broker::Angel, session, now, "totp").unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_at, now + chrono::Duration::hours(24));
    assert!(client.profile(&token.access_token).await.is_ok());

    let with = Renewing {
        current: Some(&token.access_token),
        refresh_token: Some(&refresh),
        now,
    };
    let renewed = client.renew(Headless::RefreshToken, with).await.unwrap();
    assert!(client.profile(&renewed.access_token).await.is_ok());
    assert_eq!(angel.sim.calls(Endpoint::Refresh), 1);
    assert_eq!(angel.sim.calls(Endpoint::Login), 1);
    // The used refresh token: refused, with what to do.
    let e = client
        .renew(Headless::RefreshToken, with)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert!(e.to_string().contains("renew.strategy: totp"), "{e}");

    // Nothing from an earlier login: nothing is sent.
    let e = client
        .renew(Headless::RefreshToken, none)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Rejected { status: 0, .. }), "{e:?}");
    assert!(
        e.to_string().contains("renew.strategy: totp")
            && e.to_string().contains("tokenwatch refresh"),
        "{e}"
    );
    // A wrong PIN: refused, with what to do.
    let wrong = angel.broker_client(AngelUser {
        pin: Some(Secret::new("PIN-wrong")),
        ..angel.user()
    });
    let e = wrong.renew(Headless::Totp, none).await.unwrap_err();
    assert!(matches!(e, ApiError::Rejected { .. }), "{e:?}");
    assert!(e.to_string().contains("angel.pin"), "{e}");
    assert_eq!(angel.sim.calls(Endpoint::Login), 2);
}

#[tokio::test]
async fn a_missing_key_is_named_and_nothing_is_sent() {
    let angel = Angel::start().await;
    let now = angel.clock.now();
    let none = Renewing {
        current: None,
        refresh_token: None,
        now,
    };
    for (user, key, var) in [
        (
            AngelUser {
                api_key: String::new(),
                ..angel.user()
            },
            "angel.api_key",
            "ANGEL_API_KEY",
        ),
        (
            AngelUser {
                client_code: None,
                ..angel.user()
            },
            "angel.client_code",
            "ANGEL_CLIENT_CODE",
        ),
        (
            AngelUser {
                pin: None,
                ..angel.user()
            },
            "angel.pin",
            "ANGEL_PIN",
        ),
        (
            AngelUser {
                totp_secret: None,
                ..angel.user()
            },
            "angel.totp_secret",
            "ANGEL_TOTP_SECRET",
        ),
    ] {
        let e = angel
            .broker_client(user)
            .renew(Headless::Totp, none)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Rejected { status: 0, .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(key) && text.contains(var), "{text}");
    }
    // A check without the API key is not sent and says nothing of the token.
    let token = angel.sim.issue_token().access_token;
    let e = angel
        .broker_client(AngelUser::default())
        .profile(&token)
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(e.to_string().contains("ANGEL_API_KEY"), "{e}");
    assert_eq!(angel.sim.calls(Endpoint::Login), 0);
    assert_eq!(angel.sim.calls(Endpoint::Profile), 0);
}

#[tokio::test]
async fn no_pin_totp_secret_code_or_token_in_any_text_the_adapter_makes() {
    let logs = capture_logs();
    let angel = Angel::start().await;
    let mut leaks = Leaks::default();
    leaks.secret("PIN", PIN);
    leaks.secret("TOTP secret", TOTP_SECRET);
    leaks.secret("API key", API_KEY);
    let code = angel.code();
    let session = angel.login().await;
    leaks.token("access token", session.access_token.expose());
    let refresh = session.refresh_token.clone().unwrap();
    leaks.token("refresh token", refresh.expose());
    let client = angel.broker_client(angel.user());
    let mut texts = vec![
        format!("{session:?}"),
        format!("{:?}", angel.client),
        format!("{client:?}"),
        format!("{:?}", angel.user()),
        format!("{:?}", angel.config),
        format!("{:?}", angel.sim),
    ];
    let token = &session.access_token;
    let mut errors = vec![
        angel.login_with("PIN-wrong", &code).await.unwrap_err(),
        angel
            .login_with(PIN, &Secret::new("000000"))
            .await
            .unwrap_err(),
    ];
    for fault in [Fault::InvalidToken, Fault::HtmlPage, Fault::MalformedJson] {
        for endpoint in [
            Endpoint::Profile,
            Endpoint::Logout,
            Endpoint::Refresh,
            Endpoint::Login,
        ] {
            angel.sim.inject(endpoint, fault, 1);
        }
        errors.push(angel.client.profile(API_KEY, token).await.unwrap_err());
        errors.push(
            angel
                .client
                .logout(API_KEY, &angel.config.client_code, token)
                .await
                .unwrap_err(),
        );
        errors.push(
            angel
                .client
                .generate_tokens(API_KEY, token, &refresh)
                .await
                .unwrap_err(),
        );
        errors.push(angel.login_with(PIN, &code).await.unwrap_err());
    }
    let closed = Url::parse(&format!("http://127.0.0.1:{}/", common::free_port())).unwrap();
    let nowhere = AngelClient::new(&closed, &[], &ClientHeaders::default()).unwrap();
    errors.push(nowhere.profile(API_KEY, token).await.unwrap_err());
    errors.push(
        nowhere
            .login(API_KEY, "S1234567", &Secret::new(PIN), &code)
            .await
            .unwrap_err(),
    );
    angel
        .client
        .logout(API_KEY, &angel.config.client_code, token)
        .await
        .unwrap();
    errors.push(
        angel
            .client
            .generate_tokens(API_KEY, token, &refresh)
            .await
            .unwrap_err(),
    );
    let none = Renewing {
        current: None,
        refresh_token: None,
        now: angel.clock.now(),
    };
    errors.push(
        angel
            .broker_client(AngelUser {
                pin: Some(Secret::new("PIN-wrong")),
                ..angel.user()
            })
            .renew(Headless::Totp, none)
            .await
            .unwrap_err(),
    );
    for e in &errors {
        texts.push(format!("{e:?}"));
        texts.push(e.to_string());
    }
    // The six-digit code: in no error or Debug text (logs carry numbers of their own).
    for text in &texts {
        assert!(!text.contains(code.expose()), "the TOTP code in {text}");
    }
    for (i, text) in texts.iter().enumerate() {
        leaks.text(format!("text {i}"), text.clone());
    }
    leaks.text("logs", logs.text());
    assert!(
        logs.text().contains("angel one simulator"),
        "the simulator's requests are logged: {}",
        logs.text()
    );
    leaks.assert_clean();
}
