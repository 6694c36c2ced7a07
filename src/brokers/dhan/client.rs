//! The DhanHQ v2 client: the consent login (generate-consent, consumeApp-consent), the PIN
//! and TOTP login (generateAccessToken), RenewToken, and the profile (the check).
//!
//! Every answer is classified into one [`ApiError`] by Dhan's `errorCode` and the HTTP
//! status, never by the message text ([`classify`]): `Invalid` only for a code in
//! `dhan.invalid_codes`; `Transient` for network errors, timeouts, 429, `DH-904` and `805`
//! (rate limits), `DH-908` and `DH-909` (Dhan's own trouble), 5xx and every answer that is
//! not Dhan's JSON (an HTML page, an empty or cut-off body, a body larger than
//! [`MAX_BODY`]); `Rejected` for any other error, with Dhan's code and message. A login or a
//! renewal is never `Invalid`: its refusal says nothing of the token in the file. The client
//! never retries: the worker holds the one retry layer.

use super::{DEFAULT_INVALID_CODES, OWN_TROUBLE_CODES, RATE_LIMIT_CODES, parse_expiry_time};
use crate::brokers::Broker;
use crate::brokers::answer::{self, shown};
pub use crate::brokers::answer::{MAX_BODY, REQUEST_TIMEOUT};
pub use crate::brokers::{ApiError, Profile};
pub use crate::http::CONNECT_TIMEOUT;
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, HeaderValue};
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// The broker's name in what the client says.
const BROKER: &str = "Dhan";

/// A session from a login or a renewal. The token is a [`Secret`]; `Debug` shows none of it.
#[derive(Clone)]
pub struct DhanSession {
    /// The access token.
    pub access_token: Secret,
    /// `dhanClientId`: whose token it is, when Dhan says.
    pub client_id: Option<String>,
    /// `dhanClientName`.
    pub client_name: Option<String>,
    /// `expiryTime`, read as IST when it names no zone.
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for DhanSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhanSession")
            .field("access_token", &self.access_token)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The app's key and secret, sent as the `app_id` and `app_secret` headers of the consent
/// calls.
#[derive(Debug, Clone, Copy)]
pub struct DhanApp<'a> {
    /// `dhan.api_key`.
    pub app_id: &'a str,
    /// `dhan.api_secret`.
    pub app_secret: &'a Secret,
}

/// A client for one Dhan API base. Cheap to clone; every client made with
/// [`DhanClient::new`] shares the process's one HTTP client.
#[derive(Debug, Clone)]
pub struct DhanClient {
    http: reqwest::Client,
    base: Url,
    total: Duration,
    invalid_codes: Vec<String>,
}

