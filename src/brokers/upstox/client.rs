//! The Upstox API client: profile (validation), code → token exchange, the v3 access-token
//! request, and logout.
//!
//! Every answer is classified into one [`ApiError`]: `Invalid` (the token is dead: Upstox's
//! JSON error `UDAPI100050`, whatever the status), `Transient` (try again later: network,
//! timeouts, 5xx, 429/UDAPI10005, UDAPI100072/100074, and every answer that is not Upstox's
//! JSON, such as Cloudflare's HTML 403, a proxy's HTML 401, an empty body, or a body larger
//! than [`MAX_BODY`]) or `Rejected` (any other 4xx, with Upstox's code and message). The
//! client never retries: the worker holds the one retry layer.
//!
//! Text from an answer (profile fields, error codes and messages) is passed through
//! [`printable`] here, where it comes in, before any screen, log or alert shows it.

use crate::http::BodyError;
use crate::printable::printable;
use crate::secret::Secret;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;
use url::Url;

use crate::brokers::Broker;
pub use crate::brokers::{ApiError, Profile};
pub use crate::http::CONNECT_TIMEOUT;
/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Upstox answers bodies far smaller than this (a profile is under 1 KiB); anything larger
/// is not the API, and no more than this is ever read of it.
pub const MAX_BODY: usize = 64 * 1024;

/// Upstox's flat answer to the code → token exchange.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// The one-year read-only token, when issued.
    #[serde(default, deserialize_with = "crate::secret::deserialize_opt_secret")]
    pub extended_token: Option<Secret>,
    /// `AB1234`.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The account holder's name.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The account holder's email.
    #[serde(default)]
    pub email: Option<String>,
    /// When the broker says the session began (Kite's `login_time`); `None` means at the
    /// exchange. Upstox says nothing of it.
    #[serde(skip)]
    pub issued_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What renews the token without a login (Fyers' and Angel One's refresh token), kept
    /// beside the token file, never in it. Upstox sends none.
    #[serde(skip)]
    pub refresh_token: Option<Secret>,
    /// When the broker says the token ends (Dhan's `expiryTime`); the JWT's `exp` and the
    /// broker's rule also bound it. Upstox says nothing of it.
    #[serde(skip)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// The answer to a v3 access-token request: the user now approves it on the phone.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequestAck {
    /// When the pending request lapses, when Upstox says.
    pub authorization_expiry: Option<chrono::DateTime<chrono::Utc>>,
    /// The notifier webhook Upstox will post the token to, when it says.
    pub notifier_url: Option<String>,
}

/// A client for one Upstox API base. Cheap to clone; every client made with
/// [`UpstoxClient::new`] shares the process's one HTTP client ([`crate::http::shared`]).
#[derive(Debug, Clone)]
pub struct UpstoxClient {
    http: reqwest::Client,
    base: Url,
    /// How long a whole request may take.
    total: Duration,
}

