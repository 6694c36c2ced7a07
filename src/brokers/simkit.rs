//! What the broker simulators share: HS256 JWTs signed with a simulator's key, random ids,
//! escaping for their login pages, the redirect answer, and a comparison that takes the same
//! time wherever two secrets differ.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;

pub use crate::secret::same_bytes as same;

/// A fresh random key for a simulator's signatures.
pub fn new_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key.iter_mut().for_each(|b| *b = fastrand::u8(..));
    key
}

/// An HS256 JWT of `claims`, signed with `key`.
pub fn jwt(key: &[u8], claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = Hmac::<Sha256>::new_from_slice(key)
        .expect("HMAC takes a key of any size")
        .chain_update(input.as_bytes())
        .finalize()
        .into_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `len` random letters and digits.
pub fn random_string(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}

/// `s`, safe inside HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// HTTP 302 to `to`.
pub fn found(to: &Url) -> Response {
    match HeaderValue::from_str(to.as_str()) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_carry_their_claims_and_a_key_bound_signature() {
        let claims = serde_json::json!({"exp": 1_800_000_000, "sub": "x"});
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let token = jwt(&a, &claims);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let body = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            claims
        );
        assert_eq!(jwt(&a, &claims), token);
        assert_ne!(jwt(&b, &claims), token);
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(random_string(12).len(), 12);
    }
}
