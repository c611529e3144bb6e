//! `Link` headers (RFC 8288): the `rel="next"` target, resolved against the page's URL.
//! No panic; a target found is an absolute URL.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|value: &[u8]| {
    if let Ok(Some(next)) = authed::__fuzz::link_next(value) {
        assert!(
            authed::Url::parse(&next).is_ok(),
            "not an absolute URL: {next}"
        );
    }
});
