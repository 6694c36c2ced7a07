//! Reading and writing token files.
//!
//! Accepted on read: tokenwatch's format 1; Upstox's flat token-exchange response (as the
//! older Python manager saved it, with `created_at`); a legacy `{"access_token", "expires_at"}`
//! with `expires_at` as epoch seconds, epoch milliseconds or RFC 3339; and a file holding
//! only the raw token. Written: format 1 only.

use super::expiry::{
    ExpiryEvidence, decide_expiry, decode_jwt_claims, from_epoch_seconds, plausible, to_ist,
};
use super::{Token, TokenFileFormat};
use crate::brokers::Broker;
use crate::printable::printable;
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Token files larger than this are not token files.
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file exists but is not a token file tokenwatch understands.
    #[error("unreadable token file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never quotes the token).
        reason: String,
    },
    /// The file holds a token of another broker than the account's.
    #[error(
        "token file {} holds a token for {}, but this account is set to {} (broker: {}); it was \
         left as it is: give this account its own token.path, or set its broker to {}",
        path.display(), file.display_name(), account.display_name(), account.as_str(), file.as_str()
    )]
    OtherBroker {
        /// The file.
        path: PathBuf,
        /// The broker of the token in the file.
        file: Broker,
        /// The account's broker.
        account: Broker,
    },
    /// The file could not be read at all (permissions, I/O).
    #[error("cannot read token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Read and parse a token file. `Ok(None)` when the file does not exist. A file that names
/// no broker is read as Upstox's.
pub fn read_token_file(path: &Path) -> Result<Option<Token>, TokenFileError> {
    read_token_file_as(path, Broker::Upstox)
}

/// [`read_token_file`] for an account of `broker`: a file that names no broker (a raw token,
/// or JSON written by another tool) is read as this broker's.
pub fn read_token_file_as(path: &Path, broker: Broker) -> Result<Option<Token>, TokenFileError> {
    match read_token_bytes_as(path, broker)? {
        None => Ok(None),
        Some(RawTokenFile {
            parsed: Ok(token), ..
        }) => Ok(Some(token)),
        Some(RawTokenFile {
            parsed: Err(reason),
            ..
        }) => Err(TokenFileError::Unreadable {
            path: path.to_owned(),
            reason,
        }),
    }
}

/// Read the token file of an account of `broker`: a file holding another broker's token is
/// refused ([`TokenFileError::OtherBroker`]) and left as it is. `Ok(None)` when missing.
pub fn read_account_token(path: &Path, broker: Broker) -> Result<Option<Token>, TokenFileError> {
    match read_token_file_as(path, broker)? {
        Some(t) if t.broker != broker => Err(TokenFileError::OtherBroker {
            path: path.to_owned(),
            file: t.broker,
            account: broker,
        }),
        other => Ok(other),
    }
}

/// A token file's bytes and what they parse to, for code that must keep or move the bytes.
#[derive(Debug)]
pub struct RawTokenFile {
    /// The file's bytes (empty when the file is too large to be a token file).
    pub bytes: Vec<u8>,
    /// The token, or why the bytes are not one (never quoting the token).
    pub parsed: Result<Token, String>,
}

/// Read a token file without judging it. `Ok(None)` when it does not exist; an error when it
/// is not a regular file (a folder, a FIFO that would block) or cannot be read.
pub fn read_token_bytes(path: &Path) -> Result<Option<RawTokenFile>, TokenFileError> {
    read_token_bytes_as(path, Broker::Upstox)
}

/// [`read_token_bytes`], reading a file that names no broker as `broker`'s.
pub fn read_token_bytes_as(
    path: &Path,
    broker: Broker,
) -> Result<Option<RawTokenFile>, TokenFileError> {
    let io = |source| TokenFileError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() {
        return Err(TokenFileError::Unreadable {
            path: path.to_owned(),
            reason: "it is not a regular file; move it away".into(),
        });
    }
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        let reason = format!(
            "it is {} bytes; a token file is under {} KiB",
            meta.len(),
            MAX_TOKEN_FILE_BYTES / 1024
        );
        return Ok(Some(RawTokenFile {
            bytes: Vec::new(),
            parsed: Err(reason),
        }));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let mtime = meta
        .modified()
        .ok()
        .map(DateTime::<Utc>::from)
        .and_then(plausible);
    let parsed = parse_token_as(&bytes, mtime, broker);
    Ok(Some(RawTokenFile { bytes, parsed }))
}

/// The file's permission bits when group or others may read or write it (a token file must
/// be 0600), else `None`.
pub fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Parse the bytes of a token file. `mtime` is the file's modification time, the last
/// resort for the issue time. The error text never contains the token.
pub fn parse_token(bytes: &[u8], mtime: Option<DateTime<Utc>>) -> Result<Token, String> {
    parse_token_as(bytes, mtime, Broker::Upstox)
}

