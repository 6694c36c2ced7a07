//! The Fyers API v3 client: auth code → access token exchange, profile (the check), and
//! logout.
//!
//! Every answer is classified into one [`ApiError`] by the HTTP status and Fyers' numeric
//! `code`, never by the message text ([`classify`]): `Invalid` only for a code in the
//! configured list (`fyers.invalid_codes`) or an HTTP 401 carrying Fyers' JSON; `Transient`
//! for network errors, timeouts, 429, `-353` (rate limit), `-201 -202 -204 -205` (connection
//! errors), 5xx and every answer that is not Fyers' JSON (an HTML page, an empty or cut-off
//! body, a body larger than [`MAX_BODY`]); `Rejected` for any other error, with Fyers' code
//! and message. The client never retries: the worker holds the one retry layer.

use super::{CLIENT_ID_HINT, DEFAULT_INVALID_CODES};
use crate::brokers::Broker;
use crate::brokers::answer::{self, shown};
pub use crate::brokers::answer::{MAX_BODY, REQUEST_TIMEOUT};
pub use crate::brokers::{ApiError, Profile};
pub use crate::http::CONNECT_TIMEOUT;

/// The broker's name in what the client says.
const BROKER: &str = "Fyers";
use crate::secret::Secret;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;
use url::Url;

/// Fyers' rate-limit code.
pub const RATE_LIMITED: i64 = -353;
/// Fyers' "Connection error. Please try again" codes.
pub const CONNECTION_ERRORS: [i64; 4] = [-201, -202, -204, -205];

/// The exchange's `appIdHash`: lowercase hex SHA-256 of `<client_id>:<secret>` (the
/// client_id with its `-100` suffix).
pub fn app_id_hash(client_id: &str, secret: &Secret) -> Secret {
    let mut hash = Sha256::new();
    hash.update(client_id.as_bytes());
    hash.update(b":");
    hash.update(secret.expose().as_bytes());
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Secret::new(hex)
}

