#![doc = include_str!("../../../docs/fleet.md")]

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng, Payload},
};
use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::{sync::OnceCell, time::Instant};

use super::{RefreshTokenStore, StoreFuture, StoreLock, StoredTokens, store_conflict};
use crate::{Error, ErrorKind, RefreshToken, Result, retry::SharedCooldown};

/// Replaces the record only if it still holds the expected refresh token (by fingerprint; an
/// empty expectation means "only if there is none").
const SAVE: &str = r"
local current = redis.call('HGET', KEYS[1], 'fp')
if (ARGV[1] == '' and not current) or current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[2], 'record', ARGV[3])
  return 1
end
return 0";

/// Writes back a record kept while Redis was unreachable: only if Redis still holds the refresh
/// token it replaced, or none (restarted empty); 2 if it holds the record's token already.
const WRITE_BACK: &str = r"
local current = redis.call('HGET', KEYS[1], 'fp')
if not current or current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[2], 'record', ARGV[3])
  return 1
end
if current == ARGV[2] then
  return 2
end
return 0";

/// Extends the lease only if this owner still holds it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Releases the lease only if this owner still holds it: never another holder's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Lengthens the fleet's hold, never shortens it; the key expires with the hold.
const HOLD: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0";

/// Prefix of an encrypted record: version, then base64 of nonce and ciphertext.
const SEALED: &str = "enc1:";

/// How often a client re-reads the fleet's hold (on the request path, in the background).
const HOLD_POLL: Duration = Duration::from_millis(200);

/// Where a [`RedisStore`] is, as configured by `<P>_TOKEN_STORE=redis://...` (or `rediss://`,
/// `redis+unix://`), `<P>_TOKEN_STORE_KEY`, `<P>_TOKEN_STORE_SECRET` and
/// `<P>_TOKEN_STORE_CA`.
///
/// **The URL is a secret** (it may hold an ACL password): `Debug` shows only its scheme.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The Redis URL.
    pub url: SecretString,
    /// The key prefix (`<P>_TOKEN_STORE_KEY`); default derived from the token URL and client id.
    pub key_prefix: Option<String>,
    /// The secret the record is encrypted with (`<P>_TOKEN_STORE_SECRET`), if any.
    pub secret: Option<SecretString>,
    /// A PEM file of the CA certificate(s) that sign the server's certificate, for `rediss://`
    /// with a private CA (`<P>_TOKEN_STORE_CA`). When set, **only** these CAs are trusted;
    /// otherwise the system's roots are.
    pub ca_file: Option<std::path::PathBuf>,
}

impl RedisConfig {
    /// A configuration for `url`, with the default key prefix and no encryption.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            key_prefix: None,
            secret: None,
            ca_file: None,
        }
    }

    /// Whether `spec` names a Redis URL (`redis://`, `rediss://`, `redis+unix://`).
    pub(crate) fn is_redis_url(spec: &str) -> bool {
        let scheme = spec.split(':').next().unwrap_or("").to_ascii_lowercase();
        matches!(scheme.as_str(), "redis" | "rediss" | "redis+unix")
    }
}

impl PartialEq for RedisConfig {
    fn eq(&self, other: &Self) -> bool {
        self.url.expose_secret() == other.url.expose_secret()
            && self.key_prefix == other.key_prefix
            && self.secret.as_ref().map(ExposeSecret::expose_secret)
                == other.secret.as_ref().map(ExposeSecret::expose_secret)
            && self.ca_file == other.ca_file
    }
}

impl Eq for RedisConfig {}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &format_args!("{}://[redacted]", scheme(&self.url)))
            .field("key_prefix", &self.key_prefix)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn scheme(url: &SecretString) -> &str {
    let s = url.expose_secret();
    let scheme = s.split("://").next().unwrap_or("");
    if scheme.len() < s.len() && scheme.len() <= 12 {
        scheme
    } else {
        "?"
    }
}

// ===== impl RedisStore =====

