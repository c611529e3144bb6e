//! What the requests of one client share: the cooldown after a 429, the rate-limit quota the
//! server reported (and the requests of ours still in flight against it), the retry budget.
//!
//! Every instant here is read from the client's [`Clock`]; tokio only sleeps the differences.
//!
//! A server that answers `429` with `Retry-After` but sends no quota headers tells the client
//! that a window is full only by its first `429`. With the adaptive limit on (the default),
//! the client then learns one: the requests sent in the window that ended with that `429`
//! which the server answered with success (counted by the window in which each was sent, so
//! answers that arrive late or out of order still count). When the cooldown ends it paces
//! against that limit as if the server had sent `limit=L, remaining=L, reset=Retry-After`,
//! probes one step up after each window it used in full without a `429`, learns anew from
//! the next `429`, and forgets the limit after a minute without requests or as soon as the
//! server sends quota headers (they always win).

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use reqwest::{StatusCode, header::HeaderMap};
use tokio::time::Instant;

use super::{
    Budget, RateLimit,
    headers::{MAX_SANE_WAIT, has_rate_limit_headers},
    retry_after,
};
use crate::{StopReason, auth::Clock};

/// Shared by every clone of a [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) struct ClientState {
    state: Mutex<State>,
    hot: Hot,
    clock: Arc<dyn Clock>,
    /// The budget in thousandths of a retry, so that adding 0.2 five times makes exactly one.
    reserve_milli: u64,
    ratio_milli: u64,
    wait_for_quota_reset: bool,
    /// Holds published to (and read from) the other clients of a fleet, if any.
    shared: Option<Arc<dyn SharedCooldown>>,
    /// Whether a limit is learned from `429`s when the server sends no quota headers.
    adaptive: bool,
}

/// What every request reads or updates without the lock, in one cache line of its own: a
/// request moves one line between the worker threads rather than several, and the fields
/// beside them, only read, are not moved with it.
#[derive(Debug)]
#[repr(align(64))]
struct Hot {
    /// Whether the state holds nothing a request's turn must look at or change: no cooldown,
    /// no quota, no learned limit, a full retry budget, no fleet. Then a turn is taken without
    /// the lock ([`ClientState::turn_now`]). Written under the lock, on every unlock.
    calm: AtomicBool,
    /// Requests sent and not answered yet: they will use quota the last answer did not count.
    in_flight: AtomicU32,
    /// The window (for the adaptive limit) that requests sent now are counted in.
    epoch: AtomicU64,
    /// Successes by the window their request was sent in: this one and the one before, by
    /// `epoch % 2`. Counted without the lock; a race at a window's turn can misfile an
    /// answer of two windows ago, which moves a learned limit by one at most.
    ok: [AtomicU64; 2],
}

/// A hold on every request, shared by the clients of a fleet (other processes, other hosts):
/// a 429 `Retry-After` or an exhausted rate-limit quota seen by one client holds them all.
///
/// [`RedisStore`](crate::auth::store::RedisStore) implements it (feature `redis`). Both
/// methods are called on the request path, so they must not wait for I/O: publish in the
/// background, and answer [`held_until`](SharedCooldown::held_until) from a local copy.
pub trait SharedCooldown: std::fmt::Debug + Send + Sync + 'static {
    /// Tells the fleet that no request should be sent before `until` (wall clock).
    fn publish(&self, until: std::time::SystemTime);

    /// Until when the fleet holds requests, as last known (wall clock); `None`: no hold.
    fn held_until(&self) -> Option<std::time::SystemTime>;
}

#[derive(Debug)]
struct State {
    /// No request is sent before this (set by a 429 with `Retry-After` from the API origin).
    cooldown_until: Option<Instant>,
    /// The rate-limit headers last seen, for [`Client::rate_limit`](crate::Client::rate_limit).
    rate_limit: Option<RateLimit>,
    quota: Quota,
    /// Thousandths of a retry the budget holds now, in `[0, reserve_milli]`.
    balance_milli: u64,
    /// The limit learned from `429`s, when the server sends no quota headers.
    learned: Learned,
}

/// The adaptive limit: what the client learned from the `429`s of a server that sends no
/// quota headers. While `limit` is set, [`Quota`] holds it as if the server had reported it.
#[derive(Debug, Default)]
struct Learned {
    /// The limit per window being paced against.
    limit: Option<u64>,
    /// A window that ended with a `429`: its epoch, the `Retry-After` (the window's length)
    /// and the end of the cooldown, when the limit is taken from its successes.
    pending: Option<(u64, Duration, Instant)>,
    /// Windows in a row used in full without a `429`.
    full_windows: u32,
    /// Raises since the limit was last learned from a `429`.
    raises: u32,
}

