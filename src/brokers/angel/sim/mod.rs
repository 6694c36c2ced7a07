//! An Angel One SmartAPI stand-in for tests and demos, with Angel One's shapes, over real
//! loopback HTTP. Every time comes from the injected [`Clock`]; the TOTP codes too.
//!
//! * `POST /rest/auth/angelbroking/user/v1/loginByPassword`, JSON `clientcode`, `password`
//!   (the PIN) and `totp`: the code is checked against [`SimConfig::totp_secret`] at the
//!   clock's time, one 30-second step either side. Success is Angel One's
//!   `{"status":true,"message":"SUCCESS","errorcode":"","data":{"jwtToken","refreshToken",
//!   "feedToken"}}`; the `jwtToken` is an HS256 JWT whose `exp` is
//!   [`SimConfig::token_lifetime`] after issue (24 hours unless set).
//! * `POST /rest/auth/angelbroking/jwt/v1/generateTokens`, JSON `refreshToken`, with
//!   `Authorization: Bearer <jwtToken>` of the same session: a new token and a new refresh
//!   token (the old refresh token is used up).
//! * `GET /rest/secure/angelbroking/user/v1/getProfile`: a dead token (unknown, expired or
//!   logged out) is answered the way Angel One does it, **HTTP 200** with
//!   `{"success":false,"message":"Invalid Token","errorCode":"AG8001","data":""}`.
//! * `POST /rest/secure/angelbroking/user/v1/logout`, JSON `clientcode`: ends the session.
//!
//! Every call must carry `X-PrivateKey` (the app's API key), `X-UserType: USER` and
//! `X-SourceID: WEB`. Refusals come inside HTTP 200 with `"status":false`, like Angel One's.
//! The codes of the refusals Angel One does not document are **the simulator's own**:
//! [`WRONG_CLIENT_CODE`], [`WRONG_PIN`], [`WRONG_TOTP`], [`BAD_HEADERS`]; `AB8050` is used for a
//! refresh token that is unknown or used up.
//!
//! Faults ([`Fault`]) are queued per endpoint with [`Simulator::inject`]; calls are counted.
//! Requests are logged at debug level with method, path and status only: never a PIN, a
//! TOTP code, a token or an API key.

use crate::clock::Clock;
use crate::secret::Secret;
use crate::serving::{self, Running};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use url::Url;

/// How long a token lives when [`SimConfig::token_lifetime`] is not set.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a [`Fault::Timeout`] keeps a request waiting before answering normally.
const TIMEOUT_FAULT_SLEEP: Duration = Duration::from_secs(3600);

/// The simulator's code for a client code it does not know (Angel One's is not documented).
pub const WRONG_CLIENT_CODE: &str = "AB1007";
/// The simulator's code for a wrong PIN (Angel One's is not documented).
pub const WRONG_PIN: &str = "AB1051";
/// The simulator's code for a wrong TOTP code (Angel One's is not documented).
pub const WRONG_TOTP: &str = "AB1050";
/// The simulator's code for a call without the API key or the required headers.
pub const BAD_HEADERS: &str = "AG8004";

/// How the simulated Angel One app and user are set up. The defaults are demo values, not
/// real secrets.
#[derive(Clone)]
pub struct SimConfig {
    /// The SmartAPI app's API key (`X-PrivateKey`).
    pub api_key: String,
    /// The user's client code.
    pub client_code: String,
    /// The user's PIN.
    pub pin: String,
    /// The user's TOTP secret (base32).
    pub totp_secret: String,
    /// The user's name.
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
    /// How long tokens live; `None`: [`DEFAULT_TOKEN_LIFETIME`].
    pub token_lifetime: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: "angelSimKey01".to_string(),
            client_code: "S1234567".to_string(),
            pin: "4321".to_string(),
            totp_secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_string(),
            name: "Jane Doe".to_string(),
            email: "jane@example.com".to_string(),
            token_lifetime: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("client_code", &self.client_code)
            .field("pin", &"********")
            .field("totp_secret", &"********")
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

/// The simulated endpoints, for fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST loginByPassword`.
    Login,
    /// `POST generateTokens`.
    Refresh,
    /// `GET getProfile`.
    Profile,
    /// `POST logout`.
    Logout,
}

