//! The `refresh_token` grant (RFC 6749 §6), with rotation and the store as the source of truth.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use secrecy::{ExposeSecret, SecretString};

use super::Params;
use crate::{
    AuthErrorKind, Error, ErrorKind, RefreshToken, Result,
    auth::{
        AccessToken, Replay, Token, TokenEndpoint, TokenFuture, TokenSource, jwt,
        redact::Redactor,
        store::{RefreshTokenStore, SharedAccessToken, StoreLock, StoredTokens, fingerprint},
    },
};

/// A shared access token is adopted only with at least this much left (less than the whole
/// lifetime of short-lived tokens, so that a fleet can share a 1 s token).
const ADOPT_MIN_LEFT: Duration = Duration::from_millis(250);

/// Mints tokens with a refresh token, following the store protocol of
/// [`crate::auth::store`]: lock, re-read, adopt or refresh, save with compare-and-swap.
#[derive(Debug)]
pub(crate) struct RefreshTokenGrant {
    pub(crate) endpoint: TokenEndpoint,
    /// The configured refresh token (environment or builder), and its fingerprint.
    pub(crate) seed: Option<(RefreshToken, String)>,
    pub(crate) store: Arc<dyn RefreshTokenStore>,
    pub(crate) scope: Option<String>,
    pub(crate) params: Params,
    /// Bound on every store call: a store that never answers must not hang the client.
    pub(crate) store_timeout: Duration,
    pub(crate) store_error: Arc<Mutex<Option<Error>>>,
    pub(crate) redactor: Redactor,
    /// A rotated token whose save failed, with the token it replaced: presented (and saved
    /// again) next time while the store still holds the replaced one.
    pub(crate) unsaved: Mutex<Option<(RefreshToken, RefreshToken)>>,
    pub(crate) warned_ephemeral: AtomicBool,
}

impl RefreshTokenGrant {
    pub(crate) fn new(
        endpoint: TokenEndpoint,
        seed: Option<RefreshToken>,
        store: Arc<dyn RefreshTokenStore>,
        scope: Option<String>,
        params: Params,
        store_timeout: Duration,
        redactor: Redactor,
    ) -> Self {
        if let Some(seed) = &seed {
            redactor.add(seed.expose_secret());
        }
        Self {
            endpoint,
            seed: seed.map(|t| {
                let id = fingerprint(&t);
                (t, id)
            }),
            store,
            scope,
            params,
            store_timeout,
            store_error: Arc::default(),
            redactor,
            unsaved: Mutex::new(None),
            warned_ephemeral: AtomicBool::new(false),
        }
    }