impl UpstoxClient {
    /// A client for `api_base` (`https://api.upstox.com`, or a simulator).
    pub fn new(api_base: &Url) -> Result<UpstoxClient, ApiError> {
        Self::with_timeouts(api_base, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    /// A client with explicit timeouts (the connect timeout of the shared client is
    /// [`CONNECT_TIMEOUT`]; another one gets a client of its own).
    pub fn with_timeouts(
        api_base: &Url,
        connect: Duration,
        total: Duration,
    ) -> Result<UpstoxClient, ApiError> {
        let http = if connect == CONNECT_TIMEOUT {
            crate::http::shared()
        } else {
            crate::http::build(connect)
        }
        .map_err(|reason| ApiError::Transient {
            reason,
            retry_after: None,
        })?;
        let mut base = api_base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(UpstoxClient { http, base, total })
    }

    /// A request to the API, with the headers Upstox expects and the time limit.
    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, "application/json".parse().expect("static header"));
        headers.insert("Api-Version", "2.0".parse().expect("static header"));
        self.http
            .request(method, url)
            .headers(headers)
            .timeout(self.total)
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path.trim_start_matches('/'))
            .expect("static API paths join")
    }

    /// Validate a token: `GET /v2/user/profile`.
    pub async fn profile(&self, token: &Secret) -> Result<Profile, ApiError> {
        let req = self
            .request(reqwest::Method::GET, self.url("v2/user/profile"))
            .header(AUTHORIZATION, bearer(token)?);
        let body = send(req, "profile").await?;
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let profile = serde_json::from_value::<Profile>(data).map_err(|_| ApiError::Transient {
            reason: "profile: the answer has no usable `data` object".into(),
            retry_after: None,
        })?;
        Ok(Profile {
            user_id: profile.user_id.as_deref().map(shown),
            user_name: profile.user_name.as_deref().map(shown),
            email: profile.email.as_deref().map(shown),
            is_active: profile.is_active,
        })
    }

    /// Exchange an authorization code for a token: `POST /v2/login/authorization/token`.
    /// The code is single-use: never call this twice with the same code.
    pub async fn exchange_code(
        &self,
        code: &Secret,
        client_id: &str,
        client_secret: &Secret,
        redirect_uri: &str,
    ) -> Result<TokenResponse, ApiError> {
        let form = [
            ("code", code.expose()),
            ("client_id", client_id),
            ("client_secret", client_secret.expose()),
            ("redirect_uri", redirect_uri),
            ("grant_type", "authorization_code"),
        ];
        let req = self
            .request(
                reqwest::Method::POST,
                self.url("v2/login/authorization/token"),
            )
            .form(&form);
        let body = send(req, "token exchange").await?;
        let response =
            serde_json::from_value::<TokenResponse>(body).map_err(|_| ApiError::Transient {
                reason: "token exchange: the answer has no access_token".into(),
                retry_after: None,
            })?;
        Ok(TokenResponse {
            user_id: response.user_id.as_deref().map(shown),
            user_name: response.user_name.as_deref().map(shown),
            email: response.email.as_deref().map(shown),
            ..response
        })
    }

    /// Ask Upstox to send a token after the user approves on the phone:
    /// `POST /v3/login/auth/token/request/{client_id}`.
    pub async fn request_token(
        &self,
        client_id: &str,
        client_secret: &Secret,
    ) -> Result<TokenRequestAck, ApiError> {
        let mut url = self.url("v3/login/auth/token/request/");
        url.path_segments_mut()
            .map_err(|_| ApiError::Transient {
                reason: "the API base cannot take a path".into(),
                retry_after: None,
            })?
            .pop_if_empty()
            .push(client_id);
        let req = self
            .request(reqwest::Method::POST, url)
            .json(&serde_json::json!({ "client_secret": client_secret.expose() }));
        let body = send(req, "token request").await?;
        let data = body.get("data");
        let field = |k: &str| data.and_then(|d| d.get(k));
        let authorization_expiry = field("authorization_expiry").and_then(|v| match v {
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        });
        Ok(TokenRequestAck {
            authorization_expiry: authorization_expiry
                .and_then(chrono::DateTime::from_timestamp_millis),
            notifier_url: field("notifier_url")
                .and_then(Value::as_str)
                .map(printable)
                .filter(|s| !s.is_empty()),
        })
    }

    /// End the session: `DELETE /v2/logout`. The token stops working.
    pub async fn logout(&self, token: &Secret) -> Result<(), ApiError> {
        let req = self
            .request(reqwest::Method::DELETE, self.url("v2/logout"))
            .header(AUTHORIZATION, bearer(token)?);
        send(req, "logout").await.map(|_| ())
    }
}

fn bearer(token: &Secret) -> Result<reqwest::header::HeaderValue, ApiError> {
    let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| ApiError::Invalid {
            broker: Broker::Upstox,
            code: None,
            message: "the stored token contains characters no HTTP header can carry".into(),
        })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Send a request and classify the answer. Errors name the call, never the token.
