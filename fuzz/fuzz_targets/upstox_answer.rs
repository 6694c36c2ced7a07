//! Upstox answer classification: any status, content type and body is classified without a
//! panic; only Upstox's JSON `UDAPI100050` makes the token invalid, and an answer that is not
//! JSON (an HTML 401 included) is transient.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tokenwatch::brokers::upstox::client::{ApiError, MAX_BODY, classify};

fuzz_target!(|input: (u16, bool, &str, &[u8])| {
    let (status, retry, content_type, body) = input;
    let status = status % 1000;
    let retry_after = retry.then(|| Duration::from_secs(7));
    let got = classify("profile", status, retry_after, content_type, body);
    let not_json = !serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object());
    if not_json {
        assert!(matches!(got, Err(ApiError::Transient { .. })), "{got:?}");
    }
    if matches!(got, Err(ApiError::Invalid { .. })) {
        assert!(!not_json && body.len() <= MAX_BODY, "{got:?}");
    }
    if let Err(e @ ApiError::Transient { .. }) = &got {
        assert_eq!(e.retry_after(), retry_after);
    }
});
