//! Upstox answer classification: any status, content type and body is classified without a
//! panic; a 401 of a sane size always makes the token invalid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use tokenwatch::upstox::client::{ApiError, classify};

fuzz_target!(|input: (u16, bool, &str, &[u8])| {
    let (status, retry, content_type, body) = input;
    let status = status % 1000;
    let retry_after = retry.then(|| Duration::from_secs(7));
    let got = classify("profile", status, retry_after, content_type, body);
    if status == 401 && body.len() <= 256 * 1024 {
        assert!(matches!(got, Err(ApiError::Invalid { .. })), "{got:?}");
    }
    if let Err(e @ ApiError::Transient { .. }) = &got {
        assert_eq!(e.retry_after(), retry_after);
    }
});
