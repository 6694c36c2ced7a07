//! The Kite Connect v3 client: request token → access token exchange, profile (the check),
//! and logout.
//!
//! Every answer is classified into one [`ApiError`], by the HTTP status and Kite's
//! `error_type`, never by the message text: `Invalid` only for HTTP 403 with
//! `TokenException`; `Transient` for network errors, timeouts, 429, 5xx (502 `DataException`,
//! 503 `NetworkException`, 504) and every answer that is not Kite's JSON (an HTML page, an
//! empty or cut-off body, a body larger than [`MAX_BODY`]); `Rejected` for any other 4xx and
//! for a 200 that says `"status":"error"`, with Kite's `error_type` and message. The client
//! never retries: the worker holds the one retry layer.
//!
//! Text from an answer (profile fields, error types and messages) passes through
//! [`printable`] and is clipped here, where it comes in.

use crate::secret::Secret;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;
use url::Url;

use crate::brokers::Broker;
use crate::brokers::answer::{self, shown};
pub use crate::brokers::answer::{MAX_BODY, REQUEST_TIMEOUT};
pub use crate::brokers::{ApiError, Profile};
pub use crate::http::CONNECT_TIMEOUT;

/// The broker's name in what the client says.
const BROKER: &str = "Kite";

/// The API version every request names.
pub const KITE_VERSION: &str = "3";

/// The `checksum` of the exchange: lowercase hex SHA-256 of `api_key + request_token +
/// api_secret`, with no separators.
pub fn checksum(api_key: &str, request_token: &Secret, api_secret: &Secret) -> Secret {
    let mut hash = Sha256::new();
    hash.update(api_key.as_bytes());
    hash.update(request_token.expose().as_bytes());
    hash.update(api_secret.expose().as_bytes());
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Secret::new(hex)
}

/// A session from the exchange. The tokens are [`Secret`]s; `Debug` shows none of them.
#[derive(Clone)]
pub struct Session {
    /// The access token (opaque, not a JWT).
    pub access_token: Secret,
    /// The public token, when sent.
    pub public_token: Option<Secret>,
    /// The refresh token: issued only to approved platforms, empty (`None`) for the rest.
    pub refresh_token: Option<Secret>,
    /// `AB1234`.
    pub user_id: Option<String>,
    /// The account holder's name.
    pub user_name: Option<String>,
    /// The account holder's short name.
    pub user_shortname: Option<String>,
    /// The account holder's email.
    pub email: Option<String>,
    /// Kite's `login_time` (sent in IST), when it was readable.
    pub login_time: Option<DateTime<Utc>>,
}

impl Session {
    /// When the token was issued: the `login_time`, else `exchanged_at`
    /// ([`issued_at`](super::issued_at)).
    pub fn issued_at(&self, exchanged_at: DateTime<Utc>) -> DateTime<Utc> {
        super::issued_at(self.login_time, exchanged_at)
    }

    /// When the token dies: the first 06:00 IST after [`Session::issued_at`].
    pub fn expires_at(&self, exchanged_at: DateTime<Utc>) -> DateTime<Utc> {
        super::kite_expiry(self.issued_at(exchanged_at))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &self.access_token)
            .field("user_id", &self.user_id)
            .field("login_time", &self.login_time)
            .finish_non_exhaustive()
    }
}

/// A client for one Kite API base. Cheap to clone; every client made with
/// [`KiteClient::new`] shares the process's one HTTP client ([`crate::http::shared`]).
#[derive(Debug, Clone)]
pub struct KiteClient {
    http: reqwest::Client,
    base: Url,
    /// How long a whole request may take.
    total: Duration,
}

