//! Upstox expiry rules: India Standard Time, the 03:30 IST boundary, and the JWT `exp`
//! claim. All arithmetic is done in IST (UTC+05:30, no daylight saving), whatever the
//! machine's own time zone is.

use super::ExpirySource;
use crate::brokers::Broker;
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

/// Everything that can say when a token ends, from wherever the token came (a token file, a
/// login's exchange, a token request, a `renew.command`). Fields not known are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryEvidence {
    /// The expiry the source claims (a file's `expires_at`, a delivery's `expires_at`).
    pub claimed: Option<DateTime<Utc>>,
    /// The token's JWT `exp` claim.
    pub jwt_exp: Option<DateTime<Utc>>,
    /// The `issued_at` the source gives.
    pub issued_at: Option<DateTime<Utc>>,
    /// The `created_at` the source gives (the older Python manager's issue time).
    pub created_at: Option<DateTime<Utc>>,
    /// The token's JWT `iat` claim.
    pub jwt_iat: Option<DateTime<Utc>>,
    /// The token file's modification time: the issue time of last resort.
    pub mtime: Option<DateTime<Utc>>,
}

impl ExpiryEvidence {
    /// The evidence the token text itself carries: its JWT `exp` and `iat`, when it is a JWT
    /// with plausible times.
    pub fn of_token_text(access_token: &str) -> ExpiryEvidence {
        let claims = decode_jwt_claims(access_token).unwrap_or_default();
        ExpiryEvidence {
            jwt_exp: claims.exp.and_then(from_epoch_seconds),
            jwt_iat: claims.iat.and_then(from_epoch_seconds),
            ..ExpiryEvidence::default()
        }
    }
}

/// When a token stops working: the EARLIEST of what the source claims, the JWT's `exp` and
/// the broker's rule applied to the issue time (Upstox: 03:30 IST, Kite: 06:00 IST; see
/// [`Broker::expiry_rule`]), with the one that decided it. No source can make a token live
/// longer than the broker lets it.
///
/// The issue time for the rule is `issued_at`, else `created_at`, else the JWT `iat`. A
/// file's modification time is used only when there is nothing else at all: a copy, a
/// restore or an editor moves it, so it never cuts short an expiry the token names. On a
/// tie the earlier-named source wins (the claim, then `exp`, then the rule), so a file
/// tokenwatch wrote reads back as "the file's expires_at". `None` when nothing is known.
pub fn decide_expiry(broker: Broker, e: &ExpiryEvidence) -> Option<(DateTime<Utc>, ExpirySource)> {
    let rule = [
        (e.issued_at, ExpirySource::RuleFromIssuedAt),
        (e.created_at, ExpirySource::RuleFromCreatedAt),
        (e.jwt_iat, ExpirySource::RuleFromJwtIat),
    ]
    .into_iter()
    .find_map(|(t, source)| t.map(|t| (broker.expiry_rule(t), source)))
    .and_then(|(t, source)| t.map(|t| (t, source)));
    let candidates = [
        e.claimed.map(|t| (t, ExpirySource::ExpiresAt)),
        e.jwt_exp.map(|t| (t, ExpirySource::JwtExp)),
        rule,
    ];
    let earliest = candidates.into_iter().flatten().fold(
        None,
        |best: Option<(DateTime<Utc>, ExpirySource)>, c| match best {
            Some(b) if b.0 <= c.0 => Some(b),
            _ => Some(c),
        },
    );
    earliest.or_else(|| {
        e.mtime
            .and_then(|m| broker.expiry_rule(m))
            .map(|t| (t, ExpirySource::RuleFromFileMtime))
    })
}

