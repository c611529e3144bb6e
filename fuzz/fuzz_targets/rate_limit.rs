//! `RateLimit` / `RateLimit-Policy` (IETF draft, dictionary and list forms) and
//! `X-RateLimit-*`. The input is header lines, `name: value`, one per line.
//! No panic; a reset is never longer than a day.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;

/// Header names the parser reads; a line's first byte picks one when the line has no `:`.
const NAMES: [&str; 8] = [
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

fuzz_target!(|input: &[u8]| {
    let pairs: Vec<(&str, &[u8])> = input
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| match line.iter().position(|&b| b == b':') {
            Some(i) => (
                std::str::from_utf8(&line[..i]).unwrap_or("ratelimit"),
                line[i + 1..].trim_ascii(),
            ),
            None => (NAMES[usize::from(line[0]) % NAMES.len()], &line[1..]),
        })
        .collect();
    let headers = authed::__fuzz::headers(pairs);
    if let Some((_, _, Some(reset))) = authed::__fuzz::rate_limit(&headers) {
        assert!(
            reset <= Duration::from_secs(24 * 3600),
            "a reset of {reset:?} was accepted"
        );
    }
});
