//! The embedded Upstox API simulator (SPEC §7), shared by `tokenwatch simulate` and the
//! tests.
//!
//! It serves, over real loopback HTTP, the endpoints tokenwatch uses with the shapes
//! documented in `UPSTOX.md`:
//!
//! * `GET /v2/login/authorization/dialog`: the browser login. With
//!   [`SimConfig::auto_approve`] it redirects (302) straight back to the registered
//!   `redirect_uri` with a single-use `code` and the caller's `state`; otherwise it shows a
//!   self-contained login/consent page whose Approve and Deny buttons post to the
//!   simulator-only `POST /v2/login/authorization/decision`.
//! * `POST /v2/login/authorization/token`: code → token, answered with Upstox's FLAT object
//!   (no `status`/`data` envelope, no `expires_in`). Codes are single-use (consumed on first
//!   presentation, whether the exchange then succeeds or fails) and expire after 10 minutes.
//! * `GET /v2/user/profile` and `DELETE /v2/logout` with `Authorization: Bearer`.
//! * `POST /v3/login/auth/token/request/{client_id}`: the "approve on the phone" request;
//!   approval (automatic, or [`Simulator::approve_pending`]) POSTs the webhook payload to
//!   [`SimConfig::notifier_url`].
//!
//! Access tokens are HS256 JWTs signed with a random per-simulator key, with Upstox's
//! observed header and claims; they die at the first 03:30 IST after issue
//! ([`upstox_expiry`]) or after [`SimConfig::token_lifetime`]. Every error uses the Upstox
//! envelope with both the camelCase and the snake_case field spellings.
//!
//! Faults ([`Fault`]) can be queued per endpoint with [`Simulator::inject`]. All times come
//! from the injected [`Clock`], never from the system clock, so tests can move time at
//! will. Requests are logged at debug level with method, path and status only: never a
//! token, code, state or secret.

use crate::clock::Clock;
use crate::secret::Secret;
use crate::serving::{self, Running};
use crate::token::expiry::upstox_expiry;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use url::Url;

type HmacSha256 = Hmac<Sha256>;

/// The JWT header Upstox access tokens carry, byte for byte.
const JWT_HEADER: &str = r#"{"typ":"JWT","key_id":"sk_v1.0","alg":"HS256"}"#;
/// How long an authorization code may wait before it is exchanged.
const CODE_LIFETIME_MINUTES: i64 = 10;
/// How long a `Fault::Timeout` keeps a request waiting before answering normally.
const TIMEOUT_FAULT_SLEEP: Duration = Duration::from_secs(3600);
/// Timeout for one webhook delivery.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

const EXCHANGES: [&str; 6] = ["NSE", "NFO", "BSE", "CDS", "BFO", "BCD"];
const PRODUCTS: [&str; 3] = ["D", "CO", "I"];
const ORDER_TYPES: [&str; 4] = ["MARKET", "LIMIT", "SL", "SL-M"];

/// How the simulated Upstox app and user are set up. Change it while the simulator runs
/// with [`Simulator::set_config`].
#[derive(Clone)]
pub struct SimConfig {
    /// The app's API key, sent as `client_id`.
    pub client_id: String,
    /// The app's secret, sent as `client_secret`.
    pub client_secret: String,
    /// The registered redirect URI; the dialog and the token exchange require exactly this.
    pub redirect_uri: String,
    /// The Upstox user id (`sub` claim, `user_id` fields).
    pub user_id: String,
    /// The user's display name.
    pub user_name: String,
    /// The user's e-mail address.
    pub email: String,
    /// `None`: tokens die by the 03:30 IST rule ([`upstox_expiry`]). `Some(d)`: they die `d`
    /// after issue (a compressed timeline, to try renewals in minutes).
    pub token_lifetime: Option<Duration>,
    /// The dialog redirects straight back with a code, and v3 requests are approved at once.
    pub auto_approve: bool,
    /// Where approved v3 access-token requests are POSTed.
    pub notifier_url: Option<Url>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            client_id: "615b1297-sim-client".to_string(),
            client_secret: "sim-secret".to_string(),
            redirect_uri: "http://localhost:5001/callback".to_string(),
            user_id: "AB1234".to_string(),
            user_name: "Jane Doe".to_string(),
            email: "jane@example.com".to_string(),
            token_lifetime: None,
            auto_approve: false,
            notifier_url: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"********")
            .field("redirect_uri", &self.redirect_uri)
            .field("user_id", &self.user_id)
            .field("user_name", &self.user_name)
            .field("email", &self.email)
            .field("token_lifetime", &self.token_lifetime)
            .field("auto_approve", &self.auto_approve)
            .field("notifier_url", &self.notifier_url.as_ref().map(Url::as_str))
            .finish()
    }
}