/// Keeps the record of one grant in Redis, **shared by a fleet** of processes on many hosts:
/// one refresh at a time for the whole fleet, one shared access token, one shared rate limit.
///
/// - **Lease lock**: [`lock`](RefreshTokenStore::lock) is `SET <prefix>:lock <random owner> NX
///   PX <lease>`, renewed every third of the lease by a background task (compare-and-extend in
///   Lua) and released by compare-and-delete (Lua) when the guard drops, so a holder never
///   releases or extends another holder's lease. A holder killed mid-refresh blocks the fleet
///   at most one lease. Waiting polls with bounded backoff (5 to 100 ms, jittered) and fails
///   with [`ErrorKind::Store`] after [`lock_wait`](Self::lock_wait).
/// - **Compare-and-swap**: [`save`](RefreshTokenStore::save) is a Lua script that writes only
///   if the stored refresh token is still the presented one (compared by SHA-256 fingerprint,
///   so it works on encrypted records).
/// - **Shared access token**: the record holds the access token with its absolute expiry, so
///   the fleet makes about one token request per expiry.
/// - **Shared politeness**: as a [`SharedCooldown`], a 429 `Retry-After` or an exhausted quota
///   seen by one client is published under `<prefix>:hold` (expiring with the hold) and
///   honoured by every client within about 200 ms.
/// - **Fail closed**: when Redis cannot be reached every call fails with
///   [`ErrorKind::Store`]; a possibly stale single-use token is never presented. See
///   [`local_only_when_down`](Self::local_only_when_down) for the opt-in alternative.
/// - **Secrets at rest**: with [`encryption_secret`](Self::encryption_secret) the record is
///   sealed with ChaCha20-Poly1305 (random nonce per write, the key name as associated data).
///   Keys never contain a token; `Debug` shows neither the URL nor any token.
///
/// Keys: `<prefix>:tokens` (a hash: `fp`, `record`), `<prefix>:lock`, `<prefix>:hold`.
#[derive(Clone)]
pub struct RedisStore {
    target: Target,
    prefix: Option<String>,
    key: Option<Arc<ChaCha20Poly1305>>,
    lease: Duration,
    lock_wait: Duration,
    local_only_when_down: bool,
    shared: Arc<Shared>,
}

#[derive(Clone)]
enum Target {
    Url(Arc<redis::Client>, &'static str),
    Manager,
}

/// What the clones of one store share.
struct Shared {
    conn: OnceCell<ConnectionManager>,
    /// The fleet's hold as last read.
    hold: Mutex<Option<SystemTime>>,
    /// Whether the task that re-reads the hold runs.
    polling: std::sync::atomic::AtomicBool,
    /// The last record seen, for the opt-in local-only mode.
    local: Mutex<Option<StoredTokens>>,
    /// Whether this grant rotates its refresh token, as learned from this process's saves
    /// (`None`: not known yet).
    rotates: Mutex<Option<bool>>,
    /// A record saved while Redis was unreachable, written back when it answers again.
    pending: Mutex<Option<Pending>>,
}

/// A record to write back, sealed as it will be stored.
#[derive(Clone)]
struct Pending {
    /// The `tokens` key.
    key: String,
    /// The fingerprint of the refresh token Redis held when the save failed (`""`: none).
    expected: String,
    /// The fingerprint of the refresh token of the record.
    fp: String,
    /// The record, sealed (it contains the tokens: never shown).
    sealed: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Url(_, scheme) => format!("{scheme}://[redacted]"),
            Target::Manager => "ConnectionManager".to_owned(),
        };
        f.debug_struct("RedisStore")
            .field("target", &target)
            .field("prefix", &self.prefix)
            .field("encrypted", &self.key.is_some())
            .field("lease", &self.lease)
            .field("lock_wait", &self.lock_wait)
            .field("local_only_when_down", &self.local_only_when_down)
            .finish()
    }
}

impl RedisStore {
    /// The default lease of the lock.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// A store at `url` (`redis://[user:password@]host:port/db`, `rediss://` for TLS,
    /// `redis+unix:///path/redis.sock`). Nothing is connected before the first use.
    ///
    /// Fails with [`ErrorKind::Config`] if the URL is not a Redis URL; the error never shows it.
    pub fn from_url(url: impl Into<String>) -> Result<Self> {
        Self::from_config(RedisConfig::new(url))
    }

