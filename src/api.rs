//! The HTTP status API, served on `server.listen` by the dashboard and the daemon.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/token/status[?account=NAME]` | 200, the status JSON of `status --json` (404 for an unknown account) |
//! | `GET /api/tokens` | 200, `{"accounts": [status, ...]}` in tab order |
//! | `POST /api/token/force-refresh[?account=NAME]` | 202 `{"account", "merged", "message"}`: the worker validates now and renews if due (`merged: true`: one queued or running took this request in); 429 with `Retry-After` when a forced check of the account started less than 5 s ago |
//! | `POST /api/upstox/token/refresh[?account=NAME]` | 202, `{"account", "auth_url", "listening", "expires_at"}`: a browser login is waiting |
//! | `GET /api/token/events[?account=NAME]` | 200, Server-Sent Events: `event: token` with `{account, broker, state, expires_at, version}` for every account (or the one named) at once, then on every change of state or token; a keep-alive comment every 15 s; 503 beyond [`MAX_EVENT_STREAMS`] open streams; the stream ends when a reload changes the accounts |
//! | `GET /metrics` | 200, Prometheus/OpenMetrics text ([`crate::metrics`]) |
//! | `GET /healthz` | 200 `{"status":"ok"}` while every worker runs, else 503 |
//!
//! No answer ever holds a token. POSTs carrying an `Origin` header (a web page's script) are
//! refused with 403, so a site open in the user's browser cannot trigger logins. When
//! `server.api_key` is set, POSTs need it in `X-Tokenwatch-Key` (401 otherwise); a
//! non-loopback `server.listen` needs `server.allow_remote: true` and an API key (checked
//! with the configuration, exit 78). Without `allow_remote`, a `Host` that is not a loopback
//! name is refused with 421 (DNS rebinding). Every answer is JSON but `/metrics`, and none is
//! cached.

use crate::clock::Clock;
use crate::messages::{Command, FORCE_SPACING, Forced, Reply, Snapshot};
use crate::metrics::{self, Metrics};
use crate::secret::Secret;
use crate::serving::{self, Running};
use crate::status::{StatusReport, ist_rfc3339};
use crate::token::Thresholds;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tracing::info;

/// How long `POST /api/token/force-refresh` waits for the worker to say how it took it.
const FORCE_ANSWER_WAIT: Duration = Duration::from_secs(5);

/// How long `POST /api/upstox/token/refresh` waits for the login's listener to come up.
const LOGIN_START_WAIT: Duration = Duration::from_secs(5);

/// How often an event stream with nothing to say sends a keep-alive comment.
pub const EVENT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The most event streams open at once: each holds a connection for as long as the client
/// likes, so a flood of them must not crowd out the other routes.
pub const MAX_EVENT_STREAMS: usize = 32;

/// The header that carries `server.api_key`.
pub const KEY_HEADER: &str = "x-tokenwatch-key";

/// 404 for a path that is no route: where the routes are described.
pub const NO_SUCH_ROUTE: &str =
    "no such route; the routes are listed in docs/http-api.md, under \"Routes\"";
/// 421: a request whose Host is not a loopback name.
pub const NOT_LOOPBACK_HOST: &str =
    "this API answers only to a loopback host name (127.0.0.1, [::1] or localhost)";
/// 403: a POST from a web page (it carries `Origin`).
pub const FROM_WEB_PAGE: &str =
    "requests from web pages are refused; call the API from a script or curl";
/// 401: the API key is missing or wrong.
pub const KEY_NEEDED: &str = "this API needs the server.api_key in the X-Tokenwatch-Key header";
/// 503: too many event streams are open.
pub const TOO_MANY_STREAMS: &str =
    "too many event streams are open; close one, or poll GET /api/token/status";
/// 503: the worker did not take the request in time.
pub const WORKER_BUSY: &str =
    "the worker is busy with earlier requests; try again in a few seconds";
/// Every error text the API answers word for word (the others name an account or a time).
pub const FIXED_ERRORS: [&str; 6] = [
    NO_SUCH_ROUTE,
    NOT_LOOPBACK_HOST,
    FROM_WEB_PAGE,
    KEY_NEEDED,
    WORKER_BUSY,
    TOO_MANY_STREAMS,
];