/// The locked [`State`]; on unlock it records whether the state is calm
/// ([`Hot::calm`]).
struct Locked<'a> {
    state: MutexGuard<'a, State>,
    owner: &'a ClientState,
}

impl std::ops::Deref for Locked<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Still under the lock (the guard is dropped after this): the last unlock wins.
        let (state, owner) = (&*self.state, self.owner);
        let calm = owner.shared.is_none()
            && state.cooldown_until.is_none()
            && state.learned.limit.is_none()
            && state.learned.pending.is_none()
            && state.quota.is_idle()
            && state.balance_milli >= owner.reserve_milli;
        owner.hot.calm.store(calm, Ordering::Release);
    }
}

/// A learned limit not used for this long (no request sent) is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// A learned limit is probed up after this many windows in a row used in full without a `429`.
const PROBE_EVERY: u32 = 4;

/// The step a learned limit is raised by, the `raises`-th time since the last `429` (from 0):
/// about 3 % of it (at least one request), doubling with each raise, so a share that grew is
/// found in a few probes while a steady one costs a few `429`s every [`PROBE_EVERY`] + 1
/// windows.
fn probe_step(limit: u64, raises: u32) -> u64 {
    (limit / 32).max(1).saturating_mul(1 << raises.min(5))
}

/// The current rate-limit window as far as this client can tell.
///
/// The server's `remaining` is already stale when it arrives: requests of ours in flight will
/// use some of it. Which of them the server counted before it answered is unknown (64
/// connections are not served, nor answered, in the order they were sent), so:
///
/// - in a window whose start the client has not seen (the first one), `left` = the lowest
///   `remaining` reported minus the requests in flight — as if none of them had been counted,
///   which never overshoots but may leave part of the window unused;
/// - in a window the client saw begin (it waited for the reset, or the reset passed), it also
///   knows how many requests it sent since, so `left` = `min(remaining, limit − sent)`: exact
///   for a client that has the quota to itself, and never more than `remaining`.
///
/// The client takes one per request sent and holds requests once `left` reaches 0, until the
/// reset. A reset in whole seconds is rounded up by the server, so `arrival + reset` is never
/// before the real reset; the earliest such estimate in a window is the tightest. When the
/// window resets, the next one is assumed to hold `limit` requests (minus those in flight,
/// which may land in it) and to last as long as the longest reset seen — also never before
/// the real reset, and tighter than its first answer's whole seconds.
#[derive(Debug, Default)]
struct Quota {
    /// Requests that may still be sent in this window.
    left: Option<i64>,
    /// The lowest `remaining` the server reported in this window.
    reported: Option<u64>,
    /// When the window resets.
    reset_at: Option<Instant>,
    /// The server's limit per window, once reported.
    limit: Option<u64>,
    /// The longest reset reported: about the length of a window.
    span: Option<Duration>,
    /// Requests sent since this window began, once the client has seen it begin (`None` in
    /// the first window); those in flight at the reset are counted, as they may land in it.
    sent: Option<u64>,
}

impl Quota {
    /// Starts a new window if the current one has reset by `now`.
    fn expire(&mut self, now: Instant, in_flight: u32) {
        if self.has_reset(now) {
            self.left = self
                .limit
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX) - i64::from(in_flight));
            self.reported = None;
            self.reset_at = self.span.map(|span| now + span);
            self.sent = Some(u64::from(in_flight));
        }
    }

    /// Whether nothing is counted or held: no window known (quota headers never seen, or a
    /// learned limit forgotten).
    fn is_idle(&self) -> bool {
        self.reset_at.is_none() && self.left.is_none() && self.sent.is_none()
    }

    /// Whether the current window has reset by `now`.
    fn has_reset(&self, now: Instant) -> bool {
        self.reset_at.is_some_and(|at| at <= now)
    }

    /// Counts one request sent in this window.
    fn take(&mut self) {
        if let Some(left) = &mut self.left {
            *left -= 1;
        }
        if let Some(sent) = &mut self.sent {
            *sent += 1;
        }
    }

    /// Takes in an answer's `remaining` (and reset) while `others` more requests are in flight.
    fn observe(&mut self, remaining: u64, reset_at: Option<Instant>, others: u32) {
        let reported = i64::try_from(remaining).unwrap_or(i64::MAX);
        let left = match (self.sent, self.limit) {
            (Some(sent), Some(limit)) => {
                let unsent = i64::try_from(limit.saturating_sub(sent)).unwrap_or(i64::MAX);
                reported.min(unsent)
            }
            _ => reported.saturating_sub(i64::from(others)),
        };
        // Until the reset we know of, answers belong to this window: one that reports more
        // left overtook others on the way back (under load, by far more than are in flight
        // now). Without a known reset, more left than the requests in flight can explain
        // means a new window.
        let new_window = match (self.reported, self.reset_at) {
            (None, _) => true,
            (Some(_), Some(_)) => false,
            (Some(last), None) => remaining > last.saturating_add(u64::from(others)),
        };
        if new_window {
            self.left = Some(left);
            self.reported = Some(remaining);
            // A reset estimated when the window began (`expire`) is never early either, and
            // tighter than `arrival + reset` in whole seconds: keep the earlier.
            self.reset_at = match (self.reset_at, reset_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => b.or(a),
            };
        } else {
            self.left = Some(self.left.map_or(left, |l| l.min(left)));
            self.reported = self.reported.map(|r| r.min(remaining));
            self.reset_at = match (self.reset_at, reset_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }

    /// Until when requests must wait: the quota is used up and the window has not reset.
    fn exhausted_until(&self, now: Instant) -> Option<Instant> {
        let reset_at = self.reset_at.filter(|at| *at > now)?;
        self.left.is_some_and(|l| l <= 0).then_some(reset_at)
    }
}

/// Why a request may not be sent yet, and for how long.
#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) wait: Duration,
    pub(crate) why: &'static str,
    pub(crate) stopped: StopReason,
}

