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
}
