//! The notifier webhook of Upstox's v3 access-token request (renewal strategy
//! `token-request`).
//!
//! After tokenwatch posts `POST /v3/login/auth/token/request/{client_id}`, the user approves
//! the request in the Upstox app or on WhatsApp, and Upstox POSTs the new token to the app's
//! registered notifier URL:
//!
//! ```json
//! {"client_id":"615b1297-...","user_id":"AB1234","access_token":"eyJ...","token_type":"Bearer",
//!  "expires_at":"1731448800000","issued_at":"1731412800000","message_type":"access_token"}
//! ```
//!
//! That POST carries no authentication and no signature, so anyone who learns the URL can
//! post there. Every delivery is therefore checked before it is believed:
//!
//! 1. [`check_delivery`] (pure): a JSON object, `message_type == "access_token"`, the app's
//!    `client_id`, the expected `user_id` when one is known, a non-empty `access_token`, and a
//!    sane `expires_at` — after now and no later than the next 03:30 IST boundary (see
//!    [`EXPIRY_SKEW`] for the clock-skew allowance);
//! 2. the token is verified with the profile API ([`BrokerClient::profile`]): a token Upstox
//!    does not accept is refused, and when Upstox cannot be reached the delivery is answered
//!    503 so that the sender may try again;
//! 3. only then is the [`Token`] handed to the consumer on a channel, and the sender gets
//!    `200 {"status":"success"}`.
//!
//! A refusal is answered `400 {"status":"error","message":...}` (503 when the token could not
//! be verified yet) and logged at warn level with the reason and the sender's address
//! (plus `X-Forwarded-For` when a proxy set one). No response and no log line ever contains
//! the token: the reasons ([`Rejection`]) never quote it, and values echoed from a payload
//! are shown only when short and sharing no part of the token.
//!
//! # Exposing the receiver
//!
//! Upstox only posts to a stable HTTPS URL that it has screened; it will not post to
//! `http://127.0.0.1`. The receiver itself speaks plain HTTP and listens on loopback
//! ([`serve`] refuses any other address unless `allow_remote` is set). Put it behind an HTTPS
//! reverse proxy or a tunnel that forwards only the unguessable webhook path, and register
//! `https://<your domain>/<path>` as the app's notifier URL in the Upstox developer console.
//!
//! With `renew.notifier_listen: 127.0.0.1:8765` and
//! `renew.notifier_path: /upstox/hook/3f9c2d7e51a04b8c`:
//!
//! Caddy (obtains and renews the certificate itself):
//!
//! ```text
//! tokens.example.com {
//!     handle /upstox/hook/3f9c2d7e51a04b8c {
//!         reverse_proxy 127.0.0.1:8765
//!     }
//!     respond 404
//! }
//! ```
//!
//! nginx (inside the `server { listen 443 ssl; ... }` block of your HTTPS site):
//!
//! ```text
//! location = /upstox/hook/3f9c2d7e51a04b8c {
//!     proxy_pass http://127.0.0.1:8765;
//!     proxy_set_header X-Forwarded-For $remote_addr;
//!     client_max_body_size 64k;
//! }
//! ```
//!
//! A Cloudflare tunnel (no open port, no certificate to manage), in
//! `~/.cloudflared/config.yml`:
//!
//! ```text
//! tunnel: <tunnel id>
//! credentials-file: /home/me/.cloudflared/<tunnel id>.json
//! ingress:
//!   - hostname: tokens.example.com
//!     path: ^/upstox/hook/3f9c2d7e51a04b8c$
//!     service: http://127.0.0.1:8765
//!   - service: http_status:404
//! ```
//!
//! then `cloudflared tunnel route dns <tunnel> tokens.example.com` and
//! `cloudflared tunnel run <tunnel>`. (A quick `cloudflared tunnel --url http://127.0.0.1:8765`
//! gets a random hostname each run, which is not the stable URL Upstox needs.)
//!
//! Only when the proxy runs on another machine does the receiver need a non-loopback
//! address; then pass `allow_remote` and firewall the port so that only the proxy reaches it.

