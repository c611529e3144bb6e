//! A token endpoint's answer: status, `Content-Type` and body, parsed as the client parses it.
//! No panic; only a 200 gives a token, with a lifetime within the ten-year clamp; an error
//! never shows the refresh token, the client secret or its Basic credential, whatever the
//! body echoes.
#![no_main]

use authed::__fuzz::{CLIENT_SECRET, REFRESH_TOKEN, basic_credential, token_response};
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
        Ok((expires_in, _rotated)) => {
            assert!(status == 200, "a {status} was taken for a token");
            assert!(expires_in.is_none_or(|e| e <= authed::auth::MAX_TOKEN_LIFETIME));
        }
        Err((display, debug)) => {
            for secret in [REFRESH_TOKEN, CLIENT_SECRET, basic_credential().as_str()] {
                assert!(!display.contains(secret), "a secret in Display: {display}");
                assert!(!debug.contains(secret), "a secret in Debug: {debug}");
            }
        }
    }
});
