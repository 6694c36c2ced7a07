//! Kite's answers as the simulator writes them: the `status`/`data` envelope, Kite's error
//! body, redirects, and the answer for each queued [`Fault`].

use super::{Fault, HUGE_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use http_body::{Frame, SizeHint};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use url::Url;

#[derive(Serialize)]
struct KiteError<'a> {
    status: &'static str,
    message: &'a str,
    data: Option<()>,
    error_type: &'a str,
}

#[derive(Serialize)]
pub(super) struct Success<T> {
    pub(super) status: &'static str,
    pub(super) data: T,
}

pub(super) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
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

/// A success envelope around `data`.
pub(super) fn success<T: Serialize>(data: T) -> Response {
    json_response(
        StatusCode::OK,
        &Success {
            status: "success",
            data,
        },
    )
}

/// Kite's error body.
pub(super) fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response {
    json_response(
        status,
        &KiteError {
            status: "error",
            message,
            data: None,
            error_type,
        },
    )
}

/// 403 `TokenException`: an unknown, expired or revoked access token.
pub(super) fn invalid_token() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "TokenException",
        "Incorrect `api_key` or `access_token`.",
    )
}

/// 400 `InputException`.
pub(super) fn input_error(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "InputException", message)
}

/// A `302 Found` to `location`.
pub(super) fn found(location: &Url) -> Response {
    match HeaderValue::from_str(location.as_str()) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => input_error("The redirect URL is invalid."),
    }
}

/// The answer for a queued fault (`Timeout` is handled by the caller).
pub(super) fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::ServerError => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "GeneralException",
            "Something went wrong. Please try again.",
        ),
        Fault::BadGateway => error_response(
            StatusCode::BAD_GATEWAY,
            "DataException",
            "The order management system is not reachable.",
        ),
        Fault::Unavailable => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "NetworkException",
            "The API is not reachable. Please try again.",
        ),
        Fault::GatewayTimeout => {
            (StatusCode::GATEWAY_TIMEOUT, Html(GATEWAY_TIMEOUT_PAGE)).into_response()
        }
        Fault::TooManyRequests { retry_after } => {
            let mut response = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "NetworkException",
                "Too many requests",
            );
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Fault::TokenException => invalid_token(),
        Fault::MalformedJson => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            r#"{"status":"success","data":{"user_id":"#,
        )
            .into_response(),
        Fault::HtmlPage => (StatusCode::FORBIDDEN, Html(ACCESS_DENIED_PAGE)).into_response(),
        Fault::EndlessBody => streamed(Flood::new(None, false)),
        Fault::HugeBody => streamed(Flood::new(Some(HUGE_BODY_BYTES), false)),
        Fault::TrickleBody => streamed(Flood::new(None, true)),
        Fault::ConnectionReset => streamed(Reset),
        // Answered normally after the wait; reaches here only when the server stops.
        Fault::Timeout => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "NetworkException",
            "Gateway timed out",
        ),
    }
}

/// An HTTP 200 JSON answer with `body`.
fn streamed<B>(body: B) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::new(body),
    )
        .into_response()
}

/// A body that declares 100 bytes and fails before sending one: the server cuts the
/// connection in the middle of the answer.
struct Reset;

impl http_body::Body for Reset {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        ))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(100)
    }
}

/// The start of a profile answer, before the filler of a [`Flood`].
const FLOOD_START: &[u8] = br#"{"status":"success","data":{"user_id":"ZK1234","user_name":""#;
/// One chunk of filler.
static FILLER: [u8; 16 * 1024] = [b'x'; 16 * 1024];
/// How often a trickling [`Flood`] sends its next byte.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

/// A body too big or too slow for any client to wait for: [`FLOOD_START`], then filler, up to
/// `left` bytes (with that `Content-Length`) or forever (chunked), as fast as the connection
/// takes it or one byte a second.
struct Flood {
    left: Option<u64>,
    declared: Option<u64>,
    started: bool,
    trickle: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Flood {
    fn new(length: Option<u64>, trickle: bool) -> Flood {
        Flood {
            left: length,
            declared: length,
            started: false,
            trickle: trickle.then(|| Box::pin(tokio::time::sleep(Duration::ZERO))),
        }
    }
}

impl http_body::Body for Flood {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.left == Some(0) {
            return Poll::Ready(None);
        }
        let start = if this.started {
            &FILLER[..]
        } else {
            FLOOD_START
        };
        let chunk = if let Some(sleep) = this.trickle.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + TRICKLE_EVERY);
            &start[..1]
        } else {
            start
        };
        this.started = true;
        let mut chunk = Bytes::from_static(chunk);
        if let Some(left) = this.left.as_mut() {
            chunk.truncate(
                chunk
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX)),
            );
            *left -= chunk.len() as u64;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match (self.declared, self.left) {
            (Some(n), _) if !self.started => SizeHint::with_exact(n),
            (_, Some(n)) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// A firewall's page in front of the API, answered with HTTP 403.
const ACCESS_DENIED_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="UTF-8"><title>Access denied | api.kite.trade</title></head>
<body>
<h1>Access denied</h1>
<p>The owner of this website (api.kite.trade) has banned your access.</p>
</body>
</html>
"#;

/// A gateway's page for a timed-out request, answered with HTTP 504.
const GATEWAY_TIMEOUT_PAGE: &str = r#"<html>
<head><title>504 Gateway Time-out</title></head>
<body>
<center><h1>504 Gateway Time-out</h1></center>
</body>
</html>
"#;