/// One account's worker, as the API sees it.
#[derive(Clone)]
pub struct Account {
    /// The account name.
    pub name: String,
    /// The worker's commands.
    pub commands: mpsc::Sender<Command>,
    /// The worker's latest snapshot.
    pub status: watch::Receiver<Snapshot>,
    /// Why a login cannot start for this account (missing client id, ...), checked at start.
    pub login_problem: Option<String>,
}

/// What the routes need.
pub struct ApiState {
    /// The accounts in tab order; the first one answers when no `account` is given.
    pub accounts: std::sync::RwLock<Vec<Account>>,
    /// `monitor.warning_before` / `critical_before`.
    pub thresholds: std::sync::RwLock<Thresholds>,
    /// How many event streams are open.
    pub streams: Arc<std::sync::atomic::AtomicUsize>,
    /// Bumped when a reload changes the accounts: open event streams end, and their
    /// clients reconnect to the new set.
    pub generation: watch::Sender<u64>,
    /// `server.api_key`.
    pub api_key: Option<Secret>,
    /// The clock for `time_remaining_*`.
    pub clock: Arc<dyn Clock>,
    /// The metric families.
    pub metrics: Metrics,
    /// The API listens on loopback only (no `server.allow_remote`): requests must name a
    /// loopback host, which stops a web page from reading it through DNS rebinding.
    pub loopback_only: bool,
}

/// The running API server.
pub struct ApiServer {
    /// Where it listens.
    pub addr: SocketAddr,
    running: Running,
}

impl ApiServer {
    /// Stop accepting, let open requests finish (a few seconds at most), and end.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Serve the API on `listener` on the current runtime.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
) -> std::io::Result<ApiServer> {
    let addr = listener.local_addr()?;
    let router = router(state);
    let running = serving::serve(vec![listener], router, serving::Switch::new(), "HTTP API");
    info!("HTTP API listening on http://{addr}");
    Ok(ApiServer { addr, running })
}

/// The routes, for tests that drive them without a socket.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/token/status", get(token_status))
        .route("/api/tokens", get(tokens))
        .route("/api/token/events", get(token_events))
        .route("/api/token/force-refresh", post(force_refresh))
        .route("/api/upstox/token/refresh", post(start_login))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .fallback(|| async { error(StatusCode::NOT_FOUND, NO_SUCH_ROUTE) })
        .method_not_allowed_fallback(|method: Method| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{method} is not allowed here"),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            loopback_host,
        ))
        // Outermost: every answer, refusals included, is marked uncacheable.
        .layer(axum::middleware::map_response(no_store))
        .with_state(state)
}

/// With a loopback-only API, a `Host` that is not loopback means a browser was pointed at
/// it under another name (DNS rebinding): refuse before any route runs.
async fn loopback_host(
    State(state): State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if state.loopback_only
        && let Some(host) = request.headers().get(header::HOST)
        && !is_loopback_host(host.as_bytes())
    {
        return error(StatusCode::MISDIRECTED_REQUEST, NOT_LOOPBACK_HOST);
    }
    next.run(request).await
}

/// `localhost`, `127.0.0.1:8000`, `[::1]:8000` and the like.
fn is_loopback_host(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// A request turned away before anything happened: the status and why.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

/// The `account` query parameter, if given and not empty.
fn account_param(query: Option<String>) -> Option<String> {
    let query = query?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "account")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

impl ApiState {
    /// The accounts now, in tab order (a reloaded configuration may change them).
    pub fn accounts(&self) -> Vec<Account> {
        self.accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `monitor.warning_before` / `critical_before` now.
    pub fn thresholds(&self) -> Thresholds {
        *self.thresholds.read().unwrap_or_else(|e| e.into_inner())
    }

    fn find(&self, query: Option<String>) -> Result<Account, Refusal> {
        let accounts = self.accounts();
        let Some(name) = account_param(query) else {
            return accounts
                .first()
                .cloned()
                .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, "no account is configured".into()));
        };
        let known: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        match accounts.iter().find(|a| a.name == name) {
            Some(a) => Ok(a.clone()),
            None => {
                let shown: String = name.chars().take(64).collect();
                Err(Refusal(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no account named {shown:?}; configured: {}",
                        known.join(", ")
                    ),
                ))
            }
        }
    }

    fn report(&self, account: &Account) -> StatusReport {
        let snap = account.status.borrow().clone();
        StatusReport::from_snapshot(&snap, self.clock.now(), self.thresholds())
    }

    /// The checks every POST passes: no browser origin, and the API key when one is set.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if headers.contains_key(header::ORIGIN) {
            return Err(Refusal(StatusCode::FORBIDDEN, FROM_WEB_PAGE.into()));
        }
        let Some(key) = &self.api_key else {
            return Ok(());
        };
        let given = headers
            .get(KEY_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if constant_time_eq(given, key.expose().as_bytes()) {
            Ok(())
        } else {
            Err(Refusal(StatusCode::UNAUTHORIZED, KEY_NEEDED.into()))
        }
    }
}

