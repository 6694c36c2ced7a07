//! Pasted redirect address (the `p` key and the `login --no-browser` prompt): any text is
//! answered without a panic, and a code only comes with the expected state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenwatch::auth::oauth::read_pasted;
use tokenwatch::secret::Secret;

fuzz_target!(|data: &[u8]| {
    // First line: the state the login expects; the rest: what was pasted.
    let Ok(data) = std::str::from_utf8(data) else {
        return;
    };
    let (state, text) = data.split_once('\n').unwrap_or(("", data));
    if read_pasted(text, &Secret::new(state)).is_ok() {
        let text = text.trim();
        let query = match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u.query().unwrap_or("").to_owned(),
            _ => text.trim_start_matches('?').to_owned(),
        };
        let first_state = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            first_state.as_deref(),
            Some(state),
            "accepted without the state"
        );
    }
});