impl DhanClient {
    /// A client for `api_base` (`https://api.dhan.co`, or a simulator) that takes the codes
    /// in `invalid_codes` (empty: [`DEFAULT_INVALID_CODES`]) to mean a dead token.
    pub fn new(api_base: &Url, invalid_codes: &[String]) -> Result<DhanClient, ApiError> {
        Self::with_timeouts(api_base, invalid_codes, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    /// A client with explicit timeouts.
    pub fn with_timeouts(
        api_base: &Url,
        invalid_codes: &[String],
        connect: Duration,
        total: Duration,
    ) -> Result<DhanClient, ApiError> {
        let http = if connect == CONNECT_TIMEOUT {
            crate::http::shared()
        } else {
            crate::http::build(connect)
        }
        .map_err(|reason| ApiError::Transient {
            reason,
            retry_after: None,
        })?;
        let invalid_codes = if invalid_codes.is_empty() {
            DEFAULT_INVALID_CODES.map(String::from).to_vec()
        } else {
            invalid_codes.to_vec()
        };
        Ok(DhanClient {
            http,
            base: with_slash(api_base),
            total,
            invalid_codes,
        })
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(ACCEPT, "application/json")
            .timeout(self.total)
    }

    /// The first step of the consent login: `POST {login_base}/app/generate-consent
    /// ?client_id=<dhanClientId>`; the answer's `consentAppId` names the login page.
    pub async fn generate_consent(
        &self,
        login_base: &Url,
        client_id: &str,
        app: DhanApp<'_>,
    ) -> Result<String, ApiError> {
        let mut url = join(login_base, "app/generate-consent");
        url.query_pairs_mut().append_pair("client_id", client_id);
        let req = self.request(reqwest::Method::POST, url);
        let req = app_headers(req, app)?;
        let body = self.send_at_login(req, "login consent").await?;
        match body.get("consentAppId").and_then(text_of) {
            Some(id) if id.len() <= 512 => Ok(id),
            _ => Err(ApiError::Transient {
                reason: "login consent: Dhan's answer has no consentAppId".into(),
                retry_after: None,
            }),
        }
    }

    /// The last step of the consent login: `GET {login_base}/app/consumeApp-consent?tokenId=…`.
    /// A tokenId is single-use: never call this twice with the same one.
    pub async fn consume_consent(
        &self,
        login_base: &Url,
        token_id: &Secret,
        app: DhanApp<'_>,
    ) -> Result<DhanSession, ApiError> {
        let mut url = join(login_base, "app/consumeApp-consent");
        url.query_pairs_mut()
            .append_pair("tokenId", token_id.expose());
        let req = self.request(reqwest::Method::GET, url);
        let req = app_headers(req, app)?;
        let body = self.send_at_login(req, "login consent").await?;
        read_session(&body, "login consent")
    }

    /// The headless login: `POST {login_base}/app/generateAccessToken?dhanClientId=…&pin=…
    /// &totp=…`. The PIN and the code travel in the query string: no error, log or message
    /// ever carries the address.
    pub async fn generate_access_token(
        &self,
        login_base: &Url,
        client_id: &str,
        pin: &Secret,
        totp: &Secret,
    ) -> Result<DhanSession, ApiError> {
        let mut url = join(login_base, "app/generateAccessToken");
        url.query_pairs_mut()
            .append_pair("dhanClientId", client_id)
            .append_pair("pin", pin.expose())
            .append_pair("totp", totp.expose());
        let req = self.request(reqwest::Method::POST, url);
        let body = self.send_at_login(req, "PIN and TOTP login").await?;
        read_session(&body, "PIN and TOTP login")
    }

    /// A new token for a live one: `GET {api_base}/v2/RenewToken`. Dhan ends the old token.
    pub async fn renew_token(
        &self,
        client_id: &str,
        token: &Secret,
    ) -> Result<DhanSession, ApiError> {
        let req = self.request(reqwest::Method::GET, join(&self.base, "v2/RenewToken"));
        let req = req
            .header(
                "access-token",
                sensitive(token.expose(), "the stored token")?,
            )
            .header("dhanClientId", plain(client_id, "dhan.client_id")?);
        let body = self.send_at_login(req, "token renewal").await?;
        read_session(&body, "token renewal")
    }

    /// Check a token: `GET {api_base}/v2/profile`; `client_id` (`dhan.client_id`) is sent as
    /// `client-id` when set.
    pub async fn profile(&self, client_id: &str, token: &Secret) -> Result<Profile, ApiError> {
        let mut req = self
            .request(reqwest::Method::GET, join(&self.base, "v2/profile"))
            .header(
                "access-token",
                sensitive(token.expose(), "the stored token")?,
            );
        if !client_id.is_empty() {
            req = req.header("client-id", plain(client_id, "dhan.client_id")?);
        }
        let body = self.send(req, "profile").await?;
        Ok(Profile {
            user_id: body
                .get("dhanClientId")
                .and_then(text_of)
                .map(|s| shown(&s)),
            user_name: body
                .get("dhanClientName")
                .and_then(text_of)
                .map(|s| shown(&s)),
            email: None,
            is_active: None,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, ApiError> {
        self.send_judged(req, what, &self.invalid_codes).await
    }

    /// A login's or a renewal's call: a token-shaped refusal there is the login's, not the
    /// stored token's, so no code makes it `Invalid`.
    async fn send_at_login(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<Value, ApiError> {
        self.send_judged(req, what, &[]).await
    }

    async fn send_judged(
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

/// `base` with a trailing slash, so that paths join under it.
fn with_slash(base: &Url) -> Url {
    let mut base = base.clone();
    base.set_query(None);
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base
}

fn join(base: &Url, path: &str) -> Url {
    with_slash(base)
        .join(path)
        .expect("static API paths join a base URL")
}

/// The `app_id` and `app_secret` headers (the secret marked sensitive).
fn app_headers(
    req: reqwest::RequestBuilder,
    app: DhanApp<'_>,
) -> Result<reqwest::RequestBuilder, ApiError> {
    Ok(req
        .header("app_id", plain(app.app_id, "dhan.api_key")?)
        .header(
            "app_secret",
            sensitive(app.app_secret.expose(), "dhan.api_secret")?,
        ))
}

/// A header value, or a refusal to send (never read as a dead token).
fn plain(value: &str, what: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(value.trim()).map_err(|_| ApiError::Rejected {
        broker: Broker::Dhan,
        status: 0,
        code: None,
        message: format!("{what} contains characters no HTTP header can carry; correct it"),
    })
}

fn sensitive(value: &str, what: &str) -> Result<HeaderValue, ApiError> {
    let mut v = plain(value, what)?;
    v.set_sensitive(true);
    Ok(v)
}

/// A string, or a number written as one (Dhan's ids and codes come either way).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The session in a login's or a renewal's answer: `accessToken` (or `token`), `expiryTime`,
/// `dhanClientId`, `dhanClientName`; Dhan sometimes wraps them in `data`.
fn read_session(body: &Value, what: &str) -> Result<DhanSession, ApiError> {
    let body = match body.get("data") {
        Some(d) if d.is_object() && body.get("accessToken").is_none() => d,
        _ => body,
    };
    let token = ["accessToken", "token", "access_token"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(ApiError::Transient {
            reason: format!("{what}: Dhan's answer has no access token"),
            retry_after: None,
        });
    };
    let expires_at = match body.get("expiryTime") {
        Some(Value::String(s)) => parse_expiry_time(s),
        Some(Value::Number(n)) => parse_expiry_time(&n.to_string()),
        _ => None,
    };
    Ok(DhanSession {
        access_token: Secret::new(token),
        client_id: body
            .get("dhanClientId")
            .and_then(text_of)
            .map(|s| shown(&s)),
        client_name: body
            .get("dhanClientName")
            .and_then(text_of)
            .map(|s| shown(&s)),
        expires_at,
    })
}

/// Whether `code` is one of `list` (case and spaces ignored).
fn listed(code: &str, list: &[impl AsRef<str>]) -> bool {
    list.iter()
        .any(|c| c.as_ref().trim().eq_ignore_ascii_case(code.trim()))
}

/// Classify an answer. Pure, so every shape is tested without a network. `invalid_codes`
/// are the Dhan codes that mean a dead token. `Ok` is the whole JSON answer of a success.
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
    let parsed: Option<Value> = serde_json::from_slice(body)
        .ok()
        .filter(|v: &Value| v.is_object());
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
    let code = json
        .get("errorCode")
        .and_then(text_of)
        .map(|c| shown(&c))
        .filter(|c| !c.is_empty());
    let said_status = json.get("status").and_then(Value::as_str).map(str::trim);
    let failed = said_status.is_some_and(|s| {
        ["failure", "failed", "error", "fail"]
            .iter()
            .any(|f| s.eq_ignore_ascii_case(f))
    });
    if (200..=299).contains(&status) && code.is_none() && !failed {
        return Ok(json);
    }
    let message = ["errorMessage", "message", "remarks", "errorType"]
        .iter()
        .find_map(|k| json.get(*k).and_then(Value::as_str))
        .map(shown)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let said = || match &code {
        Some(c) => format!("{c}: {message}"),
        None => message.clone(),
    };
    let code_in = |list: &[&str]| code.as_deref().is_some_and(|c| listed(c, list));
    if status == 429 || code_in(&RATE_LIMIT_CODES) {
        return Err(transient(answer::rate_limited("Dhan", what, &said())));
    }
    if (500..=599).contains(&status) {
        return Err(transient(format!(
            "{what}: Dhan server error (HTTP {status}, {})",
            said()
        )));
    }
    if code_in(&OWN_TROUBLE_CODES) {
        return Err(transient(format!(
            "{what}: Dhan reported trouble on its side ({})",
            said()
        )));
    }
    if code.as_deref().is_some_and(|c| listed(c, invalid_codes)) {
        return Err(ApiError::Invalid {
            broker: Broker::Dhan,
            code,
            message,
        });
    }
    match status {
        200..=299 | 400..=499 => Err(ApiError::Rejected {
            broker: Broker::Dhan,
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

    fn err(code: &str, message: &str) -> String {
        format!(
            r#"{{"errorType":"Invalid_Authentication","errorCode":"{code}","errorMessage":"{message}"}}"#
        )
    }

    #[test]
    fn only_the_listed_codes_make_a_token_invalid() {
        for code in DEFAULT_INVALID_CODES {
            for status in [400, 401, 403, 200] {
                let e = c(
                    status,
                    &err(
                        code,
                        "Client ID or user generated access token is invalid or expired",
                    ),
                )
                .unwrap_err();
                assert!(
                    matches!(e, ApiError::Invalid { .. }),
                    "{status} {code}: {e:?}"
                );
            }
        }
        assert_eq!(
            c(401, &err("DH-901", "invalid or expired")).unwrap_err(),
            ApiError::Invalid {
                broker: Broker::Dhan,
                code: Some("DH-901".into()),
                message: "invalid or expired".into()
            }
        );
        // A number for a code is read like its text.
        assert!(matches!(
            c(401, r#"{"errorCode":807,"errorMessage":"expired"}"#),
            Err(ApiError::Invalid { .. })
        ));
        // 401 with another code: a refusal, not a dead token.
        for (status, code) in [(401, "DH-902"), (400, "DH-905"), (403, "DH-906")] {
            let e = c(status, &err(code, "Something")).unwrap_err();
            assert!(
                matches!(e, ApiError::Rejected { .. }),
                "{status} {code}: {e:?}"
            );
        }
        // The list is configurable: DH-906 alone.
        let only = |code: &str| {
            classify(
                "profile",
                401,
                None,
                "application/json",
                err(code, "x").as_bytes(),
                &["dh-906".to_string()],
            )
        };
        assert!(matches!(only("DH-901"), Err(ApiError::Rejected { .. })));
        assert!(matches!(only("DH-906"), Err(ApiError::Invalid { .. })));
    }

    #[test]
    fn refusals_carry_dhans_code_and_message() {
        let e = c(400, &err("DH-905", "Missing required fields")).unwrap_err();
        assert_eq!(
            e,
            ApiError::Rejected {
                broker: Broker::Dhan,
                status: 400,
                code: Some("DH-905".into()),
                message: "Missing required fields".into()
            }
        );
        assert!(
            e.to_string()
                .contains("Dhan refused the request (HTTP 400, DH-905): Missing required fields"),
            "{e}"
        );
        assert!(matches!(
            c(404, r#"{"status":"error"}"#),
            Err(ApiError::Rejected { status: 404, code: None, ref message, .. }) if message == "HTTP 404"
        ));
        // A 200 that says it failed is no success.
        assert!(matches!(
            c(200, r#"{"status":"failed","message":"Invalid app"}"#),
            Err(ApiError::Rejected { status: 200, ref message, .. }) if message == "Invalid app"
        ));
        assert!(matches!(
            c(200, &err("DH-905", "x")),
            Err(ApiError::Rejected { .. })
        ));
    }

    #[test]
    fn rate_limits_dhans_trouble_and_server_errors_are_transient() {
        for (status, body, words) in [
            (
                429,
                err("DH-904", "Too many requests"),
                "rate limited by Dhan",
            ),
            (
                400,
                err("DH-904", "Too many requests"),
                "rate limited by Dhan",
            ),
            (400, err("805", "Too many requests"), "rate limited by Dhan"),
            (429, err("DH-901", "x"), "rate limited by Dhan"),
            (429, String::new(), "HTTP 429 with an empty answer"),
            (
                400,
                err("DH-908", "Internal server error"),
                "trouble on its side",
            ),
            (400, err("DH-909", "Network error"), "trouble on its side"),
            (500, err("DH-908", "Internal"), "Dhan server error"),
            (503, err("DH-901", "x"), "Dhan server error"),
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
            err("DH-904", "x").as_bytes(),
            &codes(),
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn answers_that_are_not_dhans_json_are_transient() {
        for (status, content_type, body) in [
            (401, "text/html", "<html><body>Access denied</body></html>"),
            (
                401,
                "application/json",
                "<!DOCTYPE html><title>Blocked</title>",
            ),
            (401, "application/json", ""),
            (200, "application/json", r#"{"dhanClientId":"#),
            (200, "application/json", "[1]"),
            (200, "application/json", "\"ok\""),
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
            assert!(e.to_string().contains("not Dhan's API"), "{e}");
        }
        let body = vec![b' '; MAX_BODY + 1];
        let e = classify("profile", 200, None, "application/json", &body, &codes()).unwrap_err();
        assert!(e.is_transient());
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
    }

    #[test]
    fn control_characters_and_long_texts_never_reach_a_message() {
        let e = c(400, &err("DH-905", r"Bad\u001b]0;pwned\u0007 news\n")).unwrap_err();
        let text = e.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("Bad]0;pwned news"), "{text}");
        let long = c(400, &err("DH-905", &"x".repeat(5000))).unwrap_err();
        assert!(long.to_string().chars().count() < 400, "{long}");
        let long_code = c(400, &err(&"C".repeat(5000), "m")).unwrap_err();
        assert!(long_code.to_string().chars().count() < 700, "{long_code}");
    }

    #[test]
    fn a_refusal_at_a_login_is_never_a_dead_token() {
        // A login's or a renewal's answers are judged with no dead-token codes.
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
        for status in [400, 401] {
            let e = at_login(status, &err("DH-901", "invalid")).unwrap_err();
            assert!(
                matches!(&e, ApiError::Rejected { status: s, code: Some(c), .. } if *s == status && c == "DH-901"),
                "{e:?}"
            );
        }
        assert!(
            at_login(500, &err("DH-908", "x"))
                .unwrap_err()
                .is_transient()
        );
        assert!(
            at_login(429, &err("DH-904", "x"))
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn sessions_in_every_shape() {
        let s = read_session(
            &serde_json::json!({"dhanClientId":"1000000001","dhanClientName":"Jane",
                "dhanClientUcc":"ABCD1","givenPowerOfAttorney":false,
                "accessToken":"eyJaaaa.bbbb.cccc","expiryTime":"2025-09-23T12:37:23"}),
            "login",
        )
        .unwrap();
        assert_eq!(s.access_token.expose(), "eyJaaaa.bbbb.cccc");
        assert_eq!(s.client_id.as_deref(), Some("1000000001"));
        assert_eq!(s.client_name.as_deref(), Some("Jane"));
        assert_eq!(
            s.expires_at,
            super::super::parse_expiry_time("2025-09-23T12:37:23")
        );
        let debug = format!("{s:?}");
        assert!(!debug.contains("aaaa"), "{debug}");
        // RenewToken's other possible shapes: `token`, a numeric id, inside `data`.
        let s = read_session(
            &serde_json::json!({"token":"tok-2","dhanClientId":1000000001}),
            "renewal",
        )
        .unwrap();
        assert_eq!(s.access_token.expose(), "tok-2");
        assert_eq!(s.client_id.as_deref(), Some("1000000001"));
        assert_eq!(s.expires_at, None);
        let s = read_session(
            &serde_json::json!({"status":"success","data":{"accessToken":"tok-3",
                "expiryTime":"2025-09-23T07:07:23Z"}}),
            "renewal",
        )
        .unwrap();
        assert_eq!(s.access_token.expose(), "tok-3");
        assert!(s.expires_at.is_some());
        for empty in [
            serde_json::json!({"accessToken":""}),
            serde_json::json!({"status":"success"}),
        ] {
            assert!(read_session(&empty, "login").unwrap_err().is_transient());
        }
    }

    #[test]
    fn headers_that_cannot_be_sent_are_refusals() {
        let e = plain("bad\nvalue", "dhan.client_id").unwrap_err();
        assert!(matches!(e, ApiError::Rejected { status: 0, .. }), "{e:?}");
        assert!(e.to_string().contains("dhan.client_id"), "{e}");
        assert!(!e.to_string().contains("bad"), "{e}");
    }
}
