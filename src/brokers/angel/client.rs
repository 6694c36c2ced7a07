//! The Angel One SmartAPI client: the TOTP login, the refresh (`generateTokens`), the profile
//! (the check) and the logout.
//!
//! Every answer is classified into one [`ApiError`] by the HTTP status and Angel One's error
//! code, never by the message text ([`classify`]). Both of Angel One's envelopes are read
//! (`status`/`errorcode` and `success`/`errorCode`), inside an HTTP 200 as well as with an
//! error status. `Invalid` only for a code in the configured list (`angel.invalid_codes`);
//! `Transient` for network errors, timeouts, 429, 5xx, `AB1004` and every answer that is not
//! Angel One's JSON (an HTML page, an empty or cut-off body, a body larger than
//! [`MAX_BODY`]); `Rejected` for any other error, with Angel One's code and message. A login
//! or a refresh is never `Invalid`: a refusal there says nothing about the token in the file.
//! The client never retries: the worker holds the one retry layer.

use super::{DEFAULT_INVALID_CODES, DEFAULT_LOCAL_IP, DEFAULT_MAC_ADDRESS, DEFAULT_PUBLIC_IP};
use crate::brokers::Broker;
use crate::brokers::answer::{self, shown};
pub use crate::brokers::answer::{MAX_BODY, REQUEST_TIMEOUT};
pub use crate::brokers::{ApiError, Profile};
pub use crate::http::CONNECT_TIMEOUT;
use crate::secret::Secret;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// The broker's name in what the client says.
const BROKER: &str = "Angel One";

/// `POST`: the TOTP login.
pub const LOGIN_PATH: &str = "rest/auth/angelbroking/user/v1/loginByPassword";
/// `POST`: a new token from the refresh token.
pub const REFRESH_PATH: &str = "rest/auth/angelbroking/jwt/v1/generateTokens";
/// `GET`: the profile, the check.
pub const PROFILE_PATH: &str = "rest/secure/angelbroking/user/v1/getProfile";
/// `POST`: the logout.
pub const LOGOUT_PATH: &str = "rest/secure/angelbroking/user/v1/logout";

/// Angel One's "Something Went Wrong, Please Try After Sometime": transient.
pub const TRY_LATER: &str = "AB1004";

/// The values of the client-address headers every call carries (`angel.client_local_ip`,
/// `angel.client_public_ip`, `angel.mac_address`). What Angel One does with them is not
/// documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHeaders {
    /// `X-ClientLocalIP`.
    pub local_ip: String,
    /// `X-ClientPublicIP`.
    pub public_ip: String,
    /// `X-MACAddress`.
    pub mac_address: String,
}

impl Default for ClientHeaders {
    fn default() -> Self {
        ClientHeaders {
            local_ip: DEFAULT_LOCAL_IP.into(),
            public_ip: DEFAULT_PUBLIC_IP.into(),
            mac_address: DEFAULT_MAC_ADDRESS.into(),
        }
    }
}

/// A session from the login or the refresh. The tokens are [`Secret`]s; `Debug` shows none
/// of them. The feed token (for Angel One's market-data stream) is not kept.
#[derive(Clone)]
pub struct Session {
    /// The access token (`jwtToken`, a JWT whose `exp` says when it dies).
    pub access_token: Secret,
    /// The refresh token, when sent.
    pub refresh_token: Option<Secret>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &self.access_token)
            .finish_non_exhaustive()
    }
}

/// A client for one Angel One API base. Cheap to clone; every client made with
/// [`AngelClient::new`] shares the process's one HTTP client.
#[derive(Debug, Clone)]
pub struct AngelClient {
    http: reqwest::Client,
    base: Url,
    total: Duration,
    invalid_codes: Vec<String>,
    headers: ClientHeaders,
}

impl AngelClient {
    /// A client for `api_base` (`https://apiconnect.angelone.in`, or a simulator) that takes
    /// the codes in `invalid_codes` (empty: [`DEFAULT_INVALID_CODES`]) to mean a dead token,
    /// and sends `headers` as the client's addresses.
    pub fn new(
        api_base: &Url,
        invalid_codes: &[String],
        headers: &ClientHeaders,
    ) -> Result<AngelClient, ApiError> {
        Self::with_timeouts(
            api_base,
            invalid_codes,
            headers,
            CONNECT_TIMEOUT,
            REQUEST_TIMEOUT,
        )
    }

