//! OAuth callback query: any query and any expected state are answered without a panic, and
//! a code is only ever handed out when the first `state` parameter is the expected one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenwatch::auth::oauth::{Callback, read_callback};
use tokenwatch::secret::Secret;

fuzz_target!(|data: &[u8]| {
    // First line: the state the login expects; the rest: what arrived.
    let Ok(data) = std::str::from_utf8(data) else {
        return;
    };
    let (state, query) = data.split_once('\n').unwrap_or(("", data));
    let got = read_callback(Some(query), &Secret::new(state));
    if got.is_ok() {
        let first_state = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            first_state.as_deref(),
            Some(state),
            "accepted without the state"
        );
    }
    if let Ok(Callback::Code(code)) = got {
        let code = code.expose();
        assert!(!code.is_empty() && code == code.trim());
    }
});
