//! JWT decoder: any text decodes or is `None`; any bytes as the payload part too (so the
//! fuzzer reaches the JSON parsing behind the base64).
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use tokenwatch::token::expiry::decode_jwt_claims;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = decode_jwt_claims(text);
    }
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(data));
    let _ = decode_jwt_claims(&token);
});
