//! A Fyers API v3 stand-in for tests and demos, with Fyers' shapes, over real loopback HTTP.
//! Every time comes from the injected [`Clock`].
//!
//! * `GET /api/v3/generate-authcode?client_id=…&redirect_uri=…&response_type=code&state=…`:
//!   the browser login. The `client_id` and `redirect_uri` must be the app's. With
//!   [`SimConfig::auto_approve`] it redirects (302) to the redirect URL with
//!   `s=ok&code=200&auth_code=…&state=…` (the auth code a JWT-like string with
//!   `sub:"auth_code"`); otherwise it shows a small page whose Approve and Deny buttons post to
//!   the simulator-only `POST /sim/decision` (Deny redirects with `error=access_denied`: what
//!   Fyers sends on a refusal is not known).
//! * `POST /api/v3/validate-authcode`: the exchange, JSON `grant_type`, `appIdHash`, `code`.
//!   A missing or wrong `appIdHash` is `-371`, a missing code `-374`; an auth code is used up
//!   the moment it is presented and lives [`AUTH_CODE_LIFETIME`]; an unknown, used or
//!   expired one is `-413` (the simulator's choice: Fyers' code for it is not known). Success
//!   carries an `access_token` that is an HS256 JWT whose `exp` is the first 06:00 IST after
//!   issue, or [`SimConfig::token_lifetime`] after it.
//! * `POST /api/v3/validate-refresh-token`: the refresh grant, JSON `grant_type`
//!   (`refresh_token`), `appIdHash`, `refresh_token`, `pin`. A wrong hash is `-371`; an
//!   unknown or expired refresh token (they live [`REFRESH_TOKEN_LIFETIME`]) `-501` and a
//!   wrong PIN `-1006` (both the simulator's choice: Fyers' codes are not known). Success
//!   carries a new `access_token` only.
//! * `GET /api/v3/profile` with `Authorization: <client_id>:<access_token>`: an unknown,
//!   expired or revoked token is HTTP 401 `{"s":"error","code":-16,…}`.
//! * `POST /api/v3/logout`: revokes the token.
//!
//! Faults ([`Fault`]) are queued per endpoint with [`Simulator::inject`]; calls are counted.
//! Requests are logged at debug level with method, path and status only: never a token, an
//! auth code, a hash or a secret.

use crate::brokers::simkit::{found, html_escape, jwt, new_key, random_string, same};
use crate::clock::Clock;
use crate::secret::Secret;
use crate::serving::{self, Running};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use url::Url;

/// How long an auth code may wait before it is exchanged.
pub const AUTH_CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long a refresh token lives ("usually 15 days", by third-party accounts).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 24 * 3600);
/// How long a [`Fault::Timeout`] keeps a request waiting before answering normally.
const TIMEOUT_FAULT_SLEEP: Duration = Duration::from_secs(3600);

/// How the simulated Fyers app and user are set up.
#[derive(Clone)]
pub struct SimConfig {
    /// The app id with its `-100` suffix.
    pub client_id: String,
    /// The app's secret, which the exchange's `appIdHash` must be made with.
    pub secret_key: String,
    /// The app's registered redirect URL.
    pub redirect_url: String,
    /// The Fyers user id (`fy_id`).
    pub fy_id: String,
    /// The user's name.
    pub name: String,
    /// The user's e-mail address.
    pub email: String,
    /// `None`: tokens die at the first 06:00 IST after issue. `Some(d)`: `d` after issue.
    pub token_lifetime: Option<Duration>,
    /// The login redirects straight back with an auth code.
    pub auto_approve: bool,
    /// The user's PIN, which the refresh grant must carry.
    pub pin: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            client_id: "FYSIMAPP01-100".to_string(),
            secret_key: "fyers-sim-secret".to_string(),
            redirect_url: "http://localhost:5001/callback".to_string(),
            fy_id: "XF12345".to_string(),
            name: "Jane Doe".to_string(),
            email: "jane@example.com".to_string(),
            token_lifetime: None,
            auto_approve: false,
            pin: "1234".to_string(),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("client_id", &self.client_id)
            .field("secret_key", &"********")
            .field("redirect_url", &self.redirect_url)
            .field("fy_id", &self.fy_id)
            .field("token_lifetime", &self.token_lifetime)
            .field("auto_approve", &self.auto_approve)
            .finish_non_exhaustive()
    }
}

