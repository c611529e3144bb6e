//! Pagination: a page body (JSON) and `Link` header as the five built-in strategies read them.
//! The input's first line is the `Link` header, the rest the body.
//! No panic; a next URL found is an absolute URL (its origin is checked later, by the loop).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (link, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&b""[..], input),
    };
    if let Ok(outcomes) = authed::__fuzz::page(body, link) {
        for next in outcomes.into_iter().flatten().flatten() {
            // Another origin is refused later, by the page loop; here it must be absolute.
            assert!(
                next.starts_with("marker: ") || authed::Url::parse(&next).is_ok(),
                "not an absolute URL: {next}"
            );
        }
    }
});
