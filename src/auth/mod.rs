//! Authentication: where access tokens come from, how they are cached and renewed, and where a
//! rotated refresh token is kept.
//!
//! ```text
//! TokenCache ──fetch──▶ dyn TokenSource ──▶ grant/refresh_token.rs ──▶ TokenEndpoint (endpoint.rs)
//!  single flight,         (public trait)     grant/client_credentials.rs      client auth, bounded
//!  refresh window,                           your own source                  read, JSON or form,
//!  401 invalidation                            │                              RFC 6749 §5.2 errors
//!                                              ▼
//!                                    dyn RefreshTokenStore (store/): memory, file, your own
//!                                    the source of truth for the refresh token; lock, CAS
//! ```
//!
//! - The [`TokenSource`] trait mints access tokens; the client's cache calls it, one call at a
//!   time, and keeps the refresh window, the background refresh and the 401 invalidation for
//!   every source. The built-in grants are `refresh_token` (RFC 6749 §6) and
//!   `client_credentials` (RFC 6749 §4.4), chosen with [`GrantType`]; plug your own with
//!   [`ClientBuilder::token_source`](crate::ClientBuilder::token_source).
//! - A [`RefreshTokenStore`](store::RefreshTokenStore) keeps the refresh token (and shares the
//!   access token) across restarts and processes; see [`store`].
//!
//! The guide is `docs/auth.md`.

use std::{fmt, str::FromStr};

pub(crate) mod cache;
mod endpoint;
pub(crate) mod grant;
pub(crate) mod jwt;
pub(crate) mod redact;
pub(crate) mod revoke;
mod secret;
mod source;
pub mod store;
mod token;

pub use crate::clock::{Clock, SystemClock};
#[cfg(fuzzing)]
pub(crate) use endpoint::fuzz_parse as fuzz_parse_token_response;
pub use endpoint::{
    ClientAuth, MAX_TOKEN_LIFETIME, MAX_TOKEN_RESPONSE_BYTES, Replay, TokenEndpoint, TokenResponse,
};
pub use secret::{ClientSecret, RefreshToken};
pub use source::{Token, TokenFuture, TokenSource};
pub use token::AccessToken;

use crate::{Error, Result};

/// Lifetime assumed for an access token whose response has no `expires_in` and which is not
/// a JWT with an `exp` claim.
pub const DEFAULT_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Which OAuth 2.0 grant mints the access tokens (`<P>_GRANT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantType {
    /// `refresh_token` (RFC 6749 §6), the default: a long-lived refresh token, possibly
    /// rotated by the server, kept in a [`RefreshTokenStore`](store::RefreshTokenStore).
    #[default]
    RefreshToken,
    /// `client_credentials` (RFC 6749 §4.4): machine to machine, with the client id and secret.
    ClientCredentials,
}

impl GrantType {
    /// The `grant_type` value: `refresh_token` or `client_credentials`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = Error;

    /// `refresh_token` or `client_credentials` (case-insensitive, `-` for `_` accepted).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "refresh_token" => Ok(GrantType::RefreshToken),
            "client_credentials" => Ok(GrantType::ClientCredentials),
            _ => Err(Error::config(format!(
                "unknown grant {:?}: expected refresh_token or client_credentials",
                s.chars().take(40).collect::<String>()
            ))),
        }
    }
}
