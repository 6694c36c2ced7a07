//! The embedded Upstox simulator, driven over real loopback HTTP: the shapes of
//! `UPSTOX.md`, single-use codes, the 03:30 IST expiry, revocation, the login dialog,
//! fault injection and v3 webhook delivery.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokenwatch::brokers::upstox::sim::{Endpoint, Fault, SimConfig, SimServer, Simulator};
use tokenwatch::clock::{Clock, FixedClock};
use url::Url;

use common::{client, ist_at, tokens};

/// The exact 401 body Upstox was observed to send for an invalid or expired token.
const INVALID_TOKEN_BODY: &str = r#"{"status":"error","errors":[{"errorCode":"UDAPI100050","message":"Invalid token used to access API","propertyPath":null,"invalidValue":null,"error_code":"UDAPI100050","property_path":null,"invalid_value":null}]}"#;

/// base64url of `{"typ":"JWT","key_id":"sk_v1.0","alg":"HS256"}`, as in real tokens.
const JWT_HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJrZXlfaWQiOiJza192MS4wIiwiYWxnIjoiSFMyNTYifQ";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Harness {
    sim: Simulator,
    server: SimServer,
    clock: Arc<FixedClock>,
    http: reqwest::Client,
    config: SimConfig,
}

impl Harness {
    async fn start(config: SimConfig, now: DateTime<Utc>) -> Harness {
        let clock = Arc::new(FixedClock::new(now));
        let sim = Simulator::new(config.clone(), clock.clone() as Arc<dyn Clock>);
        let server = sim.serve(loopback()).await.unwrap();
        Harness {
            sim,
            server,
            clock,
            http: client(Some(Duration::from_secs(10))),
            config,
        }
    }

    async fn auto(now: DateTime<Utc>) -> Harness {
        Harness::start(
            SimConfig {
                auto_approve: true,
                ..SimConfig::default()
            },
            now,
        )
        .await
    }

    /// [`Harness::auto`] and a token it issued.
    async fn with_token(now: DateTime<Utc>) -> (Harness, String) {
        let h = Harness::auto(now).await;
        let token = h.sim.issue_token().access_token.expose().to_owned();
        (h, token)
    }

    fn url(&self, path: &str) -> Url {
        self.server.base_url.join(path).unwrap()
    }

    fn dialog_url(&self, client_id: &str, redirect_uri: &str, state: Option<&str>) -> Url {
        let mut url = self.url("/v2/login/authorization/dialog");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri);
            if let Some(state) = state {
                q.append_pair("state", state);
            }
        }
        url
    }

    /// Log in through the auto-approving dialog; returns the code.
    async fn code(&self) -> String {
        let url = self.dialog_url(&self.config.client_id, &self.config.redirect_uri, None);
        let resp = self.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 302);
        let location = location_of(&resp);
        query(&location)["code"].clone()
    }

    fn full_form(&self, code: &str) -> Vec<(&'static str, String)> {
        vec![
            ("code", code.to_string()),
            ("client_id", self.config.client_id.clone()),
            ("client_secret", self.config.client_secret.clone()),
            ("redirect_uri", self.config.redirect_uri.clone()),
            ("grant_type", "authorization_code".to_string()),
        ]
    }

    /// Submit the login page's form.
    async fn decide(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/v2/login/authorization/decision"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn exchange(&self, form: &[(&str, String)]) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/v2/login/authorization/token"))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    async fn profile(&self, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url("/v2/user/profile"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    fn profile_request(&self, token: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url("/v2/user/profile"))
            .bearer_auth(token)
    }

    async fn profile_status(&self, token: &str) -> u16 {
        self.profile(Some(token)).await.status().as_u16()
    }
}