impl KiteClient {
    /// A client for `api_base` (`https://api.kite.trade`, or a simulator).
    pub fn new(api_base: &Url) -> Result<KiteClient, ApiError> {
        Self::with_timeouts(api_base, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    /// A client with explicit timeouts (the connect timeout of the shared client is
    /// [`CONNECT_TIMEOUT`]; another one gets a client of its own).
    pub fn with_timeouts(
        api_base: &Url,
        connect: Duration,
        total: Duration,
    ) -> Result<KiteClient, ApiError> {
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
        Ok(KiteClient { http, base, total })
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("static API paths join a base URL")
    }

    /// A request with the headers Kite expects and the time limit.
    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(ACCEPT, "application/json")
            .header("X-Kite-Version", KITE_VERSION)
            .timeout(self.total)
    }

    /// Exchange a request token for a session: `POST /session/token`. The request token is
    /// single-use: never call this twice with the same one. A dead request token (403
    /// `TokenException` here) is `Rejected`: it is the login that failed, not a stored token.
    pub async fn exchange(
        &self,
        api_key: &str,
        request_token: &Secret,
        api_secret: &Secret,
    ) -> Result<Session, ApiError> {
        let sum = checksum(api_key, request_token, api_secret);
        let form = [
            ("api_key", api_key),
            ("request_token", request_token.expose()),
            ("checksum", sum.expose()),
        ];
        let req = self
            .request(reqwest::Method::POST, self.url("session/token"))
            .form(&form);
        let body = send(req, "token exchange").await.map_err(|e| match e {
            ApiError::Invalid { code, message, .. } => ApiError::Rejected {
                broker: Broker::Kite,
                status: 403,
                code,
                message,
            },
            other => other,
        })?;
        read_session(&body)
    }

    /// Check a token: `GET /user/profile`.
    pub async fn profile(&self, api_key: &str, token: &Secret) -> Result<Profile, ApiError> {
        let req = self
            .request(reqwest::Method::GET, self.url("user/profile"))
            .header(AUTHORIZATION, authorization(api_key, token)?);
        let body = send(req, "profile").await?;
        let Some(data) = body.get("data").filter(|d| d.is_object()) else {
            return Err(ApiError::Transient {
                reason: "profile: Kite's answer has no usable `data` object".into(),
                retry_after: None,
            });
        };
        Ok(Profile {
            user_id: text(data, "user_id"),
            user_name: text(data, "user_name"),
            email: text(data, "email"),
            is_active: None,
        })
    }

    /// End the session: `DELETE /session/token?api_key=…&access_token=…`. The token stops
    /// working. Kite takes the token in the query here; no error or log line names the URL.
    pub async fn logout(&self, api_key: &str, token: &Secret) -> Result<(), ApiError> {
        let mut url = self.url("session/token");
        url.query_pairs_mut()
            .append_pair("api_key", api_key)
            .append_pair("access_token", token.expose());
        let req = self.request(reqwest::Method::DELETE, url);
        send(req, "logout").await.map(|_| ())
    }
}

/// `token <api_key>:<access_token>`, marked sensitive.
fn authorization(api_key: &str, token: &Secret) -> Result<HeaderValue, ApiError> {
    let mut v =
        HeaderValue::from_str(&format!("token {api_key}:{}", token.expose())).map_err(|_| {
            // Nothing was asked of Kite, so nothing is known of the token: not `Invalid`.
            ApiError::Rejected {
                broker: Broker::Kite,
                status: 0,
                code: None,
                message: "the stored token or kite.api_key contains characters no HTTP header \
                      can carry; check kite.api_key for stray spaces or invisible characters"
                    .into(),
            }
        })?;
    v.set_sensitive(true);
    Ok(v)
}

/// A text field of an answer, safe to show; `None` when absent or empty.
fn text(data: &Value, key: &str) -> Option<String> {
    data.get(key)
        .and_then(Value::as_str)
        .map(shown)
        .filter(|s| !s.is_empty())
}

/// A token field of an answer; `None` when absent or empty.
fn secret(data: &Value, key: &str) -> Option<Secret> {
    data.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
}

/// The session in a successful exchange's `data`.
fn read_session(body: &Value) -> Result<Session, ApiError> {
    let data = body.get("data").filter(|d| d.is_object());
    let Some((data, access_token)) = data.and_then(|d| Some((d, secret(d, "access_token")?)))
    else {
        return Err(ApiError::Transient {
            reason: "token exchange: Kite's answer has no access_token".into(),
            retry_after: None,
        });
    };
    Ok(Session {
        access_token,
        public_token: secret(data, "public_token"),
        refresh_token: secret(data, "refresh_token"),
        user_id: text(data, "user_id"),
        user_name: text(data, "user_name"),
        user_shortname: text(data, "user_shortname"),
        email: text(data, "email"),
        login_time: data
            .get("login_time")
            .and_then(Value::as_str)
            .and_then(super::parse_login_time),
    })
}

/// Send a request and classify the answer. Errors name the call, never the token or URL.
async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<Value, ApiError> {
    let answer::Received {
        status,
        retry_after,
        content_type,
        bytes,
    } = answer::receive(BROKER, req, what).await?;
    classify(what, status, retry_after, &content_type, &bytes)
}

/// Classify an answer. Pure, so every shape Kite documents is tested without a network.
/// `Ok` is the whole JSON answer of a success.
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
        return Err(answer::too_large(BROKER, what, status, retry_after));
    }
    // Kite's JSON is an object with a `status` of "success" or "error".
    let parsed: Option<Value> = serde_json::from_slice(body)
        .ok()
        .filter(|v: &Value| v.get("status").and_then(Value::as_str).is_some());
    let Some(json) = parsed else {
        return Err(answer::not_the_api(
            BROKER,
            what,
            status,
            content_type,
            body,
            retry_after,
        ));
    };
    let error_type = json.get("error_type").and_then(Value::as_str);
    let code = error_type.map(shown).filter(|c| !c.is_empty());
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .map(shown)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let said = || match &code {
        Some(c) => format!("{c}: {message}"),
        None => message.clone(),
    };
    let is_error = json.get("status").and_then(Value::as_str) != Some("success");
    match status {
        // The one answer that says the token is dead (the SDKs' session-expiry hook).
        403 if error_type == Some("TokenException") => Err(ApiError::Invalid {
            broker: Broker::Kite,
            code,
            message,
        }),
        429 => Err(transient(crate::brokers::answer::rate_limited(
            "Kite",
            what,
            &said(),
        ))),
        500..=599 => {
            let meaning = match status {
                502 => "Kite's order system is down",
                503 => "Kite's API is down",
                504 => "Kite's gateway timed out",
                _ => "Kite server error",
            };
            Err(transient(format!(
                "{what}: {meaning} (HTTP {status}, {})",
                said()
            )))
        }
        400..=499 => Err(ApiError::Rejected {
            broker: Broker::Kite,
            status,
            code,
            message,
        }),
        200..=299 if is_error => Err(ApiError::Rejected {
            broker: Broker::Kite,
            status,
            code,
            message,
        }),
        200..=299 => Ok(json),
        _ => Err(transient(format!("{what}: unexpected HTTP {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, body: &str) -> Result<Value, ApiError> {
        classify("profile", status, None, "application/json", body.as_bytes())
    }

    fn err(message: &str, error_type: &str) -> String {
        format!(
            r#"{{"status":"error","message":"{message}","data":null,"error_type":"{error_type}"}}"#
        )
    }

    #[test]
    fn the_checksum_is_hex_sha256_of_key_token_and_secret() {
        // printf '%s' 'my_api_keymy_request_tokenmy_api_secret' | sha256sum
        let sum = checksum(
            "my_api_key",
            &Secret::new("my_request_token"),
            &Secret::new("my_api_secret"),
        );
        assert_eq!(
            sum.expose(),
            "9d183880c6b1b8cbef59720852c4b880eefc4de66027736a55bc5c51fcdc7464"
        );
        // No separators: moving a character between the parts gives another sum.
        let moved = checksum(
            "my_api_ke",
            &Secret::new("ymy_request_token"),
            &Secret::new("my_api_secret"),
        );
        assert_eq!(moved.expose(), sum.expose());
        assert_ne!(
            checksum("a", &Secret::new("b"), &Secret::new("c")).expose(),
            sum.expose()
        );
    }

    #[test]
    fn only_403_token_exception_makes_a_token_invalid() {
        let e = c(
            403,
            &err("Incorrect `api_key` or `access_token`.", "TokenException"),
        )
        .unwrap_err();
        assert_eq!(
            e,
            ApiError::Invalid {
                broker: Broker::Kite,
                code: Some("TokenException".into()),
                message: "Incorrect `api_key` or `access_token`.".into()
            }
        );
        assert!(matches!(
            c(403, &err("Invalid session", "TokenException")),
            Err(ApiError::Invalid { .. })
        ));
        // TokenException with another status, another error_type with 403: not a dead token.
        for (status, body) in [
            (400, err("Token is invalid", "TokenException")),
            (401, err("Token is invalid", "TokenException")),
            (200, err("Token is invalid", "TokenException")),
            (403, err("Invalid checksum", "InputException")),
            (403, err("Insufficient permission", "PermissionException")),
            (
                403,
                r#"{"status":"error","message":"Forbidden"}"#.to_string(),
            ),
        ] {
            let e = c(status, &body).unwrap_err();
            assert!(
                matches!(e, ApiError::Rejected { .. }),
                "{status} {body}: {e:?}"
            );
        }
    }

    #[test]
    fn refusals_carry_kite_error_type_and_message() {
        let e = c(403, &err("Invalid checksum", "InputException")).unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Kite,
                status: 403,
                code: Some("InputException".into()),
                message: "Invalid checksum".into()
            }
        );
        let e = c(400, &err("Missing request_token", "InputException")).unwrap_err();
        assert!(
            e.to_string().contains("InputException")
                && e.to_string().contains("Missing request_token"),
            "{e}"
        );
        // A 200 that says error is a refusal too.
        assert!(matches!(
            c(200, &err("Something is off", "GeneralException")),
            Err(ApiError::Rejected { status: 200, .. })
        ));
        // No message: the status stands in.
        assert!(matches!(
            c(404, r#"{"status":"error"}"#),
            Err(ApiError::Rejected { status: 404, code: None, ref message, .. }) if message == "HTTP 404"
        ));
    }

    #[test]
    fn rate_limits_and_server_errors_are_transient() {
        for (status, body, words) in [
            (
                429,
                err("Too many requests", "NetworkException"),
                "rate limited by Kite",
            ),
            (
                429,
                err("Too many requests", "GeneralException"),
                "rate limited by Kite",
            ),
            (429, String::new(), "HTTP 429 with an empty answer"),
            (
                502,
                err("Order system down", "DataException"),
                "order system is down",
            ),
            (
                503,
                err("API down", "NetworkException"),
                "Kite's API is down",
            ),
            (
                504,
                err("Gateway timeout", "NetworkException"),
                "gateway timed out",
            ),
            (
                500,
                err("Something went wrong", "GeneralException"),
                "Kite server error",
            ),
            // A 5xx carrying TokenException is still the server failing.
            (
                503,
                err("Invalid session", "TokenException"),
                "Kite's API is down",
            ),
        ] {
            let e = c(status, &body).unwrap_err();
            assert!(e.is_transient(), "{status} {body}: {e:?}");
            assert!(e.to_string().contains(words), "{e}");
        }
        let e = classify(
            "profile",
            429,
            Some(Duration::from_secs(7)),
            "application/json",
            err("Too many requests", "NetworkException").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn answers_that_are_not_kite_json_are_transient() {
        for (status, content_type, body) in [
            (403, "text/html", "<html><body>Access denied</body></html>"),
            (
                403,
                "application/json",
                "<!DOCTYPE html><title>Blocked</title>",
            ),
            (403, "application/json", ""),
            (
                200,
                "application/json",
                r#"{"status":"success","data":{"user_id":"#,
            ),
            (200, "application/json", "[1]"),
            (403, "application/json", r#"{"message":"Forbidden"}"#),
            (200, "text/plain", "OK"),
            (302, "text/html", ""),
        ] {
            let e = classify("profile", status, None, content_type, body.as_bytes()).unwrap_err();
            assert!(e.is_transient(), "{status} {body:?}: {e:?}");
            assert!(e.to_string().contains("not Kite's API"), "{e}");
        }
        let body = vec![b' '; MAX_BODY + 1];
        let e = classify("profile", 200, None, "application/json", &body).unwrap_err();
        assert!(e.is_transient());
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
    }

    #[test]
    fn control_characters_and_long_texts_never_reach_a_message() {
        let e = c(
            400,
            &err(
                r"Bad\u001b]0;pwned\u0007 news\n",
                r"Input\u001b[2JException",
            ),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("Bad]0;pwned news"), "{text}");
        let long = c(400, &err(&"x".repeat(5000), "InputException")).unwrap_err();
        assert!(long.to_string().chars().count() < 400, "{long}");
    }

    #[test]
    fn success_shapes() {
        let v = c(200, r#"{"status":"success","data":{"user_id":"AB1234"}}"#).unwrap();
        assert_eq!(v["data"]["user_id"], "AB1234");
        assert!(c(200, r#"{"status":"success","data":true}"#).is_ok());
    }

    #[test]
    fn a_session_is_read_and_its_tokens_stay_hidden() {
        let body: Value = serde_json::from_str(
            r#"{"status":"success","data":{"user_type":"individual","email":"xxxyyy@gmail.com",
            "user_name":"Kite Connect","user_shortname":"Connect","broker":"ZERODHA",
            "exchanges":["NSE"],"products":["CNC"],"order_types":["MARKET"],"avatar_url":null,
            "user_id":"XX0000","api_key":"xxxxxx","access_token":"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
            "public_token":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz","enctoken":"","refresh_token":"",
            "silo":"","login_time":"2021-01-01 16:15:14","meta":{"demat_consent":"physical"}}}"#,
        )
        .unwrap();
        let s = read_session(&body).unwrap();
        assert_eq!(s.access_token.expose(), "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
        assert!(s.public_token.is_some());
        assert!(s.refresh_token.is_none(), "an empty refresh_token is none");
        assert_eq!(s.user_id.as_deref(), Some("XX0000"));
        assert_eq!(s.user_name.as_deref(), Some("Kite Connect"));
        assert_eq!(
            s.login_time,
            super::super::parse_login_time("2021-01-01 16:15:14")
        );
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("yyyy") && !debug.contains("zzzz"),
            "{debug}"
        );
        // No access_token: not a session.
        let e = read_session(&serde_json::json!({"status":"success","data":{"user_id":"X"}}))
            .unwrap_err();
        assert!(e.is_transient());
        let e = read_session(&serde_json::json!({"status":"success","data":{"access_token":""}}))
            .unwrap_err();
        assert!(e.is_transient());
    }
}