use crate::brokers::{ApiError, Broker, BrokerClient};
use crate::clock::Clock;
use crate::secret::Secret;
use crate::serving::{self, Running};
use crate::token::expiry::{ExpiryEvidence, decide_expiry, to_ist, upstox_expiry};
use crate::token::{ExpirySource, Token, TokenFileFormat};
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The largest delivery accepted. Upstox's payload is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// How far `expires_at` may lie beyond the next 03:30 IST boundary, and how far ahead that
/// boundary is looked for, to allow for the clocks of Upstox and this machine disagreeing.
///
/// A delivery is accepted when `now < expires_at <= upstox_expiry(now + EXPIRY_SKEW) +
/// EXPIRY_SKEW`. Away from the boundary this is "no later than the next 03:30 IST plus one
/// minute" (so 03:31:00 passes and 03:31:01 does not); in the last minute before 03:30 it
/// also accepts a token that Upstox, its clock a little ahead of ours, issued just after
/// 03:30 and that therefore lives until 03:30 the next day.
pub const EXPIRY_SKEW: Duration = Duration::from_secs(60);

/// How long a sender may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest payload value quoted in a rejection reason.
const MAX_ECHO: usize = 40;
/// A value sharing this many consecutive characters with the token is never echoed.
const TOKEN_OVERLAP: usize = 8;

/// What a delivery must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The app's API key: the payload's `client_id` must equal it.
    pub client_id: String,
    /// The Upstox user the token must belong to, when known (compared ignoring ASCII case).
    /// `None` accepts any user the profile API vouches for.
    pub user_id: Option<String>,
}

/// Why a delivery was refused. `Display` says why, in words fit for a log line and for the
/// sender; it never contains the token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// The body is not a JSON object.
    #[error("the body is not a JSON object")]
    NotJson,
    /// `message_type` is not `access_token`; holds what was received (quoted), `missing`, or
    /// a description when the value is not shown.
    #[error("message_type is {0}, expected \"access_token\"")]
    WrongMessageType(String),
    /// `client_id` is missing or not this app's.
    #[error("client_id is missing or is not this app's")]
    WrongClient,
    /// `user_id` is missing or not the expected user, or the profile API says the token
    /// belongs to someone else.
    #[error("the token is not for the expected Upstox user")]
    WrongUser,
    /// No `access_token`, or an empty one.
    #[error("the delivery has no access_token")]
    NoToken,
    /// `expires_at` is missing, unparsable, not after now, or later than the next 03:30 IST
    /// boundary after now (plus [`EXPIRY_SKEW`]).
    #[error("unacceptable expires_at: {0}")]
    BadExpiry(String),
    /// The profile API refused the token.
    #[error("Upstox does not accept the token: {0}")]
    RejectedByUpstox(String),
    /// The profile API could not be asked (network, 5xx, rate limit, service window): the
    /// delivery may be fine; the sender should try again.
    #[error("cannot verify the token with Upstox now, try again: {0}")]
    Unverifiable(String),
}

impl Rejection {
    /// The HTTP status the receiver answers with: 503 for [`Rejection::Unverifiable`] (the
    /// sender may retry), 400 for everything else.
    pub fn status_code(&self) -> u16 {
        match self {
            Rejection::Unverifiable(_) => 503,
            _ => 400,
        }
    }
}

