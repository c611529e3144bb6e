//! The access token cache: single-flight refresh, refresh window with jitter, early refresh
//! in the background.
//!
//! ```text
//!  issued                      refresh_at              expires_at
//!    |--------- fresh ------------|---- refresh window ----|---- expired ---->
//!    serve cached token           serve cached token,       callers wait for the
//!                                 one background refresh    one refresh in flight
//! ```
//!
//! - **One refresh at a time.** The refresh runs in its own spawned task and every caller that
//!   needs it awaits the same shared future, so N concurrent callers cause one token request,
//!   and a caller that is cancelled cannot lose a rotated refresh token half-way.
//! - **The window scales with the lifetime**: 10 % of it, at least 5 s and at most 5 min, never
//!   more than half of it, plus up to 25 % jitter so that many clients do not refresh in step.
//! - **An early refresh that fails** is logged and retried on a later request, after
//!   [`RETRY_GAP`] or half the remaining lifetime, whichever is shorter; the still-valid token
//!   keeps being served meanwhile. A terminal failure
//!   (`invalid_grant`) is remembered: the client stops presenting a dead refresh token.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::Instrument;

use super::{AccessToken, Clock, store::RefreshTokenStore};
use crate::{Error, RefreshToken, Result};

/// Longest pause between two early refresh attempts after one failed.
pub(crate) const RETRY_GAP: Duration = Duration::from_secs(10);

type RefreshFuture = Shared<BoxFuture<'static, Result<Arc<AccessToken>>>>;

/// Sends one token request and returns the parsed response. Implemented by the transport,
/// which adds retries and the shared HTTP client.
pub(crate) type Fetch = Arc<
    dyn Fn(RefreshToken) -> BoxFuture<'static, Result<super::refresh::TokenResponse>> + Send + Sync,
>;

pub(crate) struct TokenCache {
    shared: Arc<CacheInner>,
}

struct CacheInner {
    state: Mutex<State>,
    /// The refresh token to present next; replaced on rotation.
    refresh_token: Mutex<RefreshToken>,
    store: Arc<dyn RefreshTokenStore>,
    fetch: Fetch,
    clock: Arc<dyn Clock>,
    /// The last store failure, for [`crate::Client::store_error`].
    store_error: Mutex<Option<Error>>,
}

