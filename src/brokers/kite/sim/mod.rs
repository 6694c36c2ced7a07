//! A Kite Connect v3 stand-in for tests and demos, with Kite's shapes, over real loopback
//! HTTP. Every time comes from the injected [`Clock`].
//!
//! * `GET /connect/login?v=3&api_key=…&redirect_params=…`: the browser login. With
//!   [`SimConfig::auto_approve`] it redirects (302) to the registered
//!   [`SimConfig::redirect_url`] with `request_token=…&action=login&status=success` and the
//!   decoded `redirect_params` pairs; otherwise it shows a small login page whose Approve and
//!   Deny buttons post to the simulator-only `POST /connect/decision` (Deny redirects with
//!   `status=cancelled` and no request token). A wrong `api_key` is a 400 `InputException`.
//! * `POST /session/token`: the exchange. It needs `X-Kite-Version: 3`, a form body with
//!   `api_key`, `request_token` and `checksum`; the checksum must be SHA-256 of
//!   `api_key + request_token + api_secret`. A request token is used up the moment it is
//!   presented (whatever happens next) and lives [`REQUEST_TOKEN_LIFETIME`]. Success is the
//!   `status`/`data` envelope with an opaque random `access_token` (not a JWT) and
//!   `login_time` in IST.
//! * `GET /user/profile` with `Authorization: token api_key:access_token`: an unknown,
//!   expired or revoked token is 403 `TokenException`. Tokens die at the first 06:00 IST after
//!   issue ([`kite_expiry`](super::kite_expiry)) or after [`SimConfig::token_lifetime`].
//! * `DELETE /session/token?api_key=…&access_token=…`: revokes the token.
//!
//! Errors are `{"status":"error","message":…,"data":null,"error_type":…}`. Faults ([`Fault`])
//! are queued per endpoint with [`Simulator::inject`]. Requests are logged at debug level
//! with method, path and status only: never a token, request token, checksum or secret.

mod login_page;
mod responses;
mod routes;

use crate::clock::Clock;
use crate::secret::Secret;
use crate::serving::{self, Running};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use url::Url;

/// How long a request token may wait before it is exchanged (Kite: "a few minutes").
pub const REQUEST_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How the simulated Kite app and user are set up. Change it while the simulator runs with
/// [`Simulator::set_config`].
#[derive(Clone)]
pub struct SimConfig {
    /// The app's `api_key`.
    pub api_key: String,
    /// The app's `api_secret`, which the exchange's checksum must be made with.
    pub api_secret: String,
    /// The app's registered redirect URL.
    pub redirect_url: String,
    /// The Kite user id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The user's short name.
    pub user_shortname: String,
    /// The user's e-mail address.
    pub email: String,
    /// `None`: tokens die at the first 06:00 IST after issue. `Some(d)`: they die `d` after
    /// issue (a compressed timeline for demos and tests).
    pub token_lifetime: Option<Duration>,
    /// The login redirects straight back with a request token.
    pub auto_approve: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: "kitesimkey0001".to_string(),
            api_secret: "kite-sim-secret".to_string(),
            redirect_url: "http://localhost:5001/callback".to_string(),
            user_id: "ZK1234".to_string(),
            user_name: "Jane Doe".to_string(),
            user_shortname: "Jane".to_string(),
            email: "jane@example.com".to_string(),
            token_lifetime: None,
            auto_approve: false,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("api_key", &self.api_key)
            .field("api_secret", &"********")
            .field("redirect_url", &self.redirect_url)
            .field("user_id", &self.user_id)
            .field("token_lifetime", &self.token_lifetime)
            .field("auto_approve", &self.auto_approve)
            .finish_non_exhaustive()
    }
}

/// The simulated endpoints, for fault injection and call counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /connect/login` (the Approve/Deny form post is not counted).
    Login,
    /// `POST /session/token`, the exchange.
    Exchange,
    /// `GET /user/profile`.
    Profile,
    /// `DELETE /session/token`.
    Logout,
}

