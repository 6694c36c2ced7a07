//! Upstox expiry rules: India Standard Time, the 03:30 IST boundary, and the JWT `exp`
//! claim. All arithmetic is done in IST (UTC+05:30, no daylight saving), whatever the
//! machine's own time zone is.

use base64::Engine;
use chrono::{DateTime, Duration, FixedOffset, NaiveTime, TimeZone, Utc};

/// India Standard Time: UTC+05:30 all year.
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("+05:30 is a valid offset")
}

/// The instant in IST, for display and for RFC 3339 output with `+05:30`.
pub fn to_ist(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&ist())
}

/// 03:30, the time of day Upstox access tokens die.
pub fn boundary_time() -> NaiveTime {
    NaiveTime::from_hms_opt(3, 30, 0).expect("03:30 is a valid time")
}

/// The first instant at `time` IST strictly after `t`.
pub fn next_ist_time_after(t: DateTime<Utc>, time: NaiveTime) -> DateTime<Utc> {
    let local = to_ist(t);
    let candidate = ist()
        .from_local_datetime(&local.date_naive().and_time(time))
        .single()
        .expect("a fixed offset has no gaps");
    let candidate = if candidate > local {
        candidate
    } else {
        candidate + Duration::days(1)
    };
    candidate.with_timezone(&Utc)
}

/// The Upstox rule: a token issued at `issued` dies at the first 03:30 IST strictly after it.
/// Issued 09:00 IST → 03:30 the next day; issued 02:00 → 03:30 the same day; issued exactly
/// 03:30 → 03:30 the next day.
pub fn upstox_expiry(issued: DateTime<Utc>) -> DateTime<Utc> {
    next_ist_time_after(issued, boundary_time())
}

/// Claims tokenwatch reads from a JWT-shaped access token. The signature cannot be checked
/// client-side, so these are used for scheduling only, never as proof of validity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtClaims {
    /// `exp`: expiry, epoch seconds.
    pub exp: Option<i64>,
    /// `iat`: issue time, epoch seconds.
    pub iat: Option<i64>,
    /// `sub`: the Upstox user id.
    pub sub: Option<String>,
}

/// Decode the payload of a JWT-shaped token without checking its signature. Returns `None`
/// for anything that is not three base64url parts with a JSON object in the middle.
pub fn decode_jwt_claims(token: &str) -> Option<JwtClaims> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() || payload.len() > 16 * 1024 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let obj = value.as_object()?;
    let int = |k: &str| {
        obj.get(k).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        })
    };
    Some(JwtClaims {
        exp: int("exp"),
        iat: int("iat"),
        sub: obj.get("sub").and_then(|v| v.as_str()).map(str::to_owned),
    })
}

/// Epoch seconds to an instant, refusing implausible values (see [`plausible`]).
pub fn from_epoch_seconds(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).and_then(plausible)
}

/// Token times must lie between 2000 and 2200: anything else is a broken file, and keeping
/// times in this range means no date arithmetic later can overflow.
pub fn plausible(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let lo = DateTime::from_timestamp(946_684_800, 0)?; // 2000-01-01
    let hi = DateTime::from_timestamp(7_258_118_400, 0)?; // 2200-01-01
    (lo..hi).contains(&t).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ist(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        ist()
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_0330_rule() {
        assert_eq!(
            upstox_expiry(at_ist(2026, 11, 26, 9, 0)),
            at_ist(2026, 11, 27, 3, 30)
        );
        assert_eq!(
            upstox_expiry(at_ist(2026, 11, 26, 2, 0)),
            at_ist(2026, 11, 26, 3, 30)
        );
        assert_eq!(
            upstox_expiry(at_ist(2026, 11, 26, 3, 30)),
            at_ist(2026, 11, 27, 3, 30)
        );
        assert_eq!(
            upstox_expiry(at_ist(2026, 11, 26, 3, 29)),
            at_ist(2026, 11, 26, 3, 30)
        );
        // Month and year rollover.
        assert_eq!(
            upstox_expiry(at_ist(2026, 12, 31, 23, 59)),
            at_ist(2027, 1, 1, 3, 30)
        );
    }

    #[test]
    fn ist_is_used_whatever_the_utc_date() {
        // 22:30 UTC on the 25th is 04:00 IST on the 26th: the token dies 03:30 IST on the 27th.
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 22, 30, 0).unwrap();
        assert_eq!(upstox_expiry(t), at_ist(2026, 11, 27, 3, 30));
        // 21:30 UTC on the 25th is 03:00 IST on the 26th: dies 03:30 IST the same IST day.
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 21, 30, 0).unwrap();
        assert_eq!(upstox_expiry(t), at_ist(2026, 11, 26, 3, 30));
    }

    #[test]
    fn jwt_claims_are_decoded_and_garbage_is_not() {
        // {"sub":"AB1234","iat":1751604472,"exp":1751666400}
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"AB1234","iat":1751604472,"exp":1751666400}"#);
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        let c = decode_jwt_claims(&token).unwrap();
        assert_eq!(c.exp, Some(1751666400));
        assert_eq!(c.iat, Some(1751604472));
        assert_eq!(c.sub.as_deref(), Some("AB1234"));
        // 1751666400 is 2025-07-05 03:30 IST: Upstox's exp lands on the boundary.
        assert_eq!(
            from_epoch_seconds(1751666400).unwrap(),
            at_ist(2025, 7, 5, 3, 30)
        );
        assert_eq!(decode_jwt_claims("not-a-jwt"), None);
        assert_eq!(decode_jwt_claims("a.b.c"), None);
        assert_eq!(decode_jwt_claims("a.!!!.c"), None);
        assert_eq!(decode_jwt_claims("a..c"), None);
        assert_eq!(from_epoch_seconds(8_210_266_876_799), None);
        assert_eq!(from_epoch_seconds(-1), None);
        let array = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"[1,2]");
        assert_eq!(decode_jwt_claims(&format!("a.{array}.c")), None);
    }
}
