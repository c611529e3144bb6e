//! Authentication: the secrets, the refresh grant, the token cache and refresh token stores.
//!
//! See `docs/auth.md` in the repository for the
//! token lifecycle. In short: the first request fetches an access token with the refresh
//! token; the token is reused until it enters its refresh window, when one background refresh
//! replaces it; requests wait only when the token has actually expired.

use std::{fmt, time::SystemTime};

use secrecy::SecretString;
use tokio::time::Instant;

pub(crate) mod cache;
pub(crate) mod jwt;
pub(crate) mod refresh;
mod secret;
pub mod store;

pub use secret::{ClientSecret, RefreshToken};

/// An access token as held by the client. Its `Debug` shows the expiry, never the token.
pub struct AccessToken {
    secret: SecretString,
    expires_at: Instant,
    refresh_at: Instant,
    /// Distinguishes tokens for compare-and-invalidate.
    generation: u64,
    scope: Option<String>,
}

impl AccessToken {
    /// When the token expires (on the client's [`Clock`]).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// The scopes granted, when the token endpoint said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl secrecy::ExposeSecret<str> for AccessToken {
    fn expose_secret(&self) -> &str {
        self.secret().expose_secret()
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

/// The source of time for token expiry, `Retry-After` dates and JWT `exp` claims.
///
/// The default, [`SystemClock`], reads [`tokio::time::Instant`], so tests running on paused
/// tokio time (`#[tokio::test(start_paused = true)]` and `tokio::time::advance`) control token
/// expiry without sleeping. Implement it to control time some other way.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Monotonic now, for expiry.
    fn now(&self) -> Instant;
    /// Wall-clock now, for HTTP dates and JWT `exp`.
    fn now_utc(&self) -> SystemTime;
}

/// Tokio's clock (honours paused test time) and the system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_utc(&self) -> SystemTime {
        SystemTime::now()
    }
}