/// [`decide_expiry`] for a token about to be stored: its `expires_at` as the claim, its JWT
/// and its issue time. This is what reading the stored file back gives.
pub fn stored_expiry(token: &super::Token) -> (DateTime<Utc>, ExpirySource) {
    let evidence = ExpiryEvidence {
        claimed: Some(token.expires_at),
        issued_at: token.issued_at,
        ..ExpiryEvidence::of_token_text(token.access_token.expose())
    };
    decide_expiry(token.broker, &evidence).unwrap_or((token.expires_at, ExpirySource::ExpiresAt))
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

    fn evidence(
        claimed: Option<DateTime<Utc>>,
        jwt_exp: Option<DateTime<Utc>>,
        issued_at: Option<DateTime<Utc>>,
    ) -> ExpiryEvidence {
        ExpiryEvidence {
            claimed,
            jwt_exp,
            issued_at,
            ..ExpiryEvidence::default()
        }
    }

    #[test]
    fn a_claim_later_than_the_rule_loses_to_the_rule() {
        // A legacy file saying issue + 24 h: the token still dies at 03:30 IST.
        let issued = at_ist(2026, 11, 26, 9, 12);
        let e = evidence(Some(issued + Duration::hours(24)), None, Some(issued));
        assert_eq!(
            decide_expiry(Broker::Upstox, &e),
            Some((at_ist(2026, 11, 27, 3, 30), ExpirySource::RuleFromIssuedAt))
        );
        // A JWT exp later than the rule loses too; an earlier one wins.
        let e = evidence(None, Some(issued + Duration::hours(20)), Some(issued));
        assert_eq!(
            decide_expiry(Broker::Upstox, &e).unwrap().1,
            ExpirySource::RuleFromIssuedAt
        );
        let e = evidence(None, Some(issued + Duration::hours(2)), Some(issued));
        assert_eq!(
            decide_expiry(Broker::Upstox, &e),
            Some((issued + Duration::hours(2), ExpirySource::JwtExp))
        );
        // On a tie the file's own claim is named: what tokenwatch wrote reads back as written.
        let boundary = at_ist(2026, 11, 27, 3, 30);
        let e = evidence(Some(boundary), Some(boundary), Some(issued));
        assert_eq!(
            decide_expiry(Broker::Upstox, &e),
            Some((boundary, ExpirySource::ExpiresAt))
        );
    }

    #[test]
    fn the_issue_time_is_issued_at_then_created_at_then_iat_and_mtime_only_alone() {
        let day = |d: u32| at_ist(2026, 11, d, 9, 0);
        let all = ExpiryEvidence {
            issued_at: Some(day(26)),
            created_at: Some(day(25)),
            jwt_iat: Some(day(24)),
            mtime: Some(day(23)),
            ..ExpiryEvidence::default()
        };
        assert_eq!(
            decide_expiry(Broker::Upstox, &all),
            Some((at_ist(2026, 11, 27, 3, 30), ExpirySource::RuleFromIssuedAt))
        );
        let e = ExpiryEvidence {
            issued_at: None,
            ..all
        };
        assert_eq!(
            decide_expiry(Broker::Upstox, &e).unwrap().1,
            ExpirySource::RuleFromCreatedAt
        );
        let e = ExpiryEvidence {
            created_at: None,
            ..e
        };
        assert_eq!(
            decide_expiry(Broker::Upstox, &e).unwrap().1,
            ExpirySource::RuleFromJwtIat
        );
        let e = ExpiryEvidence { jwt_iat: None, ..e };
        assert_eq!(
            decide_expiry(Broker::Upstox, &e),
            Some((at_ist(2026, 11, 24, 3, 30), ExpirySource::RuleFromFileMtime))
        );
        // The mtime never cuts a named expiry short.
        let e = ExpiryEvidence {
            claimed: Some(day(28)),
            ..e
        };
        assert_eq!(
            decide_expiry(Broker::Upstox, &e),
            Some((day(28), ExpirySource::ExpiresAt))
        );
        assert_eq!(
            decide_expiry(Broker::Upstox, &ExpiryEvidence::default()),
            None
        );
    }

    #[test]
    fn each_broker_applies_its_own_rule() {
        let issued = at_ist(2026, 11, 26, 9, 0);
        let e = evidence(None, None, Some(issued));
        assert_eq!(
            decide_expiry(Broker::Upstox, &e),
            Some((at_ist(2026, 11, 27, 3, 30), ExpirySource::RuleFromIssuedAt))
        );
        assert_eq!(
            decide_expiry(Broker::Kite, &e),
            Some((at_ist(2026, 11, 27, 6, 0), ExpirySource::RuleFromIssuedAt))
        );
        // A Kite token claimed to live until 06:00 reads back as its claim; one claimed past
        // it is cut to 06:00 by the rule.
        let six = at_ist(2026, 11, 27, 6, 0);
        let e = evidence(Some(six), None, Some(issued));
        assert_eq!(
            decide_expiry(Broker::Kite, &e),
            Some((six, ExpirySource::ExpiresAt))
        );
        let e = evidence(Some(six + Duration::hours(3)), None, Some(issued));
        assert_eq!(
            decide_expiry(Broker::Kite, &e),
            Some((six, ExpirySource::RuleFromIssuedAt))
        );
        // A broker with no rule: only the claim and the JWT decide; the mtime decides nothing.
        let e = evidence(None, Some(issued + Duration::hours(20)), Some(issued));
        assert_eq!(
            decide_expiry(Broker::Fyers, &e),
            Some((issued + Duration::hours(20), ExpirySource::JwtExp))
        );
        let e = ExpiryEvidence {
            mtime: Some(issued),
            ..ExpiryEvidence::default()
        };
        assert_eq!(decide_expiry(Broker::Dhan, &e), None);
        assert_eq!(
            decide_expiry(Broker::Kite, &e),
            Some((six, ExpirySource::RuleFromFileMtime))
        );
    }

    proptest::proptest! {
        /// Never later than any of the three, always equal to the one it names.
        #[test]
        fn the_expiry_is_the_earliest_and_names_the_winner(
            claimed in proptest::option::of(0i64..200 * 86_400),
            exp in proptest::option::of(0i64..200 * 86_400),
            issued in proptest::option::of(0i64..200 * 86_400),
            created in proptest::option::of(0i64..200 * 86_400),
            iat in proptest::option::of(0i64..200 * 86_400),
            mtime in proptest::option::of(0i64..200 * 86_400),
        ) {
            let base = at_ist(2026, 6, 1, 0, 0);
            let t = |s: Option<i64>| s.map(|s| base + Duration::seconds(s));
            let e = ExpiryEvidence {
                claimed: t(claimed),
                jwt_exp: t(exp),
                issued_at: t(issued),
                created_at: t(created),
                jwt_iat: t(iat),
                mtime: t(mtime),
            };
            let decided = decide_expiry(Broker::Upstox, &e);
            let issue = e.issued_at.or(e.created_at).or(e.jwt_iat);
            let rule = issue.map(upstox_expiry);
            let bounds = [e.claimed, e.jwt_exp, rule];
            if bounds.iter().all(Option::is_none) {
                proptest::prop_assert_eq!(
                    decided,
                    e.mtime.map(|m| (upstox_expiry(m), ExpirySource::RuleFromFileMtime))
                );
            } else {
                let (at, source) = decided.unwrap();
                for b in bounds.into_iter().flatten() {
                    proptest::prop_assert!(at <= b);
                }
                let named = match source {
                    ExpirySource::ExpiresAt => e.claimed,
                    ExpirySource::JwtExp => e.jwt_exp,
                    ExpirySource::RuleFromIssuedAt => e.issued_at.map(upstox_expiry),
                    ExpirySource::RuleFromCreatedAt => e.created_at.map(upstox_expiry),
                    ExpirySource::RuleFromJwtIat => e.jwt_iat.map(upstox_expiry),
                    ExpirySource::RuleFromFileMtime => None,
                };
                proptest::prop_assert_eq!(named, Some(at));
                proptest::prop_assert!(source != ExpirySource::RuleFromFileMtime);
            }
        }
    }
}
