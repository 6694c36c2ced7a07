//! The simulator's access tokens: HS256 JWTs with Upstox's observed header and claims,
//! signed with the simulator's random key, minted on login and checked on every call.

use super::{IssuedToken, SimState, Simulator};
use crate::secret::Secret;
use crate::token::expiry::upstox_expiry;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The JWT header Upstox access tokens carry, byte for byte.
const JWT_HEADER: &str = r#"{"typ":"JWT","key_id":"sk_v1.0","alg":"HS256"}"#;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    jti: &'a str,
    #[serde(rename = "isMultiClient")]
    is_multi_client: bool,
    #[serde(rename = "isPlusPlan")]
    is_plus_plan: bool,
    iat: i64,
    iss: &'static str,
    exp: i64,
}

fn random_jti() -> String {
    let hex = |n: usize| -> String {
        std::iter::repeat_with(|| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .take(n)
            .collect()
    };
    format!("{}-{}-{}-{}-{}", hex(8), hex(4), hex(4), hex(4), hex(12))
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

impl Simulator {
    fn sign(&self, data: &str) -> Vec<u8> {
        let mac = HmacSha256::new_from_slice(&self.inner.key)
            .expect("HMAC takes a key of any size")
            .chain_update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub(super) fn mint(&self, st: &mut SimState) -> IssuedToken {
        let now = self.inner.clock.now();
        let issued_at = whole_seconds(now);
        let expires_at = match st.config.token_lifetime {
            Some(d) => whole_seconds(
                now + ChronoDuration::from_std(d).unwrap_or(ChronoDuration::days(3650)),
            ),
            None => upstox_expiry(now),
        };
        let jti = random_jti();
        let claims = Claims {
            sub: &st.config.user_id,
            jti: &jti,
            is_multi_client: false,
            is_plus_plan: false,
            iat: issued_at.timestamp(),
            iss: "udapi-gateway-service",
            exp: expires_at.timestamp(),
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(JWT_HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = URL_SAFE_NO_PAD.encode(self.sign(&signing_input));
        st.live.insert(jti);
        IssuedToken {
            access_token: Secret::new(format!("{signing_input}.{signature}")),
            issued_at,
            expires_at,
        }
    }

    /// The `jti` of `token` when it is valid now: our signature, not revoked, not expired.
    pub(super) fn valid_jti(&self, st: &SimState, token: &str) -> Option<String> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        HmacSha256::new_from_slice(&self.inner.key)
            .ok()?
            .chain_update(format!("{header}.{payload}").as_bytes())
            .verify_slice(&signature)
            .ok()?;
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let jti = claims.get("jti")?.as_str()?;
        let exp = DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)?;
        (st.live.contains(jti) && exp > self.inner.clock.now()).then(|| jti.to_string())
    }
}