/// A failure to answer with instead of the normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with Angel One's error JSON.
    ServerError,
    /// HTTP 503 with a gateway's HTML page.
    Unavailable,
    /// HTTP 429 with Angel One's error JSON, and `Retry-After: N` when given.
    TooManyRequests {
        /// Seconds for the `Retry-After` header; `None` sends none.
        retry_after: Option<u64>,
    },
    /// HTTP 200 `AB1004` "Something Went Wrong, Please Try After Sometime".
    TryLater,
    /// HTTP 200 `{"success":false,…,"errorCode":"AG8001"}`: the token is dead.
    InvalidToken,
    /// The request waits one hour (tokio time) and is then handled normally.
    Timeout,
    /// HTTP 200 `application/json` with a cut-off body.
    MalformedJson,
    /// HTTP 403 `text/html`: a firewall's page, not Angel One's JSON.
    HtmlPage,
    /// HTTP 200 with an empty body.
    Empty,
}

/// A token minted by the simulator.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The access token: an HS256 JWT.
    pub access_token: Secret,
    /// Its refresh token.
    pub refresh_token: Secret,
    /// The issue time (whole seconds).
    pub issued_at: DateTime<Utc>,
    /// When it dies: its `exp`.
    pub expires_at: DateTime<Utc>,
}