/// [`parse_token`], taking a token that names no broker (a raw token, JSON without
/// `"broker"`) as `untagged`'s, whose expiry rule then applies: what an account of that
/// broker reads from its own file or its `renew.command`.
pub fn parse_token_as(
    bytes: &[u8],
    mtime: Option<DateTime<Utc>>,
    untagged: Broker,
) -> Result<Token, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.starts_with('{') {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "it is not valid JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                json_error_kind(&e)
            )
        })?;
        let Value::Object(obj) = value else {
            return Err("expected a JSON object".into());
        };
        parse_object(&obj, mtime, untagged)
    } else {
        parse_raw(text, mtime, untagged)
    }
}

/// serde_json's message without any quoted input (it could quote the token).
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the file ends too early (was it cut short?)",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Io => "read error",
    }
}

fn check_token_text(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("the access token is empty".into());
    }
    if token.len() > 16 * 1024 {
        return Err("the access token is implausibly long".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the access token contains spaces, line breaks or non-ASCII characters".into());
    }
    Ok(())
}

fn parse_raw(text: &str, mtime: Option<DateTime<Utc>>, broker: Broker) -> Result<Token, String> {
    if text.contains(char::is_whitespace) || !text.is_ascii() {
        return Err("expected JSON or a file holding only the token on one line".into());
    }
    check_token_text(text)?;
    let claims = decode_jwt_claims(text);
    let evidence = ExpiryEvidence {
        mtime,
        ..ExpiryEvidence::of_token_text(text)
    };
    let jwt_iat = evidence.jwt_iat;
    let Some((expires_at, expiry_source)) = decide_expiry(broker, &evidence) else {
        return Err("it has no expiry and its modification time is unknown".into());
    };
    Ok(Token {
        broker,
        access_token: Secret::new(text),
        token_type: "Bearer".into(),
        extended_token: None,
        user_id: claims.and_then(|c| c.sub).map(|s| printable(&s)),
        user_name: None,
        email: None,
        issued_at: jwt_iat,
        expires_at,
        expiry_source,
        obtained_via: None,
        refresh_token: None,
        format: TokenFileFormat::Raw,
    })
}

fn parse_object(
    obj: &Map<String, Value>,
    mtime: Option<DateTime<Utc>>,
    untagged: Broker,
) -> Result<Token, String> {
    let format = match obj.get("format") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Some(TokenFileFormat::Format1),
        Some(Value::Number(n)) => {
            return Err(format!(
                "it is token-file format {n}, which this tokenwatch does not know; upgrade tokenwatch"
            ));
        }
        Some(_) => return Err("\"format\" must be the number 1".into()),
    };
    let access_token = match obj.get("access_token") {
        Some(Value::String(s)) => s.trim(),
        Some(Value::Null) | None => return Err("it has no \"access_token\"".into()),
        Some(_) => return Err("\"access_token\" must be a string".into()),
    };
    check_token_text(access_token)?;
    // A file without "broker": tokenwatch's own format-1 files from before there were other
    // brokers are Upstox's (so an account switched to another broker never takes an old
    // Upstox file for its own); anything else (a script's JSON) is the reading account's.
    let broker = match obj.get("broker") {
        None | Some(Value::Null) if format == Some(TokenFileFormat::Format1) => Broker::Upstox,
        None | Some(Value::Null) => untagged,
        Some(Value::String(s)) => Broker::parse(s).ok_or_else(|| {
            format!(
                "\"broker\" is \"{}\", which this tokenwatch does not know (known: {})",
                printable(s.chars().take(40).collect::<String>().as_str()),
                Broker::ALL.map(Broker::as_str).join(", ")
            )
        })?,
        Some(_) => return Err("\"broker\" must be a string such as \"upstox\"".into()),
    };

    let expires_field = time_field(obj, "expires_at")?;
    let issued_field = time_field(obj, "issued_at")?;
    let created_field = time_field(obj, "created_at")?;
    let claims = decode_jwt_claims(access_token);
    let evidence = ExpiryEvidence {
        claimed: expires_field,
        issued_at: issued_field,
        created_at: created_field,
        mtime,
        ..ExpiryEvidence::of_token_text(access_token)
    };
    let jwt_iat = evidence.jwt_iat;
    let Some((expires_at, expiry_source)) = decide_expiry(broker, &evidence) else {
        return Err("it has no expiry and its modification time is unknown".into());
    };

    let format = format.unwrap_or(if obj.contains_key("expires_at") {
        TokenFileFormat::Legacy
    } else {
        TokenFileFormat::UpstoxResponse
    });
    let string = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            // Shown on screens, in logs and alerts: no control characters.
            Some(Value::String(s)) => Ok(Some(printable(s.trim()))),
            Some(_) => Err(format!("\"{k}\" must be a string")),
        }
    };
    let extended_token = match obj.get("extended_token") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => return Err("\"extended_token\" must be a string or null".into()),
    };
    Ok(Token {
        broker,
        access_token: Secret::new(access_token),
        token_type: string("token_type")?.unwrap_or_else(|| "Bearer".into()),
        extended_token,
        user_id: string("user_id")?.or_else(|| claims.and_then(|c| c.sub).map(|s| printable(&s))),
        user_name: string("user_name")?,
        email: string("email")?,
        issued_at: issued_field.or(created_field).or(jwt_iat),
        expires_at,
        expiry_source,
        obtained_via: string("obtained_via")?,
        refresh_token: None,
        format,
    })
}