/// Where a redirect points.
fn location_of(resp: &reqwest::Response) -> Url {
    Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

/// A 302 to the registered callback: its query.
fn callback_query(resp: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(resp.status(), 302);
    let location = location_of(resp);
    assert_eq!(
        &location[..url::Position::AfterPath],
        "http://localhost:5001/callback"
    );
    query(&location)
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

fn error_codes(body: &Value) -> Vec<String> {
    assert_eq!(body["status"], "error", "not an error envelope: {body}");
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["errorCode"], e["error_code"], "both spellings agree");
            assert_eq!(e["propertyPath"], e["property_path"]);
            assert_eq!(e["invalidValue"], e["invalid_value"]);
            e["error_code"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A 400 whose error envelope holds exactly `code`.
fn assert_refused((status, body): (u16, Value), code: &str) {
    assert_eq!((status, error_codes(&body)), (400, vec![code.to_string()]));
}

/// `v` is an object with exactly these keys (separated by spaces).
fn assert_keys(v: &Value, want: &str) {
    let want: BTreeSet<String> = want.split_whitespace().map(str::to_string).collect();
    assert_eq!(keys(v), want, "{v}");
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()["content-type"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn exchange_returns_the_flat_token_object() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let code = h.code().await;
    let (status, body) = h.exchange(&h.full_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let user = tokens::upstox_user();
    let mut expected: BTreeSet<String> = user.keys().cloned().collect();
    expected.extend(["access_token".to_string(), "extended_token".to_string()]);
    assert_eq!(
        keys(&body),
        expected,
        "flat object with exactly UPSTOX.md's keys"
    );
    assert!(body.get("expires_in").is_none());
    assert!(body.get("status").is_none() && body.get("data").is_none());
    for (k, v) in &user {
        assert_eq!(&body[k], v, "{k}");
    }
    assert_eq!(body["extended_token"], Value::Null);

    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').next().unwrap(), JWT_HEADER_B64);
    let c = claims(token);
    assert_keys(&c, "sub jti isMultiClient isPlusPlan iat iss exp");
    assert_eq!(c["sub"], "AB1234");
    assert_eq!(c["iss"], "udapi-gateway-service");
    assert_eq!(c["isMultiClient"], false);
    assert_eq!(c["isPlusPlan"], false);
    assert!(!c["jti"].as_str().unwrap().is_empty());
    assert_eq!(h.profile_status(token).await, 200);
    assert_eq!(h.sim.calls(Endpoint::Token), 1);
    assert_eq!(h.sim.calls(Endpoint::Dialog), 1);
}

#[tokio::test]
async fn a_code_cannot_be_used_twice() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let code = h.code().await;
    let (status, _) = h.exchange(&h.full_form(&code)).await;
    assert_eq!(status, 200);
    let (status, body) = h.exchange(&h.full_form(&code)).await;
    assert_eq!(status, 400);
    assert_eq!(error_codes(&body), ["UDAPI100016"]);
    assert_eq!(body["errors"][0]["message"], "Invalid Credentials");
}

#[tokio::test]
async fn a_failed_exchange_uses_the_code_up() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let code = h.code().await;
    let mut wrong = h.full_form(&code);
    wrong[2].1 = "not-the-secret".to_string();
    assert_refused(h.exchange(&wrong).await, "UDAPI100016");
    // The right request with the same code now fails too.
    assert_refused(h.exchange(&h.full_form(&code)).await, "UDAPI100016");

    // Even a request rejected for a missing field consumes the code it presented.
    let code = h.code().await;
    let mut incomplete = h.full_form(&code);
    incomplete.retain(|(k, _)| *k != "grant_type");
    assert_refused(h.exchange(&incomplete).await, "UDAPI1023");
    assert_refused(h.exchange(&h.full_form(&code)).await, "UDAPI100016");
}

#[tokio::test]
async fn wrong_credentials_and_unknown_codes_are_invalid_credentials() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let cases: [(usize, &str); 4] = [
        (1, "someone-else"),                    // client_id
        (3, "http://localhost:5001/callback/"), // redirect_uri, trailing slash
        (4, "refresh_token"),                   // grant_type
        (0, "zzzzzz"),                          // unknown code
    ];
    for (index, value) in cases {
        let code = h.code().await;
        let mut form = h.full_form(&code);
        form[index].1 = value.to_string();
        let (status, body) = h.exchange(&form).await;
        assert_eq!(status, 400, "field {index}");
        assert_eq!(error_codes(&body), ["UDAPI100016"], "field {index}");
    }
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let code = h.code().await;
    h.clock.advance(ChronoDuration::seconds(9 * 60 + 59));
    assert_eq!(h.exchange(&h.full_form(&code)).await.0, 200);

    let code = h.code().await;
    h.clock.advance(ChronoDuration::minutes(10));
    assert_refused(h.exchange(&h.full_form(&code)).await, "UDAPI100016");
}

#[tokio::test]
async fn each_missing_form_field_has_its_code() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    for (field, expected) in [
        ("client_id", "UDAPI1017"),
        ("redirect_uri", "UDAPI1018"),
        ("code", "UDAPI1022"),
        ("grant_type", "UDAPI1023"),
        ("client_secret", "UDAPI1024"),
    ] {
        let code = h.code().await;
        let mut form = h.full_form(&code);
        form.retain(|(k, _)| *k != field);
        let (status, body) = h.exchange(&form).await;
        assert_eq!(status, 400, "without {field}");
        assert_eq!(error_codes(&body), [expected], "without {field}");
        // An empty value counts as missing.
        let code = h.code().await;
        let mut form = h.full_form(&code);
        form.iter_mut().find(|(k, _)| *k == field).unwrap().1 = String::new();
        let (_, body) = h.exchange(&form).await;
        assert_eq!(error_codes(&body), [expected], "empty {field}");
    }
    let (status, body) = h.exchange(&[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_codes(&body),
        [
            "UDAPI1017",
            "UDAPI1018",
            "UDAPI1022",
            "UDAPI1023",
            "UDAPI1024"
        ]
    );
}

#[tokio::test]
async fn profile_success_shape() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let token = h.sim.issue_token();
    let resp = h.profile(Some(token.access_token.expose())).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(content_type(&resp), "application/json");
    let body: Value = resp.json().await.unwrap();
    let mut data = tokens::upstox_user();
    data.insert("ddpi".into(), json!(false));
    assert_eq!(body, json!({"status": "success", "data": data}));
}

#[tokio::test]
async fn invalid_tokens_get_the_exact_401_body() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let other = Simulator::new(
        SimConfig::default(),
        Arc::new(FixedClock::new(ist_at(26, 9, 0))),
    );
    let foreign = other.issue_token(); // right shape, wrong signing key
    let good = h.sim.issue_token();
    // Change one character in the middle of the signature.
    let mut tampered: Vec<char> = good.access_token.expose().chars().collect();
    let i = tampered.len() - 20;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_ne!(tampered, good.access_token.expose());
    for token in [
        None,
        Some("garbage"),
        Some("a.b.c"),
        Some(foreign.access_token.expose()),
        Some(tampered.as_str()),
    ] {
        let resp = h.profile(token).await;
        assert_eq!(resp.status(), 401, "{token:?}");
        assert_eq!(content_type(&resp), "application/json");
        assert_eq!(resp.text().await.unwrap(), INVALID_TOKEN_BODY, "{token:?}");
    }
    // A non-Bearer scheme is no token at all.
    let resp = h
        .http
        .get(h.url("/v2/user/profile"))
        .header(
            "authorization",
            format!("Basic {}", good.access_token.expose()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(h.profile_status(good.access_token.expose()).await, 200);
}

#[tokio::test]
async fn exp_is_the_next_0330_ist() {
    // 09:00 IST → 03:30 IST the next day, through the real exchange.
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let code = h.code().await;
    let (_, body) = h.exchange(&h.full_form(&code)).await;
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iat"], ist_at(26, 9, 0).timestamp());
    assert_eq!(c["exp"], ist_at(27, 3, 30).timestamp());

    // 02:00 IST → 03:30 the same morning.
    h.clock.set(ist_at(26, 2, 0));
    let code = h.code().await;
    let (_, body) = h.exchange(&h.full_form(&code)).await;
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["exp"], ist_at(26, 3, 30).timestamp());

    // issue_token follows the same rule and reports it.
    h.clock.set(ist_at(26, 9, 0));
    let t = h.sim.issue_token();
    assert_eq!(t.issued_at, ist_at(26, 9, 0));
    assert_eq!(t.expires_at, ist_at(27, 3, 30));
    assert_eq!(
        claims(t.access_token.expose())["exp"],
        t.expires_at.timestamp()
    );
}

#[tokio::test]
async fn a_configured_lifetime_replaces_the_0330_rule() {
    let now = ist_at(26, 9, 0);
    let h = Harness::start(
        SimConfig {
            auto_approve: true,
            token_lifetime: Some(Duration::from_secs(5 * 60)),
            ..SimConfig::default()
        },
        now,
    )
    .await;
    let code = h.code().await;
    let (_, body) = h.exchange(&h.full_form(&code)).await;
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["iat"], now.timestamp());
    assert_eq!(c["exp"], now.timestamp() + 300);
    let t = h.sim.issue_token();
    assert_eq!(t.expires_at, now + ChronoDuration::minutes(5));

    h.sim
        .set_config(|c| c.token_lifetime = Some(Duration::from_secs(60)));
    assert_eq!(
        h.sim.issue_token().expires_at,
        now + ChronoDuration::minutes(1)
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let t = h.sim.issue_token();
    let token = t.access_token.expose();
    h.clock.set(t.expires_at - ChronoDuration::seconds(1));
    assert_eq!(h.profile_status(token).await, 200);
    h.clock.set(t.expires_at);
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), INVALID_TOKEN_BODY);
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let a = h.sim.issue_token();
    let b = h.sim.issue_token();
    let logout = |token: String| {
        let req = h.http.delete(h.url("/v2/logout")).bearer_auth(token);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    assert_eq!(
        logout(a.access_token.expose().to_string()).await,
        (200, r#"{"status":"success","data":true}"#.to_string())
    );
    assert_eq!(h.profile_status(a.access_token.expose()).await, 401);
    assert_eq!(
        logout(a.access_token.expose().to_string()).await,
        (401, INVALID_TOKEN_BODY.to_string())
    );
    assert_eq!(h.profile_status(b.access_token.expose()).await, 200);
    assert_eq!(h.sim.calls(Endpoint::Logout), 2);
}

#[tokio::test]
async fn revoke_all_invalidates_every_token_issued_so_far() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let a = h.sim.issue_token();
    let code = h.code().await;
    let (_, body) = h.exchange(&h.full_form(&code)).await;
    let b = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(h.profile_status(a.access_token.expose()).await, 200);
    assert_eq!(h.profile_status(&b).await, 200);
    h.sim.revoke_all();
    assert_eq!(h.profile_status(a.access_token.expose()).await, 401);
    assert_eq!(h.profile_status(&b).await, 401);
    let c = h.sim.issue_token();
    assert_eq!(h.profile_status(c.access_token.expose()).await, 200);
}

