//! A token endpoint's answer: status, `Content-Type` and body, parsed as the client parses it.
//! No panic; a lifetime is positive; an error never shows the refresh token or the client
//! secret the client holds, whatever the body echoes.
#![no_main]

use authed::__fuzz::{CLIENT_SECRET, REFRESH_TOKEN, token_response};
use libfuzzer_sys::fuzz_target;

const STATUSES: [u16; 8] = [200, 200, 400, 401, 429, 500, 502, 503];
const CONTENT_TYPES: [&[u8]; 4] = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/x-www-form-urlencoded",
    b"text/html",
];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector & 7)];
    let content_type = CONTENT_TYPES[usize::from(selector >> 3) % CONTENT_TYPES.len()];
    let headers = [
        ("content-type", content_type),
        ("retry-after", b"1".as_slice()),
    ];
    match token_response(status, &headers, body) {
        Ok((lifetime, _rotated)) => assert!(!lifetime.is_zero() || status == 200),
        Err((display, debug)) => {
            for secret in [REFRESH_TOKEN, CLIENT_SECRET] {
                assert!(!display.contains(secret), "a secret in Display: {display}");
                assert!(!debug.contains(secret), "a secret in Debug: {debug}");
            }
        }
    }
});