async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<Value, ApiError> {
    let resp = req.send().await.map_err(|e| network_error(what, &e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = match crate::http::read_limited(resp, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(BodyError::Network(e)) => return Err(network_error(what, &e)),
        Err(BodyError::TooLarge { .. }) => return Err(too_large(what, status, retry_after)),
    };
    classify(what, status, retry_after, &content_type, &bytes)
}

/// An answer past [`MAX_BODY`]: not the API (a proxy, a download page, an endless stream).
fn too_large(what: &str, status: u16, retry_after: Option<Duration>) -> ApiError {
    ApiError::Transient {
        reason: format!(
            "{what}: HTTP {status} with an answer larger than {} (not Upstox's API: a proxy, \
             firewall or outage page)",
            crate::http::size_text(MAX_BODY)
        ),
        retry_after,
    }
}

fn network_error(what: &str, e: &reqwest::Error) -> ApiError {
    let kind = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "network error".to_string()
    };
    // reqwest's message names the URL (no secrets in our URLs) and the cause.
    let detail = std::error::Error::source(e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    ApiError::Transient {
        reason: format!("{what}: {kind}{detail}"),
        retry_after: None,
    }
}

/// One error of Upstox's envelope, read with either spelling.
#[derive(Debug, Default)]
struct EnvelopeError {
    code: Option<String>,
    message: Option<String>,
}

fn first_error(body: &Value) -> EnvelopeError {
    let Some(first) = body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    else {
        return EnvelopeError::default();
    };
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| first.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    };
    EnvelopeError {
        code: text(&["error_code", "errorCode"]),
        message: text(&["message"]),
    }
}

/// The longest piece of an answer's text shown (a code, a message, a name).
const SHOWN_CHARS: usize = 300;

/// Text from an answer, safe to show: no control characters, at most [`SHOWN_CHARS`].
fn shown(text: &str) -> String {
    let clean = printable(text);
    match clean.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

/// Classify an answer. Pure, so every shape in UPSTOX.md is tested without a network.
pub fn classify(
    what: &str,
    status: u16,
    retry_after: Option<Duration>,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let transient = |reason: String| ApiError::Transient {
        reason,
        retry_after,
    };
    if body.len() > MAX_BODY {
        return Err(too_large(what, status, retry_after));
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok().filter(Value::is_object);
    let Some(json) = parsed else {
        // Not Upstox's JSON: Cloudflare's HTML 403, a proxy's or captive portal's HTML 401, a
        // cut-off body. Whatever the status, it says nothing about the token: transient.
        let looks_html = content_type.contains("html") || body.trim_ascii_start().starts_with(b"<");
        let shape = if looks_html {
            "an HTML page"
        } else if body.trim_ascii().is_empty() {
            "an empty answer"
        } else {
            "an answer that is not JSON"
        };
        return Err(transient(format!(
            "{what}: HTTP {status} with {shape} (not Upstox's API: a proxy, firewall or outage page)"
        )));
    };
    // Matched on Upstox's code as sent; shown without control characters.
    let err = first_error(&json);
    let code = err.code.as_deref().map(shown);
    let message = err
        .message
        .as_deref()
        .map(shown)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let is_error_status = json.get("status").and_then(Value::as_str) == Some("error");
    // Only UDAPI100050 (the observed answer to an invalid or expired token) makes a token
    // invalid. A JSON 401 with another code, or with none, is Upstox refusing the call for
    // some other reason (e.g. UDAPI100067, an extended token used where it is not allowed):
    // `Rejected`, shown with Upstox's code and message and never retried, but the token is
    // not declared dead on a guess, so the engine is not told to log in again for nothing.
    match (status, err.code.as_deref()) {
        (_, Some("UDAPI100050")) => Err(ApiError::Invalid {
            broker: Broker::Upstox,
            code,
            message,
        }),
        (429, _) | (_, Some("UDAPI10005")) => Err(transient(crate::brokers::answer::rate_limited(
            "Upstox", what, &message,
        ))),
        (_, Some("UDAPI100072" | "UDAPI100074")) => Err(transient(format!(
            "{what}: Upstox's service window ({}: {message})",
            code.as_deref().unwrap_or_default()
        ))),
        (500..=599, _) => Err(transient(format!(
            "{what}: Upstox server error (HTTP {status}{}: {message})",
            code.as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        ))),
        (400..=499, _) => Err(ApiError::Rejected {
            broker: Broker::Upstox,
            status,
            code,
            message,
        }),
        (200..=299, _) if is_error_status => Err(ApiError::Rejected {
            broker: Broker::Upstox,
            status,
            code,
            message,
        }),
        (200..=299, _) => Ok(json),
        _ => Err(transient(format!("{what}: unexpected HTTP {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, body: &str) -> Result<Value, ApiError> {
        classify("profile", status, None, "application/json", body.as_bytes())
    }

    const INVALID_TOKEN: &str = r#"{"status":"error","errors":[{"errorCode":"UDAPI100050","message":"Invalid token used to access API","propertyPath":null,"invalidValue":null,"error_code":"UDAPI100050","property_path":null,"invalid_value":null}]}"#;

    fn envelope(code: &str, msg: &str, camel_only: bool) -> String {
        if camel_only {
            format!(
                r#"{{"status":"error","errors":[{{"errorCode":"{code}","message":"{msg}","propertyPath":null,"invalidValue":null}}]}}"#
            )
        } else {
            format!(
                r#"{{"status":"error","errors":[{{"error_code":"{code}","message":"{msg}","property_path":null,"invalid_value":null}}]}}"#
            )
        }
    }

    #[test]
    fn a_rejected_token_is_invalid() {
        let e = c(401, INVALID_TOKEN).unwrap_err();
        assert_eq!(
            e,
            ApiError::Invalid {
                broker: Broker::Upstox,
                code: Some("UDAPI100050".into()),
                message: "Invalid token used to access API".into()
            }
        );
        // UDAPI100050 is invalid whatever the status, and either spelling is read.
        assert!(matches!(
            c(400, &envelope("UDAPI100050", "x", true)),
            Err(ApiError::Invalid { .. })
        ));
        assert!(matches!(
            c(403, &envelope("UDAPI100050", "x", false)),
            Err(ApiError::Invalid { .. })
        ));
    }

    #[test]
    fn a_401_that_is_not_upstox_json_is_transient() {
        // A proxy's or captive portal's login page, an empty 401, a gateway's plain text:
        // nothing Upstox said about the token.
        for (content_type, body) in [
            (
                "text/html",
                "<html><body><h1>401 Authorization Required</h1></body></html>",
            ),
            ("application/json", "<!DOCTYPE html><title>Sign in</title>"),
            ("application/json", ""),
            ("text/plain", "Unauthorized"),
            (
                "application/json",
                r#"{"status":"error","errors":[{"error_code":"#,
            ),
        ] {
            let e = classify("profile", 401, None, content_type, body.as_bytes()).unwrap_err();
            assert!(e.is_transient(), "{content_type} {body:?}: {e:?}");
            assert!(e.to_string().contains("HTTP 401 with"), "{e}");
            assert!(e.to_string().contains("not Upstox's API"), "{e}");
        }
        let html = classify("profile", 401, None, "text/html", b"<html>no</html>").unwrap_err();
        assert!(
            html.to_string().contains("HTTP 401 with an HTML page"),
            "{html}"
        );
    }

    #[test]
    fn a_json_401_with_another_code_is_a_refusal_not_a_dead_token() {
        // UDAPI100067: an extended token used where it is not allowed. Upstox refused the
        // call, but said nothing about the token being dead: shown with its code, not retried.
        let e = c(
            401,
            &envelope("UDAPI100067", "Extended token not allowed", false),
        )
        .unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Upstox,
                status: 401,
                code: Some("UDAPI100067".into()),
                message: "Extended token not allowed".into()
            }
        );
        // JSON without Upstox's envelope (a gateway's `{"message":...}`): a refusal too.
        assert!(matches!(
            c(401, r#"{"message":"Unauthorized"}"#),
            Err(ApiError::Rejected {
                status: 401,
                code: None,
                ..
            })
        ));
    }

    #[test]
    fn control_characters_in_answers_never_reach_a_message() {
        let e = c(
            400,
            &envelope(
                r"UDAPI1\u001b[2J00016",
                r"Bad\u001b]0;pwned\u0007 news\n",
                true,
            ),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(
            text.contains("UDAPI1[2J00016") && text.contains("Bad]0;pwned news"),
            "{text}"
        );
        let long = c(400, &envelope("UDAPI100016", &"x".repeat(5000), true)).unwrap_err();
        assert!(long.to_string().chars().count() < 400, "{long}");
    }

    #[test]
    fn oversized_bodies_are_transient() {
        let body = vec![b' '; MAX_BODY + 1];
        let e = classify("profile", 200, None, "application/json", &body).unwrap_err();
        assert!(e.is_transient());
        assert!(
            e.to_string()
                .contains("HTTP 200 with an answer larger than 64 KiB"),
            "{e}"
        );
    }

    #[test]
    fn transient_answers() {
        for (status, body) in [
            (500, envelope("UDAPI100500", "Something went wrong", false)),
            (502, String::new()),
            (503, envelope("UDAPI100074", "service window", false)),
            (200, envelope("UDAPI100072", "service window", true)),
            (429, envelope("UDAPI10005", "Too Many Request Sent", false)),
            (400, envelope("UDAPI10005", "Too Many Request Sent", true)),
            (200, r#"{"status":"success","data":{"user_id":"#.to_string()),
            (
                403,
                "<html><body>error code: 1010 Access denied</body></html>".to_string(),
            ),
        ] {
            let e = c(status, &body).unwrap_err();
            assert!(e.is_transient(), "{status} {body}: {e:?}");
        }
        let e = classify(
            "profile",
            429,
            Some(Duration::from_secs(7)),
            "application/json",
            b"{}",
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let html = classify(
            "profile",
            403,
            None,
            "text/html",
            b"<!DOCTYPE html>error code: 1010",
        )
        .unwrap_err();
        assert!(html.to_string().contains("HTML page"), "{html}");
    }

    #[test]
    fn other_client_errors_are_rejections_with_upstox_code() {
        let e = c(400, &envelope("UDAPI100016", "Invalid Credentials", true)).unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Upstox,
                status: 400,
                code: Some("UDAPI100016".into()),
                message: "Invalid Credentials".into()
            }
        );
        assert!(
            e.to_string().contains("UDAPI100016") && e.to_string().contains("Invalid Credentials")
        );
        let e = c(404, r#"{"status":"error"}"#).unwrap_err();
        assert!(matches!(
            e,
            ApiError::Rejected {
                status: 404,
                code: None,
                ..
            }
        ));
    }

    #[test]
    fn success_shapes() {
        let v = c(200, r#"{"status":"success","data":{"user_id":"AB1234"}}"#).unwrap();
        assert_eq!(v["data"]["user_id"], "AB1234");
        // The flat exchange response has no envelope.
        let v = c(200, r#"{"access_token":"x","user_id":"AB1234"}"#).unwrap();
        assert_eq!(v["user_id"], "AB1234");
        // partial_success is still a success.
        assert!(c(200, r#"{"status":"partial_success","data":{}}"#).is_ok());
        // A JSON array or a number is not Upstox's JSON.
        assert!(c(200, "[1]").unwrap_err().is_transient());
    }
}