    /// Runs a store call under the store timeout.
    async fn store_call<T>(&self, what: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let result = match tokio::time::timeout(self.store_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Store,
                format!(
                    "the refresh token store did not {what} within {:?}",
                    self.store_timeout
                ),
            )),
        };
        if let Err(err) = &result {
            tracing::error!(target: "authed::auth", error = %err, "refresh token store failed");
            *self.store_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.clone());
        }
        result
    }

    async fn mint(&self, replacing: Option<&AccessToken>) -> Result<Token> {
        let _lock = self.store_call("lock", self.store.lock()).await?;
        let record = self.store_call("load", self.store.load()).await?;
        let now_utc = self.endpoint.clock().now_utc();

        if let Some(token) = record
            .as_ref()
            .filter(|r| self.is_ours(r))
            .and_then(|r| adoptable(r.access_token.as_ref()?, replacing, now_utc))
        {
            tracing::debug!(target: "authed::auth", "adopted the access token another client stored");
            return Ok(token);
        }
        let (presented, expected) = self.choose(record.as_ref())?;
        self.redactor.add(presented.expose_secret());

        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", presented.expose_secret()),
        ];
        form.extend(self.scope.as_deref().map(|s| ("scope", s)));
        form.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let response = self
            .endpoint
            .request(&form, &[presented.expose_secret()], Replay::NotConsumed)
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) if err.kind() == ErrorKind::Auth(AuthErrorKind::InvalidGrant) => {
                return Err(self.forget(err, expected.is_some()).await);
            }
            Err(err) => return Err(err),
        };

        let rotated = response
            .refresh_token
            .as_ref()
            .filter(|t| !t.is_same(&presented))
            .cloned();
        if let Some(rotated) = &rotated {
            self.redactor.add(rotated.expose_secret());
            if !self.store.is_persistent() && !self.warned_ephemeral.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    target: "authed::auth",
                    "the token endpoint rotated the refresh token, and the token store keeps it \
                     in memory only: after a restart this process will present the retired token \
                     and the server may revoke the grant. Configure a persistent store \
                     (AUTHED_TOKEN_STORE=file:/path/to/token.json, or ClientBuilder::token_store)"
                );
            }
        }
        let next = rotated.clone().unwrap_or_else(|| presented.clone());
        let mut token = Token::from(response);
        token.scope = token.scope.or_else(|| self.scope.clone());

        let mut record =
            StoredTokens::new(next.clone(), self.seed.as_ref().map(|(_, id)| id.clone()));
        if let Some(expires_at) = absolute_expiry(&token, now_utc) {
            record = record.with_access_token(SharedAccessToken {
                token: SecretString::from(token.access_token.expose_secret().to_owned()),
                expires_at,
                scope: token.scope.clone(),
            });
        }
        let saved = self
            .store_call("save", self.store.save(expected.as_ref(), &record))
            .await;
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        match saved {
            Ok(()) => {
                *unsaved = None;
                *self.store_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            // The rotated token lives on in memory and is presented (and saved) next time.
            Err(_) if rotated.is_some() => {
                // Keep the token the store still holds as the one replaced, across failed saves.
                let replaced = match &*unsaved {
                    Some((replaced, previous)) if previous.is_same(&presented) => replaced.clone(),
                    _ => presented,
                };
                *unsaved = Some((replaced, next));
            }
            Err(_) => {}
        }
        Ok(token)
    }

    /// Whether a record descends from the configured token (or nothing is configured).
    fn is_ours(&self, record: &StoredTokens) -> bool {
        match (&self.seed, &record.seed) {
            (Some((_, seed)), Some(record_seed)) => seed == record_seed,
            _ => true,
        }
    }

    /// The token to present, and the token the store holds now (for compare-and-swap).
    fn choose(
        &self,
        record: Option<&StoredTokens>,
    ) -> Result<(RefreshToken, Option<RefreshToken>)> {
        let stored = record.map(|r| r.refresh_token.clone());
        let chosen = match (record, &self.seed) {
            (Some(record), Some((seed, _))) if !self.is_ours(record) => {
                tracing::info!(target: "authed::auth", "the configured refresh token differs from the one the store was seeded from: a new login; the store is reset to it");
                seed.clone()
            }
            (Some(record), _) => record.refresh_token.clone(),
            (None, Some((seed, _))) => seed.clone(),
            (None, None) => {
                return Err(Error::config(
                    "no refresh token: none is configured and the token store holds none",
                ));
            }
        };
        // A rotation whose save failed: the store still holds (or would yield) the token it
        // replaced, which the server has retired; present the rotated one instead.
        let unsaved = self
            .unsaved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match unsaved {
            Some((replaced, rotated)) if replaced.is_same(&chosen) => Ok((rotated, stored)),
            _ => Ok((chosen, stored)),
        }
    }

    /// Starts a logout (`auth/revoke.rs`): takes the store's lock, which the caller holds
    /// while it revokes and until [`end_log_out`](Self::end_log_out), and returns the refresh
    /// token in force (stored, rotated in memory, or configured) and the access token the
    /// store shares, if any.
    pub(crate) async fn begin_log_out(
        &self,
    ) -> Result<(StoreLock, Option<RefreshToken>, Option<SecretString>)> {
        let lock = self.store_call("lock", self.store.lock()).await?;
        let record = self.store_call("load", self.store.load()).await?;
        let refresh_token = self.choose(record.as_ref()).ok().map(|(token, _)| token);
        let shared = record
            .and_then(|r| r.access_token)
            .map(|t| SecretString::from(t.token.expose_secret().to_owned()));
        Ok((lock, refresh_token, shared))
    }

    /// Ends a logout: clears the store and forgets a rotated token kept in memory.
    pub(crate) async fn end_log_out(&self) -> Result<()> {
        *self.unsaved.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.store_call("clear", self.store.clear()).await
    }

    /// After `invalid_grant`: clears the dead token from the store and says so.
    async fn forget(&self, err: Error, from_store: bool) -> Error {
        if !from_store {
            return err;
        }
        match self.store_call("clear", self.store.clear()).await {
            Ok(()) => err.with_message(
                "the refresh token was rejected (invalid_grant) and has been cleared from the \
                 token store: re-authentication required",
            ),
            Err(_) => err,
        }
    }
}

impl TokenSource for RefreshTokenGrant {
    fn fetch<'a>(&'a self, replacing: Option<&'a AccessToken>) -> TokenFuture<'a> {
        Box::pin(self.mint(replacing))
    }

    fn grant(&self) -> &str {
        "refresh_token"
    }
}

/// The shared access token, if it is another one than `replacing` and has time left.
fn adoptable(
    shared: &SharedAccessToken,
    replacing: Option<&AccessToken>,
    now_utc: SystemTime,
) -> Option<Token> {
    let left = shared.expires_at.duration_since(now_utc).ok()?;
    let same = replacing.is_some_and(|t| t.expose_secret() == shared.token.expose_secret());
    if same || left < ADOPT_MIN_LEFT {
        return None;
    }
    let mut token = Token::new(shared.token.expose_secret(), Some(left));
    token.scope = shared.scope.clone();
    Some(token)
}

/// When `token` expires on the wall clock, if its lifetime is known (`expires_in` or a JWT).
fn absolute_expiry(token: &Token, now_utc: SystemTime) -> Option<SystemTime> {
    match token.expires_in {
        Some(lifetime) => now_utc.checked_add(lifetime),
        None => jwt::expiry(token.access_token.expose_secret()),
    }
}

use std::future::Future;