/// Check a webhook body against `expect` at instant `now`. Pure: no I/O, no clock.
///
/// On success returns a [`Token`] with `expires_at` from the payload (epoch milliseconds, as
/// a string or a number), `issued_at` from the payload when present, parsable and not after
/// `expires_at` (else `now`), `user_id` from the payload, `token_type` "Bearer",
/// `obtained_via` `Some("token-request")`, format [`TokenFileFormat::Format1`]; the expiry is
/// the earliest of that claim, the token's JWT `exp` and the 03:30 IST rule from the issue
/// time (see [`decide_expiry`]), with its source. The checks run in the order of [`Rejection`]'s
/// variants and the first failing one is returned.
pub fn check_delivery(
    body: &[u8],
    expect: &Expectation,
    now: DateTime<Utc>,
) -> Result<Token, Rejection> {
    let value: Value = serde_json::from_slice(body).map_err(|_| Rejection::NotJson)?;
    let Value::Object(obj) = value else {
        return Err(Rejection::NotJson);
    };
    // Known before anything is echoed, so that no reason can quote it.
    let token_text = obj
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();

    match obj.get("message_type") {
        Some(Value::String(s)) if s == "access_token" => {}
        None | Some(Value::Null) => return Err(Rejection::WrongMessageType("missing".into())),
        Some(other) => {
            return Err(Rejection::WrongMessageType(describe(other, token_text)));
        }
    }

    if text(&obj, "client_id") != Some(expect.client_id.trim()) {
        return Err(Rejection::WrongClient);
    }

    let user_id = text(&obj, "user_id").map(str::to_owned);
    if let Some(expected) = expect.user_id.as_deref() {
        let matches = user_id
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(expected.trim()));
        if !matches {
            return Err(Rejection::WrongUser);
        }
    }

    if token_text.is_empty() {
        return Err(Rejection::NoToken);
    }

    let expires_at = match obj.get("expires_at") {
        None | Some(Value::Null) => {
            return Err(Rejection::BadExpiry("expires_at is missing".into()));
        }
        Some(v) => epoch_ms(v).ok_or_else(|| {
            Rejection::BadExpiry(format!(
                "expires_at {} is not epoch milliseconds",
                describe(v, token_text)
            ))
        })?,
    };
    if expires_at <= now {
        return Err(Rejection::BadExpiry(format!(
            "expires_at {} is not after now ({})",
            show(expires_at),
            show(now)
        )));
    }
    let skew = ChronoDuration::from_std(EXPIRY_SKEW).unwrap_or_default();
    let latest = upstox_expiry(now + skew) + skew;
    if expires_at > latest {
        return Err(Rejection::BadExpiry(format!(
            "expires_at {} is later than the next 03:30 IST boundary ({}, {}s allowed for clock skew)",
            show(expires_at),
            show(upstox_expiry(now)),
            EXPIRY_SKEW.as_secs()
        )));
    }

    // A token lives at most a day: an issue time further back (seconds sent where
    // milliseconds belong, 0, -1) is not believed, and the arrival time stands in for it.
    let issued_at = obj
        .get("issued_at")
        .and_then(epoch_ms)
        .and_then(crate::token::expiry::plausible)
        .filter(|t| *t <= expires_at && *t >= expires_at - chrono::Duration::days(2))
        .unwrap_or(now);
    // The earliest of the claim, the token's JWT exp and the 03:30 IST rule from the issue time.
    let evidence = ExpiryEvidence {
        claimed: Some(expires_at),
        issued_at: Some(issued_at),
        ..ExpiryEvidence::of_token_text(token_text)
    };
    let (expires_at, expiry_source) =
        decide_expiry(Broker::Upstox, &evidence).unwrap_or((expires_at, ExpirySource::ExpiresAt));
    if expires_at <= now {
        return Err(Rejection::BadExpiry(format!(
            "the token ended at {} ({}), before now ({}); send one issued after the last 03:30 IST",
            show(expires_at),
            expiry_source.describe(Broker::Upstox),
            show(now)
        )));
    }

    Ok(Token {
        broker: Broker::Upstox,
        access_token: Secret::new(token_text),
        token_type: "Bearer".to_string(),
        extended_token: None,
        // Compared as sent above; stored and logged without control characters.
        user_id: user_id.map(|u| crate::printable::printable(&u)),
        user_name: None,
        email: None,
        issued_at: Some(issued_at),
        expires_at,
        expiry_source,
        obtained_via: Some("token-request".to_string()),
        refresh_token: None,
        format: TokenFileFormat::Format1,
    })
}

/// A non-empty (trimmed) string field.
fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Epoch milliseconds from a string of digits or a JSON integer.
fn epoch_ms(v: &Value) -> Option<DateTime<Utc>> {
    let ms = match v {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e17)
                .map(|f| f as i64)
        })?,
        _ => return None,
    };
    DateTime::from_timestamp_millis(ms)
}

/// An instant for a reason: RFC 3339 in IST.
fn show(t: DateTime<Utc>) -> String {
    to_ist(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A payload value for a reason: quoted when short and sharing nothing with the token,
/// otherwise only described.
fn describe(v: &Value, token: &str) -> String {
    let raw = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return describe_text(&n.to_string(), token, false),
        Value::Bool(_) => return "a boolean".into(),
        Value::Null => return "null".into(),
        Value::Array(_) => return "an array".into(),
        Value::Object(_) => return "an object".into(),
    };
    describe_text(raw, token, true)
}

fn describe_text(s: &str, token: &str, quote: bool) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() > MAX_ECHO {
        return format!("a {}-character value (not shown)", chars.len());
    }
    if overlaps_token(&chars, token) {
        return "a value resembling the token (not shown)".into();
    }
    if quote {
        format!("{s:?}")
    } else {
        s.to_owned()
    }
}

/// True when `chars` contains the token or shares [`TOKEN_OVERLAP`] consecutive characters
/// with it.
fn overlaps_token(chars: &[char], token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let s: String = chars.iter().collect();
    if s.contains(token) {
        return true;
    }
    chars
        .windows(TOKEN_OVERLAP)
        .any(|w| token.contains(&w.iter().collect::<String>()))
}

