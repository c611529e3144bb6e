//! The access token cache: single-flight refresh over any [`TokenSource`], a refresh window
//! with jitter, early refresh in the background, and a mandatory window before expiry.
//!
//! ```text
//!  issued                 refresh_at              must_refresh_at   expires_at
//!    |------- fresh ---------|--- refresh window -------|-- mandatory --|---- expired ---->
//!    serve cached token      serve cached token,        callers wait for the one refresh
//!                            one background refresh     in flight (too close to send)
//! ```
//!
//! - **One refresh at a time.** The refresh runs in its own spawned task and every caller that
//!   needs it awaits the same shared future, so N concurrent callers cause one token request,
//!   and a caller that is cancelled cannot lose a rotated refresh token half-way. A refresh that
//!   fails in any way — an error, a panic in a store or source — is cleared, never left "in
//!   flight".
//! - **A token before its refresh window is read without a lock**: the cached token is kept
//!   in an `ArcSwapOption`, written only with the state lock held. Nearly every request reads
//!   it so, and requests on different threads never wait on each other for it.
//! - **The refresh window scales with the lifetime**: 10 % of it, at least 5 s and at most 5 min,
//!   never more than half of it, plus up to 25 % jitter so that many clients do not refresh in
//!   step. **The mandatory window** is the last half of the refresh window (before jitter), at
//!   most 10 s: a token that close to expiry is not sent (it could expire on the way, or on a
//!   server whose clock runs ahead), callers wait for the new one.
//! - **Lifetimes count from when the token was asked for**, not from when the answer arrived,
//!   so latency never makes the client believe a token lives longer than the server does.
//! - **An early refresh that fails** is logged and retried on a later request, after
//!   [`RETRY_GAP`] or half the remaining lifetime, whichever is shorter; the still-valid token
//!   keeps being served meanwhile. A terminal failure (`invalid_grant`) is remembered: the
//!   client stops presenting a dead refresh token. A source that issues unusable tokens
//!   (already expired, not header-safe) is backed off exponentially instead of being asked on
//!   every call.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwapOption;
use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use reqwest::header::HeaderValue;
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tracing::Instrument;

use super::{AccessToken, Token, TokenSource, endpoint::is_header_safe, jwt};
use crate::{AuthErrorKind, Error, Result, clock::Clock};

/// Longest pause between two early refresh attempts after one failed.
pub(crate) const RETRY_GAP: Duration = Duration::from_secs(10);

/// Longest mandatory window before expiry.
const MANDATORY_MARGIN: Duration = Duration::from_secs(10);

/// A token living less than this is unusable: the source is backed off. Below one second so
/// that an access token shared by a fleet (adopted with part of its lifetime gone) is usable;
/// an `expires_in` of 0 is still refused.
const MIN_LIFETIME: Duration = Duration::from_millis(250);

/// First and longest backoff after a source issued an unusable token.
const BROKEN_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

pub(crate) type RefreshFuture = Shared<BoxFuture<'static, Result<Arc<AccessToken>>>>;

pub(crate) struct TokenCache {
    shared: Arc<CacheInner>,
}

struct CacheInner {
    state: Mutex<State>,
    /// The cached token: written only with `state` locked ([`CacheInner::set_token`]), so
    /// that it changes together with the rest of the state; read without the lock while it
    /// is before its refresh window, where the locked path would only clone it.
    token: ArcSwapOption<AccessToken>,
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    /// Lifetime of a token with no `expires_in` and no JWT `exp`.
    default_lifetime: Duration,
    /// The client's name, in the refresh span and the refresh metrics.
    client: Arc<str>,
}

#[derive(Default)]
struct State {
    in_flight: Option<(u64, RefreshFuture)>,
    /// Refreshes started so far; numbers each refresh and the token it mints.
    refreshes: u64,
    /// After a failed refresh: no early refresh before this time.
    paused_until: Option<Instant>,
    /// The token last rejected by the API: the next refresh replaces it (a source that shares
    /// tokens must not hand it back).
    rejected: Option<Arc<AccessToken>>,
    /// A failure no retry can fix (`invalid_grant`): returned instead of refreshing again.
    terminal: Option<Error>,
    /// The source issued unusable tokens: until then, its error is returned without asking.
    broken: Option<(Instant, Error, u32)>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock_state();
        f.debug_struct("TokenCache")
            .field("source", &self.shared.source)
            .field("token", &*self.shared.token.load())
            .field("refreshing", &state.in_flight.is_some())
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(
        source: Arc<dyn TokenSource>,
        clock: Arc<dyn Clock>,
        default_lifetime: Duration,
    ) -> Self {
        Self {
            shared: Arc::new(CacheInner {
                state: Mutex::default(),
                token: ArcSwapOption::empty(),
                source,
                clock,
                default_lifetime,
                client: Arc::from(""),
            }),
        }
    }

