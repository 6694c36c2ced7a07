//! A DhanHQ v2 stand-in for tests and demos, with Dhan's shapes, over real loopback HTTP. It
//! serves both the login base and the API base. Every time comes from the injected [`Clock`].
//!
//! * `POST /app/generate-consent?client_id=…` with headers `app_id` and `app_secret`: the
//!   app's key and secret and the user's `dhanClientId` must be right; answers
//!   `{"status":"success","consentAppId":…}`.
//! * `GET /login/consentApp-login?consentAppId=…`: the browser login. With
//!   [`SimConfig::auto_approve`] it redirects (302) to the redirect URL with `tokenId=…`;
//!   otherwise it shows a small page whose Approve and Deny buttons post to the
//!   simulator-only `POST /sim/decision` (Deny redirects with `error=access_denied`: what
//!   Dhan sends on a refusal is not known). A consent is used up by the login.
//! * `GET /app/consumeApp-consent?tokenId=…` with the same two headers: a tokenId is used up
//!   the moment it is presented and lives [`TOKEN_ID_LIFETIME`]; an unknown, used or expired
//!   one is `DH-905` (the simulator's choice). Answers `{dhanClientId, dhanClientName,
//!   dhanClientUcc, givenPowerOfAttorney, accessToken, expiryTime}`, the `dhanClientId` being
//!   [`SimConfig::consent_client_id`] when set (a browser logged in to someone else).
//! * `POST /app/generateAccessToken?dhanClientId=…&pin=…&totp=…`: the PIN and a TOTP code
//!   right at the simulator's clock ([`totp::check`](crate::brokers::totp::check)); a wrong
//!   one is HTTP 400 `DH-905`.
//! * `GET /v2/RenewToken` with `access-token` and `dhanClientId`: a new token for a live one,
//!   which dies the same moment; a dead one is HTTP 401 `DH-901`.
//! * `GET /v2/profile` with `access-token`: the profile, or for an unknown, expired or
//!   ended token HTTP 401 `{"errorType":"Invalid_Authentication","errorCode":"DH-901",…}`.
//!
//! Tokens are HS256 JWTs whose `exp` is [`SimConfig::token_lifetime`] after issue (24 hours
//! unless set), and `expiryTime` the same instant in IST without a zone, as Dhan writes it.
//! Faults ([`Fault`]) are queued per endpoint with [`Simulator::inject`]; calls are counted.
//! Requests are logged at debug level with method, path and status only: never a query, a
//! header, a token, a tokenId, a PIN, a code or a secret.

use crate::brokers::dhan::format_expiry_time;
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

/// How long a consent or a tokenId may wait before it is used.
pub const TOKEN_ID_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// How long a token lives unless [`SimConfig::token_lifetime`] says otherwise.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How long a [`Fault::Timeout`] keeps a request waiting before answering normally.
const TIMEOUT_FAULT_SLEEP: Duration = Duration::from_secs(3600);

/// How the simulated Dhan app and user are set up.
#[derive(Clone)]
pub struct SimConfig {
    /// The user's `dhanClientId`.
    pub client_id: String,
    /// The user's name.
    pub client_name: String,
    /// The app's API key (`app_id`).
    pub app_id: String,
    /// The app's secret (`app_secret`).
    pub app_secret: String,
    /// The user's PIN, for the PIN and TOTP login.
    pub pin: String,
    /// The user's TOTP secret (base32).
    pub totp_secret: String,
    /// The app's registered redirect URL.
    pub redirect_url: String,
    /// How long tokens live (`None`: [`DEFAULT_TOKEN_LIFETIME`]).
    pub token_lifetime: Option<Duration>,
    /// The login redirects straight back with a tokenId.
    pub auto_approve: bool,
    /// The `dhanClientId` a consumed consent names, when not [`SimConfig::client_id`]: a
    /// browser logged in to another user's account.
    pub consent_client_id: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            client_id: "1100000001".to_string(),
            client_name: "Jane Doe".to_string(),
            app_id: "dhan-sim-app".to_string(),
            app_secret: "dhan-sim-secret".to_string(),
            pin: "123456".to_string(),
            // RFC 6238's test secret: any authenticator app can make its codes.
            totp_secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".to_string(),
            redirect_url: "http://localhost:5003/callback".to_string(),
            token_lifetime: None,
            auto_approve: false,
            consent_client_id: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("client_id", &self.client_id)
            .field("app_id", &self.app_id)
            .field("app_secret", &"********")
            .field("pin", &"********")
            .field("totp_secret", &"********")
            .field("redirect_url", &self.redirect_url)
            .field("token_lifetime", &self.token_lifetime)
            .field("auto_approve", &self.auto_approve)
            .finish_non_exhaustive()
    }
}