/// A failure to answer with instead of the normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500, `GeneralException`.
    ServerError,
    /// HTTP 502, `DataException` (Kite's order system is down).
    BadGateway,
    /// HTTP 503, `NetworkException` (Kite's API is down).
    Unavailable,
    /// HTTP 504 with a gateway's HTML page.
    GatewayTimeout,
    /// HTTP 429 (`NetworkException`; the real body's error_type is unknown), with
    /// `Retry-After: N` when given.
    TooManyRequests {
        /// Seconds for the `Retry-After` header; `None` sends none.
        retry_after: Option<u64>,
    },
    /// HTTP 403 `TokenException`: the token is dead.
    TokenException,
    /// Never answers in practice: the request waits one hour (tokio time) and is then
    /// handled normally.
    Timeout,
    /// HTTP 200 `application/json` with a cut-off body.
    MalformedJson,
    /// HTTP 403 `text/html`: a firewall's "Access denied" page, not Kite's JSON.
    HtmlPage,
    /// HTTP 200 `application/json`, chunked, that never ends.
    EndlessBody,
    /// HTTP 200 `application/json` declaring `Content-Length:` [`HUGE_BODY_BYTES`].
    HugeBody,
    /// HTTP 200 `application/json`, chunked, one byte a second, never ending.
    TrickleBody,
    /// The connection is cut after the status line, in the middle of the answer.
    ConnectionReset,
}

/// The `Content-Length` a [`Fault::HugeBody`] declares (and streams): 500 MB.
pub const HUGE_BODY_BYTES: u64 = 500_000_000;

/// A token minted by the simulator.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The access token (32 random letters and digits, like Kite's).
    pub access_token: Secret,
    /// The issue time (whole seconds), the `login_time`.
    pub issued_at: DateTime<Utc>,
    /// When it dies.
    pub expires_at: DateTime<Utc>,
}

/// A running simulator server. Stop it with [`SimServer::shutdown`]; dropping it also stops
/// it (in the background).
#[derive(Debug)]
pub struct SimServer {
    /// The address the server listens on (the real port when port 0 was asked for).
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

/// The simulator: shared state behind a mutex. Cloning is cheap and every clone sees the
/// same state.
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
    state: Mutex<SimState>,
}

struct SimState {
    config: SimConfig,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    calls: HashMap<Endpoint, u64>,
    /// Request token → when it was issued.
    request_tokens: HashMap<String, DateTime<Utc>>,
    /// Access token → when it dies; revoked tokens are removed.
    live: HashMap<String, DateTime<Utc>>,
}

impl Simulator {
    /// A simulator reading the time from `clock`.
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Simulator {
        Simulator {
            inner: Arc::new(Inner {
                clock,
                state: Mutex::new(SimState {
                    config,
                    faults: HashMap::new(),
                    calls: HashMap::new(),
                    request_tokens: HashMap::new(),
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
        let running = serving::serve(vec![listener], app, switch, "Kite simulator");
        let shown = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };
        let base_url = Url::parse(&format!("http://{shown}/"))
            .map_err(|e| std::io::Error::other(format!("base URL for {shown}: {e}")))?;
        tracing::debug!(%addr, "kite simulator listening");
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

    /// Issue a request token directly, as if the user had just logged in in the browser.
    pub fn issue_request_token(&self) -> Secret {
        let mut st = self.state();
        Secret::new(self.new_request_token(&mut st))
    }

    /// Invalidate every token issued so far (a master logout in Kite Web, a login elsewhere).
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

    /// Count the call and take the next queued fault, if any.
    fn take_fault(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut st = self.state();
        *st.calls.entry(endpoint).or_insert(0) += 1;
        st.faults.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }

    fn new_request_token(&self, st: &mut SimState) -> String {
        let mut token = random_string(32);
        while st.request_tokens.contains_key(&token) {
            token = random_string(32);
        }
        st.request_tokens.insert(token.clone(), self.now());
        token
    }

    fn mint(&self, st: &mut SimState) -> IssuedToken {
        let now = self.now();
        let issued_at = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let expires_at = match st.config.token_lifetime {
            Some(d) => {
                issued_at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
            }
            None => super::kite_expiry(issued_at),
        };
        let mut token = random_string(32);
        while st.live.contains_key(&token) {
            token = random_string(32);
        }
        st.live.insert(token.clone(), expires_at);
        IssuedToken {
            access_token: Secret::new(token),
            issued_at,
            expires_at,
        }
    }

    /// True when `token` is live now.
    fn is_live(&self, st: &SimState, token: &str) -> bool {
        st.live
            .get(token)
            .is_some_and(|expires_at| self.now() < *expires_at)
    }
}

fn random_string(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}
