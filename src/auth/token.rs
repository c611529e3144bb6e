//! [`AccessToken`]: an access token as the client holds it.

use std::fmt;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

/// An access token as held by the client. Its `Debug` shows the expiry, never the token.
pub struct AccessToken {
    pub(crate) secret: SecretString,
    /// `Bearer <token>`, built once, marked sensitive (never printed by `http`'s `Debug`).
    pub(crate) header: HeaderValue,
    pub(crate) expires_at: Instant,
    /// From here a background refresh starts, and the token is still served.
    pub(crate) refresh_at: Instant,
    /// From here callers wait for a new token: too close to expiry to send.
    pub(crate) must_refresh_at: Instant,
    /// Distinguishes tokens for compare-and-invalidate; later tokens have larger numbers.
    pub(crate) generation: u64,
    pub(crate) scope: Option<String>,
}

impl AccessToken {
    /// When the token expires (on the client's [`Clock`](crate::Clock)).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// The scopes granted: as the token endpoint said, else as requested.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The `Authorization` header value, `Bearer <token>`, marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.header
    }

    /// Whether `other` is the same token (the same mint, not an equal string).
    pub(crate) fn is(&self, other: &AccessToken) -> bool {
        self.generation == other.generation
    }
}

impl ExposeSecret<str> for AccessToken {
    fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .finish()
    }
}