/// The simulated endpoints, for fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /api/v3/generate-authcode`.
    Login,
    /// `POST /api/v3/validate-authcode`.
    Exchange,
    /// `POST /api/v3/validate-refresh-token`.
    Refresh,
    /// `GET /api/v3/profile`.
    Profile,
    /// `POST /api/v3/logout`.
    Logout,
}

/// A failure to answer with instead of the normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with Fyers' error JSON.
    ServerError,
    /// HTTP 503 with a gateway's HTML page.
    Unavailable,
    /// HTTP 429 `-353` "API Limit exceeded", with `Retry-After: N` when given.
    TooManyRequests {
        /// Seconds for the `Retry-After` header; `None` sends none.
        retry_after: Option<u64>,
    },
    /// HTTP 200 `-353` (the code without a 429).
    RateLimitCode,
    /// HTTP 400 `-204` "Connection error. Please try again".
    ConnectionError,
    /// HTTP 401 `-16`: the token is dead.
    InvalidToken,
    /// The request waits one hour (tokio time) and is then handled normally.
    Timeout,
    /// HTTP 200 `application/json` with a cut-off body.
    MalformedJson,
    /// HTTP 403 `text/html`: a firewall's page, not Fyers' JSON.
    HtmlPage,
}

/// A token minted by the simulator.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The access token: an HS256 JWT.
    pub access_token: Secret,
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
    /// `http://127.0.0.1:PORT/`: both the API base and the login base.
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
    /// Auth code → when it was issued.
    auth_codes: HashMap<String, DateTime<Utc>>,
    /// Access token → when it dies; revoked tokens are removed.
    live: HashMap<String, DateTime<Utc>>,
    /// Refresh token → when it dies.
    refresh_tokens: HashMap<String, DateTime<Utc>>,
}

