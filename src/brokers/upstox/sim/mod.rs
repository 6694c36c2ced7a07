//! The embedded Upstox API simulator, shared by `tokenwatch simulate` and the
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
//! ([`upstox_expiry`](crate::token::expiry::upstox_expiry)) or after [`SimConfig::token_lifetime`]. Every error uses the Upstox
//! envelope with both the camelCase and the snake_case field spellings.
//!
//! Faults ([`Fault`]) can be queued per endpoint with [`Simulator::inject`]. All times come
//! from the injected [`Clock`], never from the system clock, so tests can move time at
//! will. Requests are logged at debug level with method, path and status only: never a
//! token, code, state or secret.
//!
//! The parts: the shared state and the public handle ([`Simulator`], here), access tokens
//! (`jwt`), Upstox's response shapes (`responses`), the HTTP routes of the v2 endpoints
//! (`routes`), the browser's login page (`login_page`) and the v3 access-token request with
//! its webhook (`token_request`).

mod jwt;
mod login_page;
mod responses;
mod routes;
mod token_request;

use crate::clock::Clock;
use crate::secret::Secret;
use crate::serving::{self, Running};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use url::Url;

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
    /// `None`: tokens die by the 03:30 IST rule
    /// ([`upstox_expiry`](crate::token::expiry::upstox_expiry)). `Some(d)`: they die `d`
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
    /// HTTP 401 `text/html`: a proxy's or captive portal's sign-in page, not Upstox's JSON.
    HtmlUnauthorized,
    /// HTTP 200 `application/json`, chunked, that never ends: the start of a profile, then
    /// filler as fast as the connection takes it.
    EndlessBody,
    /// HTTP 200 `application/json` declaring `Content-Length: 500000000`
    /// ([`HUGE_BODY_BYTES`]), streamed in full to a reader that takes it.
    HugeBody,
    /// HTTP 200 `application/json`, chunked, one byte a second, never ending.
    TrickleBody,
}

/// The `Content-Length` a [`Fault::HugeBody`] declares (and streams): 500 MB.
pub const HUGE_BODY_BYTES: u64 = 500_000_000;

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

    /// Change the configuration of a running simulator.
    pub fn set_config(&self, f: impl FnOnce(&mut SimConfig)) {
        f(&mut self.state().config);
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        lock(&self.inner.state)
    }

    /// Count the call and take the next queued fault, if any.
    fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut st = self.state();
        *st.calls.entry(endpoint).or_insert(0) += 1;
        st.faults.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
