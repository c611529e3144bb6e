//! [`FnStore`]: each rotated refresh token handed to a closure.

use std::fmt;

use super::{MemoryStore, RefreshTokenStore, StoreFuture, StoredTokens};
use crate::{Error, ErrorKind, RefreshToken};

/// Hands each new refresh token to a closure (a keychain, a secret manager), and keeps the
/// record in memory for this process.
///
/// ```
/// let store = authed::FnStore::new(|token: &authed::RefreshToken| {
///     // keyring.set_password(secrecy::ExposeSecret::expose_secret(token))?;
///     Ok::<(), std::io::Error>(())
/// });
/// ```
pub struct FnStore<F> {
    save: F,
    memory: MemoryStore,
}

impl<F, E> FnStore<F>
where
    F: Fn(&RefreshToken) -> std::result::Result<(), E> + Send + Sync + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A store calling `save` with each new refresh token.
    pub fn new(save: F) -> Self {
        Self {
            save,
            memory: MemoryStore::new(),
        }
    }
}

impl<F> fmt::Debug for FnStore<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnStore")
    }
}

impl<F, E> RefreshTokenStore for FnStore<F>
where
    F: Fn(&RefreshToken) -> std::result::Result<(), E> + Send + Sync + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn load(&self) -> StoreFuture<'_, Option<StoredTokens>> {
        self.memory.load()
    }

    fn save<'a>(
        &'a self,
        expected: Option<&'a RefreshToken>,
        record: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        let changed =
            !super::memory::same(self.memory.latest().as_ref(), Some(&record.refresh_token));
        let result = self.memory.swap(expected, record).and_then(|()| {
            if !changed {
                return Ok(());
            }
            (self.save)(&record.refresh_token).map_err(|e| {
                Error::new(ErrorKind::Store, "refresh token store callback failed").with_source(e)
            })
        });
        Box::pin(async move { result })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.memory.clear()
    }
}
