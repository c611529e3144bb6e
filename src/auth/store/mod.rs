//! Where the refresh token lives: the store is **the source of truth** for it.
//!
//! Servers that rotate refresh tokens send a new one with every access token and refuse the old
//! one from then on; servers with reuse detection revoke the whole grant when they see the old
//! one again. So the refresh grant never trusts a copy of its own:
//!
//! 1. it takes the store's [`lock`](RefreshTokenStore::lock) (a file lock, a lease: other
//!    processes sharing the store wait),
//! 2. **re-reads** the store: an access token another process minted meanwhile is adopted
//!    instead of refreshing again; a refresh token rotated by someone else is the one presented,
//! 3. refreshes, and [`save`](RefreshTokenStore::save)s the rotated refresh token with
//!    **compare-and-swap** on the one it presented (and the new access token with its expiry,
//!    so that other processes can adopt it), **before** the new access token is used,
//! 4. on `invalid_grant`, [`clear`](RefreshTokenStore::clear)s the dead token.
//!
//! **Precedence** between the store and the configured refresh token (`<P>_REFRESH_TOKEN`): the
//! record remembers a fingerprint of the configured token it descends from (its *seed*). A
//! configured token different from that seed is a new login and wins: the store is reset to it.
//! A token rotated from the same seed wins over the configuration.
//!
//! | store | survives a restart | shared by | lock |
//! |---|---|---|---|
//! | [`MemoryStore`] (default) | no | one client and its clones | none needed |
//! | [`FileStore`] | yes | processes on one host | an OS file lock (released if the process dies) |
//! | [`FnStore`] | yours | yours | none |
//! | `RedisStore` (feature `redis`) | yes | a fleet of hosts | a Redis lease, renewed while held |
//! | your own (a database row) | yes | a fleet | implement [`lock`](RefreshTokenStore::lock) |
//!
//! **A failing store never loses a rotated token**: if a save fails (or takes longer than the
//! store timeout), the error is logged at `ERROR` and kept for
//! [`Client::store_error`](crate::Client::store_error), the client keeps the new token in memory,
//! presents it next time, and saves it again.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    time::{Duration, SystemTime},
};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind, RefreshToken, Result};

mod file;
mod fn_store;
mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};
pub use file::FileStore;
pub use fn_store::FnStore;
pub use memory::MemoryStore;

/// The future returned by the [`RefreshTokenStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Keeps the refresh token of one grant (and shares its access token). See the
/// [module docs](self) for the protocol the refresh grant follows.
///
/// Errors are [`ErrorKind::Store`]; they must never contain a token.
pub trait RefreshTokenStore: fmt::Debug + Send + Sync + 'static {
    /// The stored record, if any.
    fn load(&self) -> StoreFuture<'_, Option<StoredTokens>>;

    /// Replaces the record, **only if the stored refresh token is still `expected`** (`None`:
    /// only if the store is empty); otherwise fails with a [`store_conflict`] error and changes
    /// nothing, so a stale writer can never overwrite a newer rotation.
    fn save<'a>(
        &'a self,
        expected: Option<&'a RefreshToken>,
        record: &'a StoredTokens,
    ) -> StoreFuture<'a, ()>;

    /// Removes the record (after `invalid_grant`: the token is dead).
    fn clear(&self) -> StoreFuture<'_, ()>;

    /// Holds off other holders of the same store (other processes, other hosts) until the
    /// returned guard is dropped; taken around "re-read, refresh if still needed, save". The
    /// default takes no lock: the client's own single flight covers one process.
    fn lock(&self) -> StoreFuture<'_, StoreLock> {
        Box::pin(async { Ok(StoreLock::none()) })
    }

    /// Whether the record survives a restart of the process (default `true`). The client warns
    /// once when a rotated refresh token goes to a store that does not.
    fn is_persistent(&self) -> bool {
        true
    }
}

/// The error a [`RefreshTokenStore::save`] returns when the stored token is not the expected one.
pub fn store_conflict() -> Error {
    Error::new(
        ErrorKind::Store,
        "the stored refresh token was changed by another client; the write was refused",
    )
}

/// A lock taken with [`RefreshTokenStore::lock`]; dropping it releases the lock.
#[must_use = "the lock is released when this guard is dropped"]
pub struct StoreLock {
    _guard: Option<Box<dyn Send>>,
}

impl StoreLock {
    /// A guard that releases its lock when dropped (a locked file, a lease with a `Drop`).
    pub fn new(guard: impl Send + 'static) -> Self {
        Self {
            _guard: Some(Box::new(guard)),
        }
    }

    /// No lock at all.
    pub fn none() -> Self {
        Self { _guard: None }
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self._guard.is_some() {
            "StoreLock(held)"
        } else {
            "StoreLock(none)"
        })
    }
}

/// What a store keeps for one grant. `Debug` shows no token.
#[derive(Clone)]
#[non_exhaustive]
pub struct StoredTokens {
    /// The refresh token to present next.
    pub refresh_token: RefreshToken,
    /// The fingerprint ([`fingerprint`]) of the configured refresh token this one descends
    /// from; `None` when unknown (a record written by hand or by an older version).
    pub seed: Option<String>,
    /// The latest access token, for other clients of the store to adopt.
    pub access_token: Option<SharedAccessToken>,
}

