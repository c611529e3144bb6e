//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds, the three HTTP-date forms, garbage.
//! No panic; plain delta-seconds parse to their value, however large (the retry policy's cap
//! applies to the wait, and the error keeps the server's value: issue 10, item 13).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &[u8]| {
    let wait = authed::__fuzz::retry_after(value);
    // Delta-seconds are taken as they are (leading/trailing spaces allowed).
    if let Ok(text) = std::str::from_utf8(value) {
        let digits = text.trim_matches(|c| c == ' ' || c == '\t');
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seconds) = digits.parse::<u64>() {
                assert_eq!(wait, Some(Duration::from_secs(seconds)), "{text:?}");
            }
        }
    }
});
