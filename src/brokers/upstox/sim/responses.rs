//! Upstox's answers as the simulator writes them: the error envelope (both field
//! spellings), JSON bodies, redirects and the answer for each queued [`Fault`].

use super::{Fault, HUGE_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use http_body::{Frame, SizeHint};
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use url::Url;

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
pub(super) struct Success<T> {
    pub(super) status: &'static str,
    pub(super) data: T,
}

/// One error, as a whole Upstox error response.
pub(super) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    errors_response(status, &[(code, message)])
}

/// Several errors in one Upstox error envelope, both field spellings in each.
pub(super) fn errors_response(status: StatusCode, errors: &[(&str, &str)]) -> Response {
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

pub(super) fn invalid_token() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "UDAPI100050",
        "Invalid token used to access API",
    )
}

pub(super) fn invalid_credentials() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "UDAPI100016",
        "Invalid Credentials",
    )
}

pub(super) fn bad_client_or_redirect() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "UDAPI100068",
        "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.",
    )
}

/// The answer for a queued fault (`Timeout` is handled by the caller).
pub(super) fn fault_response(fault: Fault) -> Response {
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
        Fault::HtmlUnauthorized => {
            (StatusCode::UNAUTHORIZED, Html(PROXY_SIGN_IN_PAGE)).into_response()
        }
        Fault::EndlessBody => flood(Flood::new(None, false)),
        Fault::HugeBody => flood(Flood::new(Some(HUGE_BODY_BYTES), false)),
        Fault::TrickleBody => flood(Flood::new(None, true)),
        // Answered normally after the wait; never reaches here in practice.
        Fault::Timeout => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "UDAPI100500",
            "Something went wrong",
        ),
    }
}

/// An HTTP 200 JSON answer with `body`.
fn flood(body: Flood) -> Response {
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

/// The start of a profile answer, before the filler of a [`Flood`].
const FLOOD_START: &[u8] = br#"{"status":"success","data":{"user_id":"AB1234","user_name":""#;
/// One chunk of filler.
static FILLER: [u8; 16 * 1024] = [b'x'; 16 * 1024];
/// How often a trickling [`Flood`] sends its next byte.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

/// A body too big or too slow for any client to wait for: [`FLOOD_START`], then filler, up
/// to `left` bytes (with that `Content-Length`) or forever (chunked), as fast as the
/// connection takes it or one byte a second.
pub(super) struct Flood {
    /// Bytes still to send; `None`: no end.
    left: Option<u64>,
    /// The `Content-Length` declared.
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
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.left == Some(0) {
            return Poll::Ready(None);
        }
        let mut chunk = if let Some(sleep) = this.trickle.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + TRICKLE_EVERY);
            if this.started {
                Bytes::from_static(&FILLER[..1])
            } else {
                this.started = true;
                Bytes::from_static(&FLOOD_START[..1])
            }
        } else if this.started {
            Bytes::from_static(&FILLER)
        } else {
            this.started = true;
            Bytes::from_static(FLOOD_START)
        };
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
        match self.declared {
            Some(n) if !self.started => SizeHint::with_exact(n),
            _ => match self.left {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
        }
    }
}

/// A proxy's sign-in page, answered with HTTP 401 (what a captive portal or a corporate proxy
/// puts in front of the API).
const PROXY_SIGN_IN_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>401 Authorization Required</title></head>
<body>
<h1>Authorization Required</h1>
<p>This network requires you to sign in before you can reach api.upstox.com.</p>
<form method="post" action="/login"><input name="user"><input name="password" type="password"><button>Sign in</button></form>
</body>
</html>
"#;

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

/// A `302 Found` to `location`.
pub(super) fn found(location: &Url) -> Response {
    match HeaderValue::from_str(location.as_str()) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => bad_client_or_redirect(),
    }
}