/// A request of this client in flight; dropping it (answer, error or cancellation) ends it.
#[derive(Debug)]
pub(crate) struct InFlight<'a> {
    state: &'a ClientState,
    /// The window (for the adaptive limit) it was sent in.
    epoch: u64,
}

impl InFlight<'_> {
    /// The server answered this request with success: it counts towards the limit learned
    /// for the window it was sent in.
    pub(crate) fn succeeded(&self) {
        let state = self.state;
        if !state.adaptive {
            return;
        }
        let now = state.hot.epoch.load(Ordering::Relaxed);
        if self.epoch == now || self.epoch + 1 == now {
            state.hot.ok[(self.epoch % 2) as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.state.hot.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

const COOLDOWN: &str = "the server answered 429 with Retry-After";
const QUOTA: &str = "the rate-limit quota is used up";
const LEARNED: &str = "the rate limit learned from 429s is used up";

impl ClientState {
    pub(crate) fn new(budget: Budget, wait_for_quota_reset: bool, clock: Arc<dyn Clock>) -> Self {
        // `as` saturates: an infinite reserve becomes u64::MAX, which never runs out in practice.
        let reserve_milli = (budget.reserve * 1000.0) as u64;
        Self {
            state: Mutex::new(State {
                cooldown_until: None,
                rate_limit: None,
                quota: Quota::default(),
                balance_milli: reserve_milli,
                learned: Learned::default(),
            }),
            hot: Hot {
                calm: AtomicBool::new(true),
                in_flight: AtomicU32::new(0),
                epoch: AtomicU64::new(0),
                ok: [AtomicU64::new(0), AtomicU64::new(0)],
            },
            clock,
            reserve_milli,
            ratio_milli: (budget.ratio * 1000.0).round() as u64,
            wait_for_quota_reset,
            shared: None,
            adaptive: true,
        }
    }

    /// Turns the adaptive limit on or off (see the module docs).
    pub(crate) fn with_adaptive_limit(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// Starts a new window for the adaptive limit: requests sent from now on are counted in it.
    fn next_epoch(&self) {
        let next = self.hot.epoch.load(Ordering::Relaxed) + 1;
        self.hot.ok[(next % 2) as usize].store(0, Ordering::Relaxed);
        self.hot.epoch.store(next, Ordering::Relaxed);
    }

    /// Successes counted for the window `epoch`, if it is still kept.
    fn successes(&self, epoch: u64) -> Option<u64> {
        let now = self.hot.epoch.load(Ordering::Relaxed);
        (epoch == now || epoch + 1 == now)
            .then(|| self.hot.ok[(epoch % 2) as usize].load(Ordering::Relaxed))
    }

    /// Moves the quota (and a learned limit) on to `now`: takes the limit learned from a window
    /// that ended with a `429` once its cooldown is over, probes up at the turn of a paced
    /// window used in full, and forgets a learned limit not used for [`FORGET_AFTER`].
    fn advance(&self, state: &mut State, now: Instant) {
        let in_flight = self.hot.in_flight.load(Ordering::Relaxed);
        if let Some((epoch, span, end)) = state.learned.pending
            && end <= now
        {
            state.learned.pending = None;
            let before = state.learned.limit;
            match self.successes(epoch).filter(|ok| *ok > 0) {
                Some(limit) => {
                    state.learned = Learned {
                        limit: Some(limit),
                        ..Learned::default()
                    };
                    state.quota = Quota {
                        limit: Some(limit),
                        span: Some(span),
                        reset_at: Some(now),
                        ..Quota::default()
                    };
                    // The window that begins now is started (and counted) just below.
                    tracing::debug!(target: "authed::retry", limit, previous = before, window_ms = span.as_millis() as u64, "rate limit learned from a 429: pacing against it");
                }
                None => {
                    // Nothing succeeded in that window: there is nothing to pace against.
                    self.forget(
                        state,
                        "no request succeeded in the window that ended with a 429",
                    );
                }
            }
        }
        if let Some(limit) = state.learned.limit
            && state.quota.has_reset(now)
        {
            let idle = state
                .quota
                .reset_at
                .is_some_and(|at| now.saturating_duration_since(at) >= FORGET_AFTER);
            if idle {
                self.forget(state, "no request for a minute");
            } else {
                let learned = &mut state.learned;
                if state.quota.left.is_some_and(|left| left <= 0) {
                    learned.full_windows += 1;
                } else {
                    learned.full_windows = 0;
                }
                if learned.full_windows >= PROBE_EVERY {
                    // Used in full, window after window, without a `429`: the share may have
                    // grown (another client stopped).
                    let raised = limit.saturating_add(probe_step(limit, learned.raises));
                    learned.limit = Some(raised);
                    learned.full_windows = 0;
                    learned.raises += 1;
                    state.quota.limit = Some(raised);
                    tracing::debug!(target: "authed::retry", limit = raised, previous = limit, "learned rate limit used in full without a 429: probing up");
                }
                self.next_epoch();
            }
        }
        state.quota.expire(now, in_flight);
    }

    /// Drops a learned limit, and the quota it stood in for.
    fn forget(&self, state: &mut State, why: &'static str) {
        if state.learned.limit.is_some() || state.learned.pending.is_some() {
            tracing::debug!(target: "authed::retry", reason = why, "learned rate limit forgotten");
            state.quota = Quota::default();
        }
        state.learned = Learned::default();
    }

    /// Shares cooldowns and quota holds with a fleet (see [`SharedCooldown`]).
    pub(crate) fn with_shared_cooldown(mut self, shared: Option<Arc<dyn SharedCooldown>>) -> Self {
        // A hold of the fleet is asked for on every turn: never calm.
        self.hot.calm = AtomicBool::new(shared.is_none());
        self.shared = shared;
        self
    }

    /// Publishes a hold that ends at `until` (on the client's clock) to the fleet, if any.
    fn publish(&self, until: Instant) {
        if let Some(shared) = &self.shared {
            let left = until.saturating_duration_since(self.clock.now());
            shared.publish(self.clock.now_utc() + left);
        }
    }

    /// The fleet's hold on the client's clock, if it is still running.
    fn fleet_hold(&self, now: Instant) -> Option<Instant> {
        let until = self.shared.as_ref()?.held_until()?;
        let left = until.duration_since(self.clock.now_utc()).ok()?;
        Some(now + left)
    }

    fn lock(&self) -> Locked<'_> {
        // Every update leaves a consistent state, so a poisoned lock can be used as it is.
        Locked {
            state: self.state.lock().unwrap_or_else(|e| e.into_inner()),
            owner: self,
        }
    }

    /// The rate-limit values last seen, their age read on the client's clock.
    pub(crate) fn rate_limit(&self) -> Option<RateLimit> {
        let seen = self.lock().rate_limit.clone()?;
        Some(seen.rebased(self.clock.now()))
    }

    /// Takes in an answer **from the API origin**: a `429` with `Retry-After` holds every
    /// request of the client for that long; rate-limit headers update the quota. An answer
    /// without either costs one scan of the header names, and neither a lock nor a clock read.
    pub(crate) fn observe(&self, status: StatusCode, headers: &HeaderMap) {
        if status != StatusCode::TOO_MANY_REQUESTS && !has_rate_limit_headers(headers) {
            return;
        }
        let now_utc = self.clock.now_utc();
        let now = self.clock.now();
        let seen = RateLimit::from_headers(headers, now_utc, now);
        let cooldown = if status == StatusCode::TOO_MANY_REQUESTS {
            retry_after(headers, now_utc)
        } else {
            None
        };
        if seen.is_none() && cooldown.is_none() {
            return;
        }
        let mut state = self.lock();
        // From here on, turns wait for the lock; a turn taken without it before this store is
        // counted in flight before the count is read below (both sides `SeqCst`, see
        // `turn_now`), so none slips past this answer's quota uncounted. The unlock sets
        // the flag anew.
        self.hot.calm.store(false, Ordering::SeqCst);
        // This answer's own request is still counted in flight.
        let others = self.hot.in_flight.load(Ordering::SeqCst).saturating_sub(1);
        let mut publish = None;
        if seen.is_some() {
            // Quota headers always win over a learned limit.
            self.forget(&mut state, "the server sends quota headers");
        }
        if let Some(wait) = cooldown {
            // A `Retry-After` of years holds (and so fails) requests for a day at most.
            let until = now + wait.min(MAX_SANE_WAIT);
            let starts = state.cooldown_until.is_none_or(|current| current <= now);
            if self.adaptive && starts && seen.is_none() && state.rate_limit.is_none() {
                // The window that ended with this `429` is learned from when the cooldown
                // ends: answers to its requests still on their way are counted meanwhile.
                state.learned.pending = Some((self.hot.epoch.load(Ordering::Relaxed), wait, until));
                if state.learned.limit.is_some() {
                    state.quota = Quota::default();
                }
                self.next_epoch();
            }
            if state.cooldown_until.is_none_or(|current| current < until) {
                tracing::info!(target: "authed::retry", wait_ms = wait.as_millis() as u64, "429 with Retry-After: holding every request of this client");
                state.cooldown_until = Some(until);
                publish = Some(until);
            }
        }
        if let Some(seen) = seen {
            state.quota.expire(now, others);
            state.quota.limit = seen.limit.or(state.quota.limit);
            if let Some(reset) = seen.reset {
                let span = state.quota.span.get_or_insert(reset);
                *span = (*span).max(reset);
            }
            if let Some(remaining) = seen.remaining {
                let reset_at = seen.reset.map(|reset| now + reset);
                state.quota.observe(remaining, reset_at, others);
            }
            state.rate_limit = Some(seen);
            if self.wait_for_quota_reset
                && let Some(until) = state.quota.exhausted_until(now)
            {
                publish = publish.max(Some(until));
            }
        }
        drop(state);
        if let Some(until) = publish {
            self.publish(until);
        }
    }

    /// How long the next attempt will be held for a used-up quota (the server's schedule for
    /// an answer that has no `Retry-After`), if it will.
    pub(crate) fn quota_hold(&self) -> Option<Duration> {
        if !self.wait_for_quota_reset {
            return None;
        }
        let now = self.clock.now();
        let state = self.lock();
        // A learned limit is the client's own estimate, not the server's schedule.
        if state.learned.limit.is_some() {
            return None;
        }
        let until = state.quota.exhausted_until(now)?;
        Some(until - now)
    }

    /// Waits until no cooldown and no used-up quota holds requests back, then counts the
    /// request as sent. A hold longer than `max_wait`, or past `deadline`, is not waited:
    /// the [`Hold`] says why.
    pub(crate) async fn wait_turn(
        &self,
        max_wait: Duration,
        deadline: Option<Instant>,
    ) -> Result<InFlight<'_>, Hold> {
        // A clock that tokio's sleep does not move (a test clock) would hold forever: each hold
        // is slept once.
        let mut slept_until = None;
        loop {
            let now = self.clock.now();
            let (until, why) = match self.turn_at(now, max_wait, deadline, slept_until, false) {
                Ok(turn) => return Ok(turn),
                Err(hold) => hold,
            };
            let wait = until - now;
            if wait > max_wait {
                return Err(Hold {
                    wait,
                    why,
                    stopped: StopReason::RetryAfterBeyondCap,
                });
            }
            if deadline.is_some_and(|d| until > d) {
                return Err(Hold {
                    wait,
                    why,
                    stopped: StopReason::Deadline,
                });
            }
            tracing::debug!(target: "authed::retry", wait_ms = wait.as_millis() as u64, reason = why, "holding the request");
            // Boxed: the timer stays out of the state of every request that is not held.
            Box::pin(tokio::time::sleep(wait)).await;
            slept_until = Some(until);
        }
    }

    /// The turn [`wait_turn`](Self::wait_turn) would give at once, with the request's budget
    /// credit ([`deposit`](Self::deposit)): `None`, and nothing counted, when something holds
    /// requests back. The send path's first attempt takes it without a future of its own.
    /// `now` is read from the client's clock by the caller.
    pub(crate) fn turn_now(&self, now: Instant, max_wait: Duration) -> Option<InFlight<'_>> {
        // Nothing to hold the request or to count but the request itself (nearly every
        // request): no lock. Counted first, then checked (both `SeqCst`, as in `observe`):
        // either the answer that ends the calm counts this request among those in flight,
        // or this turn sees the calm ended, is un-counted and takes the lock. (On x86
        // neither costs more than the relaxed forms.)
        if self.hot.calm.load(Ordering::Relaxed) {
            let turn = self.start();
            if self.hot.calm.load(Ordering::SeqCst) {
                return Some(turn);
            }
        }
        self.turn_at(now, max_wait, None, None, true).ok()
    }

    /// Counts a request as sent, in the current window of the adaptive limit.
    fn start(&self) -> InFlight<'_> {
        let epoch = self.hot.epoch.load(Ordering::Relaxed);
        self.hot.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight { state: self, epoch }
    }

    /// The request's turn if nothing holds requests back at `now` (a hold ending by
    /// `slept_until` was slept already), else when and why the hold ends. With `deposit`,
    /// the turn comes with the request's budget credit, under the same lock.
    fn turn_at(
        &self,
        now: Instant,
        max_wait: Duration,
        deadline: Option<Instant>,
        slept_until: Option<Instant>,
        deposit: bool,
    ) -> Result<InFlight<'_>, (Instant, &'static str)> {
        let mut state = self.lock();
        self.advance(&mut state, now);
        // A cooldown that is over holds nothing, and keeps no turn from being calm.
        if state.cooldown_until.is_some_and(|until| until <= now) {
            state.cooldown_until = None;
        }
        let cooldown = state
            .cooldown_until
            .max(self.fleet_hold(now))
            .filter(|until| *until > now);
        let learned = state.learned.limit.is_some();
        let quota = state
            .quota
            .exhausted_until(now)
            .filter(|_| self.wait_for_quota_reset || learned);
        let quota_why = if learned { LEARNED } else { QUOTA };
        let hold = match (cooldown, quota) {
            (Some(c), Some(q)) if q > c => Some((q, quota_why)),
            (Some(c), _) => Some((c, COOLDOWN)),
            (None, Some(q)) => Some((q, quota_why)),
            (None, None) => None,
        };
        let mut hold = hold.filter(|(until, _)| slept_until.is_none_or(|s| s < *until));
        // A learned limit is only an estimate: it never makes a call fail, so a hold for it
        // that the policy would not wait is not made.
        if learned
            && hold.is_some_and(|(until, why)| {
                why == LEARNED && (until - now > max_wait || deadline.is_some_and(|d| until > d))
            })
        {
            hold = None;
        }
        if let Some(hold) = hold {
            return Err(hold);
        }
        state.quota.take();
        if deposit {
            self.credit(&mut state);
        }
        // Under the lock, so that the window it is counted in is the one just checked.
        Ok(self.start())
    }

    /// Credits the budget for one request.
    pub(crate) fn deposit(&self) {
        self.credit(&mut self.lock());
    }

    fn credit(&self, state: &mut State) {
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
    use crate::SystemClock;

    fn state(budget: Budget) -> ClientState {
        ClientState::new(budget, true, Arc::new(SystemClock))
    }

    #[test]
    fn budget_allows_reserve_plus_ratio_per_request() {
        let state = state(Budget::default());
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
        let state = state(Budget::unlimited());
        assert!((0..10_000).all(|_| state.withdraw()));
    }

    #[test]
    fn quota_counts_requests_in_flight_and_keeps_the_earliest_reset() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut quota = Quota::default();
        // 10 left, 3 other requests in flight: 7 may still be sent.
        quota.observe(10, Some(t0 + s(1)), 3);
        assert_eq!(quota.left, Some(7));
        // A later answer of the same window: lower count, later reset estimate.
        quota.observe(8, Some(t0 + s(2)), 2);
        assert_eq!((quota.left, quota.reset_at), (Some(6), Some(t0 + s(1))));
        // An answer that overtook others: more left, but the window has not reset.
        quota.observe(9, Some(t0 + s(2)), 0);
        assert_eq!((quota.left, quota.reported), (Some(6), Some(8)));
        assert_eq!(quota.exhausted_until(t0), None);
        quota.observe(0, Some(t0 + s(3)), 0);
        assert_eq!(quota.exhausted_until(t0), Some(t0 + s(1)));
        // Without a known reset, far more remaining than in flight: a new window.
        let mut unknown = Quota::default();
        unknown.observe(3, None, 0);
        unknown.observe(5, None, 2);
        assert_eq!(unknown.left, Some(3), "overtaken, within the 2 in flight");
        unknown.observe(99, Some(t0 + s(4)), 1);
        assert_eq!(
            (unknown.left, unknown.reset_at),
            (Some(98), Some(t0 + s(4)))
        );
        // Reset by the clock: a full window, less the requests in flight, for the longest span.
        quota.limit = Some(100);
        quota.span = Some(s(10));
        quota.expire(t0 + s(4), 3);
        assert_eq!((quota.left, quota.reported), (Some(97), None));
        assert_eq!(quota.reset_at, Some(t0 + s(14)));
    }

    /// One window of 64 workers against a limit of 200, the client having seen the window
    /// begin: the server counts each request as it is sent, and the answers come back in the
    /// reverse order (the last counted first), as they may over 64 connections. Returns how
    /// many requests the client sent before it held for the reset.
    fn window_with_answers_out_of_order(workers: usize) -> u64 {
        let t0 = Instant::now();
        let mut quota = Quota {
            limit: Some(200),
            span: Some(Duration::from_secs(1)),
            reset_at: Some(t0),
            ..Quota::default()
        };
        quota.expire(t0, 0);
        let (mut sent, mut counted) = (0, 0);
        let mut in_flight = Vec::new();
        loop {
            while in_flight.len() < workers && quota.exhausted_until(t0).is_none() {
                quota.take();
                sent += 1;
                counted += 1;
                in_flight.push(200_u64.saturating_sub(counted));
            }
            let Some(remaining) = in_flight.pop() else {
                return sent;
            };
            let others = u32::try_from(in_flight.len()).unwrap();
            quota.observe(remaining, Some(t0 + Duration::from_secs(1)), others);
        }
    }

    #[test]
    fn a_window_seen_to_begin_is_used_in_full_when_answers_come_back_out_of_order() {
        // Counting every request in flight as not yet counted by the server held the client
        // at 137 of 200 here: a quarter of each window unused.
        assert_eq!(window_with_answers_out_of_order(64), 200);
        assert_eq!(window_with_answers_out_of_order(1), 200);
    }

    #[test]
    fn a_window_seen_to_begin_keeps_the_reset_estimated_at_its_start() {
        let t0 = Instant::now();
        let mut quota = Quota {
            limit: Some(200),
            span: Some(Duration::from_secs(1)),
            reset_at: Some(t0),
            ..Quota::default()
        };
        quota.expire(t0, 0);
        // Its first answer arrives 300 ms in and says `reset=1` (rounded up): the window began
        // by t0, so it resets by t0 + 1 s, not 1.3 s.
        quota.observe(150, Some(t0 + Duration::from_millis(1300)), 0);
        assert_eq!(quota.reset_at, Some(t0 + Duration::from_secs(1)));
    }

    // ===== the adaptive limit =====

    use futures_util::FutureExt;

    /// A client state on tokio's clock (tests run on paused time), the adaptive limit on.
    fn adaptive() -> ClientState {
        ClientState::new(Budget::default(), true, Arc::new(SystemClock))
    }

    /// A turn if the request may be sent now; `None` if it would be held. Taken as the send
    /// path takes the first send's (without the lock while the state is calm).
    fn send_now(state: &ClientState) -> Option<InFlight<'_>> {
        state.turn_now(Instant::now(), Duration::from_secs(60))
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_is_taken_without_the_lock_only_while_nothing_is_held() {
        let state = ClientState::new(Budget::default(), true, Arc::new(SystemClock));
        let calm = |state: &ClientState| state.hot.calm.load(Ordering::Acquire);
        assert!(calm(&state) && send_now(&state).is_some());
        // A 429 holds every request for its `Retry-After`, then the turns are calm again.
        too_many_requests(&state);
        assert!(!calm(&state));
        assert!(send_now(&state).is_none(), "held by the cooldown");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(send_now(&state).is_some());
        assert!(calm(&state), "an expired cooldown is cleared");
        // A retry taken from the full budget: each turn credits it again (0.2 of a retry),
        // under the lock, until it is full.
        assert!(state.withdraw());
        assert!(!calm(&state));
        for _ in 0..4 {
            drop(send_now(&state));
            assert!(!calm(&state));
        }
        drop(send_now(&state));
        assert!(calm(&state), "full again after 5 turns");
        // A quota reported by the server is counted by every turn: never calm again.
        let headers = HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("ratelimit"),
            reqwest::header::HeaderValue::from_static("limit=3, remaining=3, reset=1"),
        )]);
        state.observe(StatusCode::OK, &headers);
        assert!(!calm(&state));
        let turns: Vec<_> = (0..3)
            .map(|_| send_now(&state).expect("in the quota"))
            .collect();
        assert!(send_now(&state).is_none(), "the quota is used up");
        drop(turns);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(send_now(&state).is_some(), "a new window");
        assert!(!calm(&state));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_member_always_asks_the_fleet() {
        #[derive(Debug)]
        struct Held;
        impl SharedCooldown for Held {
            fn publish(&self, _until: std::time::SystemTime) {}
            fn held_until(&self) -> Option<std::time::SystemTime> {
                Some(std::time::SystemTime::now() + Duration::from_secs(5))
            }
        }
        let state = ClientState::new(Budget::default(), true, Arc::new(SystemClock))
            .with_shared_cooldown(Some(Arc::new(Held)));
        assert!(
            send_now(&state).is_none(),
            "held by another client of the fleet"
        );
        assert!(!state.hot.calm.load(Ordering::Acquire));
    }

    /// How many requests may be sent now, each answered with success at once (at most 1,000).
    fn sendable_now(state: &ClientState) -> usize {
        (0..1000)
            .take_while(|_| send_now(state).inspect(InFlight::succeeded).is_some())
            .count()
    }

    fn too_many_requests(state: &ClientState) {
        let headers = HeaderMap::from_iter([(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("1"),
        )]);
        let _turn = send_now(state).expect("sent");
        state.observe(StatusCode::TOO_MANY_REQUESTS, &headers);
    }

    /// A window in which `ok` requests are sent and succeed, ended by a `429` that arrives
    /// before their answers (as it may over many connections): the successes still count.
    async fn window_ending_with_a_429(state: &ClientState, ok: usize) {
        let turns: Vec<_> = (0..ok).map(|_| send_now(state).expect("sent")).collect();
        too_many_requests(state);
        tokio::time::advance(Duration::from_millis(100)).await;
        for turn in turns {
            turn.succeeded();
        }
        // The cooldown: 1 s from the 429.
        assert!(send_now(state).is_none(), "held by the cooldown");
        tokio::time::advance(Duration::from_millis(900)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_is_learned_from_the_window_that_ended_with_a_429() {
        let state = adaptive();
        window_ending_with_a_429(&state, 10).await;
        // Paced as if the server had sent `limit=10, remaining=10, reset=1`.
        assert_eq!(sendable_now(&state), 10);
        let start = Instant::now();
        let eleventh = state.wait_turn(Duration::from_secs(60), None).await;
        assert!(eleventh.is_ok());
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "held until the window ends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_limit_is_probed_up_after_windows_used_in_full() {
        let state = adaptive();
        window_ending_with_a_429(&state, 64).await;
        for _ in 0..PROBE_EVERY {
            assert_eq!(sendable_now(&state), 64);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // Four windows used in full without a 429: one step (64 / 32) up, then twice that.
        assert_eq!(sendable_now(&state), 66);
        for _ in 1..PROBE_EVERY {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert_eq!(sendable_now(&state), 66);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(sendable_now(&state), 70);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_while_paced_lowers_the_learned_limit() {
        let state = adaptive();
        window_ending_with_a_429(&state, 10).await;
        assert_eq!(sendable_now(&state), 10);
        tokio::time::advance(Duration::from_secs(1)).await;
        // Another client took part of the window: 6 succeed, then a 429.
        window_ending_with_a_429(&state, 6).await;
        assert_eq!(sendable_now(&state), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn quota_headers_win_over_a_learned_limit() {
        let state = adaptive();
        window_ending_with_a_429(&state, 10).await;
        let headers = HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("ratelimit"),
            reqwest::header::HeaderValue::from_static("limit=100, remaining=50, reset=1"),
        )]);
        assert_eq!(sendable_now(&state), 10, "the learned limit holds");
        // An answer (to a request sent before) carries the quota.
        state.observe(StatusCode::OK, &headers);
        // The server's 50 left hold, not the learned limit (used up above).
        assert_eq!(sendable_now(&state), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_limit_is_forgotten_after_a_quiet_minute() {
        let state = adaptive();
        window_ending_with_a_429(&state, 10).await;
        assert_eq!(sendable_now(&state), 10);
        tokio::time::advance(FORGET_AFTER + Duration::from_secs(1)).await;
        assert_eq!(sendable_now(&state), 1000, "not paced any more");
    }

    #[tokio::test(start_paused = true)]
    async fn a_learned_limit_never_holds_beyond_what_the_policy_waits() {
        let state = adaptive();
        window_ending_with_a_429(&state, 10).await;
        assert_eq!(sendable_now(&state), 10);
        // A policy that waits at most 100 ms: the request is sent rather than refused.
        let turn = state
            .wait_turn(Duration::from_millis(100), None)
            .now_or_never();
        assert!(matches!(turn, Some(Ok(_))));
        // With the feature off, nothing is learned: the window after the cooldown is not paced.
        let off = adaptive().with_adaptive_limit(false);
        window_ending_with_a_429(&off, 10).await;
        assert_eq!(sendable_now(&off), 1000);
    }
}