    /// A store at a `rediss://` `url` whose server certificate is signed by a private CA:
    /// `ca_pem` holds the CA certificate(s) in PEM, and **only** they are trusted.
    ///
    /// Fails with [`ErrorKind::Config`] if the URL is not `rediss://` or the PEM holds no
    /// valid certificate; the error never shows the URL.
    ///
    /// ```no_run
    /// # fn run() -> authed::Result<()> {
    /// let ca = std::fs::read("/etc/redis/ca.pem").expect("the CA certificate");
    /// let store =
    ///     authed::RedisStore::from_url_with_ca("rediss://app:password@redis.internal:6380/0", ca)?;
    /// # Ok(()) }
    /// ```
    pub fn from_url_with_ca(url: impl Into<String>, ca_pem: impl Into<Vec<u8>>) -> Result<Self> {
        Self::build(RedisConfig::new(url), Some(ca_pem.into()))
    }

    /// A store as configured by `<P>_TOKEN_STORE`, `<P>_TOKEN_STORE_KEY`,
    /// `<P>_TOKEN_STORE_SECRET` and `<P>_TOKEN_STORE_CA` (a PEM file, read here).
    pub fn from_config(config: RedisConfig) -> Result<Self> {
        let ca_pem = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                Error::config(format!(
                    "could not read the CA certificate of the Redis token store ({}): {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        Self::build(config, ca_pem)
    }

    fn build(config: RedisConfig, ca_pem: Option<Vec<u8>>) -> Result<Self> {
        let scheme = match scheme(&config.url).to_ascii_lowercase().as_str() {
            "redis" => "redis",
            "rediss" => "rediss",
            "redis+unix" => "redis+unix",
            _ => {
                return Err(Error::config(
                    "the Redis token store URL must start with redis://, rediss:// or redis+unix://",
                ));
            }
        };
        // The client's error could quote the URL, which may hold a password: not kept.
        let client = redis::Client::open(config.url.expose_secret())
            .map_err(|_| Error::config("the Redis token store URL is not valid"))?;
        let client = match ca_pem {
            None => client,
            Some(_) if scheme != "rediss" => {
                return Err(Error::config(
                    "a CA certificate for the Redis token store needs a rediss:// URL",
                ));
            }
            Some(pem) => {
                // Checked here: the redis client would take a PEM without a certificate and
                // trust nothing.
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(Error::config(
                        "the CA certificate of the Redis token store holds no PEM certificate",
                    ));
                }
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(client.get_connection_info().clone(), certificates)
                    .map_err(|_| {
                        Error::config(
                            "the CA certificate of the Redis token store is not a valid PEM \
                             certificate",
                        )
                    })?
            }
        };
        let mut store = Self::new(Target::Url(Arc::new(client), scheme));
        store.prefix = config.key_prefix;
        if let Some(secret) = &config.secret {
            store = store.encryption_secret(secret.expose_secret());
        }
        Ok(store)
    }

    /// A store on an existing connection manager (your own pool settings, TLS, credentials).
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        let store = Self::new(Target::Manager);
        let _ = store.shared.conn.set(manager);
        store
    }

    fn new(target: Target) -> Self {
        Self {
            target,
            prefix: None,
            key: None,
            lease: Self::DEFAULT_LEASE,
            lock_wait: Self::DEFAULT_LEASE,
            local_only_when_down: false,
            shared: Arc::new(Shared {
                conn: OnceCell::new(),
                hold: Mutex::new(None),
                polling: std::sync::atomic::AtomicBool::new(false),
                local: Mutex::new(None),
                rotates: Mutex::new(None),
                pending: Mutex::new(None),
            }),
        }
    }

    /// The prefix of every key (default: `authed:` and a hash of the token URL and client id,
    /// set by [`ClientBuilder::redis_store`](crate::ClientBuilder::redis_store); `authed:default`
    /// otherwise). Clients sharing one grant must share it; different grants must not.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Encrypts the record at rest with a key derived from `secret` (SHA-256 of it: use a long
    /// random secret, 32 bytes or more). Every client of the fleet needs the same secret; a
    /// record sealed with another one is an [`ErrorKind::Store`] error.
    pub fn encryption_secret(mut self, secret: &str) -> Self {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
        self.key = Some(Arc::new(ChaCha20Poly1305::new(&digest.into())));
        self
    }

