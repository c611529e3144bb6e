//! What the requests of one client share: the cooldown after a 429, the last rate-limit values,
//! the retry budget.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::{Budget, Policy, RateLimit};
use crate::{Error, ErrorKind, Result};

/// Shared by every clone of a [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) struct ClientState {
    state: Mutex<State>,
    /// The budget in thousandths of a retry, so that adding 0.2 five times makes exactly one.
    reserve_milli: u64,
    ratio_milli: u64,
    wait_for_quota_reset: bool,
    /// Holds published to (and read from) the other clients of a fleet, if any.
    shared: Option<Arc<dyn SharedCooldown>>,
}

/// A hold on every request, shared by the clients of a fleet (other processes, other hosts):
/// a 429 `Retry-After` or an exhausted rate-limit quota seen by one client holds them all.
///
/// [`RedisStore`](crate::auth::store::RedisStore) implements it (feature `redis`). Both
/// methods are called on the request path, so they must not wait for I/O: publish in the
/// background, and answer [`held_until`](SharedCooldown::held_until) from a local copy.
pub trait SharedCooldown: fmt::Debug + Send + Sync + 'static {
    /// Tells the fleet that no request should be sent before `until` (wall clock).
    fn publish(&self, until: SystemTime);

    /// Until when the fleet holds requests, as last known (wall clock); `None`: no hold.
    fn held_until(&self) -> Option<SystemTime>;
}

#[derive(Debug)]
struct State {
    /// No request is sent before this (set by a 429 with `Retry-After`).
    cooldown_until: Option<Instant>,
    rate_limit: Option<RateLimit>,
    /// Thousandths of a retry the budget holds now, in `[0, reserve_milli]`.
    balance_milli: u64,
}

impl ClientState {
    pub(crate) fn new(budget: Budget, wait_for_quota_reset: bool) -> Self {
        // `as` saturates: an infinite reserve becomes u64::MAX, which never runs out in practice.
        let reserve_milli = (budget.reserve * 1000.0) as u64;
        Self {
            state: Mutex::new(State {
                cooldown_until: None,
                rate_limit: None,
                balance_milli: reserve_milli,
            }),
            reserve_milli,
            ratio_milli: (budget.ratio * 1000.0).round() as u64,
            wait_for_quota_reset,
            shared: None,
        }
    }

    /// Shares cooldowns and quota holds with a fleet (see [`SharedCooldown`]).
    pub(crate) fn with_shared_cooldown(mut self, shared: Option<Arc<dyn SharedCooldown>>) -> Self {
        self.shared = shared;
        self
    }

    /// Publishes a hold that ends at `until` (a monotonic instant) to the fleet, if any.
    fn publish(&self, until: Instant) {
        if let Some(shared) = &self.shared {
            let left = until.saturating_duration_since(Instant::now());
            shared.publish(SystemTime::now() + left);
        }
    }

    /// The fleet's hold as a monotonic instant, if it is still running.
    fn fleet_hold(&self, now: Instant) -> Option<Instant> {
        let until = self.shared.as_ref()?.held_until()?;
        let left = until.duration_since(SystemTime::now()).ok()?;
        Some(now + left)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single assignment, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        self.lock().rate_limit.clone()
    }

    /// Remembers the rate-limit headers of an API response, if it has any.
    pub(crate) fn observe(&self, headers: &HeaderMap, now_utc: SystemTime) {
        if let Some(seen) = RateLimit::from_headers(headers, now_utc, Instant::now()) {
            let exhausted = seen
                .exhausted_until(Instant::now())
                .filter(|_| self.wait_for_quota_reset);
            self.lock().rate_limit = Some(seen);
            if let Some(until) = exhausted {
                self.publish(until);
            }
        }
    }

    /// Holds every request of the client for `wait` (a 429 asked for it).
    pub(crate) fn cool_down(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.lock();
        if state.cooldown_until.is_none_or(|current| current < until) {
            tracing::info!(target: "authed::retry", wait_ms = wait.as_millis() as u64, "429 with Retry-After: holding every request of this client");
            state.cooldown_until = Some(until);
            drop(state);
            self.publish(until);
        }
    }

    /// Waits until no cooldown and no exhausted quota holds requests back. A hold longer than
    /// the policy's `max_retry_after` fails at once with [`ErrorKind::RateLimited`].
    pub(crate) async fn wait_turn(&self, policy: &Policy, what: &str) -> Result<()> {
        loop {
            let now = Instant::now();
            let (until, why) = {
                let state = self.lock();
                let fleet = self.fleet_hold(now);
                let cooldown = state.cooldown_until.filter(|until| *until > now).max(fleet);
                let quota = state
                    .rate_limit
                    .as_ref()
                    .filter(|_| self.wait_for_quota_reset)
                    .and_then(|limit| limit.exhausted_until(now));
                match (cooldown, quota) {
                    (Some(c), Some(q)) if q > c => (q, "the rate-limit quota is used up"),
                    (Some(c), _) => (c, "the server answered 429 with Retry-After"),
                    (None, Some(q)) => (q, "the rate-limit quota is used up"),
                    (None, None) => return Ok(()),
                }
            };
            let wait = until - now;
            if wait > policy.max_retry_after {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!("{what} was not sent: {why} for another {wait:.1?}, longer than the retry policy waits"),
                )
                .with_retry_after(Some(wait)));
            }
            tracing::debug!(target: "authed::retry", wait_ms = wait.as_millis() as u64, reason = why, "holding the request");
            tokio::time::sleep_until(until).await;
        }
    }

    /// Credits the budget for one request.
    pub(crate) fn deposit(&self) {
        let mut state = self.lock();
        state.balance_milli = state
            .balance_milli
            .saturating_add(self.ratio_milli)
            .min(self.reserve_milli);
    }

    /// Takes one retry from the budget; `false` when it is empty.
    pub(crate) fn withdraw(&self) -> bool {
        let mut state = self.lock();
        let allowed = state.balance_milli >= 1000;
        if allowed {
            state.balance_milli -= 1000;
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_allows_reserve_plus_ratio_per_request() {
        let state = ClientState::new(Budget::default(), true);
        let mut retries = 0;
        for _ in 0..30 {
            state.deposit();
            retries += (0..2).filter(|_| state.withdraw()).count();
        }
        // 10 in reserve (full, so the first deposit is lost), then exactly one retry per 5
        // requests: 0.2 is kept in thousandths, so there is no float drift.
        assert_eq!(retries, 10 + 5);
        assert!(retries as f64 <= 10.0 + 0.2 * 30.0);
    }

    #[test]
    fn unlimited_budget_never_runs_out() {
        let state = ClientState::new(Budget::unlimited(), true);
        assert!((0..10_000).all(|_| state.withdraw()));
    }
}