/// The simulated endpoints, for fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /app/generate-consent`.
    Consent,
    /// `GET /login/consentApp-login` (and the page's decision).
    Login,
    /// `GET /app/consumeApp-consent`.
    Consume,
    /// `POST /app/generateAccessToken`.
    PinLogin,
    /// `GET /v2/RenewToken`.
    Renew,
    /// `GET /v2/profile`.
    Profile,
}

/// A failure to answer with instead of the normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with Dhan's error JSON (`DH-908`).
    ServerError,
    /// HTTP 503 with a gateway's HTML page.
    Unavailable,
    /// HTTP 429 `DH-904`, with `Retry-After: N` when given.
    TooManyRequests {
        /// Seconds for the `Retry-After` header; `None` sends none.
        retry_after: Option<u64>,
    },
    /// HTTP 400 `DH-904` (the code without a 429).
    RateLimitCode,
    /// HTTP 400 `DH-909`: a network error on Dhan's side.
    ConnectionError,
    /// HTTP 401 `DH-901`: the token is dead.
    InvalidToken,
    /// The request waits one hour (tokio time) and is then handled normally.
    Timeout,
    /// HTTP 200 `application/json` with a cut-off body.
    MalformedJson,
    /// HTTP 403 `text/html`: a firewall's page, not Dhan's JSON.
    HtmlPage,
}

/// A token minted by the simulator.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The access token: an HS256 JWT.
    pub access_token: Secret,
    /// The issue time (whole seconds).
    pub issued_at: DateTime<Utc>,
    /// When it dies: its `exp` and its `expiryTime`.
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
    /// consentAppId → when it was made.
    consents: HashMap<String, DateTime<Utc>>,
    /// tokenId → when it was issued.
    token_ids: HashMap<String, DateTime<Utc>>,
    /// Access token → when it dies and whose it is; ended tokens are removed.
    live: HashMap<String, (DateTime<Utc>, String)>,
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
                    consents: HashMap::new(),
                    token_ids: HashMap::new(),
                    live: HashMap::new(),
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
        let running = serving::serve(vec![listener], app, switch, "Dhan simulator");
        let shown = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };
        let base_url = Url::parse(&format!("http://{shown}/"))
            .map_err(|e| std::io::Error::other(format!("base URL for {shown}: {e}")))?;
        tracing::debug!(%addr, "dhan simulator listening");
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

    /// Mint a valid token directly, as if the user had just logged in.
    pub fn issue_token(&self) -> IssuedToken {
        let mut st = self.state();
        self.mint(&mut st)
    }

    /// Issue a tokenId directly, as if the user had just approved a consent in the browser.
    pub fn issue_token_id(&self) -> Secret {
        let mut st = self.state();
        Secret::new(self.new_token_id(&mut st))
    }

    /// End every token issued so far.
    pub fn revoke_all(&self) {
        self.state().live.clear();
    }

    /// Whether `token` still works.
    pub fn is_token_live(&self, token: &str) -> bool {
        let st = self.state();
        self.is_live(&st, token)
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

    fn new_token_id(&self, st: &mut SimState) -> String {
        let id = random_string(32);
        st.token_ids.insert(id.clone(), self.now());
        id
    }

    fn mint(&self, st: &mut SimState) -> IssuedToken {
        let client_id = st.config.client_id.clone();
        self.mint_for(st, &client_id)
    }

    fn mint_for(&self, st: &mut SimState, client_id: &str) -> IssuedToken {
        let now = self.now();
        let issued_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let lifetime = st.config.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let expires_at =
            issued_at + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(1));
        let token = self.jwt(&serde_json::json!({
            "iss": "dhan",
            "partnerId": "",
            "exp": expires_at.timestamp(),
            "iat": issued_at.timestamp(),
            "tokenConsumerType": "APP",
            "webhookUrl": "",
            "dhanClientId": client_id,
            "jti": random_string(16),
        }));
        st.live
            .insert(token.clone(), (expires_at, client_id.to_owned()));
        IssuedToken {
            access_token: Secret::new(token),
            issued_at,
            expires_at,
        }
    }

    fn is_live(&self, st: &SimState, token: &str) -> bool {
        st.live.get(token).is_some_and(|(exp, _)| self.now() < *exp)
    }

    fn router(&self, stopped: watch::Receiver<bool>) -> Router {
        let app = AppState {
            sim: self.clone(),
            stopped,
        };
        Router::new()
            .route("/app/generate-consent", post(generate_consent))
            .route("/login/consentApp-login", get(login))
            .route("/sim/decision", post(decision))
            .route("/app/consumeApp-consent", get(consume))
            .route("/app/generateAccessToken", post(pin_login))
            .route("/v2/RenewToken", get(renew))
            .route("/v2/profile", get(profile))
            .fallback(|| async {
                dhan_error(
                    StatusCode::NOT_FOUND,
                    "Input_Exception",
                    "DH-905",
                    "Route not found",
                )
            })
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
    tracing::debug!(%method, %path, status = response.status().as_u16(), "dhan simulator");
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

/// Dhan's error body.
fn dhan_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"errorType": kind, "errorCode": code, "errorMessage": message}),
    )
}