    /// How long the lock is held without renewal (default 30 s): a holder that dies blocks the
    /// fleet at most this long. The token requests of a client built with
    /// [`ClientBuilder::redis_store`](crate::ClientBuilder::redis_store) time out after at most
    /// half of it, so a refresh never outlives its lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// How long [`lock`](RefreshTokenStore::lock) waits for another holder (default 30 s)
    /// before failing with [`ErrorKind::Store`]. The client's store timeout
    /// ([`ClientBuilder::token_store_timeout`](crate::ClientBuilder::token_store_timeout),
    /// default 10 s) bounds it too.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// **Opt-in, for grants that do not rotate**: when Redis cannot be reached, keep working
    /// from what this process last saw (no fleet lock, no sharing) instead of failing, with a
    /// `WARN` each time.
    ///
    /// **A rotating grant is never refreshed without the fleet lock**: two replicas could
    /// present the same single-use token and a server with reuse detection would revoke the
    /// grant. So while Redis is down, a refresh is made locally only if this process has seen
    /// the grant keep its refresh token across a refresh; otherwise (it rotates, or this
    /// process has not refreshed yet) the refresh fails with [`ErrorKind::Store`] as in the
    /// default mode, and requests with a still-valid access token keep working. A record saved
    /// while Redis was down is written back when Redis answers again, with compare-and-swap on
    /// the refresh token Redis held (or none, if Redis restarted empty).
    pub fn local_only_when_down(mut self, enabled: bool) -> Self {
        self.local_only_when_down = enabled;
        self
    }

    /// The lease of the lock.
    pub(crate) fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// Sets the default prefix from the token URL and client id, unless one is set.
    pub(crate) fn with_default_prefix(mut self, token_url: &str, client_id: Option<&str>) -> Self {
        use sha2::Digest;
        if self.prefix.is_none() {
            let mut hash = sha2::Sha256::new();
            hash.update(token_url.as_bytes());
            hash.update(b"\n");
            hash.update(client_id.unwrap_or("").as_bytes());
            let digest = hash.finalize();
            let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            self.prefix = Some(format!("authed:{id}"));
        }
        self
    }

    fn key_name(&self, suffix: &str) -> String {
        format!(
            "{}:{suffix}",
            self.prefix.as_deref().unwrap_or("authed:default")
        )
    }

    /// The connection, after writing back a record saved while Redis was unreachable.
    async fn conn(&self) -> Result<ConnectionManager> {
        let mut conn = connect(&self.target, &self.shared).await?;
        if let Err(e) = write_back(&mut conn, &self.shared).await {
            let err = redis_error("write back", e);
            if is_unreachable(&err) {
                return Err(err);
            }
            // Refused (an ACL, a script error): retrying would fail every call after it.
            tracing::error!(target: "authed::auth", error = %err, "could not write back the token record kept while Redis was unreachable; it is dropped");
            *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(conn)
    }

    // ----- the record -----

    fn seal(&self, plain: &SecretString) -> Result<String> {
        let Some(key) = &self.key else {
            return Ok(plain.expose_secret().to_owned());
        };
        let aad = self.key_name("tokens");
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = key
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.expose_secret().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::new(ErrorKind::Store, "could not encrypt the token record"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    fn open(&self, stored: &str) -> Result<StoredTokens> {
        let Some(sealed) = stored.strip_prefix(SEALED) else {
            if self.key.is_some() {
                return Err(Error::new(
                    ErrorKind::Store,
                    "the Redis token record is not encrypted, but an encryption secret is \
                     configured (TOKEN_STORE_SECRET): refusing it",
                ));
            }
            return StoredTokens::from_json(stored);
        };
        let Some(key) = &self.key else {
            return Err(Error::new(
                ErrorKind::Store,
                "the Redis token record is encrypted: configure its secret (TOKEN_STORE_SECRET)",
            ));
        };
        let wrong = || {
            Error::new(
                ErrorKind::Store,
                "could not decrypt the Redis token record: wrong encryption secret \
                 (TOKEN_STORE_SECRET), or the record was tampered with",
            )
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| wrong())?;
        if bytes.len() < 12 {
            return Err(wrong());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let aad = self.key_name("tokens");
        let plain = key
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| wrong())?;
        let plain = SecretString::from(String::from_utf8(plain).map_err(|_| wrong())?);
        StoredTokens::from_json(plain.expose_secret())
    }

    async fn read(&self) -> Result<Option<StoredTokens>> {
        let mut conn = self.conn().await?;
        let stored: Option<String> = redis::cmd("HGET")
            .arg(self.key_name("tokens"))
            .arg("record")
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("read", e))?;
        stored.map(|s| self.open(&s)).transpose()
    }

    async fn write(&self, expected: Option<&RefreshToken>, record: &StoredTokens) -> Result<()> {
        let mut conn = self.conn().await?;
        let sealed = self.seal(&record.to_json())?;
        let written: i64 = Script::new(SAVE)
            .key(self.key_name("tokens"))
            .arg(expected.map(cas_id).unwrap_or_default())
            .arg(cas_id(&record.refresh_token))
            .arg(sealed)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("write", e))?;
        if written == 1 {
            Ok(())
        } else {
            Err(store_conflict())
        }
    }

    async fn remove(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        redis::cmd("DEL")
            .arg(self.key_name("tokens"))
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| redis_error("clear", e))?;
        Ok(())
    }

