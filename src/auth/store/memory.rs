//! [`MemoryStore`]: the record in memory (the default).

use std::sync::Mutex;

use super::{RefreshTokenStore, StoreFuture, StoredTokens, store_conflict};
use crate::{RefreshToken, Result};

/// Keeps the record in memory (the default store): shared by a client and its clones, **lost
/// when the process exits**. With a server that rotates refresh tokens, a restart then presents
/// the token the process started with, which the server has retired; the client warns once when
/// it sees a rotation with this store. Use a [`FileStore`](super::FileStore) or your own store
/// to keep rotated tokens.
#[derive(Debug, Default)]
pub struct MemoryStore {
    record: Mutex<Option<StoredTokens>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The refresh token held, if any.
    pub fn latest(&self) -> Option<RefreshToken> {
        self.lock().as_ref().map(|r| r.refresh_token.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<StoredTokens>> {
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn swap(
        &self,
        expected: Option<&RefreshToken>,
        record: &StoredTokens,
    ) -> Result<()> {
        let mut held = self.lock();
        let current = held.as_ref().map(|r| &r.refresh_token);
        if !same(current, expected) {
            return Err(store_conflict());
        }
        *held = Some(record.clone());
        Ok(())
    }
}

/// Whether two optional tokens are the same token.
pub(crate) fn same(a: Option<&RefreshToken>, b: Option<&RefreshToken>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.is_same(b),
        _ => false,
    }
}

impl RefreshTokenStore for MemoryStore {
    fn load(&self) -> StoreFuture<'_, Option<StoredTokens>> {
        let record = self.lock().clone();
        Box::pin(async move { Ok(record) })
    }

    fn save<'a>(
        &'a self,
        expected: Option<&'a RefreshToken>,
        record: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        let result = self.swap(expected, record);
        Box::pin(async move { result })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        *self.lock() = None;
        Box::pin(async { Ok(()) })
    }

    fn is_persistent(&self) -> bool {
        false
    }
}
