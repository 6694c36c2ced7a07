//! Duration parsing (config values such as `30m`): any text parses or fails with a message,
//! and what parses is read back the same after `config check` prints it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenwatch::config::duration;

fuzz_target!(|text: &str| {
    match duration::parse(text) {
        Ok(d) => {
            let shown = humantime::format_duration(d).to_string();
            assert_eq!(duration::parse(&shown), Ok(d), "{shown}");
        }
        Err(e) => assert!(e.contains("expected a duration")),
    }
});
