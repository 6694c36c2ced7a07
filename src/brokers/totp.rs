//! Time-based one-time codes (RFC 6238: SHA-1, 6 digits, 30-second steps), the second factor
//! Angel One's and Dhan's API logins take. The secret is the base32 text the broker shows
//! when two-factor login is set up; a code is computed for the moment of the call and never
//! logged or kept.

use crate::secret::Secret;
use chrono::{DateTime, Utc};

/// Seconds each code lives.
pub const STEP_SECONDS: u64 = 30;

/// Why a TOTP secret cannot be used. The text names no part of the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// The secret is empty.
    #[error("the TOTP secret is empty")]
    Empty,
    /// The secret is not base32 text.
    #[error(
        "the TOTP secret is not base32 text (letters A-Z and digits 2-7, as the broker shows it when two-factor login is set up)"
    )]
    NotBase32,
}

/// The secret's bytes: spaces and `=` padding are dropped and case is ignored, as people
/// copy the secret in groups of four, in lower case, or padded.
fn secret_bytes(secret: &Secret) -> Result<Vec<u8>, TotpError> {
    let text: String = secret
        .expose()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if text.is_empty() {
        return Err(TotpError::Empty);
    }
    match totp_rs::Secret::try_from_base32(&text) {
        Ok(s) if !s.as_bytes().is_empty() => Ok(s.as_bytes().to_vec()),
        _ => Err(TotpError::NotBase32),
    }
}

fn totp(secret: &Secret) -> Result<totp_rs::Totp, TotpError> {
    // Brokers hand out 80-bit secrets, shorter than RFC 4226's recommended 128 bits, so the
    // builder's length check does not apply.
    Ok(totp_rs::Builder::new()
        .with_secret(secret_bytes(secret)?)
        .build_noncompliant())
}

fn seconds(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0)
}

/// Check that `secret` can make codes, without making one (for `config check`).
pub fn validate(secret: &Secret) -> Result<(), TotpError> {
    secret_bytes(secret).map(|_| ())
}

/// The code for `at`.
pub fn code(secret: &Secret, at: DateTime<Utc>) -> Result<Secret, TotpError> {
    Ok(Secret::new(totp(secret)?.generate(seconds(at)).to_string()))
}

/// Whether `code` is right at `at`, one step either side allowed (for the simulators).
pub fn check(secret: &Secret, code: &str, at: DateTime<Utc>) -> bool {
    totp(secret).is_ok_and(|t| t.check(code, seconds(at)).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// RFC 6238's SHA-1 test secret, "12345678901234567890", in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_match_rfc_6238() {
        let s = Secret::new(RFC_SECRET);
        // RFC 6238 appendix B, SHA-1, last 6 of the 8 digits.
        for (t, want) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let at = Utc.timestamp_opt(t, 0).unwrap();
            assert_eq!(code(&s, at).unwrap().expose(), want, "t={t}");
        }
    }

    #[test]
    fn secrets_are_read_as_people_copy_them() {
        let at = Utc.timestamp_opt(59, 0).unwrap();
        let spaced = Secret::new("gezd gnbv gy3t qojq gezd gnbv gy3t qojq");
        assert_eq!(code(&spaced, at).unwrap().expose(), "287082");
        assert_eq!(validate(&Secret::new("")), Err(TotpError::Empty));
        assert_eq!(
            validate(&Secret::new("not base32!")),
            Err(TotpError::NotBase32)
        );
        assert_eq!(validate(&Secret::new("18")), Err(TotpError::NotBase32));
        // The message never repeats the secret.
        let e = validate(&Secret::new("SECRETXYZ1"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRETXYZ1"), "{e}");
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_not_beyond() {
        let s = Secret::new(RFC_SECRET);
        let at = Utc.timestamp_opt(1_234_567_890, 0).unwrap();
        let c = code(&s, at).unwrap();
        assert!(check(&s, c.expose(), at));
        assert!(check(&s, c.expose(), at + chrono::Duration::seconds(30)));
        assert!(!check(&s, c.expose(), at + chrono::Duration::seconds(90)));
        assert!(!check(&s, "000000", at));
    }
}
