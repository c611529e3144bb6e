//! Where a rotated refresh token goes.
//!
//! Servers that rotate refresh tokens send a new one with every access token and refuse the
//! old one from then on. If the process restarts holding only the token it started with, the
//! user must log in again. A [`RefreshTokenStore`] persists each new refresh token **before**
//! the new access token is used, so a restart picks up the latest one.
//!
//! - [`MemoryStore`] (the default) keeps it in memory only.
//! - [`FileStore`] writes it to a file atomically (temp file + rename) with permissions `0600`,
//!   and [`load`](RefreshTokenStore::load)s it when the client is built.
//! - [`FnStore`] hands it to a closure of yours (a keychain, a database, a secret manager).
//!
//! A failing store never stops the client: the new token stays in memory and keeps it working;
//! the failure is logged at `ERROR` level and kept for [`Client::store_error`](crate::Client::store_error).

use std::{
    fmt,
    future::Future,
    io::{self, Write},
    path::{Path, PathBuf},
    pin::Pin,
    sync::Mutex,
};

use secrecy::ExposeSecret;

use crate::{Error, ErrorKind, RefreshToken, Result};

/// The future returned by [`RefreshTokenStore::save`].
pub type StoreFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Persists rotated refresh tokens. See the [module docs](self).
pub trait RefreshTokenStore: fmt::Debug + Send + Sync + 'static {
    /// Saves a new refresh token. Called once per rotation, before the new access token is used.
    fn save<'a>(&'a self, token: &'a RefreshToken) -> StoreFuture<'a>;

    /// The last saved token, if the store has one. Called once when the client is built; a
    /// token found here wins over the configured one, since it is newer.
    fn load(&self) -> Result<Option<RefreshToken>> {
        Ok(None)
    }
}

fn store_error(message: String, source: io::Error) -> Error {
    Error::new(ErrorKind::Store, message).with_source(source)
}

// ===== impl MemoryStore =====

/// Keeps the latest refresh token in memory (the default store).
#[derive(Debug, Default)]
pub struct MemoryStore {
    latest: Mutex<Option<RefreshToken>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last token saved, if any.
    pub fn latest(&self) -> Option<RefreshToken> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl RefreshTokenStore for MemoryStore {
    fn save<'a>(&'a self, token: &'a RefreshToken) -> StoreFuture<'a> {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Box::pin(async { Ok(()) })
    }

    fn load(&self) -> Result<Option<RefreshToken>> {
        Ok(self.latest())
    }
}

// ===== impl FileStore =====

/// Keeps the latest refresh token in a file (UTF-8, the token alone, permissions `0600`).
///
/// Writes go to a temporary file in the same directory that is then renamed over the target,
/// so a crash mid-write leaves either the old token or the new one, never half of one.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store writing to `path`. The directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(path: &Path, token: &str) -> io::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        // Unique per write, so that two clients sharing the file never share a temp file.
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
        let result = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(token.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

impl RefreshTokenStore for FileStore {
    fn save<'a>(&'a self, token: &'a RefreshToken) -> StoreFuture<'a> {
        Box::pin(async move {
            let path = self.path.clone();
            let token = token.clone();
            tokio::task::spawn_blocking(move || Self::write(&path, token.expose_secret()))
                .await
                .map_err(|e| Error::new(ErrorKind::Store, "file store task failed").with_source(e))?
                .map_err(|e| {
                    store_error(
                        format!("could not write refresh token to {}", self.path.display()),
                        e,
                    )
                })
        })
    }

    fn load(&self) -> Result<Option<RefreshToken>> {
        match std::fs::read_to_string(&self.path) {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(RefreshToken::new(s.trim()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_error(
                format!("could not read refresh token from {}", self.path.display()),
                e,
            )),
        }
    }
}

// ===== impl FnStore =====

/// Hands each new refresh token to a closure.
///
/// ```
/// let store = authed::FnStore::new(|token: &authed::RefreshToken| {
///     // keyring.set_password(secrecy::ExposeSecret::expose_secret(token))?;
///     Ok::<(), std::io::Error>(())
/// });
/// ```
pub struct FnStore<F> {
    save: F,
}

impl<F, E> FnStore<F>
where
    F: Fn(&RefreshToken) -> std::result::Result<(), E> + Send + Sync + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A store calling `save` with each new refresh token.
    pub fn new(save: F) -> Self {
        Self { save }
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
    fn save<'a>(&'a self, token: &'a RefreshToken) -> StoreFuture<'a> {
        let result = (self.save)(token).map_err(|e| {
            Error::new(ErrorKind::Store, "refresh token store callback failed").with_source(e)
        });
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_round_trip_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("refresh-token"));
        assert!(store.load().unwrap().is_none());
        store.save(&RefreshToken::new("rt-1")).await.unwrap();
        store.save(&RefreshToken::new("rt-2")).await.unwrap();
        assert_eq!(store.load().unwrap().unwrap().expose_secret(), "rt-2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn file_store_failure_is_a_store_error_without_the_secret() {
        let store = FileStore::new("/nonexistent-dir/for/sure/token");
        let err = store
            .save(&RefreshToken::new("rt-secret-value"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(!format!("{err} {err:?}").contains("rt-secret-value"));
    }
}