    /// A client with explicit timeouts.
    pub fn with_timeouts(
        api_base: &Url,
        invalid_codes: &[String],
        headers: &ClientHeaders,
        connect: Duration,
        total: Duration,
    ) -> Result<AngelClient, ApiError> {
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
            DEFAULT_INVALID_CODES.map(String::from).to_vec()
        } else {
            invalid_codes.to_vec()
        };
        Ok(AngelClient {
            http,
            base,
            total,
            invalid_codes,
            headers: headers.clone(),
        })
    }

    /// A request to `path` with every header Angel One asks for; `jwt` adds
    /// `Authorization: Bearer <jwt>`.
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        api_key: &str,
        jwt: Option<&Secret>,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        let url = self
            .base
            .join(path)
            .expect("static API paths join a base URL");
        let value = |name: &str, text: &str, sensitive: bool| {
            let mut v = HeaderValue::from_str(text).map_err(|_| ApiError::Rejected {
                broker: Broker::Angel,
                status: 0,
                code: None,
                message: format!(
                    "the {name} contains characters no HTTP header can carry; check it in the \
                     configuration"
                ),
            })?;
            v.set_sensitive(sensitive);
            Ok::<_, ApiError>(v)
        };
        let h = &self.headers;
        let mut req = self
            .http
            .request(method, url)
            .timeout(self.total)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("X-UserType", "USER")
            .header("X-SourceID", "WEB")
            .header(
                HeaderName::from_static("x-clientlocalip"),
                value("angel.client_local_ip", &h.local_ip, false)?,
            )
            .header(
                HeaderName::from_static("x-clientpublicip"),
                value("angel.client_public_ip", &h.public_ip, false)?,
            )
            .header(
                HeaderName::from_static("x-macaddress"),
                value("angel.mac_address", &h.mac_address, false)?,
            )
            .header(
                HeaderName::from_static("x-privatekey"),
                value("angel.api_key", api_key, true)?,
            );
        if let Some(jwt) = jwt {
            let bearer =
                value("stored token", &format!("Bearer {}", jwt.expose()), true).map_err(|_| {
                    ApiError::Invalid {
                        broker: Broker::Angel,
                        code: None,
                        message: "the stored token contains characters no HTTP header can carry"
                            .into(),
                    }
                })?;
            req = req.header(AUTHORIZATION, bearer);
        }
        Ok(req)
    }

    /// Log in with the client code, the PIN and the TOTP code of this moment:
    /// `POST loginByPassword`. A refusal (a wrong PIN or code) is `Rejected`: never repeat it
    /// blindly, as repeated wrong PINs lock the account.
    pub async fn login(
        &self,
        api_key: &str,
        client_code: &str,
        pin: &Secret,
        totp: &Secret,
    ) -> Result<Session, ApiError> {
        let body = serde_json::json!({
            "clientcode": client_code,
            "password": pin.expose(),
            "totp": totp.expose(),
        });
        let req = self
            .request(reqwest::Method::POST, LOGIN_PATH, api_key, None)?
            .body(body.to_string());
        let answer = self.send_refusable(req, "login").await?;
        read_session(&answer, "login")
    }

    /// A new token from the refresh token: `POST generateTokens` with the current token in
    /// `Authorization`. A refusal (`AB8050`/`AB8051`: the refresh token is invalid or
    /// expired) is `Rejected`.
    pub async fn generate_tokens(
        &self,
        api_key: &str,
        current: &Secret,
        refresh_token: &Secret,
    ) -> Result<Session, ApiError> {
        let body = serde_json::json!({ "refreshToken": refresh_token.expose() });
        let req = self
            .request(reqwest::Method::POST, REFRESH_PATH, api_key, Some(current))?
            .body(body.to_string());
        let answer = self.send_refusable(req, "token refresh").await?;
        read_session(&answer, "token refresh")
    }

    /// Check a token: `GET getProfile`.
    pub async fn profile(&self, api_key: &str, token: &Secret) -> Result<Profile, ApiError> {
        let req = self.request(reqwest::Method::GET, PROFILE_PATH, api_key, Some(token))?;
        let body = self.send(req, "profile").await?;
        let Some(data) = body.get("data").filter(|d| d.is_object()) else {
            return Err(ApiError::Transient {
                reason: "profile: Angel One's answer has no usable `data` object (not the \
                         API's answer)"
                    .into(),
                retry_after: None,
            });
        };
        Ok(Profile {
            user_id: text(data, "clientcode"),
            user_name: text(data, "name"),
            email: text(data, "email"),
            is_active: None,
        })
    }

    /// End the session: `POST logout`. The token stops working.
    pub async fn logout(
        &self,
        api_key: &str,
        client_code: &str,
        token: &Secret,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({ "clientcode": client_code });
        let req = self
            .request(reqwest::Method::POST, LOGOUT_PATH, api_key, Some(token))?
            .body(body.to_string());
        self.send(req, "logout").await.map(|_| ())
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, ApiError> {
        self.send_reading(req, what, &self.invalid_codes).await
    }

    /// A login or a refresh: no code marks a token dead there, so a "dead token" code is a
    /// refusal of the request, with the status it came with; it says nothing of the token in
    /// the file.
    async fn send_refusable(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Value, ApiError> {
        self.send_reading(req, what, &[]).await
    }

    async fn send_reading(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        invalid_codes: &[String],
    ) -> Result<Value, ApiError> {
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
            invalid_codes,
        )
    }
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

/// The session in a successful login's or refresh's answer: `data.jwtToken` and
/// `data.refreshToken`.
fn read_session(body: &Value, what: &str) -> Result<Session, ApiError> {
    let data = body.get("data").unwrap_or(&Value::Null);
    let Some(access_token) = secret(data, "jwtToken") else {
        return Err(ApiError::Transient {
            reason: format!(
                "{what}: Angel One's answer has no data.jwtToken (not the API's answer)"
            ),
            retry_after: None,
        });
    };
    Ok(Session {
        access_token,
        refresh_token: secret(data, "refreshToken"),
    })
}

/// Angel One's envelope: `status` (with `errorcode`) or `success` (with `errorCode`).
fn envelope(json: &Value) -> Option<(bool, Option<String>)> {
    let flag = json
        .get("status")
        .and_then(Value::as_bool)
        .or_else(|| json.get("success").and_then(Value::as_bool))?;
    let code = ["errorcode", "errorCode"]
        .iter()
        .find_map(|k| json.get(*k).and_then(Value::as_str))
        .map(shown)
        .filter(|c| !c.is_empty());
    Some((flag, code))
}

/// Classify an answer. Pure, so every shape is tested without a network. `invalid_codes`
/// are the Angel One codes that mean a dead token. `Ok` is the whole JSON answer of a
/// success.
pub fn classify(
    what: &str,
    status: u16,
    retry_after: Option<Duration>,
    content_type: &str,
    body: &[u8],
    invalid_codes: &[String],
) -> Result<Value, ApiError> {
    let transient = |reason: String| ApiError::Transient {
        reason,
        retry_after,
    };
    if body.len() > MAX_BODY {
        return Err(answer::too_large(BROKER, what, status, retry_after));
    }
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|json| envelope(&json).map(|e| (json, e)));
    let Some((json, (ok, code))) = parsed else {
        if status == 429 {
            return Err(transient(answer::rate_limited(
                "Angel One",
                what,
                "HTTP 429",
            )));
        }
        return Err(answer::not_the_api(
            BROKER,
            what,
            status,
            content_type,
            body,
            retry_after,
        ));
    };
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
    if (200..=299).contains(&status) && ok {
        return Ok(json);
    }
    if status == 429 {
        return Err(transient(answer::rate_limited("Angel One", what, &said())));
    }
    if (500..=599).contains(&status) {
        return Err(transient(format!(
            "{what}: Angel One server error (HTTP {status}, {})",
            said()
        )));
    }
    if code.as_deref() == Some(TRY_LATER) {
        return Err(transient(format!(
            "{what}: Angel One asked to try again later ({})",
            said()
        )));
    }
    if code
        .as_deref()
        .is_some_and(|c| invalid_codes.iter().any(|i| i.eq_ignore_ascii_case(c)))
    {
        return Err(ApiError::Invalid {
            broker: Broker::Angel,
            code,
            message,
        });
    }
    match status {
        200..=299 | 400..=499 => Err(ApiError::Rejected {
            broker: Broker::Angel,
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

    fn codes() -> Vec<String> {
        DEFAULT_INVALID_CODES.map(String::from).to_vec()
    }

    fn c(status: u16, body: &str) -> Result<Value, ApiError> {
        classify(
            "profile",
            status,
            None,
            "application/json",
            body.as_bytes(),
            &codes(),
        )
    }

    /// The documented envelope: `status` and `errorcode`.
    fn lower(code: &str, message: &str) -> String {
        format!(r#"{{"status":false,"message":"{message}","errorcode":"{code}","data":null}}"#)
    }

    /// The envelope seen for token errors: `success` and `errorCode`.
    fn camel(code: &str, message: &str) -> String {
        format!(r#"{{"success":false,"message":"{message}","errorCode":"{code}","data":""}}"#)
    }

    #[test]
    fn only_the_listed_codes_make_a_token_invalid_in_either_envelope_and_status() {
        for code in DEFAULT_INVALID_CODES {
            for body in [lower(code, "Invalid Token"), camel(code, "Invalid Token")] {
                for status in [200, 400, 401, 403] {
                    let e = c(status, &body).unwrap_err();
                    assert_eq!(
                        e,
                        ApiError::Invalid {
                            broker: Broker::Angel,
                            code: Some(code.into()),
                            message: "Invalid Token".into()
                        },
                        "{status} {body}"
                    );
                }
            }
        }
        // The quirk: a dead token inside an HTTP 200.
        let e = c(
            200,
            r#"{"success":false,"message":"Invalid Token","errorCode":"AG8001","data":""}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Angel One rejected the token (AG8001): Invalid Token"
        );
        // 401 or 403 with Angel One's envelope and another code: a refusal, not a dead token.
        for (status, body) in [
            (401, lower("AB1007", "Access denied")),
            (403, camel("AB2000", "Forbidden")),
            (200, lower("AB1050", "Invalid totp")),
            (400, lower("AB8050", "Invalid refresh token")),
            (400, camel("AB8051", "Refresh token expired")),
            (200, lower("", "Something odd")),
        ] {
            let e = c(status, &body).unwrap_err();
            assert!(
                matches!(e, ApiError::Rejected { .. }),
                "{status} {body}: {e:?}"
            );
        }
        // The list is configurable.
        let only = |code: &str| {
            classify(
                "profile",
                200,
                None,
                "application/json",
                camel(code, "x").as_bytes(),
                &["AG9999".to_string()],
            )
        };
        assert!(matches!(only("AG8001"), Err(ApiError::Rejected { .. })));
        assert!(matches!(only("AG9999"), Err(ApiError::Invalid { .. })));
    }

    #[test]
    fn refusals_carry_angel_ones_code_and_message() {
        let e = c(200, &lower("AB1050", "Invalid totp")).unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Angel,
                status: 200,
                code: Some("AB1050".into()),
                message: "Invalid totp".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "Angel One refused the request (HTTP 200, AB1050): Invalid totp"
        );
        assert!(matches!(
            c(404, r#"{"status":false}"#),
            Err(ApiError::Rejected { status: 404, code: None, ref message, .. }) if message == "HTTP 404"
        ));
    }

    #[test]
    fn try_later_rate_limits_and_server_errors_are_transient() {
        for (status, body, words) in [
            (
                200,
                lower("AB1004", "Something Went Wrong, Please Try After Sometime"),
                "try again later",
            ),
            (
                400,
                camel("AB1004", "Something Went Wrong"),
                "try again later",
            ),
            (429, lower("AB9999", "Too many requests"), "rate limited"),
            (429, "Access denied: rate".to_string(), "rate limited"),
            (429, String::new(), "rate limited"),
            (500, lower("AB1000", "Internal"), "server error"),
            (503, camel("AG8001", "Invalid Token"), "server error"),
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
            lower("AB9999", "x").as_bytes(),
            &codes(),
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn answers_that_are_not_angel_ones_json_are_transient() {
        for (status, content_type, body) in [
            (401, "text/html", "<html><body>Access denied</body></html>"),
            (
                200,
                "application/json",
                "<!DOCTYPE html><title>Blocked</title>",
            ),
            (200, "application/json", ""),
            (401, "application/json", ""),
            (
                200,
                "application/json",
                r#"{"status":true,"data":{"clientcode":"#,
            ),
            (200, "application/json", "[1]"),
            (401, "application/json", r#"{"message":"Unauthorized"}"#),
            (
                403,
                "application/json",
                r#"{"status":"false","errorcode":"AG8001"}"#,
            ),
            (200, "text/plain", "OK"),
        ] {
            let e = classify(
                "profile",
                status,
                None,
                content_type,
                body.as_bytes(),
                &codes(),
            )
            .unwrap_err();
            assert!(e.is_transient(), "{status} {body:?}: {e:?}");
            assert!(e.to_string().contains("not Angel One's API"), "{e}");
        }
        let body = vec![b' '; MAX_BODY + 1];
        let e = classify("profile", 200, None, "application/json", &body, &codes()).unwrap_err();
        assert!(e.is_transient());
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
    }

    #[test]
    fn control_characters_and_long_texts_never_reach_a_message() {
        let e = c(400, &lower("AB\\u001b1", r"Bad\u001b]0;pwned\u0007 news\n")).unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("Bad]0;pwned news"), "{text}");
        let long = c(400, &lower("AB1", &"x".repeat(5000))).unwrap_err();
        assert!(long.to_string().chars().count() < 400, "{long}");
    }

    #[test]
    fn success_shapes_and_sessions() {
        let v = c(
            200,
            r#"{"status":true,"message":"SUCCESS","errorcode":"","data":{"clientcode":"A1"}}"#,
        )
        .unwrap();
        assert_eq!(v["data"]["clientcode"], "A1");
        assert!(c(200, r#"{"success":true,"data":{}}"#).is_ok());
        // A success flag with an error status is not a success.
        assert!(c(400, r#"{"status":true,"data":{}}"#).is_err());
        let s = read_session(
            &serde_json::json!({"status":true,"data":{"jwtToken":"eyJaaaa.bbbb.cccc",
                "refreshToken":"eyJrrrr.ssss.tttt","feedToken":"ffff"}}),
            "login",
        )
        .unwrap();
        assert_eq!(s.access_token.expose(), "eyJaaaa.bbbb.cccc");
        assert_eq!(
            s.refresh_token.as_ref().map(Secret::expose),
            Some("eyJrrrr.ssss.tttt")
        );
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("aaaa") && !debug.contains("rrrr"),
            "{debug}"
        );
        // `status: true` without a token: not the API's answer, worth another try.
        for body in [
            serde_json::json!({"status":true,"message":"SUCCESS","data":null}),
            serde_json::json!({"status":true,"data":{"jwtToken":""}}),
            serde_json::json!({"status":true}),
        ] {
            let e = read_session(&body, "login").unwrap_err();
            assert!(e.is_transient(), "{body}");
            assert!(e.to_string().contains("not the API's answer"), "{e}");
        }
    }

    #[test]
    fn with_no_dead_token_codes_as_at_a_login_every_refusal_is_a_refusal() {
        let at_login = |status: u16, body: &str| {
            classify(
                "login",
                status,
                None,
                "application/json",
                body.as_bytes(),
                &[],
            )
        };
        let e = at_login(401, &camel("AG8001", "Invalid Token")).unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Angel,
                status: 401,
                code: Some("AG8001".into()),
                message: "Invalid Token".into()
            }
        );
        assert!(at_login(500, "").unwrap_err().is_transient());
        assert!(
            at_login(200, &lower("AB1004", "x"))
                .unwrap_err()
                .is_transient()
        );
    }
}