/// A running simulator server. Stop it with [`SimServer::shutdown`].
#[derive(Debug)]
pub struct SimServer {
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/`: the API base.
    pub base_url: Url,
    running: Running,
}

impl SimServer {
    /// Stop accepting connections, let open ones finish, and wait for the server to end.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// The simulator: shared state behind a mutex. Every clone sees the same state.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

struct Inner {
    clock: Arc<dyn Clock>,
    key: [u8; 32],
    state: Mutex<SimState>,
}

struct SimState {
    config: SimConfig,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    calls: HashMap<Endpoint, u64>,
    /// Access token → when it dies; logged-out tokens are removed.
    live: HashMap<String, DateTime<Utc>>,
    /// Refresh token → the access token it was issued with.
    refresh: HashMap<String, String>,
    /// The non-secret headers of the last request (lower-case names).
    last_headers: BTreeMap<String, String>,
}

type HmacSha256 = Hmac<Sha256>;

/// The headers [`Simulator::last_headers`] keeps: never `Authorization` or `X-PrivateKey`.
const SHOWN_HEADERS: [&str; 7] = [
    "content-type",
    "accept",
    "x-usertype",
    "x-sourceid",
    "x-clientlocalip",
    "x-clientpublicip",
    "x-macaddress",
];

impl Simulator {
    /// A simulator reading the time from `clock`.
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Simulator {
        let mut key = [0u8; 32];
        key.iter_mut().for_each(|b| *b = fastrand::u8(..));
        Simulator {
            inner: Arc::new(Inner {
                clock,
                key,
                state: Mutex::new(SimState {
                    config,
                    faults: HashMap::new(),
                    calls: HashMap::new(),
                    live: HashMap::new(),
                    refresh: HashMap::new(),
                    last_headers: BTreeMap::new(),
                }),
            }),
        }
    }

    /// Bind `listen` (port 0 picks a free port) and serve the simulated API on the current
    /// tokio runtime until the returned [`SimServer`] is shut down or dropped.
    pub async fn serve(&self, listen: SocketAddr) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let switch = serving::Switch::new();
        let app = self.router(switch.stopped());
        let running = serving::serve(vec![listener], app, switch, "Angel One simulator");
        let shown = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };
        let base_url = Url::parse(&format!("http://{shown}/"))
            .map_err(|e| std::io::Error::other(format!("base URL for {shown}: {e}")))?;
        tracing::debug!(%addr, "angel one simulator listening");
        Ok(SimServer {
            addr,
            base_url,
            running,
        })
    }

    /// Answer the next `times` calls of `endpoint` with `fault`. Injections queue up.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        let mut st = self.state();
        let queue = st.faults.entry(endpoint).or_default();
        queue.extend(std::iter::repeat_n(fault, times as usize));
    }

    /// How many requests `endpoint` has received, faulted ones included.
    pub fn calls(&self, endpoint: Endpoint) -> u64 {
        self.state().calls.get(&endpoint).copied().unwrap_or(0)
    }

    /// The non-secret headers of the last request, by lower-case name.
    pub fn last_headers(&self) -> BTreeMap<String, String> {
        self.state().last_headers.clone()
    }

    /// Mint a valid token directly, as if the user had just logged in.
    pub fn issue_token(&self) -> IssuedToken {
        let mut st = self.state();
        self.mint(&mut st)
    }

    /// The TOTP code of the simulated user at the simulator's time.
    pub fn totp_code(&self) -> Secret {
        let secret = Secret::new(self.state().config.totp_secret.clone());
        crate::brokers::totp::code(&secret, self.now()).unwrap_or_else(|_| Secret::new(""))
    }

    /// Invalidate every token and refresh token issued so far.
    pub fn revoke_all(&self) {
        let mut st = self.state();
        st.live.clear();
        st.refresh.clear();
    }

    /// Change the configuration of a running simulator.
    pub fn set_config(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.state().config);
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn take_fault(&self, endpoint: Endpoint, headers: &HeaderMap) -> Option<Fault> {
        let mut st = self.state();
        *st.calls.entry(endpoint).or_insert(0) += 1;
        st.last_headers = SHOWN_HEADERS
            .iter()
            .filter_map(|name| {
                let v = headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), v.to_string()))
            })
            .collect();
        st.faults.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }

    /// An HS256 JWT of `claims`, signed with the simulator's key.
    fn jwt(&self, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = HmacSha256::new_from_slice(&self.inner.key)
            .expect("HMAC takes a key of any size")
            .chain_update(input.as_bytes())
            .finalize()
            .into_bytes();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn mint(&self, st: &mut SimState) -> IssuedToken {
        let now = self.now();
        let issued_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let lifetime = st.config.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let expires_at = issued_at
            + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(3650));
        let token = self.jwt(&serde_json::json!({
            "username": st.config.client_code,
            "roles": 0,
            "usertype": "USER",
            "token": random_string(24),
            "iat": issued_at.timestamp(),
            "exp": expires_at.timestamp(),
        }));
        let refresh = self.jwt(&serde_json::json!({
            "token": "REFRESH-TOKEN",
            "jti": random_string(24),
            "iat": issued_at.timestamp(),
        }));
        st.live.insert(token.clone(), expires_at);
        st.refresh.insert(refresh.clone(), token.clone());
        IssuedToken {
            access_token: Secret::new(token),
            refresh_token: Secret::new(refresh),
            issued_at,
            expires_at,
        }
    }

    fn is_live(&self, st: &SimState, token: &str) -> bool {
        st.live.get(token).is_some_and(|exp| self.now() < *exp)
    }

    fn router(&self, stopped: watch::Receiver<bool>) -> Router {
        let app = AppState {
            sim: self.clone(),
            stopped,
        };
        Router::new()
            .route(
                "/rest/auth/angelbroking/user/v1/loginByPassword",
                post(login),
            )
            .route(
                "/rest/auth/angelbroking/jwt/v1/generateTokens",
                post(refresh),
            )
            .route("/rest/secure/angelbroking/user/v1/getProfile", get(profile))
            .route("/rest/secure/angelbroking/user/v1/logout", post(logout))
            .fallback(|| async { angel_error(StatusCode::NOT_FOUND, "AB1000", "Route not found") })
            .layer(middleware::from_fn(log_request))
            .with_state(app)
    }
}

fn random_string(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}

#[derive(Clone)]
struct AppState {
    sim: Simulator,
    stopped: watch::Receiver<bool>,
}

impl AppState {
    /// A queued fault, or a refusal of a call without Angel One's headers; `None` to answer
    /// normally.
    async fn gate(&self, endpoint: Endpoint, headers: &HeaderMap) -> Option<Response> {
        match self.sim.take_fault(endpoint, headers) {
            Some(Fault::Timeout) => {
                let mut stopped = self.stopped.clone();
                tokio::select! {
                    _ = tokio::time::sleep(TIMEOUT_FAULT_SLEEP) => {},
                    _ = stopped.wait_for(|stop| *stop) => return Some(StatusCode::GATEWAY_TIMEOUT.into_response()),
                }
            }
            Some(fault) => return Some(fault_response(fault)),
            None => {}
        }
        let config = self.sim.state().config.clone();
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let key_ok =
            value("x-privatekey").is_some_and(|k| same(k.as_bytes(), config.api_key.as_bytes()));
        let required = value("x-usertype") == Some("USER")
            && value("x-sourceid") == Some("WEB")
            && ["x-clientlocalip", "x-clientpublicip", "x-macaddress"]
                .iter()
                .all(|h| value(h).is_some_and(|v| !v.is_empty()));
        if !key_ok || !required {
            return Some(refused(BAD_HEADERS, "Invalid API Key or missing headers"));
        }
        None
    }
}

/// Logs method, path and status; never the body or any header.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "angel one simulator");
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// Angel One's documented error envelope with an HTTP status.
fn angel_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"status": false, "message": message, "errorcode": code, "data": null}),
    )
}

/// A refusal inside HTTP 200, as Angel One sends them.
fn refused(code: &str, message: &str) -> Response {
    angel_error(StatusCode::OK, code, message)
}

/// The dead-token answer: HTTP 200 with the other envelope (`success`, `errorCode`).
fn invalid_token() -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({"success": false, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}),
    )
}

fn success(data: serde_json::Value) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({"status": true, "message": "SUCCESS", "errorcode": "", "data": data}),
    )
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::ServerError => angel_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AB1000",
            "Internal Server Error",
        ),
        Fault::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        )
            .into_response(),
        Fault::TooManyRequests { retry_after } => {
            let mut r = angel_error(
                StatusCode::TOO_MANY_REQUESTS,
                "AB1019",
                "Access denied because of exceeding access rate",
            );
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        Fault::TryLater => refused("AB1004", "Something Went Wrong, Please Try After Sometime"),
        Fault::InvalidToken => invalid_token(),
        Fault::Timeout => StatusCode::GATEWAY_TIMEOUT.into_response(),
        Fault::MalformedJson => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"status":true,"message":"SUCCESS","data":{"jwtToken":"#,
        )
            .into_response(),
        Fault::HtmlPage => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html><body>Access denied</body></html>",
        )
            .into_response(),
        Fault::Empty => StatusCode::OK.into_response(),
    }
}

/// A string field of a JSON body.
fn field<'v>(body: &'v serde_json::Value, name: &str) -> Option<&'v str> {
    body.get(name)
        .and_then(serde_json::Value::as_str)
        .filter(|v| !v.is_empty())
}

fn session_data(token: &IssuedToken) -> serde_json::Value {
    serde_json::json!({
        "jwtToken": token.access_token.expose(),
        "refreshToken": token.refresh_token.expose(),
        "feedToken": random_string(20),
    })
}

async fn login(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Login, &headers).await {
        return response;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let sim = &app.sim;
    let now = sim.now();
    let mut st = sim.state();
    let config = st.config.clone();
    if field(&body, "clientcode") != Some(config.client_code.as_str()) {
        return refused(WRONG_CLIENT_CODE, "Invalid clientcode");
    }
    if !field(&body, "password").is_some_and(|p| same(p.as_bytes(), config.pin.as_bytes())) {
        return refused(WRONG_PIN, "Invalid PIN");
    }
    let secret = Secret::new(config.totp_secret.clone());
    if !field(&body, "totp").is_some_and(|code| crate::brokers::totp::check(&secret, code, now)) {
        return refused(WRONG_TOTP, "Invalid totp");
    }
    let token = sim.mint(&mut st);
    success(session_data(&token))
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

async fn refresh(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Refresh, &headers).await {
        return response;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let sim = &app.sim;
    let mut st = sim.state();
    let Some(jwt) = bearer(&headers).map(str::to_owned) else {
        return invalid_token();
    };
    let belongs = field(&body, "refreshToken").and_then(|r| st.refresh.get(r).cloned());
    match belongs {
        Some(session) if session == jwt => {
            if let Some(r) = field(&body, "refreshToken") {
                st.refresh.remove(r);
            }
            st.live.remove(&jwt);
            let token = sim.mint(&mut st);
            success(session_data(&token))
        }
        _ => refused("AB8050", "Invalid refresh token"),
    }
}

async fn profile(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Profile, &headers).await {
        return response;
    }
    let st = app.sim.state();
    if !bearer(&headers).is_some_and(|t| app.sim.is_live(&st, t)) {
        return invalid_token();
    }
    let c = &st.config;
    success(serde_json::json!({
        "clientcode": c.client_code,
        "name": c.name,
        "email": c.email,
        "mobileno": "",
        "exchanges": ["nse_cm", "bse_cm", "nse_fo"],
        "products": ["MARGIN", "MIS", "NRML", "CNC", "CO", "BO"],
        "lastlogintime": "",
        "brokerid": "B2C",
    }))
}

async fn logout(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Logout, &headers).await {
        return response;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut st = app.sim.state();
    let token = bearer(&headers).map(str::to_owned);
    match token {
        Some(t) if app.sim.is_live(&st, &t) => {
            if field(&body, "clientcode") != Some(st.config.client_code.as_str()) {
                return refused(WRONG_CLIENT_CODE, "Invalid clientcode");
            }
            st.live.remove(&t);
            st.refresh.retain(|_, session| *session != t);
            json(
                StatusCode::OK,
                &serde_json::json!({"status": true, "message": "SUCCESS", "errorcode": "", "data": ""}),
            )
        }
        _ => invalid_token(),
    }
}

/// Compare without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