/// Compare without stopping at the first difference, so the time taken says nothing about
/// how much of a guessed key was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, y) in b.iter().enumerate() {
        diff |= a.get(i).copied().unwrap_or(0xff) ^ y;
    }
    diff == 0
}

fn worker_gone(account: &Account) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "the worker for account {} has stopped; see the log and restart tokenwatch",
            account.name
        ),
    )
}

async fn token_status(State(state): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    match state.find(q) {
        Ok(account) => axum::Json(state.report(&account)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// What an event says of one account: never the token, only which one it is (`version`).
fn token_event(snap: &Snapshot, now: chrono::DateTime<chrono::Utc>, t: Thresholds) -> Value {
    let state = StatusReport::from_snapshot(snap, now, t).state;
    json!({
        "account": snap.account,
        "broker": snap.broker,
        "state": state,
        "expires_at": snap.token.as_ref().map(|i| ist_rfc3339(i.expires_at)),
        "version": snap.token.as_ref().map(|i| i.version.clone()),
    })
}

/// Counts an open event stream until dropped.
struct StreamSlot(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

async fn token_events(State(state): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    use std::sync::atomic::Ordering;
    let accounts: Vec<Account> = if account_param(q.clone()).is_some() {
        match state.find(q) {
            Ok(a) => vec![a],
            Err(e) => return e.into_response(),
        }
    } else {
        state.accounts()
    };
    let open = state.streams.fetch_add(1, Ordering::AcqRel);
    let slot = StreamSlot(state.streams.clone());
    if open >= MAX_EVENT_STREAMS {
        return busy_streams();
    }
    let (tx, rx) = mpsc::channel::<Value>(16);
    for account in accounts {
        let (tx, state) = (tx.clone(), state.clone());
        let mut status = account.status.clone();
        let mut generation = state.generation.subscribe();
        tokio::spawn(async move {
            // One event now, then one per change of state or token; the same snapshot
            // published again says nothing new.
            let mut last: Option<Value> = None;
            loop {
                let event = {
                    let snap = status.borrow_and_update();
                    token_event(&snap, state.clock.now(), state.thresholds())
                };
                if last.as_ref() != Some(&event) {
                    if tx.send(event.clone()).await.is_err() {
                        return;
                    }
                    last = Some(event);
                }
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return },
                    // The client went away: stop watching.
                    _ = tx.closed() => return,
                    // The accounts changed: end the stream, so the client reconnects.
                    _ = generation.changed() => return,
                }
            }
        });
    }
    drop(tx);
    let stream = futures_util::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        let data = rx.recv().await?;
        let event = SseEvent::default().event("token").data(data.to_string());
        Some((Ok::<_, std::convert::Infallible>(event), (rx, slot)))
    });
    Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(EVENT_KEEP_ALIVE)
                .text("keep-alive"),
        )
        .into_response()
}

fn busy_streams() -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, TOO_MANY_STREAMS);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    r
}

async fn tokens(State(state): State<Arc<ApiState>>) -> Response {
    #[derive(serde::Serialize)]
    struct Tokens {
        accounts: Vec<StatusReport>,
    }
    let accounts = state.accounts().iter().map(|a| state.report(a)).collect();
    axum::Json(Tokens { accounts }).into_response()
}

