//! Token-file parser: any bytes parse or fail cleanly, and whatever parses can be written as
//! format 1 and read back with the same token and expiry.
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use tokenwatch::token::file::{parse_token, to_format1_json};

fuzz_target!(|data: &[u8]| {
    for mtime in [None, DateTime::from_timestamp(1_764_128_520, 0)] {
        if let Ok(token) = parse_token(data, mtime) {
            let json = to_format1_json(&token);
            let back = match parse_token(json.as_bytes(), None) {
                Ok(t) => t,
                Err(e) => panic!("a token tokenwatch accepted does not read back: {e}"),
            };
            assert!(back.access_token.same_as(&token.access_token));
            assert_eq!(back.expires_at.timestamp(), token.expires_at.timestamp());
        }
    }
});