#[tokio::test]
async fn the_auto_approving_dialog_redirects_with_code_and_state() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let state = "st a&te=/é+%";
    let url = h.dialog_url(&h.config.client_id, &h.config.redirect_uri, Some(state));
    let resp = h.http.get(url).send().await.unwrap();
    let q = callback_query(&resp);
    assert_eq!(
        q.keys().cloned().collect::<BTreeSet<_>>(),
        ["code", "state"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(q["state"], state);
    let code = &q["code"];
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(h.exchange(&h.full_form(code)).await.0, 200);

    // No state given, none echoed.
    let url = h.dialog_url(&h.config.client_id, &h.config.redirect_uri, None);
    let resp = h.http.get(url).send().await.unwrap();
    let location = location_of(&resp);
    assert_eq!(
        query(&location).keys().cloned().collect::<Vec<_>>(),
        ["code"]
    );
}

#[tokio::test]
async fn the_dialog_refuses_a_wrong_client_or_redirect() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let cases = [
        h.dialog_url("wrong-client", &h.config.redirect_uri, Some("s")),
        h.dialog_url(&h.config.client_id, "http://localhost:5002/callback", None),
        h.dialog_url(&h.config.client_id, "http://localhost:5001/callback/", None),
        h.url("/v2/login/authorization/dialog?response_type=code"),
    ];
    for url in cases {
        let resp = h.http.get(url.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{url}");
        assert_eq!(content_type(&resp), "application/json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_codes(&body), ["UDAPI100068"], "{url}");
        assert_eq!(
            body["errors"][0]["message"],
            "Check your 'client_id' and 'redirect_uri'; one or both are incorrect."
        );
    }
}

#[tokio::test]
async fn the_login_page_approves() {
    let h = Harness::start(SimConfig::default(), ist_at(26, 9, 0)).await;
    let state = r#"x"><script>"#;
    let url = h.dialog_url(&h.config.client_id, &h.config.redirect_uri, Some(state));
    let resp = h.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(content_type(&resp).starts_with("text/html"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("tokenwatch simulator"));
    assert!(page.contains(r#"action="/v2/login/authorization/decision""#));
    assert!(page.contains(r#"value="approve">Approve<"#));
    assert!(page.contains(r#"value="deny">Deny<"#));
    assert!(
        page.contains(r#"value="x&quot;&gt;&lt;script&gt;""#),
        "escaped"
    );
    assert!(!page.contains("<script>"));

    let resp = h
        .decide(&[
            ("response_type", "code"),
            ("client_id", h.config.client_id.as_str()),
            ("redirect_uri", h.config.redirect_uri.as_str()),
            ("state", state),
            ("decision", "approve"),
        ])
        .await;
    assert_eq!(resp.status(), 302);
    let location = location_of(&resp);
    let q = query(&location);
    assert_eq!(q["state"], state);
    assert_eq!(h.exchange(&h.full_form(&q["code"])).await.0, 200);
}

#[tokio::test]
async fn the_login_page_denies() {
    let h = Harness::start(SimConfig::default(), ist_at(26, 9, 0)).await;
    let resp = h
        .decide(&[
            ("response_type", "code"),
            ("client_id", h.config.client_id.as_str()),
            ("redirect_uri", h.config.redirect_uri.as_str()),
            ("state", "s-123"),
            ("decision", "deny"),
        ])
        .await;
    let q = callback_query(&resp);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert!(!q["error_description"].is_empty());
    assert_eq!(q["state"], "s-123");
    assert!(!q.contains_key("code"));

    // The decision form is checked like the dialog.
    let resp = h
        .decide(&[
            ("client_id", "wrong"),
            ("redirect_uri", h.config.redirect_uri.as_str()),
            ("decision", "approve"),
        ])
        .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn every_fault_kind_on_profile() {
    let (h, token) = Harness::with_token(ist_at(26, 9, 0)).await;
    let token = token.as_str();

    h.sim.inject(Endpoint::Profile, Fault::ServerError, 1);
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(content_type(&resp), "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_codes(&body), ["UDAPI100500"]);
    assert_eq!(body["errors"][0]["message"], "Something went wrong");

    h.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests {
            retry_after: Some(7),
        },
        1,
    );
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_codes(&body), ["UDAPI10005"]);
    assert_eq!(body["errors"][0]["message"], "Too Many Request Sent");

    h.sim.inject(
        Endpoint::Profile,
        Fault::TooManyRequests { retry_after: None },
        1,
    );
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());

    h.sim.inject(Endpoint::Profile, Fault::MalformedJson, 1);
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(content_type(&resp), "application/json");
    let text = resp.text().await.unwrap();
    assert_eq!(text, r#"{"status":"success","data":{"user_id":"#);
    assert!(serde_json::from_str::<Value>(&text).is_err());

    h.sim.inject(Endpoint::Profile, Fault::CloudflareHtml, 1);
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 403);
    assert!(content_type(&resp).starts_with("text/html"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("error code: 1010"));
    assert!(text.contains("Access denied"));
    assert!(serde_json::from_str::<Value>(&text).is_err());

    h.sim.inject(Endpoint::Profile, Fault::ServiceWindow, 1);
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_codes(&body), ["UDAPI100074"]);

    h.sim.inject(Endpoint::Profile, Fault::Unauthorized, 1);
    let resp = h.profile(Some(token)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.text().await.unwrap(), INVALID_TOKEN_BODY);

    // Faults spent, the valid token works again.
    assert_eq!(h.profile_status(token).await, 200);
    assert_eq!(h.sim.calls(Endpoint::Profile), 8);
}

#[tokio::test]
async fn the_fault_queue_is_consumed_in_order_per_endpoint() {
    let (h, token) = Harness::with_token(ist_at(26, 9, 0)).await;
    let token = token.as_str();
    h.sim.inject(Endpoint::Profile, Fault::ServerError, 2);
    h.sim.inject(Endpoint::Profile, Fault::Unauthorized, 1);
    h.sim.inject(Endpoint::Profile, Fault::ServiceWindow, 1);
    h.sim.inject(Endpoint::Token, Fault::ServerError, 1);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(h.profile_status(token).await);
    }
    assert_eq!(statuses, [500, 500, 401, 503, 200]);
    assert_eq!(h.sim.calls(Endpoint::Profile), 5);
    assert_eq!(h.sim.calls(Endpoint::Token), 0);
    assert_eq!(h.sim.calls(Endpoint::Logout), 0);

    // The token endpoint's own fault is still queued.
    let code = h.code().await;
    let resp = h
        .http
        .post(h.url("/v2/login/authorization/token"))
        .form(&h.full_form(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(h.sim.calls(Endpoint::Token), 1);

    // Faults on the dialog too.
    h.sim.inject(
        Endpoint::Dialog,
        Fault::TooManyRequests {
            retry_after: Some(30),
        },
        1,
    );
    let url = h.dialog_url(&h.config.client_id, &h.config.redirect_uri, None);
    let resp = h.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "30");
    assert_eq!(h.sim.calls(Endpoint::Dialog), 2);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fault_never_answers_in_time() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let t = h.sim.issue_token();
    h.sim.inject(Endpoint::Profile, Fault::Timeout, 1);
    let started = tokio::time::Instant::now();
    let err = h
        .profile_request(t.access_token.expose())
        .send()
        .await
        .expect_err("the simulator must not answer within 10 s");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(3600));
    assert_eq!(h.sim.calls(Endpoint::Profile), 1);
    // The next call answers normally.
    assert_eq!(h.profile_status(t.access_token.expose()).await, 200);
    h.server.shutdown().await;
}

/// A tiny webhook receiver: every JSON body POSTed to `/hook` goes into the channel.
async fn receiver() -> (Url, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                axum::Json(json!({"status": "ok"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Url::parse(&format!("http://{addr}/hook")).unwrap(), rx)
}

async fn next_hook(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("webhook within 10 s")
        .expect("receiver alive")
}

async fn v3_request(h: &Harness, client_id: &str, secret: &str) -> (u16, Value) {
    let resp = h
        .http
        .post(h.url(&format!("/v3/login/auth/token/request/{client_id}")))
        .json(&json!({ "client_secret": secret }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn v3_request_and_webhook_delivery() {
    let (hook, mut rx) = receiver().await;
    let now = ist_at(26, 9, 0);
    let h = Harness::start(
        SimConfig {
            notifier_url: Some(hook.clone()),
            ..SimConfig::default()
        },
        now,
    )
    .await;

    assert_refused(
        v3_request(&h, &h.config.client_id, "wrong").await,
        "UDAPI100016",
    );
    assert_refused(
        v3_request(&h, "other-client", &h.config.client_secret).await,
        "UDAPI100016",
    );
    assert_eq!(h.sim.approve_pending(), 0, "nothing pending yet");

    let (status, body) = v3_request(&h, &h.config.client_id, &h.config.client_secret).await;
    assert_eq!(status, 200);
    let expiry_ms = ist_at(27, 3, 30).timestamp_millis();
    assert_eq!(
        body,
        json!({"status": "success", "data": {
            "authorization_expiry": expiry_ms.to_string(),
            "notifier_url": hook.as_str()
        }})
    );
    assert_eq!(h.sim.calls(Endpoint::TokenRequest), 3);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv())
            .await
            .is_err(),
        "no delivery before approval"
    );

    h.clock.advance(ChronoDuration::minutes(2));
    assert_eq!(h.sim.approve_pending(), 1);
    let payload = next_hook(&mut rx).await;
    assert_keys(
        &payload,
        "client_id user_id access_token token_type expires_at issued_at message_type",
    );
    assert_eq!(payload["client_id"], "615b1297-sim-client");
    assert_eq!(payload["user_id"], "AB1234");
    assert_eq!(payload["token_type"], "Bearer");
    assert_eq!(payload["message_type"], "access_token");
    let issued = now + ChronoDuration::minutes(2);
    assert_eq!(payload["issued_at"], issued.timestamp_millis().to_string());
    assert_eq!(payload["expires_at"], expiry_ms.to_string());
    let token = payload["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["exp"], expiry_ms / 1000);
    assert_eq!(h.profile_status(token).await, 200);

    assert_eq!(h.sim.approve_pending(), 0, "delivered once");
}

#[tokio::test]
async fn v3_auto_approval_delivers_at_once() {
    let (hook, mut rx) = receiver().await;
    let h = Harness::start(
        SimConfig {
            notifier_url: Some(hook),
            auto_approve: true,
            token_lifetime: Some(Duration::from_secs(300)),
            ..SimConfig::default()
        },
        ist_at(26, 9, 0),
    )
    .await;
    let (status, _) = v3_request(&h, &h.config.client_id, &h.config.client_secret).await;
    assert_eq!(status, 200);
    let payload = next_hook(&mut rx).await;
    assert_eq!(payload["message_type"], "access_token");
    let issued: i64 = payload["issued_at"].as_str().unwrap().parse().unwrap();
    let expires: i64 = payload["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires - issued, 300_000);
    assert_eq!(
        h.profile_status(payload["access_token"].as_str().unwrap())
            .await,
        200
    );
    assert_eq!(h.sim.approve_pending(), 0);
}

#[tokio::test]
async fn v3_without_a_notifier_stays_pending() {
    let h = Harness::start(SimConfig::default(), ist_at(26, 2, 0)).await;
    let (status, body) = v3_request(&h, &h.config.client_id, &h.config.client_secret).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["notifier_url"], "");
    assert_eq!(
        body["data"]["authorization_expiry"],
        ist_at(26, 3, 30).timestamp_millis().to_string()
    );
    assert_eq!(h.sim.approve_pending(), 0);

    // Once a notifier is configured, the still-pending request is delivered...
    let (hook, mut rx) = receiver().await;
    h.sim.set_config(|c| c.notifier_url = Some(hook));
    assert_eq!(h.sim.approve_pending(), 1);
    assert_eq!(next_hook(&mut rx).await["user_id"], "AB1234");

    // ...but not a request whose authorization window has closed.
    let (status, _) = v3_request(&h, &h.config.client_id, &h.config.client_secret).await;
    assert_eq!(status, 200);
    h.clock.set(ist_at(26, 3, 30));
    assert_eq!(h.sim.approve_pending(), 0);
}

#[tokio::test]
async fn unknown_paths_get_a_404_envelope() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let resp = h.http.get(h.url("/v2/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(content_type(&resp), "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(error_codes(&body).len(), 1);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let h = Harness::auto(ist_at(26, 9, 0)).await;
    let base = h.server.base_url.clone();
    assert_eq!(base.scheme(), "http");
    assert_eq!(base.host_str(), Some("127.0.0.1"));
    assert_eq!(base.port(), Some(h.server.addr.port()));
    let t = h.sim.issue_token();
    assert_eq!(h.profile_status(t.access_token.expose()).await, 200);
    h.server.shutdown().await;
    let err = client(Some(Duration::from_secs(10)))
        .get(base.join("/v2/user/profile").unwrap())
        .send()
        .await
        .expect_err("no server after shutdown");
    assert!(err.is_connect(), "{err:?}");
}