/// A running receiver. Stop it with [`NotifierServer::shutdown`]; dropping it also stops it
/// (gracefully, in the background).
#[derive(Debug)]
pub struct NotifierServer {
    /// The address the receiver listens on (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    running: Running,
}

impl NotifierServer {
    /// Stop accepting connections, let open ones finish, and wait for the server to end
    /// (at most a few seconds, then the remaining connections are cut).
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

#[derive(Clone)]
struct App {
    path: Arc<str>,
    expect: Arc<Expectation>,
    client: BrokerClient,
    clock: Arc<dyn Clock>,
    deliveries: mpsc::Sender<Token>,
}

/// True for 127.0.0.0/8, `::1` and IPv4-mapped loopback (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    }
}

/// The webhook path as served: a leading `/` is added when missing. Empty paths and
/// characters that have no place in a URL path (whitespace, controls, `?`, `#`) are refused.
fn normalize_path(path: &str) -> std::io::Result<String> {
    let path = path.trim();
    let bad = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("notifier path: {why}"),
        )
    };
    if path.is_empty() || path == "/" {
        return Err(bad(
            "must not be empty; use an unguessable path such as /upstox/hook/<random>",
        ));
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#' || !c.is_ascii())
    {
        return Err(bad(
            "may contain only printable ASCII, without spaces, `?` or `#`",
        ));
    }
    Ok(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

/// Serve the notifier webhook: `POST path` on `listen` (port 0 picks a free port), on the
/// current tokio runtime, until the returned [`NotifierServer`] is shut down or dropped.
///
/// Each delivery is checked with [`check_delivery`] (taking `now` from `clock`), then the
/// token is verified with [`BrokerClient::profile`]: a refusal (invalid token, or another
/// 4xx) is [`Rejection::RejectedByUpstox`]; a transient failure is
/// [`Rejection::Unverifiable`], answered 503 so that the sender may retry; a profile naming
/// another user than the payload or the expectation is [`Rejection::WrongUser`]. A verified
/// token, completed with the profile's user name and e-mail (and user id when the payload
/// had none), is sent on `deliveries` and answered `200 {"status":"success"}`; when nothing
/// receives on `deliveries` any more the answer is 503. Duplicate deliveries are passed on
/// as they come: the consumer deduplicates.
///
/// Refusals answer 400 `{"status":"error","message":<reason>}` and are logged at warn with
/// the reason and the sender's address, never the token. Other paths answer 404, other
/// methods on the path 405, bodies over [`MAX_BODY`] 413, bodies slower than 10 s 408.
///
/// `path` gets a leading `/` when it has none. `listen` must be a loopback address unless
/// `allow_remote` is true (the receiver then runs behind the user's HTTPS reverse proxy); a
/// non-loopback `listen` without it, or an empty or malformed `path`, is an
/// [`std::io::ErrorKind::InvalidInput`] error. Binding errors are returned as they are.
pub async fn serve(
    listen: SocketAddr,
    path: String,
    allow_remote: bool,
    expect: Expectation,
    client: BrokerClient,
    clock: Arc<dyn Clock>,
    deliveries: mpsc::Sender<Token>,
) -> std::io::Result<NotifierServer> {
    if !is_loopback(listen.ip()) && !allow_remote {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the notifier listen address {listen} is not a loopback address; listen on \
                 127.0.0.1 behind an HTTPS reverse proxy or tunnel, or allow remote access \
                 explicitly"
            ),
        ));
    }
    let path = normalize_path(&path)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = App {
        path: path.into(),
        expect: Arc::new(expect),
        client,
        clock,
        deliveries,
    };
    let router = Router::new().fallback(handle).with_state(app);
    let running = serving::serve(
        vec![listener],
        router,
        serving::Switch::new(),
        "token-request notifier",
    );
    tracing::info!(%addr, "notifier webhook listening");
    Ok(NotifierServer { addr, running })
}

/// Who sent a request: the peer address and, behind a proxy, its `X-Forwarded-For`.
struct Sender {
    peer: String,
    forwarded_for: Option<String>,
}

impl Sender {
    fn of(req: &Request) -> Sender {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let forwarded_for = forwarded_for(req.headers());
        Sender {
            peer,
            forwarded_for,
        }
    }
}

fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-forwarded-for")?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| {
        crate::printable::printable(value)
            .chars()
            .take(100)
            .collect()
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
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