    /// Names the client in the refresh span and metrics (called once, before the cache is
    /// shared).
    pub(crate) fn with_client_name(mut self, name: Arc<str>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.shared) {
            inner.client = name;
        }
        self
    }

    /// The grant's name, for spans.
    pub(crate) fn grant(&self) -> &str {
        self.shared.source.grant()
    }

    /// A token valid now: the cached one, or the result of the (single) refresh in flight.
    pub(crate) async fn current(&self) -> Result<Arc<AccessToken>> {
        match self.now_or_wait() {
            Ok(ready) => ready,
            Err(waiting) => waiting.await,
        }
    }

    /// The cached token (or why there is none) if it can be had without waiting, else the
    /// (single) refresh to wait for: lets a caller tell whether it waited (the send path
    /// bounds only a wait by the request's deadline).
    pub(crate) fn now_or_wait(&self) -> Result<Result<Arc<AccessToken>>, RefreshFuture> {
        self.now_or_wait_at(self.shared.clock.now())
    }

    /// [`now_or_wait`](Self::now_or_wait) at `now`, read from the client's clock by a caller
    /// that needs it for more than the token.
    pub(crate) fn now_or_wait_at(
        &self,
        now: Instant,
    ) -> Result<Result<Arc<AccessToken>>, RefreshFuture> {
        // Before its refresh window, the locked path below would only clone the token: read
        // without the lock (a token invalidated or logged out is no longer there).
        if let Some(token) = &*self.shared.token.load()
            && now < token.refresh_at
        {
            return Ok(Ok(token.clone()));
        }
        Err({
            let mut state = self.shared.lock_state();
            if let Some(token) = self.shared.token.load_full()
                && now < token.must_refresh_at
            {
                if now >= token.refresh_at && state.terminal.is_none() {
                    let paused = state.paused_until.is_some_and(|until| now < until);
                    if state.in_flight.is_none() && !paused {
                        tracing::debug!(target: "authed::auth", "access token in its refresh window; refreshing in the background");
                        drop(self.shared.start_refresh(&mut state, "early"));
                    }
                }
                return Ok(Ok(token));
            }
            if let Some(err) = &state.terminal {
                return Ok(Err(err.clone()));
            }
            match &state.in_flight {
                Some((_, fut)) => fut.clone(),
                None => {
                    if let Some((until, err, _)) = &state.broken
                        && now < *until
                    {
                        return Ok(Err(err.clone()));
                    }
                    let reason = if self.shared.token.load().is_some() {
                        "expired"
                    } else {
                        "first use"
                    };
                    self.shared.start_refresh(&mut state, reason)
                }
            }
        })
    }

    /// Forgets `token` after the API rejected it, unless a newer token already replaced it
    /// (compare-and-invalidate: a late 401 for an old token must not discard a fresh one).
    pub(crate) fn invalidate(&self, token: &AccessToken) {
        let mut state = self.shared.lock_state();
        if self
            .shared
            .token
            .load()
            .as_ref()
            .is_some_and(|t| t.is(token))
        {
            tracing::debug!(target: "authed::auth", generation = token.generation, "access token rejected by the API; invalidated");
            state.rejected = self.shared.set_token(&mut state, None);
        }
    }

    /// Logs out: from now on no token is served or minted, every call returns `error`. Returns
    /// the token held (to revoke it) and the refresh in flight, if any, for the caller to wait
    /// for: its rotated refresh token is saved by then, and its token is never served.
    pub(crate) fn log_out(
        &self,
        error: Error,
    ) -> (Option<Arc<AccessToken>>, Option<RefreshFuture>) {
        let mut state = self.shared.lock_state();
        state.terminal = Some(error);
        state.rejected = None;
        let in_flight = state.in_flight.as_ref().map(|(_, fut)| fut.clone());
        (self.shared.set_token(&mut state, None), in_flight)
    }

    /// Whether a newer token than `token` was minted since (it was superseded while in use).
    pub(crate) fn is_superseded(&self, token: &AccessToken) -> bool {
        let state = self.shared.lock_state();
        state.refreshes > token.generation
            && self
                .shared
                .token
                .load()
                .as_ref()
                .is_none_or(|current| current.generation > token.generation)
    }
}

impl CacheInner {
    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is left consistent at every await-free step, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the cached token and returns the one it replaced. `_locked`, the locked
    /// state, is the proof that the lock is held.
    fn set_token(
        &self,
        _locked: &mut State,
        token: Option<Arc<AccessToken>>,
    ) -> Option<Arc<AccessToken>> {
        self.token.swap(token)
    }

