//! Tokens as tests build them: a format-1 [`Token`] with the usual fields, from a simulator's
//! [`IssuedToken`] or from parts.

use chrono::{DateTime, Utc};
use tokenwatch::brokers::upstox::sim::IssuedToken;
use tokenwatch::secret::Secret;
use tokenwatch::token::{ExpirySource, Token, TokenFileFormat};

/// A format-1 token of AB1234 (Jane Doe), from a login: change fields with `..`.
pub fn token(
    access_token: impl Into<String>,
    issued_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Token {
    Token {
        broker: Default::default(),
        access_token: Secret::new(access_token),
        token_type: "Bearer".into(),
        extended_token: None,
        user_id: Some("AB1234".into()),
        user_name: Some("Jane Doe".into()),
        email: None,
        issued_at,
        expires_at,
        expiry_source: ExpirySource::ExpiresAt,
        obtained_via: Some("oauth".into()),
        refresh_token: None,
        format: TokenFileFormat::Format1,
    }
}

/// [`token`] for what a simulator issued, with its issue and expiry times.
pub fn issued(issued: IssuedToken) -> Token {
    Token {
        access_token: issued.access_token,
        ..token("", Some(issued.issued_at), issued.expires_at)
    }
}

/// The user fields of an Upstox profile (and of the token exchange's answer), as the
/// simulator's `AB1234` has them.
pub fn upstox_user() -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(map) = serde_json::json!({
        "email": "jane@example.com",
        "exchanges": ["NSE", "NFO", "BSE", "CDS", "BFO", "BCD"],
        "products": ["D", "CO", "I"],
        "broker": "UPSTOX",
        "user_id": "AB1234",
        "user_name": "Jane Doe",
        "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        "user_type": "individual",
        "poa": false,
        "is_active": true
    }) else {
        unreachable!()
    };
    map
}