impl Simulator {
    /// A simulator reading the time from `clock`.
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Simulator {
        let key = new_key();
        Simulator {
            inner: Arc::new(Inner {
                clock,
                key,
                state: Mutex::new(SimState {
                    config,
                    faults: HashMap::new(),
                    calls: HashMap::new(),
                    auth_codes: HashMap::new(),
                    live: HashMap::new(),
                    refresh_tokens: HashMap::new(),
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
        let running = serving::serve(vec![listener], app, switch, "Fyers simulator");
        let shown = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };
        let base_url = Url::parse(&format!("http://{shown}/"))
            .map_err(|e| std::io::Error::other(format!("base URL for {shown}: {e}")))?;
        tracing::debug!(%addr, "fyers simulator listening");
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

    /// Mint a valid token directly, as if the user had just logged in and exchanged.
    pub fn issue_token(&self) -> IssuedToken {
        let mut st = self.state();
        self.mint(&mut st)
    }

    /// Issue an auth code directly, as if the user had just logged in in the browser.
    pub fn issue_auth_code(&self) -> Secret {
        let mut st = self.state();
        Secret::new(self.new_auth_code(&mut st))
    }

    /// Invalidate every token issued so far.
    pub fn revoke_all(&self) {
        self.state().live.clear();
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

    fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut st = self.state();
        *st.calls.entry(endpoint).or_insert(0) += 1;
        st.faults.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }

    /// An HS256 JWT of `claims`, signed with the simulator's key.
    fn jwt(&self, claims: &serde_json::Value) -> String {
        jwt(&self.inner.key, claims)
    }

    fn new_auth_code(&self, st: &mut SimState) -> String {
        let now = self.now();
        let exp = now + chrono::Duration::from_std(AUTH_CODE_LIFETIME).unwrap_or_default();
        let code = self.jwt(&serde_json::json!({
            "iss": "api.login.fyers.in",
            "sub": "auth_code",
            "iat": now.timestamp(),
            "exp": exp.timestamp(),
            "app_id": st.config.client_id.split('-').next().unwrap_or_default(),
            "nonce": random_string(16),
        }));
        st.auth_codes.insert(code.clone(), now);
        code
    }

    fn mint(&self, st: &mut SimState) -> IssuedToken {
        let now = self.now();
        let issued_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let expires_at = match st.config.token_lifetime {
            Some(d) => {
                issued_at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
            }
            None => crate::token::expiry::next_ist_time_after(
                issued_at,
                chrono::NaiveTime::from_hms_opt(6, 0, 0).expect("06:00 is a valid time"),
            ),
        };
        let token = self.jwt(&serde_json::json!({
            "iss": "api.fyers.in",
            "sub": "access",
            "iat": issued_at.timestamp(),
            "nbf": issued_at.timestamp(),
            "exp": expires_at.timestamp(),
            "fy_id": st.config.fy_id,
            "jti": random_string(16),
        }));
        st.live.insert(token.clone(), expires_at);
        IssuedToken {
            access_token: Secret::new(token),
            issued_at,
            expires_at,
        }
    }

    fn new_refresh_token(&self, st: &mut SimState, issued_at: DateTime<Utc>) -> String {
        let exp =
            issued_at + chrono::Duration::from_std(REFRESH_TOKEN_LIFETIME).unwrap_or_default();
        let refresh = self.jwt(&serde_json::json!({
            "iss": "api.fyers.in",
            "sub": "refresh_token",
            "iat": issued_at.timestamp(),
            "exp": exp.timestamp(),
            "jti": random_string(16),
        }));
        st.refresh_tokens.insert(refresh.clone(), exp);
        refresh
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
            .route("/api/v3/generate-authcode", get(login))
            .route("/sim/decision", post(decision))
            .route("/api/v3/validate-authcode", post(exchange))
            .route("/api/v3/validate-refresh-token", post(refresh))
            .route("/api/v3/profile", get(profile))
            .route("/api/v3/logout", post(logout))
            .fallback(|| async { fyers_error(StatusCode::NOT_FOUND, -1, "Route not found") })
            .layer(middleware::from_fn(log_request))
            .with_state(app)
    }
}

#[derive(Clone)]
struct AppState {
    sim: Simulator,
    stopped: watch::Receiver<bool>,
}

impl AppState {
    async fn gate(&self, endpoint: Endpoint) -> Option<Response> {
        match self.sim.take_fault(endpoint)? {
            Fault::Timeout => {
                let mut stopped = self.stopped.clone();
                tokio::select! {
                    _ = tokio::time::sleep(TIMEOUT_FAULT_SLEEP) => None,
                    _ = stopped.wait_for(|stop| *stop) => Some(StatusCode::GATEWAY_TIMEOUT.into_response()),
                }
            }
            fault => Some(fault_response(fault)),
        }
    }
}

/// Logs method, path and status; never the query or any header.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "fyers simulator");
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

/// Fyers' error body.
fn fyers_error(status: StatusCode, code: i64, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"s": "error", "code": code, "message": message}),
    )
}

fn invalid_token() -> Response {
    fyers_error(
        StatusCode::UNAUTHORIZED,
        -16,
        "Could not authenticate the user",
    )
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::ServerError => fyers_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -1,
            "Something went wrong",
        ),
        Fault::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        )
            .into_response(),
        Fault::TooManyRequests { retry_after } => {
            let mut r = fyers_error(
                StatusCode::TOO_MANY_REQUESTS,
                -353,
                "API Limit exceeded (perSec)",
            );
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        Fault::RateLimitCode => fyers_error(StatusCode::OK, -353, "API Limit exceeded (perMin)"),
        Fault::ConnectionError => fyers_error(
            StatusCode::BAD_REQUEST,
            -204,
            "Connection error. Please try again",
        ),
        Fault::InvalidToken => invalid_token(),
        Fault::Timeout => StatusCode::GATEWAY_TIMEOUT.into_response(),
        Fault::MalformedJson => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"s":"ok","code":200,"data":{"fy_id":"#,
        )
            .into_response(),
        Fault::HtmlPage => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html><body>Access denied</body></html>",
        )
            .into_response(),
    }
}

