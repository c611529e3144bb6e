//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds, the three HTTP-date forms, garbage.
//! No panic; a wait is never longer than a day; plain delta-seconds parse to their value.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &[u8]| {
    let wait = authed::__fuzz::retry_after(value);
    if let Some(wait) = wait {
        assert!(
            wait <= Duration::from_secs(24 * 3600),
            "a wait of {wait:?} was accepted"
        );
    }
    // Delta-seconds within a day are taken as they are (leading/trailing spaces allowed).
    if let Ok(text) = std::str::from_utf8(value) {
        let digits = text.trim_matches(|c| c == ' ' || c == '\t');
        if !digits.is_empty() && digits.len() < 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let seconds: u64 = digits.parse().expect("digits parse");
            if seconds <= 24 * 3600 {
                assert_eq!(wait, Some(Duration::from_secs(seconds)), "{text:?}");
            }
        }
    }
});