/// The simulated endpoints, for fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v2/login/authorization/dialog` (the Approve/Deny form post is not counted).
    Dialog,
    /// `POST /v2/login/authorization/token`.
    Token,
    /// `GET /v2/user/profile`.
    Profile,
    /// `DELETE /v2/logout`.
    Logout,
    /// `POST /v3/login/auth/token/request/{client_id}`.
    TokenRequest,
}

/// A failure to answer with instead of the normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500, error envelope `UDAPI100500`.
    ServerError,
    /// HTTP 429, error envelope `UDAPI10005`, with `Retry-After: N` when given.
    TooManyRequests {
        /// Seconds for the `Retry-After` header; `None` sends no header (as documented).
        retry_after: Option<u64>,
    },
    /// Never answers in practice: the request waits one hour (tokio time, so tests with a
    /// paused clock skip it) and is then handled normally.
    Timeout,
    /// HTTP 200, `application/json`, with a truncated body.
    MalformedJson,
    /// HTTP 403 `text/html`: Cloudflare's "Access denied, error code: 1010" page.
    CloudflareHtml,
    /// HTTP 503, error envelope `UDAPI100074` (the nightly service window).
    ServiceWindow,
    /// HTTP 401, error envelope `UDAPI100050` (invalid token).
    Unauthorized,
}

/// A token minted by the simulator.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The access token (an HS256 JWT).
    pub access_token: Secret,
    /// The issue time, the `iat` claim (whole seconds).
    pub issued_at: DateTime<Utc>,
    /// The expiry, the `exp` claim (whole seconds).
    pub expires_at: DateTime<Utc>,
}