fn invalid_token() -> Response {
    dhan_error(
        StatusCode::UNAUTHORIZED,
        "Invalid_Authentication",
        "DH-901",
        "Client ID or user generated access token is invalid or expired.",
    )
}

fn input_error(message: &str) -> Response {
    dhan_error(
        StatusCode::BAD_REQUEST,
        "Input_Exception",
        "DH-905",
        message,
    )
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::ServerError => dhan_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal_Server_Error",
            "DH-908",
            "Something went wrong",
        ),
        Fault::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
            "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
        )
            .into_response(),
        Fault::TooManyRequests { retry_after } => {
            let mut r = dhan_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate_Limit",
                "DH-904",
                "Too many requests",
            );
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        Fault::RateLimitCode => dhan_error(
            StatusCode::BAD_REQUEST,
            "Rate_Limit",
            "DH-904",
            "Too many requests",
        ),
        Fault::ConnectionError => dhan_error(
            StatusCode::BAD_REQUEST,
            "Network_Error",
            "DH-909",
            "Network error",
        ),
        Fault::InvalidToken => invalid_token(),
        Fault::Timeout => StatusCode::GATEWAY_TIMEOUT.into_response(),
        Fault::MalformedJson => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"dhanClientId":"#,
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

/// Whether the `app_id` and `app_secret` headers are the app's.
fn app_ok(headers: &HeaderMap, config: &SimConfig) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("app_id") == Some(config.app_id.as_str())
        && value("app_secret").is_some_and(|s| same(s.as_bytes(), config.app_secret.as_bytes()))
}

fn bad_app() -> Response {
    dhan_error(
        StatusCode::UNAUTHORIZED,
        "Invalid_Authentication",
        "DH-902",
        "Invalid app_id or app_secret",
    )
}

fn within(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < at + chrono::Duration::from_std(TOKEN_ID_LIFETIME).unwrap_or_default()
}

async fn generate_consent(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Consent).await {
        return response;
    }
    let mut st = app.sim.state();
    if !app_ok(&headers, &st.config) {
        return bad_app();
    }
    if params.get("client_id") != Some(&st.config.client_id) {
        return input_error("Invalid client_id");
    }
    let id = format!(
        "{}-{}-{}",
        random_string(8),
        random_string(4),
        random_string(12)
    );
    st.consents.insert(id.clone(), app.sim.now());
    json(
        StatusCode::OK,
        &serde_json::json!({"consentAppId": id, "consentAppStatus": "GENERATED", "status": "success"}),
    )
}

fn redirect_back(config: &SimConfig, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut redirect) = Url::parse(&config.redirect_url) else {
        return input_error("The app's redirect URL is invalid");
    };
    redirect.query_pairs_mut().extend_pairs(pairs);
    found(&redirect)
}

/// Use up a consent: `None` when it is unknown, used or expired.
fn take_consent(app: &AppState, params: &HashMap<String, String>) -> Option<SimConfig> {
    let now = app.sim.now();
    let mut st = app.sim.state();
    let made = params
        .get("consentAppId")
        .and_then(|id| st.consents.remove(id));
    made.is_some_and(|at| within(at, now))
        .then(|| st.config.clone())
}

fn approve(app: &AppState, config: &SimConfig) -> Response {
    let id = {
        let mut st = app.sim.state();
        app.sim.new_token_id(&mut st)
    };
    redirect_back(config, &[("tokenId", &id)])
}