    // ----- the lease -----

    async fn acquire(&self) -> Result<StoreLock> {
        let mut conn = self.conn().await?;
        let key = self.key_name("lock");
        let owner = format!(
            "{:016x}{:016x}.{}",
            fastrand::u64(..),
            fastrand::u64(..),
            std::process::id()
        );
        let lease_ms = self.lease.as_millis() as u64;
        let deadline = Instant::now() + self.lock_wait;
        let mut pause = Duration::from_millis(5);
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("lock", e))?;
            if taken.is_some() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    ErrorKind::Store,
                    format!(
                        "another client of the fleet held the Redis token lock for longer than \
                         {:?}",
                        self.lock_wait
                    ),
                ));
            }
            let jittered = pause.mul_f64(0.5 + fastrand::f64() / 2.0);
            tokio::time::sleep(jittered.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        let renewal = tokio::spawn(renew(conn.clone(), key.clone(), owner.clone(), self.lease));
        Ok(StoreLock::new(Lease {
            conn,
            key,
            owner,
            renewal,
        }))
    }

    // ----- local-only mode -----

    /// Whether `err` says Redis is unreachable and local-only mode is on.
    fn is_down(&self, err: &Error) -> bool {
        self.local_only_when_down && is_unreachable(err)
    }

    /// Learns from a save whether the grant rotates its refresh token.
    fn learn_rotation(&self, expected: Option<&RefreshToken>, record: &StoredTokens) {
        let rotated = match expected {
            Some(expected) => Some(!expected.is_same(&record.refresh_token)),
            // A first save: compared with the configured token it descends from.
            None => record
                .seed
                .as_ref()
                .map(|seed| *seed != super::fingerprint(&record.refresh_token)),
        };
        let mut rotates = self
            .shared
            .rotates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match rotated {
            Some(true) => *rotates = Some(true),
            Some(false) if rotates.is_none() => *rotates = Some(false),
            _ => {}
        }
    }

    /// Keeps a record whose save could not reach Redis, to write it back later.
    fn keep_pending(&self, expected: Option<&RefreshToken>, record: &StoredTokens) -> Result<()> {
        let sealed = self.seal(&record.to_json())?;
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Across several failed saves, Redis still holds the token the first one replaced.
        let expected = match pending.take() {
            Some(earlier) => earlier.expected,
            None => expected.map(cas_id).unwrap_or_default(),
        };
        *pending = Some(Pending {
            key: self.key_name("tokens"),
            expected,
            fp: cas_id(&record.refresh_token),
            sealed,
        });
        Ok(())
    }

    #[cfg(test)]
    fn is_pending(&self) -> bool {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn warn_local(&self, what: &str) {
        tracing::warn!(
            target: "authed::auth",
            "REDIS TOKEN STORE UNREACHABLE: {what} from this process's memory only \
             (local_only_when_down): no fleet lock, no sharing; replicas may present the same \
             refresh token and a server with reuse detection may revoke the grant"
        );
    }

    fn remember(&self, record: Option<&StoredTokens>) {
        *self.shared.local.lock().unwrap_or_else(|e| e.into_inner()) = record.cloned();
    }

    fn local(&self) -> Option<StoredTokens> {
        self.shared
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    // ----- the fleet's hold -----

    /// Starts (once) the task that re-reads the fleet's hold every [`HOLD_POLL`]; it ends when
    /// the last clone of the store is dropped.
    fn poll_hold(&self) {
        use std::sync::atomic::Ordering;
        if self.shared.polling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.shared.polling.store(false, Ordering::Release);
            return;
        };
        let shared = Arc::downgrade(&self.shared);
        let key = self.key_name("hold");
        let target = self.target.clone();
        runtime.spawn(async move {
            loop {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let mut conn = match connect(&target, &shared).await {
                    Ok(conn) => conn,
                    Err(_) => {
                        drop(shared);
                        tokio::time::sleep(HOLD_POLL).await;
                        continue;
                    }
                };
                // A record saved while Redis was down goes back as soon as it answers, not
                // only at this client's next refresh.
                let _ = write_back(&mut conn, &shared).await;
                let until: redis::RedisResult<Option<u64>> =
                    redis::cmd("GET").arg(&key).query_async(&mut conn).await;
                if let Ok(until) = until {
                    *shared.hold.lock().unwrap_or_else(|e| e.into_inner()) =
                        until.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
                }
                drop(shared);
                tokio::time::sleep(HOLD_POLL).await;
            }
        });
    }
}