/// An access token shared through a store, with its absolute expiry.
#[derive(Clone)]
#[non_exhaustive]
pub struct SharedAccessToken {
    /// The access token.
    pub token: SecretString,
    /// When it expires, on the wall clock of the client that minted it.
    pub expires_at: SystemTime,
    /// The scopes granted, if known.
    pub scope: Option<String>,
}

impl StoredTokens {
    /// A record holding only a refresh token.
    pub fn new(refresh_token: RefreshToken, seed: Option<String>) -> Self {
        Self {
            refresh_token,
            seed,
            access_token: None,
        }
    }

    /// The record with a shared access token.
    pub fn with_access_token(mut self, token: SharedAccessToken) -> Self {
        self.access_token = Some(token);
        self
    }

    /// The record as JSON, for stores that keep text (a file, a Redis value).
    /// **It contains the tokens**: keep it as secret as the refresh token itself.
    pub fn to_json(&self) -> SecretString {
        let record = Record {
            version: 1,
            refresh_token: self.refresh_token.expose_secret(),
            seed: self.seed.as_deref(),
            access_token: self.access_token.as_ref().map(|t| t.token.expose_secret()),
            expires_at_ms: self.access_token.as_ref().map(|t| {
                t.expires_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis() as u64
            }),
            scope: self.access_token.as_ref().and_then(|t| t.scope.as_deref()),
        };
        // Serializing plain strings and numbers cannot fail.
        SecretString::from(serde_json::to_string(&record).unwrap_or_default())
    }

    /// Parses [`to_json`](StoredTokens::to_json)'s output. A bare token (one line of visible
    /// ASCII, as earlier versions wrote) is read as a record with an unknown seed. Anything else
    /// is an [`ErrorKind::Store`] error that shows none of the input.
    pub fn from_json(text: &str) -> Result<Self> {
        let text = text.trim();
        if !text.starts_with('{') {
            if !text.is_empty() && text.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                return Ok(Self::new(RefreshToken::new(text), None));
            }
            return Err(Error::new(
                ErrorKind::Store,
                "the stored record is neither a token record nor a token",
            ));
        }
        #[derive(Deserialize)]
        struct Owned {
            refresh_token: String,
            seed: Option<String>,
            access_token: Option<String>,
            expires_at_ms: Option<u64>,
            scope: Option<String>,
        }
        let r: Owned = serde_json::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Store,
                format!(
                    "the stored record is not a valid token record (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if r.refresh_token.trim().is_empty() {
            return Err(Error::new(
                ErrorKind::Store,
                "the stored record has an empty refresh token",
            ));
        }
        let access_token = match (r.access_token, r.expires_at_ms) {
            (Some(token), Some(ms)) if !token.is_empty() => Some(SharedAccessToken {
                token: SecretString::from(token),
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
                scope: r.scope,
            }),
            _ => None,
        };
        Ok(Self {
            refresh_token: RefreshToken::new(r.refresh_token),
            seed: r.seed,
            access_token,
        })
    }
}

#[derive(Serialize)]
struct Record<'a> {
    version: u32,
    refresh_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

impl fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTokens")
            .field("refresh_token", &self.refresh_token)
            .field("seed", &self.seed)
            .field("access_token", &self.access_token)
            .finish()
    }
}

impl fmt::Debug for SharedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A short, stable fingerprint of a token (the first 16 hex digits of its SHA-256): tells
/// tokens apart without revealing them. Used for the seed of a [`StoredTokens`].
pub fn fingerprint(token: &RefreshToken) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose_secret().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_a_store_error_without_the_input() {
        let record = StoredTokens::new(RefreshToken::new("rt-1"), Some("abcd".into()))
            .with_access_token(SharedAccessToken {
                token: SecretString::from("at-1"),
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
                scope: Some("read".into()),
            });
        let back = StoredTokens::from_json(record.to_json().expose_secret()).unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "rt-1");
        assert_eq!(back.seed.as_deref(), Some("abcd"));
        let at = back.access_token.unwrap();
        assert_eq!(at.token.expose_secret(), "at-1");
        assert_eq!(
            at.expires_at,
            record.access_token.as_ref().unwrap().expires_at
        );

        let legacy = StoredTokens::from_json("rt-legacy\n").unwrap();
        assert_eq!(legacy.refresh_token.expose_secret(), "rt-legacy");
        assert_eq!(legacy.seed, None);

        for garbage in [
            "{\"refresh_token\": \"rt-secret",
            "two words",
            "\u{0}\u{1}",
            "{}",
        ] {
            let err = StoredTokens::from_json(garbage).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Store, "{garbage:?}");
            assert!(!format!("{err} {err:?}").contains("rt-secret"));
        }
        assert!(format!("{record:?}").contains("[redacted]"));
        assert!(!format!("{record:?}").contains("rt-1"));
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a = fingerprint(&RefreshToken::new("rt-a"));
        assert_eq!(a, fingerprint(&RefreshToken::new("rt-a")));
        assert_ne!(a, fingerprint(&RefreshToken::new("rt-b")));
        assert_eq!(a.len(), 16);
    }
}