async fn login(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Login).await {
        return response;
    }
    let auto = app.sim.state().config.auto_approve;
    if auto {
        return match take_consent(&app, &params) {
            Some(config) => approve(&app, &config),
            None => input_error("Invalid or expired consentAppId"),
        };
    }
    let st = app.sim.state();
    let id = params.get("consentAppId").cloned().unwrap_or_default();
    if !st.consents.contains_key(&id) {
        return input_error("Invalid or expired consentAppId");
    }
    Html(login_page(&st.config, &id)).into_response()
}

fn login_page(config: &SimConfig, consent: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Dhan login (tokenwatch simulator)</title></head>
<body><h1>Dhan login</h1><p>Simulated user {} ({}) for app {}.</p>
<form method="post" action="/sim/decision"><input type="hidden" name="consentAppId" value="{}"><button name="decision" value="approve">Approve</button>
<button name="decision" value="deny">Deny</button></form></body></html>"#,
        html_escape(&config.client_name),
        html_escape(&config.client_id),
        html_escape(&config.app_id),
        html_escape(consent),
    )
}

async fn decision(State(app): State<AppState>, body: Bytes) -> Response {
    let mut params = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        params.entry(k.into_owned()).or_insert(v.into_owned());
    }
    let Some(config) = take_consent(&app, &params) else {
        return input_error("Invalid or expired consentAppId");
    };
    if params.get("decision").map(String::as_str) == Some("approve") {
        return approve(&app, &config);
    }
    redirect_back(&config, &[("error", "access_denied")])
}

/// A login's answer for a new token of `client_id`.
fn session(config: &SimConfig, client_id: &str, token: &IssuedToken) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "dhanClientId": client_id,
            "dhanClientName": config.client_name,
            "dhanClientUcc": "SIMU12345",
            "givenPowerOfAttorney": false,
            "accessToken": token.access_token.expose(),
            "expiryTime": format_expiry_time(token.expires_at),
        }),
    )
}

async fn consume(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Consume).await {
        return response;
    }
    let sim = &app.sim;
    let now = sim.now();
    let mut st = sim.state();
    // A tokenId is used up the moment it is presented, whatever happens next.
    let issued = params.get("tokenId").and_then(|t| st.token_ids.remove(t));
    if !app_ok(&headers, &st.config) {
        return bad_app();
    }
    if !issued.is_some_and(|at| within(at, now)) {
        return input_error("Invalid or expired tokenId");
    }
    let config = st.config.clone();
    let client_id = config
        .consent_client_id
        .clone()
        .unwrap_or_else(|| config.client_id.clone());
    let token = sim.mint_for(&mut st, &client_id);
    session(&config, &client_id, &token)
}

async fn pin_login(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::PinLogin).await {
        return response;
    }
    let sim = &app.sim;
    let now = sim.now();
    let mut st = sim.state();
    let config = st.config.clone();
    let param = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    if param("dhanClientId") != config.client_id {
        return input_error("Invalid dhanClientId");
    }
    let pin_ok = same(param("pin").as_bytes(), config.pin.as_bytes());
    let totp_ok =
        crate::brokers::totp::check(&Secret::new(config.totp_secret.clone()), param("totp"), now);
    if !pin_ok || !totp_ok {
        return input_error("Invalid PIN or TOTP");
    }
    let token = sim.mint(&mut st);
    session(&config, &config.client_id, &token)
}

async fn renew(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Renew).await {
        return response;
    }
    let sim = &app.sim;
    let mut st = sim.state();
    let config = st.config.clone();
    let token = headers
        .get("access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let id_ok = headers
        .get("dhanClientId")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|id| id == config.client_id);
    let Some(old) = token.filter(|t| sim.is_live(&st, t)) else {
        return invalid_token();
    };
    if !id_ok {
        return input_error("Invalid dhanClientId");
    }
    st.live.remove(&old);
    let token = sim.mint(&mut st);
    session(&config, &config.client_id, &token)
}

async fn profile(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Profile).await {
        return response;
    }
    let st = app.sim.state();
    let token = headers.get("access-token").and_then(|v| v.to_str().ok());
    let Some((expires, client_id)) = token
        .filter(|t| app.sim.is_live(&st, t))
        .and_then(|t| st.live.get(t))
    else {
        return invalid_token();
    };
    let validity = crate::token::expiry::to_ist(*expires)
        .format("%d/%m/%Y %H:%M")
        .to_string();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "dhanClientId": client_id,
            "tokenValidity": validity,
            "activeSegment": "Equity, Derivative, Currency, Commodity",
            "ddpi": "Deactive",
            "mtf": "Deactive",
            "dataPlan": "Deactive",
            "dataValidity": "",
        }),
    )
}