/// Answer a refused delivery and log why.
fn refuse(status: StatusCode, reason: &str, from: &Sender) -> Response {
    tracing::warn!(
        peer = %from.peer,
        forwarded_for = from.forwarded_for.as_deref().unwrap_or("-"),
        status = status.as_u16(),
        reason = %reason,
        "notifier: delivery refused"
    );
    json_response(status, &json!({ "status": "error", "message": reason }))
}

fn rejected(rejection: &Rejection, from: &Sender) -> Response {
    let status = StatusCode::from_u16(rejection.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
    refuse(status, &rejection.to_string(), from)
}

enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

/// Read the body, at most [`MAX_BODY`] bytes, within [`BODY_TIMEOUT`].
async fn read_body(mut body: Body) -> Result<Vec<u8>, BodyError> {
    let read = async {
        let mut buf = Vec::new();
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_BODY {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| BodyError::TimedOut)?
}

/// The only handler: routes by exact path itself, so any configured path works.
async fn handle(State(app): State<App>, req: Request) -> Response {
    if req.uri().path() != &*app.path {
        tracing::debug!(method = %req.method(), "notifier: request for another path (404)");
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({ "status": "error", "message": "not found" }),
        );
    }
    let from = Sender::of(&req);
    if req.method() != Method::POST {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {} not allowed; deliveries are POSTed", req.method()),
            &from,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {} KiB", MAX_BODY / 1024),
            &from,
        )
    };
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let body = match read_body(req.into_body()).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::TimedOut) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the body was not sent in time",
                &from,
            );
        }
        Err(BodyError::Broken) => {
            return refuse(StatusCode::BAD_REQUEST, "the body could not be read", &from);
        }
    };

    let now = app.clock.now();
    let mut token = match check_delivery(&body, &app.expect, now) {
        Ok(token) => token,
        Err(rejection) => return rejected(&rejection, &from),
    };

    let profile = match app.client.profile(&token.access_token).await {
        Ok(profile) => profile,
        Err(e @ (ApiError::Invalid { .. } | ApiError::Rejected { .. })) => {
            return rejected(&Rejection::RejectedByUpstox(e.to_string()), &from);
        }
        Err(e @ ApiError::Transient { .. }) => {
            return rejected(&Rejection::Unverifiable(e.to_string()), &from);
        }
    };
    if let Some(actual) = profile.user_id.as_deref().filter(|u| !u.is_empty()) {
        let differs =
            |claimed: Option<&str>| claimed.is_some_and(|c| !c.eq_ignore_ascii_case(actual));
        if differs(token.user_id.as_deref()) || differs(app.expect.user_id.as_deref()) {
            return rejected(&Rejection::WrongUser, &from);
        }
        if token.user_id.is_none() {
            token.user_id = Some(actual.to_owned());
        }
    }
    token.user_name = profile.user_name.filter(|s| !s.is_empty());
    token.email = profile.email.filter(|s| !s.is_empty());

    let expires_at = show(token.expires_at);
    let user_id = token.user_id.clone().unwrap_or_else(|| "-".into());
    if app.deliveries.send(token).await.is_err() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "tokenwatch is not taking tokens right now; try again",
            &from,
        );
    }
    tracing::info!(
        peer = %from.peer,
        forwarded_for = from.forwarded_for.as_deref().unwrap_or("-"),
        user_id = %user_id,
        expires_at = %expires_at,
        "notifier: token delivered and verified with Upstox"
    );
    json_response(StatusCode::OK, &json!({ "status": "success" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("127.9.9.9".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("::".parse().unwrap()));
        assert!(!is_loopback("192.168.1.2".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("/a/b").unwrap(), "/a/b");
        assert_eq!(normalize_path("hook123").unwrap(), "/hook123");
        assert_eq!(normalize_path(" /x ").unwrap(), "/x");
        assert_eq!(normalize_path("/:odd/*x/{y}").unwrap(), "/:odd/*x/{y}");
        for bad in ["", "/", "  ", "/a b", "/a?b", "/a#b", "/a\nb", "/é"] {
            let err = normalize_path(bad).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn echoed_values_never_carry_the_token() {
        let token = "eyJ0eXAiOiJKV1QiLCJrZXlfaWQiOiJza192MS4wIn0.payload.sig";
        assert_eq!(
            describe_text("order_update", token, true),
            "\"order_update\""
        );
        assert_eq!(
            describe_text("xxeyJ0eXAiOixx", token, true),
            "a value resembling the token (not shown)"
        );
        assert_eq!(
            describe_text(token, token, true),
            "a 55-character value (not shown)"
        );
        assert_eq!(describe_text("1234", "", false), "1234");
    }
}