/// True when `client_id` ends with an app-type suffix like `-100`.
pub fn has_app_type(client_id: &str) -> bool {
    client_id.rsplit_once('-').is_some_and(|(id, t)| {
        !id.is_empty() && !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A session from the exchange. The tokens are [`Secret`]s; `Debug` shows none of them.
#[derive(Clone)]
pub struct Session {
    /// The access token (a JWT whose `exp` says when it dies).
    pub access_token: Secret,
    /// The refresh token, when sent (not used yet).
    pub refresh_token: Option<Secret>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &self.access_token)
            .finish_non_exhaustive()
    }
}

/// A client for one Fyers API base. Cheap to clone; every client made with
/// [`FyersClient::new`] shares the process's one HTTP client.
#[derive(Debug, Clone)]
pub struct FyersClient {
    http: reqwest::Client,
    base: Url,
    total: Duration,
    invalid_codes: Vec<i64>,
}

impl FyersClient {
    /// A client for `api_base` (`https://api-t1.fyers.in`, or a simulator) that takes the
    /// codes in `invalid_codes` (empty: [`DEFAULT_INVALID_CODES`]) to mean a dead token.
    pub fn new(api_base: &Url, invalid_codes: &[i64]) -> Result<FyersClient, ApiError> {
        Self::with_timeouts(api_base, invalid_codes, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    /// A client with explicit timeouts.
    pub fn with_timeouts(
        api_base: &Url,
        invalid_codes: &[i64],
        connect: Duration,
        total: Duration,
    ) -> Result<FyersClient, ApiError> {
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
        let invalid_codes = if invalid_codes.is_empty() {
            DEFAULT_INVALID_CODES.to_vec()
        } else {
            invalid_codes.to_vec()
        };
        Ok(FyersClient {
            http,
            base,
            total,
            invalid_codes,
        })
    }

    fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("static API paths join a base URL")
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header(ACCEPT, "application/json")
            .header("version", "3")
            .timeout(self.total)
    }

    /// Exchange an auth code for a session: `POST /api/v3/validate-authcode`. The code is
    /// single-use: never call this twice with the same one. Any refusal here is `Rejected`
    /// (it is the login that failed, not a stored token).
    pub async fn exchange(
        &self,
        client_id: &str,
        auth_code: &Secret,
        secret: &Secret,
    ) -> Result<Session, ApiError> {
        let hash = app_id_hash(client_id, secret);
        let body = serde_json::json!({
            "grant_type": "authorization_code",
            "appIdHash": hash.expose(),
            "code": auth_code.expose(),
        });
        let req = self
            .request(reqwest::Method::POST, "api/v3/validate-authcode")
            .json(&body);
        let answer = self
            .send(req, "token exchange")
            .await
            .map_err(|e| match e {
                ApiError::Invalid { code, message, .. } => ApiError::Rejected {
                    broker: Broker::Fyers,
                    status: 401,
                    code,
                    message,
                },
                ApiError::Rejected {
                    broker,
                    status,
                    code,
                    message,
                } if !has_app_type(client_id) => ApiError::Rejected {
                    broker,
                    status,
                    code,
                    message: format!("{message} ({CLIENT_ID_HINT}; fyers.client_id has none)"),
                },
                other => other,
            })?;
        read_session(&answer)
    }

    /// A new access token from the refresh token a login left, with the user's PIN:
    /// `POST /api/v3/validate-refresh-token` (no browser; the refresh token lives about 15
    /// days). Any refusal is `Rejected`: it says nothing about the token in the file.
    pub async fn refresh(
        &self,
        client_id: &str,
        secret: &Secret,
        refresh_token: &Secret,
        pin: &Secret,
    ) -> Result<Session, ApiError> {
        let hash = app_id_hash(client_id, secret);
        let body = serde_json::json!({
            "grant_type": "refresh_token",
            "appIdHash": hash.expose(),
            "refresh_token": refresh_token.expose(),
            "pin": pin.expose(),
        });
        let req = self
            .request(reqwest::Method::POST, "api/v3/validate-refresh-token")
            .json(&body);
        let answer = self.send(req, "token refresh").await.map_err(|e| match e {
            ApiError::Invalid { code, message, .. } => ApiError::Rejected {
                broker: Broker::Fyers,
                status: 401,
                code,
                message,
            },
            other => other,
        })?;
        let mut session = read_session(&answer)?;
        // The answer carries only the access token: the refresh token goes on living.
        session.refresh_token = session.refresh_token.or(Some(refresh_token.clone()));
        Ok(session)
    }

    /// Check a token: `GET /api/v3/profile`.
    pub async fn profile(&self, client_id: &str, token: &Secret) -> Result<Profile, ApiError> {
        let req = self
            .request(reqwest::Method::GET, "api/v3/profile")
            .header(AUTHORIZATION, authorization(client_id, token)?);
        let body = self.send(req, "profile").await?;
        let Some(data) = body.get("data").filter(|d| d.is_object()) else {
            return Err(ApiError::Transient {
                reason: "profile: Fyers' answer has no usable `data` object".into(),
                retry_after: None,
            });
        };
        Ok(Profile {
            user_id: text(data, "fy_id"),
            user_name: text(data, "name"),
            email: text(data, "email_id"),
            is_active: None,
        })
    }

    /// End the session: `POST /api/v3/logout`. The token stops working.
    pub async fn logout(&self, client_id: &str, token: &Secret) -> Result<(), ApiError> {
        let req = self
            .request(reqwest::Method::POST, "api/v3/logout")
            .header(AUTHORIZATION, authorization(client_id, token)?);
        self.send(req, "logout").await.map(|_| ())
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, ApiError> {
        let answer::Received {
            status,
            retry_after,
            content_type,
            bytes,
        } = answer::receive(BROKER, req, what).await?;
        classify(
            what,
            status,
            retry_after,
            &content_type,
            &bytes,
            &self.invalid_codes,
        )
    }
}

/// `<client_id>:<access_token>`, marked sensitive.
fn authorization(client_id: &str, token: &Secret) -> Result<HeaderValue, ApiError> {
    let mut v =
        HeaderValue::from_str(&format!("{client_id}:{}", token.expose())).map_err(|_| {
            ApiError::Invalid {
                broker: Broker::Fyers,
                code: None,
                message: "the stored token or fyers.client_id contains characters no HTTP header \
                      can carry"
                    .into(),
            }
        })?;
    v.set_sensitive(true);
    Ok(v)
}

fn text(data: &Value, key: &str) -> Option<String> {
    data.get(key)
        .and_then(Value::as_str)
        .map(shown)
        .filter(|s| !s.is_empty())
}

fn secret(data: &Value, key: &str) -> Option<Secret> {
    data.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
}

/// The session in a successful exchange's answer.
fn read_session(body: &Value) -> Result<Session, ApiError> {
    let Some(access_token) = secret(body, "access_token") else {
        return Err(ApiError::Transient {
            reason: "token exchange: Fyers' answer has no access_token".into(),
            retry_after: None,
        });
    };
    Ok(Session {
        access_token,
        refresh_token: secret(body, "refresh_token"),
    })
}

/// Classify an answer. Pure, so every shape is tested without a network. `invalid_codes`
/// are the Fyers codes that mean a dead token. `Ok` is the whole JSON answer of a success.
pub fn classify(
    what: &str,
    status: u16,
    retry_after: Option<Duration>,
    content_type: &str,
    body: &[u8],
    invalid_codes: &[i64],
) -> Result<Value, ApiError> {
    let transient = |reason: String| ApiError::Transient {
        reason,
        retry_after,
    };
    if body.len() > MAX_BODY {
        return Err(answer::too_large(BROKER, what, status, retry_after));
    }
    // Fyers' JSON is an object with `s` of "ok" or "error".
    let parsed: Option<Value> = serde_json::from_slice(body)
        .ok()
        .filter(|v: &Value| v.get("s").and_then(Value::as_str).is_some());
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
    let code_num = json.get("code").and_then(Value::as_i64);
    let code = code_num.map(|c| c.to_string());
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
    let is_ok = json.get("s").and_then(Value::as_str) == Some("ok");
    let invalid_code = code_num.is_some_and(|c| invalid_codes.contains(&c));
    if (200..=299).contains(&status) && is_ok {
        return Ok(json);
    }
    if status == 429 || code_num == Some(RATE_LIMITED) {
        return Err(transient(answer::rate_limited("Fyers", what, &said())));
    }
    if (500..=599).contains(&status) {
        return Err(transient(format!(
            "{what}: Fyers server error (HTTP {status}, {})",
            said()
        )));
    }
    if code_num.is_some_and(|c| CONNECTION_ERRORS.contains(&c)) {
        return Err(transient(format!(
            "{what}: Fyers reported a connection error on its side ({})",
            said()
        )));
    }
    if invalid_code || status == 401 {
        return Err(ApiError::Invalid {
            broker: Broker::Fyers,
            code,
            message,
        });
    }
    match status {
        200..=299 | 400..=499 => Err(ApiError::Rejected {
            broker: Broker::Fyers,
            status,
            code,
            message,
        }),
        _ => Err(transient(format!("{what}: unexpected HTTP {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, body: &str) -> Result<Value, ApiError> {
        classify(
            "profile",
            status,
            None,
            "application/json",
            body.as_bytes(),
            &DEFAULT_INVALID_CODES,
        )
    }

    fn err(code: i64, message: &str) -> String {
        format!(r#"{{"s":"error","code":{code},"message":"{message}"}}"#)
    }

    #[test]
    fn the_app_id_hash_is_hex_sha256_of_id_colon_secret() {
        // printf '%s' 'AB12CD34EF-100:my_secret' | sha256sum
        let h = app_id_hash("AB12CD34EF-100", &Secret::new("my_secret"));
        assert_eq!(
            h.expose(),
            "6732617b88db26ff03a3356d949dffe96c7441178415179381ff6f72b3f23a7f"
        );
        assert_ne!(
            app_id_hash("AB12CD34EF", &Secret::new("my_secret")).expose(),
            h.expose()
        );
        assert!(has_app_type("AB12CD34EF-100"));
        assert!(!has_app_type("AB12CD34EF"));
        assert!(!has_app_type("AB12CD34EF-"));
        assert!(!has_app_type("-100"));
    }

    #[test]
    fn only_the_listed_codes_and_401_make_a_token_invalid() {
        for code in DEFAULT_INVALID_CODES {
            for status in [400, 401, 403, 200] {
                let e = c(status, &err(code, "Could not authenticate the user")).unwrap_err();
                assert!(
                    matches!(e, ApiError::Invalid { .. }),
                    "{status} {code}: {e:?}"
                );
            }
        }
        assert_eq!(
            c(401, &err(-16, "Could not authenticate the user")).unwrap_err(),
            ApiError::Invalid {
                broker: Broker::Fyers,
                code: Some("-16".into()),
                message: "Could not authenticate the user".into()
            }
        );
        // 401 with Fyers' JSON and another code: still a dead token.
        assert!(matches!(
            c(401, &err(-99, "x")),
            Err(ApiError::Invalid { .. })
        ));
        // Another code with another status: a refusal, not a dead token.
        for (status, code) in [(400, -50), (403, -300), (200, -99), (400, -371)] {
            let e = c(status, &err(code, "Something")).unwrap_err();
            assert!(
                matches!(e, ApiError::Rejected { .. }),
                "{status} {code}: {e:?}"
            );
        }
        // The list is configurable: -16 alone.
        let only = classify(
            "profile",
            400,
            None,
            "application/json",
            err(-8, "x").as_bytes(),
            &[-16],
        );
        assert!(matches!(only, Err(ApiError::Rejected { .. })), "{only:?}");
        let only = classify(
            "profile",
            400,
            None,
            "application/json",
            err(-16, "x").as_bytes(),
            &[-16],
        );
        assert!(matches!(only, Err(ApiError::Invalid { .. })), "{only:?}");
    }

    #[test]
    fn refusals_carry_fyers_code_and_message() {
        let e = c(
            400,
            &err(-371, "Please provide sha256 hash of appId and app secret"),
        )
        .unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Fyers,
                status: 400,
                code: Some("-371".into()),
                message: "Please provide sha256 hash of appId and app secret".into()
            }
        );
        assert!(
            e.to_string()
                .contains("Fyers refused the request (HTTP 400, -371)"),
            "{e}"
        );
        assert!(matches!(
            c(404, r#"{"s":"error"}"#),
            Err(ApiError::Rejected { status: 404, code: None, ref message, .. }) if message == "HTTP 404"
        ));
    }

    #[test]
    fn rate_limits_connection_errors_and_server_errors_are_transient() {
        for (status, body, words) in [
            (
                429,
                err(-353, "API Limit exceeded"),
                "rate limited by Fyers",
            ),
            (
                400,
                err(-353, "API Limit exceeded (perSec)"),
                "rate limited by Fyers",
            ),
            (
                200,
                err(-353, "API Limit exceeded (perMin)"),
                "rate limited by Fyers",
            ),
            (429, err(-1, "Too many"), "rate limited by Fyers"),
            (429, String::new(), "HTTP 429 with an empty answer"),
            (
                400,
                err(-201, "Connection error. Please try again"),
                "connection error",
            ),
            (
                400,
                err(-202, "Connection error. Please try again"),
                "connection error",
            ),
            (
                400,
                err(-204, "Connection error. Please try again"),
                "connection error",
            ),
            (
                500,
                err(-205, "Connection error. Please try again"),
                "server error",
            ),
            (500, err(-1, "Internal"), "Fyers server error"),
            (
                503,
                err(-16, "Could not authenticate the user"),
                "Fyers server error",
            ),
            (502, "<html>Bad gateway</html>".into(), "an HTML page"),
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
            err(-353, "API Limit exceeded").as_bytes(),
            &DEFAULT_INVALID_CODES,
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn answers_that_are_not_fyers_json_are_transient() {
        for (status, content_type, body) in [
            (401, "text/html", "<html><body>Access denied</body></html>"),
            (
                401,
                "application/json",
                "<!DOCTYPE html><title>Blocked</title>",
            ),
            (401, "application/json", ""),
            (200, "application/json", r#"{"s":"ok","data":{"fy_id":"#),
            (200, "application/json", "[1]"),
            (401, "application/json", r#"{"message":"Unauthorized"}"#),
            (200, "text/plain", "OK"),
        ] {
            let e = classify(
                "profile",
                status,
                None,
                content_type,
                body.as_bytes(),
                &DEFAULT_INVALID_CODES,
            )
            .unwrap_err();
            assert!(e.is_transient(), "{status} {body:?}: {e:?}");
            assert!(e.to_string().contains("not Fyers' API"), "{e}");
        }
        let body = vec![b' '; MAX_BODY + 1];
        let e = classify(
            "profile",
            200,
            None,
            "application/json",
            &body,
            &DEFAULT_INVALID_CODES,
        )
        .unwrap_err();
        assert!(e.is_transient());
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
    }

    #[test]
    fn control_characters_and_long_texts_never_reach_a_message() {
        let e = c(400, &err(-50, r"Bad\u001b]0;pwned\u0007 news\n")).unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("Bad]0;pwned news"), "{text}");
        let long = c(400, &err(-50, &"x".repeat(5000))).unwrap_err();
        assert!(long.to_string().chars().count() < 400, "{long}");
    }

    #[test]
    fn success_shapes_and_sessions() {
        let v = c(
            200,
            r#"{"s":"ok","code":200,"message":"","data":{"fy_id":"XY1234"}}"#,
        )
        .unwrap();
        assert_eq!(v["data"]["fy_id"], "XY1234");
        // An "ok" with an error status is not a success.
        assert!(c(400, r#"{"s":"ok","code":200}"#).is_err());
        let s = read_session(&serde_json::json!({"s":"ok","code":200,"message":"",
            "access_token":"eyJaaaa.bbbb.cccc","refresh_token":"eyJrrrr.ssss.tttt"}))
        .unwrap();
        assert_eq!(s.access_token.expose(), "eyJaaaa.bbbb.cccc");
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("aaaa") && !debug.contains("rrrr"),
            "{debug}"
        );
        assert!(
            read_session(&serde_json::json!({"s":"ok","access_token":""}))
                .unwrap_err()
                .is_transient()
        );
    }
}
