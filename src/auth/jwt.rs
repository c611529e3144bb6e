//! Expiry from a JWT's `exp` claim, for token responses without `expires_in`.
//!
//! The token is **not verified** — the client is not its audience and only uses `exp` as a
//! hint for when to refresh; the server remains the judge (a 401 still triggers a refresh).

use std::time::{Duration, SystemTime};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

/// The `exp` claim of a JWT (three dot-separated base64url parts), if it has a usable one.
pub(crate) fn expiry(token: &str) -> Option<SystemTime> {
    #[derive(Deserialize)]
    struct Claims {
        exp: f64,
    }
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<Claims>(&json).ok()?.exp;
    if !exp.is_finite() || exp <= 0.0 || exp > 1e11 {
        return None;
    }
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.sig",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_exp() {
        let exp = expiry(&jwt(r#"{"sub":"u","exp":1900000000}"#)).unwrap();
        assert_eq!(
            exp,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000)
        );
    }

    #[test]
    fn ignores_what_is_not_a_jwt_with_exp() {
        for token in [
            "opaque-token".to_owned(),
            "a.b".to_owned(),
            "a.!!!.c".to_owned(),
            jwt(r#"{"sub":"u"}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt(r#"{"exp":-5}"#),
            jwt(r#"{"exp":1e300}"#),
            format!("{}.x", jwt(r#"{"exp":1900000000}"#)),
        ] {
            assert_eq!(expiry(&token), None, "{token}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any `exp` a server can mean (whole or fractional seconds, with other claims
            /// around it) reads as that instant.
            #[test]
            fn exp_reads_as_its_instant(
                exp in 1u64..100_000_000_000,
                fraction in prop_oneof![Just(0.0f64), 0.0f64..1.0],
                sub in "[a-z0-9]{0,12}",
                padded: bool,
            ) {
                let exp = exp as f64 + fraction;
                let payload = format!(r#"{{"sub":"{sub}","exp":{exp},"iat":1}}"#);
                let mut token = jwt(&payload);
                if padded {
                    // Some issuers pad base64url; the payload part then ends in '='.
                    let parts: Vec<&str> = token.split('.').collect();
                    let pad = "=".repeat((4 - parts[1].len() % 4) % 4);
                    token = format!("{}.{}{pad}.{}", parts[0], parts[1], parts[2]);
                }
                let expected = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(exp);
                let read = expiry(&token).unwrap();
                // serde_json's float parsing is not always correctly rounded: a microsecond.
                let off = read.duration_since(expected).or_else(|e| Ok::<_, ()>(e.duration())).unwrap();
                prop_assert!(off < Duration::from_micros(100), "{:?} for {}", off, exp);
            }

            /// Whatever is in an access token, reading `exp` does not panic, and what is not a
            /// three-part token with a positive, finite `exp` gives no expiry.
            #[test]
            fn anything_else_gives_no_expiry_and_never_panics(
                token in "\\PC{0,80}",
                payload in "\\PC{0,40}",
                exp in prop_oneof![
                    any::<f64>().prop_map(|f| f.to_string()),
                    any::<i64>().prop_map(|n| n.to_string()),
                    Just("null".to_owned()),
                    Just(r#""1900000000""#.to_owned()),
                ],
            ) {
                let _ = expiry(&token);
                let _ = expiry(&jwt(&payload));
                let claimed = expiry(&jwt(&format!(r#"{{"exp":{exp}}}"#)));
                let valid = exp.parse::<f64>().is_ok_and(|f| f.is_finite() && f > 0.0 && f <= 1e11);
                prop_assert_eq!(claimed.is_some(), valid, "{}", exp);
                let four_parts = format!("{}.x", jwt(&format!(r#"{{"exp":{exp}}}"#)));
                prop_assert_eq!(expiry(&four_parts), None);
            }
        }
    }
}