impl RefreshTokenStore for RedisStore {
    fn load(&self) -> StoreFuture<'_, Option<StoredTokens>> {
        Box::pin(async move {
            match self.read().await {
                Ok(record) => {
                    self.remember(record.as_ref());
                    Ok(record)
                }
                Err(err) if self.is_down(&err) => {
                    self.warn_local("reading the token record");
                    Ok(self.local())
                }
                Err(err) => Err(err),
            }
        })
    }

    fn save<'a>(
        &'a self,
        expected: Option<&'a RefreshToken>,
        record: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.learn_rotation(expected, record);
            match self.write(expected, record).await {
                Ok(()) => {
                    // Newer than any record kept while Redis was down.
                    *self
                        .shared
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = None;
                    self.remember(Some(record));
                    Ok(())
                }
                Err(err) if is_unreachable(&err) => {
                    // Whatever the mode, the record goes back to Redis when it answers again,
                    // so that the fleet does not present a refresh token the server retired.
                    self.keep_pending(expected, record)?;
                    if !self.local_only_when_down {
                        return Err(err);
                    }
                    self.warn_local("keeping the new token (written back when Redis returns)");
                    self.remember(Some(record));
                    Ok(())
                }
                Err(err) => Err(err),
            }
        })
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.remember(None);
            *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            match self.remove().await {
                Err(err) if self.is_down(&err) => {
                    self.warn_local("clearing the token");
                    Ok(())
                }
                other => other,
            }
        })
    }

    fn lock(&self) -> StoreFuture<'_, StoreLock> {
        Box::pin(async move {
            match self.acquire().await {
                Err(err) if self.is_down(&err) => {
                    let rotates = *self
                        .shared
                        .rotates
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    let why = match rotates {
                        Some(false) => {
                            self.warn_local("refreshing without the fleet lock");
                            return Ok(StoreLock::none());
                        }
                        Some(true) => "this grant rotates its refresh token",
                        None => {
                            "this process has not yet seen whether this grant rotates its \
                                 refresh token"
                        }
                    };
                    Err(Error::new(
                        ErrorKind::Store,
                        format!(
                            "the Redis token store is unreachable and {why}: local-only mode \
                             never refreshes a rotating grant without the fleet lock (another \
                             replica could present the same token and the server revoke the \
                             grant); waiting for Redis"
                        ),
                    )
                    .with_source(err))
                }
                other => other,
            }
        })
    }
}

impl SharedCooldown for RedisStore {
    fn publish(&self, until: SystemTime) {
        {
            let mut hold = self.shared.hold.lock().unwrap_or_else(|e| e.into_inner());
            *hold = (*hold).max(Some(until));
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(left) = until.duration_since(SystemTime::now()) else {
            return;
        };
        let until_ms = until
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let this = self.clone();
        runtime.spawn(async move {
            let Ok(mut conn) = this.conn().await else {
                return;
            };
            let published: redis::RedisResult<i64> = Script::new(HOLD)
                .key(this.key_name("hold"))
                .arg(until_ms)
                .arg((left.as_millis() as u64).max(1))
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = published {
                tracing::warn!(target: "authed::retry", error = %e, "could not publish the hold to the fleet");
            }
        });
    }

    fn held_until(&self) -> Option<SystemTime> {
        self.poll_hold();
        let until = *self.shared.hold.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|u| *u > SystemTime::now())
    }
}