#[derive(Default)]
struct State {
    token: Option<Arc<AccessToken>>,
    in_flight: Option<(u64, RefreshFuture)>,
    /// Refreshes started so far; numbers each refresh and the token it mints.
    refreshes: u64,
    /// After a failed refresh: no early refresh before this time.
    paused_until: Option<Instant>,
    /// A failure no retry can fix (`invalid_grant`): returned instead of refreshing again.
    terminal: Option<Error>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock_state();
        f.debug_struct("TokenCache")
            .field("token", &state.token)
            .field("refreshing", &state.in_flight.is_some())
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(
        refresh_token: RefreshToken,
        store: Arc<dyn RefreshTokenStore>,
        fetch: Fetch,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            shared: Arc::new(CacheInner {
                state: Mutex::default(),
                refresh_token: Mutex::new(refresh_token),
                store,
                fetch,
                clock,
                store_error: Mutex::new(None),
            }),
        }
    }

    /// A token valid now: the cached one, or the result of the (single) refresh in flight.
    pub(crate) async fn current(&self) -> Result<Arc<AccessToken>> {
        let waiting = {
            let mut state = self.shared.lock_state();
            let now = self.shared.clock.now();
            match &state.token {
                Some(token) if now < token.expires_at => {
                    let token = token.clone();
                    if now >= token.refresh_at && state.terminal.is_none() {
                        let paused = state.paused_until.is_some_and(|until| now < until);
                        if state.in_flight.is_none() && !paused {
                            tracing::debug!(target: "authed::auth", "access token in its refresh window; refreshing in the background");
                            drop(self.shared.start_refresh(&mut state, "early"));
                        }
                    }
                    return Ok(token);
                }
                _ => {}
            }
            if let Some(err) = &state.terminal {
                return Err(err.clone());
            }
            match &state.in_flight {
                Some((_, fut)) => fut.clone(),
                None => {
                    let reason = if state.token.is_some() {
                        "expired"
                    } else {
                        "first use"
                    };
                    self.shared.start_refresh(&mut state, reason)
                }
            }
        };
        waiting.await
    }

    /// Forgets `token` after the API rejected it, unless a newer token already replaced it
    /// (compare-and-invalidate: a late 401 for an old token must not discard a fresh one).
    pub(crate) fn invalidate(&self, token: &AccessToken) {
        let mut state = self.shared.lock_state();
        if state
            .token
            .as_ref()
            .is_some_and(|t| t.generation == token.generation)
        {
            tracing::debug!(target: "authed::auth", generation = token.generation, "access token rejected by the API; invalidated");
            state.token = None;
        }
    }

    pub(crate) fn store_error(&self) -> Option<Error> {
        self.shared
            .store_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl CacheInner {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is left consistent at every await-free step, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawns the refresh task and records it as the one in flight. Called with the state lock.
    fn start_refresh(self: &Arc<Self>, state: &mut State, reason: &'static str) -> RefreshFuture {
        state.refreshes += 1;
        let id = state.refreshes;
        let this = self.clone();
        let span =
            tracing::info_span!(target: "authed::auth", "token_refresh", reason, generation = id);
        let task = tokio::spawn(async move { this.refresh(id).await }.instrument(span));
        let fut = async move {
            task.await.unwrap_or_else(|join| {
                Err(Error::new(
                    crate::ErrorKind::Auth(crate::AuthErrorKind::Rejected),
                    "token refresh task failed",
                )
                .with_source(join))
            })
        }
        .boxed()
        .shared();
        state.in_flight = Some((id, fut.clone()));
        fut
    }

    /// The body of the refresh task: fetch, persist a rotated refresh token, publish.
    async fn refresh(self: Arc<Self>, id: u64) -> Result<Arc<AccessToken>> {
        let presented = self
            .refresh_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let result = (self.fetch)(presented).await;
        let result = match result {
            Ok(response) => {
                if let Some(rotated) = &response.refresh_token {
                    self.rotate(rotated).await;
                }
                let now = self.clock.now();
                let lifetime = response.lifetime;
                let token = Arc::new(AccessToken {
                    secret: response.access_token,
                    expires_at: now + lifetime,
                    refresh_at: now + lifetime - refresh_margin(lifetime, fastrand::f64()),
                    generation: id,
                    scope: response.scope,
                });
                tracing::info!(
                    target: "authed::auth",
                    expires_in_s = lifetime.as_secs(),
                    rotated = response.refresh_token.is_some(),
                    "access token refreshed"
                );
                Ok(token)
            }
            Err(err) => {
                tracing::warn!(target: "authed::auth", error = %err, "token refresh failed");
                Err(err)
            }
        };
        let mut state = self.lock_state();
        if state
            .in_flight
            .as_ref()
            .is_some_and(|(current, _)| *current == id)
        {
            state.in_flight = None;
        }
        match &result {
            Ok(token) => {
                state.token = Some(token.clone());
                state.paused_until = None;
            }
            Err(err) => {
                let now = self.clock.now();
                let left = state.token.as_ref().map_or(Duration::ZERO, |t| {
                    t.expires_at.saturating_duration_since(now)
                });
                state.paused_until = Some(now + RETRY_GAP.min(left / 2));
                if err.is_reauth_required() {
                    state.terminal = Some(err.clone());
                }
            }
        }
        result
    }

    /// Hands a rotated refresh token to the store, then makes it the one presented next.
    /// A store failure is reported but does not stop the client (the token lives in memory).
    async fn rotate(&self, rotated: &RefreshToken) {
        let unchanged = self
            .refresh_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_same(rotated);
        if unchanged {
            return;
        }
        let saved = self.store.save(rotated).await;
        if let Err(err) = &saved {
            tracing::error!(target: "authed::auth", error = %err, "could not persist the rotated refresh token; keeping it in memory");
        }
        *self.store_error.lock().unwrap_or_else(|e| e.into_inner()) = saved.err();
        *self.refresh_token.lock().unwrap_or_else(|e| e.into_inner()) = rotated.clone();
    }
}

/// How long before expiry to refresh: 10 % of the lifetime clamped to [5 s, 5 min], at most
/// half the lifetime, stretched by up to 25 % with `jitter` in [0, 1).
pub(crate) fn refresh_margin(lifetime: Duration, jitter: f64) -> Duration {
    let base = lifetime
        .mul_f64(0.1)
        .clamp(Duration::from_secs(5), Duration::from_secs(300));
    base.mul_f64(1.0 + 0.25 * jitter.clamp(0.0, 1.0))
        .min(lifetime / 2)
}

impl AccessToken {
    /// The header value `Bearer <token>`, marked sensitive (never printed by `http`'s `Debug`).
    pub(crate) fn header_value(&self) -> Result<reqwest::header::HeaderValue> {
        let mut value = reqwest::header::HeaderValue::try_from(format!(
            "Bearer {}",
            self.secret.expose_secret()
        ))
        .map_err(|_| {
            Error::auth(
                crate::AuthErrorKind::InvalidResponse,
                "the access token contains characters not allowed in an HTTP header",
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    pub(crate) fn secret(&self) -> &SecretString {
        &self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_scales_with_lifetime() {
        let s = Duration::from_secs;
        assert_eq!(refresh_margin(s(3600), 0.0), s(300));
        assert_eq!(
            refresh_margin(s(3600), 0.999),
            s(300).mul_f64(1.0 + 0.25 * 0.999)
        );
        assert_eq!(refresh_margin(s(600), 0.0), s(60));
        assert_eq!(refresh_margin(s(60), 0.0), s(6));
        assert_eq!(refresh_margin(s(20), 0.0), s(5));
        assert_eq!(refresh_margin(s(4), 0.5), s(2));
        assert_eq!(refresh_margin(s(0), 0.5), s(0));
    }
}
