//! [`FileStore`]: the record in a file, safe across processes on one host.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use secrecy::ExposeSecret;

use super::{
    RefreshTokenStore, StoreFuture, StoreLock, StoredTokens, memory::same, store_conflict,
};
use crate::{Error, ErrorKind, RefreshToken, Result};

/// Keeps the record in a file (JSON, permissions `0600`), **safe to share between processes on
/// one host**.
///
/// - **One refresh at a time across processes**: [`lock`](RefreshTokenStore::lock) takes an
///   exclusive OS lock on `<path>.lock` (`flock`/`LockFileEx` through the standard library),
///   held while the client re-reads the file, refreshes if still needed and writes the rotated
///   token. The OS releases it when a process dies, so a crashed holder never blocks the others.
/// - **Atomic and durable writes**: a temporary file in the same directory (mode `0600`),
///   `fsync`, rename over the target, `fsync` of the directory. A crash leaves the old record or
///   the new one, never half of one.
/// - **Compare-and-swap**: a write is refused if the file no longer holds the token the writer
///   presented.
/// - The file holds the refresh token **and the latest access token** with its expiry, so that
///   processes sharing it make about one token request per expiry between them.
///
/// A file that is empty or missing holds nothing; a file with a bare token (as `authed` 0.1
/// wrote) is read as that token; anything else is an [`ErrorKind::Store`] error that shows none
/// of the file.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl FileStore {
    /// A store writing to `path`. The directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        Self {
            path,
            lock_path: lock_path.into(),
        }
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the directory exists and is a directory, and that the path is not one
    /// (for configuration errors at build time rather than at the first refresh).
    pub(crate) fn check(&self) -> Result<()> {
        let dir = parent(&self.path);
        if !dir.is_dir() {
            return Err(Error::config(format!(
                "the token store directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        if self.path.is_dir() {
            return Err(Error::config(format!(
                "the token store path {} is a directory, not a file",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn error(&self, what: &str, source: io::Error) -> Error {
        Error::new(
            ErrorKind::Store,
            format!("could not {what} the token store {}", self.path.display()),
        )
        .with_source(source)
    }

    fn read(&self) -> Result<Option<StoredTokens>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => StoredTokens::from_json(&text)
                .map(Some)
                .map_err(|e| Error::new(ErrorKind::Store, format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("read", e)),
        }
    }

    fn write(&self, expected: Option<&RefreshToken>, record: &StoredTokens) -> Result<()> {
        let current = self.read()?;
        if !same(current.as_ref().map(|r| &r.refresh_token), expected) {
            return Err(store_conflict());
        }
        write_atomically(&self.path, record.to_json().expose_secret().as_bytes())
            .map_err(|e| self.error("write", e))
    }

    fn remove(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => sync_dir(parent(&self.path)).map_err(|e| self.error("clear", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error("clear", e)),
        }
    }

    fn try_lock(&self) -> Result<Option<File>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&self.lock_path)
            .map_err(|e| self.error("open the lock file of", e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(self.error("lock", e)),
        }
    }
}

impl RefreshTokenStore for FileStore {
    fn load(&self) -> StoreFuture<'_, Option<StoredTokens>> {
        let this = self.clone();
        Box::pin(blocking(move || this.read()))
    }

    fn save<'a>(
        &'a self,
        expected: Option<&'a RefreshToken>,
        record: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        let (this, expected, record) = (self.clone(), expected.cloned(), record.clone());
        Box::pin(blocking(move || this.write(expected.as_ref(), &record)))
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        let this = self.clone();
        Box::pin(blocking(move || this.remove()))
    }

    /// Polls a non-blocking OS lock (every 2 to 50 ms), so that waiting holds no thread and is
    /// cancelled with the refresh.
    fn lock(&self) -> StoreFuture<'_, StoreLock> {
        Box::pin(async move {
            let mut pause = Duration::from_millis(2);
            loop {
                let this = self.clone();
                if let Some(file) = blocking(move || this.try_lock()).await? {
                    return Ok(StoreLock::new(file));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        })
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Store, "the file store task failed").with_source(e))?
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Temp file (mode 0600) in the same directory, write, fsync, rename, fsync the directory.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Unique per write, so that two writers never share a temp file.
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename durable: fsync of the directory (a no-op where directories cannot be opened).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rt: &str) -> StoredTokens {
        StoredTokens::new(RefreshToken::new(rt), Some("seed".into()))
    }

    #[tokio::test]
    async fn round_trip_with_0600_compare_and_swap_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("token.json"));
        assert!(store.load().await.unwrap().is_none());
        store.save(None, &record("rt-1")).await.unwrap();
        let rt1 = RefreshToken::new("rt-1");
        store.save(Some(&rt1), &record("rt-2")).await.unwrap();
        // A stale writer (still holding rt-1) is refused and changes nothing.
        let err = store
            .save(Some(&rt1), &record("rt-stale"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        let loaded = store.load().await.unwrap().unwrap();
        assert_eq!(loaded.refresh_token.expose_secret(), "rt-2");
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
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["token.json"]);
        store.clear().await.unwrap();
        assert!(store.load().await.unwrap().is_none());
        store.clear().await.unwrap();
    }

    #[tokio::test]
    async fn failures_are_store_errors_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, "x").unwrap();
        let store = FileStore::new(not_a_dir.join("token"));
        assert_eq!(store.check().unwrap_err().kind(), ErrorKind::Config);
        let err = store
            .save(None, &record("rt-secret-value"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(!format!("{err} {err:?}").contains("rt-secret-value"));

        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "{\"refresh_token\": \"rt-secret-value\"").unwrap();
        let err = FileStore::new(&garbage).load().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(!format!("{err} {err:?}").contains("rt-secret-value"));
        assert!(FileStore::new(dir.path()).check().is_err());
    }

    #[tokio::test]
    async fn the_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileStore::new(dir.path().join("t"));
        let b = FileStore::new(dir.path().join("t"));
        let held = a.lock().await.unwrap();
        // Another open file description cannot take it (as another process could not).
        assert!(b.try_lock().unwrap().is_none());
        drop(held);
        assert!(b.try_lock().unwrap().is_some());
    }
}