/// The store's connection manager, made on first use (lazily connected).
async fn connect(target: &Target, shared: &Shared) -> Result<ConnectionManager> {
    let Target::Url(client, _) = target else {
        return shared
            .conn
            .get()
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::Store, "no Redis connection manager"));
    };
    shared
        .conn
        .get_or_try_init(|| async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(2)))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_lazy_with_config((**client).clone(), config)
                .map_err(|e| redis_error("connect to", e))
        })
        .await
        .cloned()
}

/// Whether `err` says Redis could not be reached (as opposed to refusing or failing a command).
fn is_unreachable(err: &Error) -> bool {
    use std::error::Error as _;
    err.source()
        .and_then(|s| s.downcast_ref::<redis::RedisError>())
        .is_some_and(|e| {
            e.is_io_error()
                || e.is_timeout()
                || e.is_connection_refusal()
                || e.is_connection_dropped()
        })
}

/// Writes back the record saved while Redis was unreachable, if any (see [`WRITE_BACK`]).
async fn write_back(conn: &mut ConnectionManager, shared: &Shared) -> redis::RedisResult<()> {
    let Some(pending) = shared
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    else {
        return Ok(());
    };
    let written: i64 = Script::new(WRITE_BACK)
        .key(&pending.key)
        .arg(&pending.expected)
        .arg(&pending.fp)
        .arg(&pending.sealed)
        .invoke_async(conn)
        .await?;
    {
        let mut slot = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|p| p.sealed == pending.sealed) {
            *slot = None;
        }
    }
    match written {
        1 => {
            tracing::warn!(target: "authed::auth", "Redis answers again: wrote back the token record kept while it was unreachable")
        }
        2 => {}
        _ => {
            tracing::error!(target: "authed::auth", "Redis answers again, but another client replaced the refresh token meanwhile: the record kept while Redis was unreachable is dropped")
        }
    }
    Ok(())
}

/// The compare-and-swap identity of a refresh token: its full SHA-256, never the token.
fn cas_id(token: &RefreshToken) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.expose_secret().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn redis_error(what: &str, source: redis::RedisError) -> Error {
    let why = if source.kind() == redis::ErrorKind::AuthenticationFailed
        || source.code() == Some("WRONGPASS")
        || source.code() == Some("NOAUTH")
    {
        ": Redis refused the credentials (check the ACL user and password of the token store URL)"
    } else if source.code() == Some("NOPERM") {
        ": the Redis ACL user of the token store URL lacks a permission (see docs/fleet.md)"
    } else if source.to_string().contains("certificate") {
        ": the TLS handshake failed (the server's certificate is not trusted: set \
         TOKEN_STORE_CA to the CA that signed it)"
    } else {
        ""
    };
    Error::new(
        ErrorKind::Store,
        format!("the Redis token store could not {what} the token record{why}"),
    )
    .with_source(source)
}

/// A held lease: renewed in the background, released by compare-and-delete on drop.
struct Lease {
    conn: ConnectionManager,
    key: String,
    owner: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Without a runtime the lease simply expires.
            return;
        };
        let (mut conn, key, owner) = (self.conn.clone(), self.key.clone(), self.owner.clone());
        runtime.spawn(async move {
            let released: redis::RedisResult<i64> = Script::new(RELEASE)
                .key(key)
                .arg(owner)
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = released {
                tracing::warn!(target: "authed::auth", error = %e, "could not release the Redis token lock; it expires with its lease");
            }
        });
    }
}