/// The redirect of a finished login, with `pairs` and the login's `state`.
fn redirect_back(config: &SimConfig, pairs: &[(&str, &str)], state: &str) -> Response {
    let Ok(mut redirect) = Url::parse(&config.redirect_url) else {
        return fyers_error(
            StatusCode::BAD_REQUEST,
            -1,
            "The app's redirect URL is invalid",
        );
    };
    {
        let mut query = redirect.query_pairs_mut();
        for (k, v) in pairs {
            query.append_pair(k, v);
        }
        query.append_pair("state", state);
    }
    found(&redirect)
}

fn approve(app: &AppState, state: &str) -> Response {
    let (config, code) = {
        let mut st = app.sim.state();
        let code = app.sim.new_auth_code(&mut st);
        (st.config.clone(), code)
    };
    redirect_back(
        &config,
        &[("s", "ok"), ("code", "200"), ("auth_code", &code)],
        state,
    )
}

/// `None` when the login's parameters are the app's, else Fyers' refusal.
fn check_login(config: &SimConfig, params: &HashMap<String, String>) -> Option<Response> {
    if params.get("client_id") != Some(&config.client_id) {
        return Some(fyers_error(
            StatusCode::BAD_REQUEST,
            -1,
            "Invalid client_id (the app id with its -100 suffix)",
        ));
    }
    if params.get("redirect_uri") != Some(&config.redirect_url) {
        return Some(fyers_error(
            StatusCode::BAD_REQUEST,
            -1,
            "redirect_uri does not match the app's",
        ));
    }
    if params.get("state").is_none_or(|s| s.len() > 2048) {
        return Some(fyers_error(StatusCode::BAD_REQUEST, -1, "Invalid state"));
    }
    None
}

async fn login(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Login).await {
        return response;
    }
    let config = app.sim.state().config.clone();
    if params.get("response_type").map(String::as_str) != Some("code") {
        return fyers_error(StatusCode::BAD_REQUEST, -1, "response_type must be code");
    }
    if let Some(refusal) = check_login(&config, &params) {
        return refusal;
    }
    let state = params.get("state").map(String::as_str).unwrap_or_default();
    if config.auto_approve {
        return approve(&app, state);
    }
    Html(login_page(&config, state)).into_response()
}

fn login_page(config: &SimConfig, state: &str) -> String {
    let hidden = format!(
        r#"<input type="hidden" name="client_id" value="{}"><input type="hidden" name="redirect_uri" value="{}"><input type="hidden" name="state" value="{}">"#,
        html_escape(&config.client_id),
        html_escape(&config.redirect_url),
        html_escape(state)
    );
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fyers login (tokenwatch simulator)</title></head>
<body><h1>Fyers login</h1><p>Simulated user {} ({}) for app {}.</p>
<form method="post" action="/sim/decision">{hidden}<button name="decision" value="approve">Approve</button>
<button name="decision" value="deny">Deny</button></form></body></html>"#,
        html_escape(&config.name),
        html_escape(&config.fy_id),
        html_escape(&config.client_id),
    )
}

async fn decision(State(app): State<AppState>, body: Bytes) -> Response {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        params.entry(k.into_owned()).or_insert(v.into_owned());
    }
    let config = app.sim.state().config.clone();
    if let Some(refusal) = check_login(&config, &params) {
        return refusal;
    }
    let state = params.get("state").map(String::as_str).unwrap_or_default();
    if params.get("decision").map(String::as_str) == Some("approve") {
        return approve(&app, state);
    }
    redirect_back(&config, &[("error", "access_denied")], state)
}

