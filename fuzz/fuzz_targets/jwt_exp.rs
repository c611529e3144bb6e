//! The `exp` claim of a JWT access token (used when `expires_in` is absent).
//! No panic; an expiry is after 1970 and before the year 5138 (the parser's bound).
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|token: &str| {
    if let Some(exp) = authed::__fuzz::jwt_expiry(token) {
        assert!(exp > SystemTime::UNIX_EPOCH);
        assert!(exp <= SystemTime::UNIX_EPOCH + Duration::from_secs(100_000_000_000));
    }
});