/// Read a time field given as epoch seconds, epoch milliseconds (number or digit string)
/// or RFC 3339 text. Missing, null and "" are `None`.
fn time_field(obj: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, String> {
    let bad = |what: &str| Err(format!("\"{key}\" {what}"));
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)) {
            Some(v) => epoch(v)
                .map(Some)
                .ok_or_else(|| format!("\"{key}\" is out of range")),
            None => bad("is not a usable number"),
        },
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                match s.parse::<i64>().ok().and_then(epoch) {
                    Some(t) => Ok(Some(t)),
                    None => bad("is out of range"),
                }
            } else {
                match DateTime::parse_from_rfc3339(s) {
                    Ok(t) => match plausible(t.with_timezone(&Utc)) {
                        Some(t) => Ok(Some(t)),
                        None => bad("is not between the years 2000 and 2200"),
                    },
                    Err(_) => bad(
                        "is neither epoch seconds, epoch milliseconds nor an RFC 3339 time with an offset \
                         (like 2026-11-27T03:30:00+05:30)",
                    ),
                }
            }
        }
        Some(_) => bad("must be a number or a string"),
    }
}

/// Epoch seconds, or epoch milliseconds when the value is too large to be seconds
/// (1e11 seconds is the year 5138; 1e11 milliseconds is 1973).
fn epoch(v: i64) -> Option<DateTime<Utc>> {
    if v.unsigned_abs() >= 100_000_000_000 {
        DateTime::from_timestamp_millis(v).and_then(plausible)
    } else {
        from_epoch_seconds(v)
    }
}