async fn exchange(State(app): State<AppState>, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Exchange).await {
        return response;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |name: &str| {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let sim = &app.sim;
    let now = sim.now();
    let mut st = sim.state();
    // An auth code is used up the moment it is presented, whatever happens next.
    let issued = field("code").and_then(|c| st.auth_codes.remove(c));
    if field("grant_type") != Some("authorization_code") {
        return fyers_error(StatusCode::BAD_REQUEST, -1, "Invalid grant_type");
    }
    let expected = crate::brokers::fyers::client::app_id_hash(
        &st.config.client_id,
        &Secret::new(st.config.secret_key.clone()),
    );
    if !field("appIdHash").is_some_and(|h| same(h.as_bytes(), expected.expose().as_bytes())) {
        return fyers_error(
            StatusCode::BAD_REQUEST,
            -371,
            "Please provide sha256 hash of appId and app secret",
        );
    }
    if field("code").is_none() {
        return fyers_error(StatusCode::BAD_REQUEST, -374, "Please provide auth code");
    }
    let lifetime = chrono::Duration::from_std(AUTH_CODE_LIFETIME).unwrap_or_default();
    if issued.is_none_or(|at| now >= at + lifetime) {
        return fyers_error(
            StatusCode::BAD_REQUEST,
            -413,
            "Invalid auth code or it has expired",
        );
    }
    let token = sim.mint(&mut st);
    let refresh = sim.new_refresh_token(&mut st, token.issued_at);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "s": "ok",
            "code": 200,
            "message": "",
            "access_token": token.access_token.expose(),
            "refresh_token": refresh,
        }),
    )
}

async fn refresh(State(app): State<AppState>, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Refresh).await {
        return response;
    }
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |name: &str| {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let sim = &app.sim;
    let now = sim.now();
    let mut st = sim.state();
    if field("grant_type") != Some("refresh_token") {
        return fyers_error(StatusCode::BAD_REQUEST, -1, "Invalid grant_type");
    }
    let expected = crate::brokers::fyers::client::app_id_hash(
        &st.config.client_id,
        &Secret::new(st.config.secret_key.clone()),
    );
    if !field("appIdHash").is_some_and(|h| same(h.as_bytes(), expected.expose().as_bytes())) {
        return fyers_error(
            StatusCode::BAD_REQUEST,
            -371,
            "Please provide sha256 hash of appId and app secret",
        );
    }
    let known = field("refresh_token")
        .and_then(|r| st.refresh_tokens.get(r))
        .is_some_and(|exp| now < *exp);
    if !known {
        return fyers_error(
            StatusCode::BAD_REQUEST,
            -501,
            "Invalid refresh token or it has expired",
        );
    }
    let pin = st.config.pin.clone();
    if !field("pin").is_some_and(|p| same(p.as_bytes(), pin.as_bytes())) {
        return fyers_error(StatusCode::BAD_REQUEST, -1006, "Invalid PIN");
    }
    let token = sim.mint(&mut st);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "s": "ok",
            "code": 200,
            "message": "",
            "access_token": token.access_token.expose(),
        }),
    )
}

/// The access token of `Authorization: <client_id>:<access_token>` when the id is the app's.
fn authorized<'h>(headers: &'h HeaderMap, config: &SimConfig) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (id, token) = value.rsplit_once(':')?;
    (id == config.client_id && !token.is_empty()).then_some(token)
}

async fn profile(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Profile).await {
        return response;
    }
    let st = app.sim.state();
    let config = &st.config;
    if !authorized(&headers, config).is_some_and(|t| app.sim.is_live(&st, t)) {
        return invalid_token();
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "s": "ok",
            "code": 200,
            "message": "",
            "data": {
                "fy_id": config.fy_id,
                "name": config.name,
                "display_name": config.name,
                "email_id": config.email,
                "image": null,
                "PAN": "XXXXX0000X",
                "pin_change_date": "",
                "mobile_number": "9999999999",
                "totp": true,
                "pwd_change_date": null,
                "pwd_to_expire": 90,
                "ddpi_enabled": false,
                "mtf_enabled": false,
            }
        }),
    )
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Logout).await {
        return response;
    }
    let mut st = app.sim.state();
    let token = authorized(&headers, &st.config).map(str::to_owned);
    match token {
        Some(t) if app.sim.is_live(&st, &t) => {
            st.live.remove(&t);
            json(
                StatusCode::OK,
                &serde_json::json!({"s":"ok","code":200,"message":"you are successfully logged out"}),
            )
        }
        _ => invalid_token(),
    }
}