async fn force_refresh(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = state.authorize(&headers) {
        return e.into_response();
    }
    let account = match state.find(q) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    // A burst queues for the worker (which answers each at once) rather than failing.
    let (reply, answer) = Reply::channel();
    let asked = async {
        account
            .commands
            .send(Command::ForceRefresh(reply))
            .await
            .map_err(|_| ())?;
        answer.await.map_err(|_| ())
    };
    match tokio::time::timeout(FORCE_ANSWER_WAIT, asked).await {
        Ok(Ok(Forced::Started)) => {
            info!(account = %account.name, "Refresh requested over the HTTP API");
            accepted(json!({
                "account": account.name,
                "merged": false,
                "message": "refresh started; GET /api/token/status shows the outcome",
            }))
        }
        Ok(Ok(Forced::Merged)) => accepted(json!({
            "account": account.name,
            "merged": true,
            "message": "a check was already queued or running; this request joined it",
        })),
        Ok(Ok(Forced::TooSoon(wait))) => {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "a forced check of this account started less than {} ago; try again in {}",
                    crate::timefmt::human(FORCE_SPACING),
                    crate::timefmt::human(std::time::Duration::from_secs(secs))
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            r
        }
        Ok(Err(())) => worker_gone(&account),
        Err(_) => busy(),
    }
}

/// 503: the worker did not answer in time.
fn busy() -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, WORKER_BUSY);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

fn accepted(body: Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

fn login_body(account: &str, snap: &Snapshot) -> Option<Value> {
    let login = snap.login.as_ref()?;
    let listening: Vec<String> = login.listening.iter().map(|a| a.to_string()).collect();
    Some(json!({
        "account": account,
        "auth_url": login.auth_url,
        "listening": listening,
        "expires_at": ist_rfc3339(login.until),
    }))
}

async fn start_login(
    State(state): State<Arc<ApiState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = state.authorize(&headers) {
        return e.into_response();
    }
    let account = match state.find(q) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    if let Some(problem) = &account.login_problem {
        return error(StatusCode::CONFLICT, &format!("cannot log in: {problem}"));
    }
    let mut status = account.status.clone();
    // A login already waiting: hand out its address.
    if let Some(body) = login_body(&account.name, &status.borrow_and_update()) {
        return accepted(body);
    }
    match account.commands.try_send(Command::StartLoginElsewhere) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, WORKER_BUSY);
        }
        Err(mpsc::error::TrySendError::Closed(_)) => return worker_gone(&account),
    }
    info!(account = %account.name, "Login requested over the HTTP API");
    let waited =
        tokio::time::timeout(LOGIN_START_WAIT, status.wait_for(|s| s.login.is_some())).await;
    match waited {
        Ok(Ok(snap)) => match login_body(&account.name, &snap) {
            Some(body) => accepted(body),
            None => worker_gone(&account),
        },
        Ok(Err(_)) => worker_gone(&account),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the login did not start within {}; the log says why (the callback port in \
                 use, or another login running)",
                crate::timefmt::human(LOGIN_START_WAIT)
            ),
        ),
    }
}

async fn metrics_text(State(state): State<Arc<ApiState>>) -> Response {
    let snapshots: Vec<Snapshot> = state
        .accounts()
        .iter()
        .map(|a| a.status.borrow().clone())
        .collect();
    let body = state
        .metrics
        .render(&snapshots, state.clock.now(), state.thresholds());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

async fn healthz(State(state): State<Arc<ApiState>>) -> Response {
    #[derive(serde::Serialize)]
    struct Health {
        status: &'static str,
        accounts: std::collections::BTreeMap<String, &'static str>,
    }
    let mut all_ok = true;
    let mut accounts = std::collections::BTreeMap::new();
    for a in &state.accounts() {
        // The watch sender lives in the worker task: once it is gone, so is the worker.
        let running = a.status.has_changed().is_ok() && !a.commands.is_closed();
        all_ok &= running;
        accounts.insert(a.name.clone(), if running { "running" } else { "stopped" });
    }
    let body = Health {
        status: if all_ok { "ok" } else { "failing" },
        accounts,
    };
    let code = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}