    /// Spawns the refresh task and records it as the one in flight. Called with the state lock.
    fn start_refresh(self: &Arc<Self>, state: &mut State, reason: &'static str) -> RefreshFuture {
        state.refreshes += 1;
        let id = state.refreshes;
        let replacing = self.token.load_full().or_else(|| state.rejected.take());
        let this = self.clone();
        let span = tracing::info_span!(
            target: "authed::auth",
            "token_refresh",
            client = %self.client,
            grant = self.source.grant(),
            reason,
            generation = id
        );
        let task = tokio::spawn(
            async move {
                // Whatever happens in the source or a store, the refresh ends and is cleared.
                let result = AssertUnwindSafe(this.mint(id, replacing))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::auth(
                            AuthErrorKind::Rejected,
                            "the token refresh panicked (in the token source or store)",
                        ))
                    });
                this.publish(id, result)
            }
            .instrument(span),
        );
        let fut = async move {
            task.await.unwrap_or_else(|join| {
                Err(
                    Error::auth(AuthErrorKind::Rejected, "token refresh task failed")
                        .with_source(join),
                )
            })
        }
        .boxed()
        .shared();
        state.in_flight = Some((id, fut.clone()));
        fut
    }

    /// Asks the source for a token and checks it.
    async fn mint(&self, id: u64, replacing: Option<Arc<AccessToken>>) -> Result<Arc<AccessToken>> {
        let asked_at = self.clock.now();
        let asked_at_utc = self.clock.now_utc();
        let token = self.source.fetch(replacing.as_deref()).await?;
        let token = self.accept(token, id, asked_at, asked_at_utc)?;
        tracing::info!(
            target: "authed::auth",
            expires_in_s = token.expires_at.saturating_duration_since(asked_at).as_secs(),
            "access token refreshed"
        );
        Ok(token)
    }

    /// Turns a minted token into a cached one: lifetime, windows, header value.
    fn accept(
        &self,
        token: Token,
        id: u64,
        asked_at: Instant,
        asked_at_utc: SystemTime,
    ) -> Result<Arc<AccessToken>> {
        let unusable = |msg: &str| Error::auth(AuthErrorKind::InvalidResponse, msg.to_owned());
        let secret = token.access_token.expose_secret();
        if secret.is_empty() || !is_header_safe(secret) {
            return Err(unusable(
                "the access token is empty or has characters not allowed in an HTTP header",
            ));
        }
        let lifetime = token
            .expires_in
            .or_else(|| {
                jwt::expiry(secret)
                    .map(|exp| exp.duration_since(asked_at_utc).unwrap_or(Duration::ZERO))
            })
            .unwrap_or(self.default_lifetime);
        if lifetime < MIN_LIFETIME {
            return Err(unusable(
                "the token endpoint issued an access token that is already expired",
            ));
        }
        let mut header = HeaderValue::try_from(format!("Bearer {secret}"))
            .map_err(|_| unusable("the access token is not a valid HTTP header value"))?;
        header.set_sensitive(true);
        let expires_at = asked_at + lifetime;
        Ok(Arc::new(AccessToken {
            secret: token.access_token,
            header,
            expires_at,
            refresh_at: expires_at - refresh_margin(lifetime, fastrand::f64()),
            must_refresh_at: expires_at - mandatory_margin(lifetime),
            generation: id,
            scope: token.scope,
        }))
    }

    /// Records the outcome of refresh `id` in the state.
    fn publish(&self, id: u64, result: Result<Arc<AccessToken>>) -> Result<Arc<AccessToken>> {
        let mut state = self.lock_state();
        if state
            .in_flight
            .as_ref()
            .is_some_and(|(current, _)| *current == id)
        {
            state.in_flight = None;
        }
        let now = self.clock.now();
        #[cfg(feature = "metrics")]
        crate::metrics::refresh(&self.client, result.is_ok());
        // Logged out while this refresh ran (`log_out`): its token is never served.
        if result.is_ok()
            && let Some(logged_out) = &state.terminal
        {
            return Err(logged_out.clone());
        }
        match &result {
            Ok(token) => {
                self.set_token(&mut state, Some(token.clone()));
                state.paused_until = None;
                state.broken = None;
            }
            Err(err) => {
                tracing::warn!(target: "authed::auth", error = %err, "token refresh failed");
                let left = self.token.load().as_ref().map_or(Duration::ZERO, |t| {
                    t.expires_at.saturating_duration_since(now)
                });
                state.paused_until = Some(now + RETRY_GAP.min(left / 2));
                if err.is_reauth_required() {
                    state.terminal = Some(err.clone());
                }
                if err.kind() == crate::ErrorKind::Auth(AuthErrorKind::InvalidResponse) {
                    let failures = state.broken.as_ref().map_or(0, |(_, _, n)| *n) + 1;
                    let wait = BROKEN_BACKOFF
                        .0
                        .saturating_mul(1 << failures.min(16).saturating_sub(1))
                        .min(BROKEN_BACKOFF.1);
                    state.broken = Some((now + wait, err.clone(), failures));
                }
            }
        }
        result
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

/// How long before expiry a token is no longer sent: half the refresh margin (before jitter),
/// at most 10 s.
pub(crate) fn mandatory_margin(lifetime: Duration) -> Duration {
    (refresh_margin(lifetime, 0.0) / 2).min(MANDATORY_MARGIN)
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

    #[test]
    fn mandatory_window_is_inside_the_refresh_window() {
        for secs in [1, 2, 10, 20, 49, 50, 60, 600, 3600, 86_400] {
            let lifetime = Duration::from_secs(secs);
            let mandatory = mandatory_margin(lifetime);
            assert!(mandatory <= refresh_margin(lifetime, 0.0), "{secs}");
            assert!(mandatory <= MANDATORY_MARGIN, "{secs}");
        }
        assert_eq!(
            mandatory_margin(Duration::from_secs(3600)),
            MANDATORY_MARGIN
        );
    }
}