/// The format-1 JSON tokenwatch writes: the file the trading engine reads. `created_at` is
/// kept (epoch seconds of the issue time) for engines written for the older Python manager.
pub fn to_format1_json(token: &Token) -> String {
    let ist = |t: DateTime<Utc>| to_ist(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let value = serde_json::json!({
        "format": 1,
        "broker": token.broker.as_str(),
        "access_token": token.access_token.expose(),
        "token_type": token.token_type,
        "extended_token": token.extended_token.as_ref().map(Secret::expose),
        "user_id": token.user_id,
        "user_name": token.user_name,
        "email": token.email,
        "issued_at": token.issued_at.map(ist),
        "expires_at": ist(token.expires_at),
        "created_at": token.issued_at.map(|t| t.timestamp()),
        "obtained_via": token.obtained_via,
    });
    let mut s = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::ExpirySource;
    use crate::token::expiry::ist;
    use base64::Engine;
    use chrono::TimeZone;

    fn at_ist(d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(2026, 11, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn jwt(exp: i64) -> String {
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"AB1234","iat":1,"exp":{exp}}}"#));
        format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.{p}.signaturepart")
    }

    #[test]
    fn format1_round_trips() {
        let json = format!(
            r#"{{"format":1,"access_token":"{}","token_type":"Bearer","extended_token":null,
            "user_id":"AB1234","user_name":"Jane","email":"j@x.in",
            "issued_at":"2026-11-26T09:12:00+05:30","expires_at":"2026-11-27T03:30:00+05:30",
            "created_at":1764128520,"obtained_via":"oauth"}}"#,
            jwt(0)
        );
        let t = parse_token(json.as_bytes(), None).unwrap();
        assert_eq!(t.format, TokenFileFormat::Format1);
        assert_eq!(t.expires_at, at_ist(27, 3, 30));
        assert_eq!(t.expiry_source, ExpirySource::ExpiresAt);
        assert_eq!(t.issued_at, Some(at_ist(26, 9, 12)));
        let again = parse_token(to_format1_json(&t).as_bytes(), None).unwrap();
        assert_eq!(again.expires_at, t.expires_at);
        assert_eq!(again.issued_at, t.issued_at);
        assert!(again.access_token.same_as(&t.access_token));
        assert_eq!(again.user_name.as_deref(), Some("Jane"));
        assert_eq!(again.obtained_via.as_deref(), Some("oauth"));
    }

    #[test]
    fn errors_never_quote_the_token() {
        let secret = "SECRETSECRETSECRET";
        for input in [
            format!(r#"{{"access_token":"{secret}","expires_at":"{secret}"}}"#),
            format!(r#"{{"access_token":"{secret}" "#),
            format!(r#"{{"access_token":"{secret} x","expires_at":1}}"#),
            format!("{secret} {secret}"),
        ] {
            let err = parse_token(input.as_bytes(), None).unwrap_err();
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[test]
    fn a_token_that_names_no_broker_is_the_reading_accounts() {
        // A Kite script's raw token file: opaque, dated by its modification time, so Kite's
        // 06:00 IST rule applies (Upstox's would say 03:30).
        let issued = at_ist(26, 9, 12);
        let t = parse_token_as(
            b"AbCdEf0123456789AbCdEf0123456789",
            Some(issued),
            Broker::Kite,
        )
        .unwrap();
        assert_eq!(t.broker, Broker::Kite);
        assert_eq!(
            to_ist(t.expires_at).format("%d %H:%M").to_string(),
            "27 06:00"
        );
        // JSON without "broker", as a renew.command of a Kite account prints it.
        let json = r#"{"access_token":"AbCdEf0123456789AbCdEf0123456789","expires_at":"2026-11-27T06:00:00+05:30"}"#;
        let t = parse_token_as(json.as_bytes(), None, Broker::Kite).unwrap();
        assert_eq!(t.broker, Broker::Kite);
        // tokenwatch's own format-1 file from before brokers: Upstox's, whoever reads it.
        let json = r#"{"format":1,"access_token":"AbCdEf0123456789AbCdEf0123456789","expires_at":"2026-11-27T03:30:00+05:30"}"#;
        let t = parse_token_as(json.as_bytes(), None, Broker::Kite).unwrap();
        assert_eq!(t.broker, Broker::Upstox);
        // A file that names its broker keeps it, whoever reads it.
        let json = r#"{"broker":"upstox","access_token":"AbCdEf0123456789AbCdEf0123456789","expires_at":"2026-11-27T03:30:00+05:30"}"#;
        let t = parse_token_as(json.as_bytes(), None, Broker::Kite).unwrap();
        assert_eq!(t.broker, Broker::Upstox);
    }

    #[test]
    fn the_broker_is_written_and_a_file_without_it_is_upstox() {
        let json = format!(
            r#"{{"format":1,"access_token":"{}","expires_at":"2026-11-27T03:30:00+05:30"}}"#,
            jwt(0)
        );
        let t = parse_token(json.as_bytes(), None).unwrap();
        assert_eq!(t.broker, Broker::Upstox);
        let written = to_format1_json(&t);
        assert!(written.contains(r#""broker": "upstox""#), "{written}");
        let kite = Token {
            broker: Broker::Kite,
            ..t
        };
        let written = to_format1_json(&kite);
        assert!(written.contains(r#""broker": "kite""#), "{written}");
        assert!(written.contains(r#""format": 1"#), "{written}");
        assert_eq!(
            parse_token(written.as_bytes(), None).unwrap().broker,
            Broker::Kite
        );
    }

    #[test]
    fn a_kite_file_is_read_by_the_0600_rule() {
        // Issued 09:12 IST with a claim past the next morning: Kite's 06:00 IST rule wins.
        let json = r#"{"format":1,"broker":"kite","access_token":"opaqueKiteToken123",
            "issued_at":"2026-11-26T09:12:00+05:30","expires_at":"2026-11-27T09:12:00+05:30"}"#;
        let t = parse_token(json.as_bytes(), None).unwrap();
        assert_eq!(t.broker, Broker::Kite);
        assert_eq!(t.expires_at, at_ist(27, 6, 0));
        assert_eq!(t.expiry_source, ExpirySource::RuleFromIssuedAt);
        assert_eq!(
            t.expiry_source.describe(t.broker),
            "the 06:00 IST rule from issued_at"
        );
    }

    #[test]
    fn an_unknown_broker_is_refused_plainly() {
        let json = r#"{"format":1,"broker":"robinhood","access_token":"abc","expires_at":"2026-11-27T03:30:00+05:30"}"#;
        let err = parse_token(json.as_bytes(), None).unwrap_err();
        assert!(
            err.contains("robinhood") && err.contains("upstox, kite"),
            "{err}"
        );
        let json = r#"{"format":1,"broker":7,"access_token":"abc","expires_at":"2026-11-27T03:30:00+05:30"}"#;
        assert!(parse_token(json.as_bytes(), None).is_err());
    }
}