async fn renew(mut conn: ConnectionManager, key: String, owner: String, lease: Duration) {
    let lease_ms = lease.as_millis() as u64;
    loop {
        tokio::time::sleep(lease / 3).await;
        let renewed: redis::RedisResult<i64> = Script::new(RENEW)
            .key(&key)
            .arg(&owner)
            .arg(lease_ms)
            .invoke_async(&mut conn)
            .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                tracing::error!(target: "authed::auth", "the Redis token lock expired while held (this process stalled for longer than its lease): another client may refresh at the same time");
                return;
            }
            Err(e) => {
                tracing::warn!(target: "authed::auth", error = %e, "could not renew the Redis token lock");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rt: &str) -> StoredTokens {
        StoredTokens::new(RefreshToken::new(rt), Some("seed".into()))
    }

    #[test]
    fn sealed_records_round_trip_and_a_wrong_secret_is_a_clear_store_error() {
        let url = "redis://:pw-secret@127.0.0.1:1/0";
        let store = RedisStore::from_url(url)
            .unwrap()
            .key_prefix("p")
            .encryption_secret("key-a");
        let sealed = store.seal(&record("rt-secret-value").to_json()).unwrap();
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.contains("rt-secret-value"));
        // A random nonce per write: the same record never seals the same way twice.
        assert_ne!(
            sealed,
            store.seal(&record("rt-secret-value").to_json()).unwrap()
        );
        let back = store.open(&sealed).unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "rt-secret-value");

        let wrong = RedisStore::from_url(url)
            .unwrap()
            .key_prefix("p")
            .encryption_secret("key-b");
        let moved = RedisStore::from_url(url)
            .unwrap()
            .key_prefix("other")
            .encryption_secret("key-a");
        let plain = RedisStore::from_url(url).unwrap().key_prefix("p");
        for (store, stored, expect) in [
            (&wrong, sealed.as_str(), "wrong encryption secret"),
            (&moved, sealed.as_str(), "wrong encryption secret"),
            (&plain, sealed.as_str(), "configure its secret"),
            (&wrong, "enc1:!!not base64", "wrong encryption secret"),
            (
                &store,
                r#"{"refresh_token":"rt-secret-value"}"#,
                "not encrypted",
            ),
        ] {
            let err = store.open(stored).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Store);
            assert!(err.to_string().contains(expect), "{err}");
            assert!(!format!("{err} {err:?}").contains("rt-secret-value"));
        }
    }

    #[tokio::test]
    async fn the_url_never_shows_and_an_unreachable_redis_fails_closed_with_a_store_error() {
        let store = RedisStore::from_url("redis://app:pw-secret@127.0.0.1:1/0")
            .unwrap()
            .lock_wait(Duration::from_millis(100));
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("pw-secret") && !shown.contains("127.0.0.1"),
            "{shown}"
        );
        for err in [
            store.load().await.unwrap_err(),
            store.lock().await.unwrap_err(),
            store.save(None, &record("rt-x")).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Store);
            assert!(!format!("{err} {err:?}").contains("pw-secret"), "{err:?}");
        }
        let err = RedisStore::from_url("redis://app:pw-secret@[::1/0").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!format!("{err} {err:?}").contains("pw-secret"));
        assert!(RedisStore::from_url("http://example.com").is_err());
    }

    #[tokio::test]
    async fn local_only_mode_serves_the_last_record_when_redis_is_down() {
        let store = RedisStore::from_url("redis://127.0.0.1:1/0")
            .unwrap()
            .local_only_when_down(true);
        assert!(store.load().await.unwrap().is_none());
        // A refresh that kept its refresh token: the grant does not rotate.
        let seed = RefreshToken::new("rt-local");
        let kept = StoredTokens::new(seed.clone(), Some(super::super::fingerprint(&seed)));
        store.save(None, &kept).await.unwrap();
        assert!(store.is_pending(), "kept to be written back");
        let back = store.load().await.unwrap().unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "rt-local");
        let _lock = store.lock().await.unwrap();
    }

    #[tokio::test]
    async fn local_only_mode_never_refreshes_a_rotating_or_unknown_grant_without_the_lock() {
        let fresh = || {
            RedisStore::from_url("redis://127.0.0.1:1/0")
                .unwrap()
                .local_only_when_down(true)
        };
        // Not yet known: refused.
        let unknown = fresh();
        let err = unknown.lock().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(err.to_string().contains("not yet seen"), "{err}");
        // Seen to rotate: refused, even after a later save that kept the token.
        let rotating = fresh();
        rotating
            .save(Some(&RefreshToken::new("rt-1")), &record("rt-2"))
            .await
            .unwrap();
        rotating
            .save(Some(&RefreshToken::new("rt-2")), &record("rt-2"))
            .await
            .unwrap();
        let err = rotating.lock().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(err.to_string().contains("rotates"), "{err}");
        assert!(!format!("{err:?}").contains("rt-2"));
    }
}