/// A running simulator server. Stop it with [`SimServer::shutdown`]; dropping it also
/// stops it (gracefully, in the background).
#[derive(Debug)]
pub struct SimServer {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/` (or the bound address when it is not a wildcard).
    pub base_url: Url,
    running: Running,
}

impl SimServer {
    /// Stop accepting connections, let open ones finish, and wait for the server to end
    /// (at most a few seconds, then the remaining connections are cut).
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// The simulator: shared state behind a mutex. Cloning is cheap and every clone sees the
/// same state, so a test can keep a handle while the server runs.
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
    http: OnceLock<Option<reqwest::Client>>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    issued_at: DateTime<Utc>,
}

struct PendingRequest {
    client_id: String,
    expires_at: DateTime<Utc>,
}

struct SimState {
    config: SimConfig,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    calls: HashMap<Endpoint, u64>,
    codes: HashMap<String, CodeGrant>,
    /// `jti`s of tokens that are neither revoked nor logged out.
    live: HashSet<String>,
    pending: Option<PendingRequest>,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    jti: &'a str,
    #[serde(rename = "isMultiClient")]
    is_multi_client: bool,
    #[serde(rename = "isPlusPlan")]
    is_plus_plan: bool,
    iat: i64,
    iss: &'static str,
    exp: i64,
}

#[derive(Serialize)]
struct ErrorItem<'a> {
    #[serde(rename = "errorCode")]
    error_code_camel: &'a str,
    message: &'a str,
    #[serde(rename = "propertyPath")]
    property_path_camel: Option<&'a str>,
    #[serde(rename = "invalidValue")]
    invalid_value_camel: Option<&'a str>,
    error_code: &'a str,
    property_path: Option<&'a str>,
    invalid_value: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    status: &'static str,
    errors: Vec<ErrorItem<'a>>,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    email: &'a str,
    exchanges: [&'static str; 6],
    products: [&'static str; 3],
    broker: &'static str,
    user_id: &'a str,
    user_name: &'a str,
    order_types: [&'static str; 4],
    user_type: &'static str,
    poa: bool,
    is_active: bool,
    access_token: &'a str,
    extended_token: Option<&'a str>,
}

#[derive(Serialize)]
struct Profile<'a> {
    email: &'a str,
    exchanges: [&'static str; 6],
    products: [&'static str; 3],
    broker: &'static str,
    user_id: &'a str,
    user_name: &'a str,
    order_types: [&'static str; 4],
    user_type: &'static str,
    poa: bool,
    ddpi: bool,
    is_active: bool,
}

#[derive(Serialize)]
struct Success<T> {
    status: &'static str,
    data: T,
}

#[derive(Serialize)]
struct TokenRequestData<'a> {
    authorization_expiry: String,
    notifier_url: &'a str,
}

#[derive(Serialize)]
struct WebhookPayload<'a> {
    client_id: &'a str,
    user_id: &'a str,
    access_token: &'a str,
    token_type: &'static str,
    expires_at: String,
    issued_at: String,
    message_type: &'static str,
}

/// One error, as a whole Upstox error response.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    errors_response(status, &[(code, message)])
}

/// Several errors in one Upstox error envelope, both field spellings in each.
fn errors_response(status: StatusCode, errors: &[(&str, &str)]) -> Response {
    let body = ErrorEnvelope {
        status: "error",
        errors: errors
            .iter()
            .map(|(code, message)| ErrorItem {
                error_code_camel: code,
                message,
                property_path_camel: None,
                invalid_value_camel: None,
                error_code: code,
                property_path: None,
                invalid_value: None,
            })
            .collect(),
    };
    json_response(status, &body)
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn invalid_token() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "UDAPI100050",
        "Invalid token used to access API",
    )
}

fn invalid_credentials() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "UDAPI100016",
        "Invalid Credentials",
    )
}

fn bad_client_or_redirect() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "UDAPI100068",
        "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.",
    )
}

/// The answer for a queued fault (`Timeout` is handled by the caller).
fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::ServerError => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UDAPI100500",
            "Something went wrong",
        ),
        Fault::TooManyRequests { retry_after } => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "UDAPI10005",
                "Too Many Request Sent",
            );
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Fault::MalformedJson => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"status":"success","data":{"user_id":"#,
        )
            .into_response(),
        Fault::CloudflareHtml => (StatusCode::FORBIDDEN, Html(CLOUDFLARE_PAGE)).into_response(),
        Fault::ServiceWindow => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "UDAPI100074",
            "API is unavailable during the service window; try after 05:30 IST",
        ),
        Fault::Unauthorized => invalid_token(),
        // Answered normally after the wait; never reaches here in practice.
        Fault::Timeout => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "UDAPI100500",
            "Something went wrong",
        ),
    }
}

const CLOUDFLARE_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="UTF-8"><title>Access denied | api.upstox.com used Cloudflare to restrict access</title></head>
<body>
<div id="cf-wrapper">
  <div id="cf-error-details">
    <h1>Access denied</h1>
    <p>error code: 1010</p>
    <p>The owner of this website (api.upstox.com) has banned your access based on your browser's signature.</p>
    <p>Cloudflare Ray ID: 8f0c0ffee0000000 &bull; Performance &amp; security by Cloudflare</p>
  </div>
</div>
</body>
</html>
"#;

/// Minimal HTML escaping for values echoed into the login page.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn random_string(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}

fn random_jti() -> String {
    let hex = |n: usize| -> String {
        std::iter::repeat_with(|| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .take(n)
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}

fn epoch_ms_string(t: DateTime<Utc>) -> String {
    t.timestamp_millis().to_string()
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// A `302 Found` to `location`.
fn found(location: &Url) -> Response {
    match HeaderValue::from_str(location.as_str()) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => bad_client_or_redirect(),
    }
}

impl Simulator {
    /// A simulator with its own random signing key, reading the time from `clock`.
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
                    codes: HashMap::new(),
                    live: HashSet::new(),
                    pending: None,
                }),
                http: OnceLock::new(),
                runtime: Mutex::new(tokio::runtime::Handle::try_current().ok()),
            }),
        }
    }

    /// Bind `listen` (port 0 picks a free port) and serve the simulated API on the current
    /// tokio runtime until the returned [`SimServer`] is shut down or dropped.
    pub async fn serve(&self, listen: SocketAddr) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        *lock(&self.inner.runtime) = Some(tokio::runtime::Handle::current());
        let switch = serving::Switch::new();
        let app = self.router(switch.stopped());
        let running = serving::serve(vec![listener], app, switch, "Upstox simulator");
        let shown = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };
        let base_url = Url::parse(&format!("http://{shown}/"))
            .map_err(|e| std::io::Error::other(format!("base URL for {shown}: {e}")))?;
        tracing::debug!(%addr, "upstox simulator listening");
        Ok(SimServer {
            addr,
            base_url,
            running,
        })
    }

    /// Answer the next `times` calls of `endpoint` with `fault`. Injections queue up: later
    /// ones are used after the earlier ones are consumed.
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

    /// Invalidate every token issued so far (a new login elsewhere, a static IP change).
    pub fn revoke_all(&self) {
        self.state().live.clear();
    }

    /// Approve the pending v3 access-token request now: mint a token and POST the webhook
    /// payload to [`SimConfig::notifier_url`]. Delivery runs in a spawned task; the return
    /// value is how many deliveries were started (0 when nothing is pending, the request
    /// has expired, or no notifier URL is configured, in which case it stays pending).
    pub fn approve_pending(&self) -> usize {
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| lock(&self.inner.runtime).clone());
        let Some(runtime) = runtime else {
            tracing::warn!("upstox simulator: no tokio runtime to deliver the webhook on");
            return 0;
        };
        let now = self.inner.clock.now();
        let mut st = self.state();
        if st.pending.as_ref().is_some_and(|p| p.expires_at <= now) {
            st.pending = None;
        }
        let Some(notifier) = st.config.notifier_url.clone() else {
            return 0;
        };
        let Some(pending) = st.pending.take() else {
            return 0;
        };
        let token = self.mint(&mut st);
        let user_id = st.config.user_id.clone();
        drop(st);
        let payload = WebhookPayload {
            client_id: &pending.client_id,
            user_id: &user_id,
            access_token: token.access_token.expose(),
            token_type: "Bearer",
            expires_at: epoch_ms_string(token.expires_at),
            issued_at: epoch_ms_string(token.issued_at),
            message_type: "access_token",
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(body) => body,
            Err(_) => return 0,
        };
        let Some(client) = self.http_client() else {
            return 0;
        };
        runtime.spawn(async move {
            let result = client
                .post(notifier.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(status = response.status().as_u16(), "webhook delivered");
                }
                Ok(response) => {
                    tracing::warn!(
                        status = response.status().as_u16(),
                        notifier = %notifier,
                        "upstox simulator: the notifier refused the webhook"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e.without_url(),
                        notifier = %notifier,
                        "upstox simulator: webhook delivery failed"
                    );
                }
            }
        });
        1
    }

    /// Change the configuration of a running simulator.
    pub fn set_config(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.state().config);
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        lock(&self.inner.state)
    }

    fn http_client(&self) -> Option<reqwest::Client> {
        self.inner
            .http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(WEBHOOK_TIMEOUT)
                    .no_proxy()
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "upstox simulator: no HTTP client"))
                    .ok()
            })
            .clone()
    }

    fn sign(&self, data: &str) -> Vec<u8> {
        let mac = HmacSha256::new_from_slice(&self.inner.key)
            .expect("HMAC takes a key of any size")
            .chain_update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn mint(&self, st: &mut SimState) -> IssuedToken {
        let now = self.inner.clock.now();
        let issued_at = whole_seconds(now);
        let expires_at = match st.config.token_lifetime {
            Some(d) => whole_seconds(
                now + ChronoDuration::from_std(d).unwrap_or(ChronoDuration::days(3650)),
            ),
            None => upstox_expiry(now),
        };
        let jti = random_jti();
        let claims = Claims {
            sub: &st.config.user_id,
            jti: &jti,
            is_multi_client: false,
            is_plus_plan: false,
            iat: issued_at.timestamp(),
            iss: "udapi-gateway-service",
            exp: expires_at.timestamp(),
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(JWT_HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&signing_input));
        st.live.insert(jti);
        IssuedToken {
            access_token: Secret::new(format!("{signing_input}.{signature}")),
            issued_at,
            expires_at,
        }
    }

    /// The `jti` of `token` when it is valid now: our signature, not revoked, not expired.
    fn valid_jti(&self, st: &SimState, token: &str) -> Option<String> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        HmacSha256::new_from_slice(&self.inner.key)
            .ok()?
            .chain_update(format!("{header}.{payload}").as_bytes())
            .verify_slice(&signature)
            .ok()?;
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let jti = claims.get("jti")?.as_str()?;
        let exp = DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)?;
        (st.live.contains(jti) && exp > self.inner.clock.now()).then(|| jti.to_string())
    }

    /// Count the call and take the next queued fault, if any.
    fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut st = self.state();
        *st.calls.entry(endpoint).or_insert(0) += 1;
        st.faults.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }

    fn router(&self, stopped: watch::Receiver<bool>) -> Router {
        let app = AppState {
            sim: self.clone(),
            stopped,
        };
        Router::new()
            .route("/v2/login/authorization/dialog", get(dialog))
            .route("/v2/login/authorization/decision", post(decision))
            .route("/v2/login/authorization/token", post(token))
            .route("/v2/user/profile", get(profile))
            .route("/v2/logout", delete(logout))
            .route("/sim/token", post(sim_token))
            .route(
                "/v3/login/auth/token/request/{client_id}",
                post(token_request),
            )
            .fallback(not_found)
            .layer(middleware::from_fn(log_request))
            .with_state(app)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct AppState {
    sim: Simulator,
    stopped: watch::Receiver<bool>,
}

impl AppState {
    /// Count the call and apply a queued fault. `Some` is the response to send instead of
    /// the normal one; a `Timeout` fault waits (until server shutdown at most) and then
    /// lets the request through.
    async fn gate(&self, endpoint: Endpoint) -> Option<Response> {
        match self.sim.take_fault(endpoint)? {
            Fault::Timeout => {
                let mut stopped = self.stopped.clone();
                tokio::select! {
                    _ = tokio::time::sleep(TIMEOUT_FAULT_SLEEP) => None,
                    _ = stopped.wait_for(|stop| *stop) => Some(fault_response(Fault::Timeout)),
                }
            }
            fault => Some(fault_response(fault)),
        }
    }
}

/// Logs method, path and status; never the query (code, state) or any header.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "upstox simulator");
    response
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "UDAPI100060", "Resource not Found")
}

/// The configured redirect URI when `client_id` and `redirect_uri` match the app exactly.
fn check_client(st: &SimState, params: &HashMap<String, String>) -> Option<Url> {
    let client_ok = params.get("client_id") == Some(&st.config.client_id);
    let redirect_ok = params.get("redirect_uri") == Some(&st.config.redirect_uri);
    if client_ok && redirect_ok {
        Url::parse(&st.config.redirect_uri).ok()
    } else {
        None
    }
}

/// Issue a code and build the redirect carrying it (and `state` when given).
fn approve_redirect(app: &AppState, mut redirect: Url, state: Option<&String>) -> Response {
    let code = {
        let mut st = app.sim.state();
        let mut code = random_string(6);
        while st.codes.contains_key(&code) {
            code = random_string(6);
        }
        let grant = CodeGrant {
            client_id: st.config.client_id.clone(),
            redirect_uri: st.config.redirect_uri.clone(),
            issued_at: app.sim.inner.clock.now(),
        };
        st.codes.insert(code.clone(), grant);
        code
    };
    {
        let mut query = redirect.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    found(&redirect)
}

async fn dialog(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = app.gate(Endpoint::Dialog).await {
        return response;
    }
    let (redirect, auto, config) = {
        let st = app.sim.state();
        (
            check_client(&st, &params),
            st.config.auto_approve,
            st.config.clone(),
        )
    };
    let Some(redirect) = redirect else {
        return bad_client_or_redirect();
    };
    if auto {
        return approve_redirect(&app, redirect, params.get("state"));
    }
    Html(login_page(&config, &params)).into_response()
}

fn login_page(config: &SimConfig, params: &HashMap<String, String>) -> String {
    let hidden: String = ["response_type", "client_id", "redirect_uri", "state"]
        .iter()
        .filter_map(|name| {
            params.get(*name).map(|value| {
                format!(
                    r#"<input type="hidden" name="{name}" value="{}">"#,
                    html_escape(value)
                )
            })
        })
        .collect::<Vec<_>>()
        .join("\n      ");
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upstox login (tokenwatch simulator)</title>
<style>
  body {{ font-family: system-ui, sans-serif; background: #f4f1fb; margin: 0; }}
  .card {{ max-width: 26rem; margin: 4rem auto; background: #fff; border-radius: 12px;
          padding: 2rem; box-shadow: 0 4px 24px rgba(0,0,0,.08); }}
  h1 {{ color: #5a298b; font-size: 1.4rem; margin-top: 0; }}
  .note {{ background: #fff6d6; border: 1px solid #f0d98a; padding: .6rem .8rem;
          border-radius: 6px; font-size: .9rem; }}
  dl {{ display: grid; grid-template-columns: auto 1fr; gap: .3rem 1rem; }}
  dt {{ color: #666; }}
  .buttons {{ display: flex; gap: 1rem; margin-top: 1.5rem; }}
  button {{ flex: 1; padding: .8rem; border-radius: 8px; border: 0; font-size: 1rem;
           cursor: pointer; }}
  .approve {{ background: #5a298b; color: #fff; }}
  .deny {{ background: #eee; color: #333; }}
</style>
</head>
<body>
  <div class="card">
    <h1>Log in to Upstox</h1>
    <p class="note">This is the <strong>tokenwatch simulator</strong>, not the real Upstox.
      No password is needed and no real account is involved.</p>
    <p>The app <strong>{client_id}</strong> asks for access to your account:</p>
    <dl>
      <dt>User</dt><dd>{user_name} ({user_id})</dd>
      <dt>E-mail</dt><dd>{email}</dd>
      <dt>Redirect</dt><dd>{redirect_uri}</dd>
    </dl>
    <form method="post" action="/v2/login/authorization/decision">
      {hidden}
      <div class="buttons">
        <button class="approve" type="submit" name="decision" value="approve">Approve</button>
        <button class="deny" type="submit" name="decision" value="deny">Deny</button>
      </div>
    </form>
  </div>
</body>
</html>
"#,
        client_id = html_escape(&config.client_id),
        user_name = html_escape(&config.user_name),
        user_id = html_escape(&config.user_id),
        email = html_escape(&config.email),
        redirect_uri = html_escape(&config.redirect_uri),
    )
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(body) {
        map.entry(key.into_owned()).or_insert(value.into_owned());
    }
    map
}

async fn decision(State(app): State<AppState>, body: Bytes) -> Response {
    let params = parse_form(&body);
    let redirect = check_client(&app.sim.state(), &params);
    let Some(mut redirect) = redirect else {
        return bad_client_or_redirect();
    };
    if params.get("decision").map(String::as_str) == Some("approve") {
        return approve_redirect(&app, redirect, params.get("state"));
    }
    {
        let mut query = redirect.query_pairs_mut();
        query.append_pair("error", "access_denied");
        query.append_pair(
            "error_description",
            "The user denied the authorization request",
        );
        if let Some(state) = params.get("state") {
            query.append_pair("state", state);
        }
    }
    found(&redirect)
}

async fn token(State(app): State<AppState>, body: Bytes) -> Response {
    if let Some(response) = app.gate(Endpoint::Token).await {
        return response;
    }
    let form = parse_form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let sim = &app.sim;
    let mut st = sim.state();
    // A code is used up the moment it is presented, whatever happens next.
    let grant = field("code").and_then(|code| st.codes.remove(code));

    let missing: Vec<(&str, &str)> = [
        ("client_id", "UDAPI1017", "API key is required"),
        ("redirect_uri", "UDAPI1018", "Redirect URI is required"),
        ("code", "UDAPI1022", "Code is required"),
        ("grant_type", "UDAPI1023", "Grant type is required"),
        ("client_secret", "UDAPI1024", "App secret is required"),
    ]
    .into_iter()
    .filter(|(name, _, _)| field(name).is_none())
    .map(|(_, code, message)| (code, message))
    .collect();
    if !missing.is_empty() {
        return errors_response(StatusCode::BAD_REQUEST, &missing);
    }

    let now = sim.inner.clock.now();
    let config = &st.config;
    let credentials_ok = field("grant_type") == Some("authorization_code")
        && field("client_id") == Some(config.client_id.as_str())
        && field("client_secret") == Some(config.client_secret.as_str())
        && field("redirect_uri") == Some(config.redirect_uri.as_str());
    let code_ok = grant.is_some_and(|g| {
        Some(g.client_id.as_str()) == field("client_id")
            && Some(g.redirect_uri.as_str()) == field("redirect_uri")
            && now < g.issued_at + ChronoDuration::minutes(CODE_LIFETIME_MINUTES)
    });
    if !(credentials_ok && code_ok) {
        return invalid_credentials();
    }

    let issued = sim.mint(&mut st);
    let config = &st.config;
    token_body(config, &issued)
}

/// The flat token object of a successful exchange (UPSTOX.md, Code → token).
fn token_body(config: &SimConfig, issued: &IssuedToken) -> Response {
    json_response(
        StatusCode::OK,
        &TokenResponse {
            email: &config.email,
            exchanges: EXCHANGES,
            products: PRODUCTS,
            broker: "UPSTOX",
            user_id: &config.user_id,
            user_name: &config.user_name,
            order_types: ORDER_TYPES,
            user_type: "individual",
            poa: false,
            is_active: true,
            access_token: issued.access_token.expose(),
            extended_token: None,
        },
    )
}

/// `POST /sim/token`: a simulator-only convenience, not an Upstox endpoint. It answers a
/// freshly minted token in the flat shape of the code exchange, so a `renew.command` such as
/// `curl -sf -X POST http://127.0.0.1:5055/sim/token` can stand in for a real renewal.
async fn sim_token(State(app): State<AppState>) -> Response {
    let sim = &app.sim;
    let mut st = lock(&sim.inner.state);
    let issued = sim.mint(&mut st);
    let config = &st.config;
    token_body(config, &issued)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn profile(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Profile).await {
        return response;
    }
    let st = app.sim.state();
    if bearer(&headers)
        .and_then(|t| app.sim.valid_jti(&st, t))
        .is_none()
    {
        return invalid_token();
    }
    let config = &st.config;
    json_response(
        StatusCode::OK,
        &Success {
            status: "success",
            data: Profile {
                email: &config.email,
                exchanges: EXCHANGES,
                products: PRODUCTS,
                broker: "UPSTOX",
                user_id: &config.user_id,
                user_name: &config.user_name,
                order_types: ORDER_TYPES,
                user_type: "individual",
                poa: false,
                ddpi: false,
                is_active: true,
            },
        },
    )
}

async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = app.gate(Endpoint::Logout).await {
        return response;
    }
    let mut st = app.sim.state();
    match bearer(&headers).and_then(|t| app.sim.valid_jti(&st, t)) {
        Some(jti) => {
            st.live.remove(&jti);
            json_response(
                StatusCode::OK,
                &Success {
                    status: "success",
                    data: true,
                },
            )
        }
        None => invalid_token(),
    }
}

async fn token_request(
    State(app): State<AppState>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(response) = app.gate(Endpoint::TokenRequest).await {
        return response;
    }
    let secret = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("client_secret")?.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "UDAPI1024",
            "App secret is required",
        );
    };
    let now = app.sim.inner.clock.now();
    let (expiry, notifier, auto) = {
        let mut st = app.sim.state();
        if client_id != st.config.client_id || secret != st.config.client_secret {
            return invalid_credentials();
        }
        let expiry = upstox_expiry(now);
        // A new request replaces one still pending: the user approves one notification.
        st.pending = Some(PendingRequest {
            client_id,
            expires_at: expiry,
        });
        (
            expiry,
            st.config
                .notifier_url
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            st.config.auto_approve,
        )
    };
    if auto {
        app.sim.approve_pending();
    }
    json_response(
        StatusCode::OK,
        &Success {
            status: "success",
            data: TokenRequestData {
                authorization_expiry: epoch_ms_string(expiry),
                notifier_url: &notifier,
            },
        },
    )
}
