//! Retries: `Retry-After`, backoff with jitter, which requests may be retried, and how a client
//! stays polite under rate limiting.
//!
//! Every request sent through a [`Client`](crate::Client) — and every token refresh — goes
//! through a retry loop driven by a [`Policy`] (see its table of defaults). The rules:
//!
//! - **One [`Classifier`] decides what is retried**, for the loop and for
//!   [`Error::is_retryable`] alike. By default:
//!   - **`429` and `503` are retried for any method**: the server refused the request without
//!     acting on it and asked to come back.
//!   - **Non-idempotent requests are not retried on `408`, `502`, `504`, connection errors or
//!     timeouts** — the server may have acted on them. `GET`, `HEAD`, `PUT`, `DELETE`,
//!     `OPTIONS` and `TRACE` are idempotent; a `POST` or `PATCH` becomes retryable when it
//!     carries an `Idempotency-Key` header ([`RequestBuilder::idempotency_key`](crate::RequestBuilder::idempotency_key),
//!     [`new_idempotency_key`]), which is the same on every attempt.
//!   - **Other `4xx` are never retried, nor `500` and other `5xx`**: they usually come from a
//!     bug that answers the same way every time.
//!
//!   Add rules of your own, or the [`Classifier::github`] and [`Classifier::stripe`] presets,
//!   with [`Policy::classifier`] (see [`classify`]). A `401` is handled by the auth layer
//!   (refresh, replay once) inside one attempt and does not count as a retry.
//! - **A streaming body is sent once**: it cannot be replayed, so whatever the answer, it is
//!   returned as is.
//! - **A `Retry-After` within [`Policy::max_retry_after`] is the server's schedule, not a
//!   failure**: it is waited out without drawing on the budget or counting against
//!   [`Policy::max_attempts`]; [`Policy::max_server_waits`] and the deadline
//!   [`Policy::max_elapsed`] bound it. Without a `Retry-After`, the wait is an exponential
//!   backoff with full [`Jitter`], bounded by `max_attempts`, the deadline and the budget.
//! - **A `Retry-After` longer than [`Policy::max_retry_after`] is not slept through**, however
//!   long (`999999999`, a date days ahead): the request fails at once with
//!   [`ErrorKind::RateLimited`] and [`Error::retry_after`] tells how long the server asked for,
//!   so the caller decides. Garbage, negative or past values are ignored in favour of backoff.
//! - **Client-wide cooldown**: after a `429` with `Retry-After` **from the API's origin**,
//!   every request through the same client (and its clones) waits until the cooldown ends
//!   instead of collecting more `429`s. A redirect's target cannot hold the client.
//! - **Pacing ahead of the limit**: rate-limit headers (`RateLimit`, `RateLimit-Policy`,
//!   `X-RateLimit-*`) are remembered ([`Client::rate_limit`](crate::Client::rate_limit)); the
//!   requests in flight are counted against the `remaining` they report (and, in a window the
//!   client saw begin, what it sent since against the `limit`), and when nothing is left
//!   requests wait for the reset (opt out with
//!   [`ClientBuilder::wait_for_quota_reset`](crate::ClientBuilder::wait_for_quota_reset)).
//! - **Retry budget**: retries without server guidance of one client are at most
//!   `reserve + ratio × requests` ([`Budget`]), so a server that is down sees little more than
//!   the normal traffic.
//! - **Token endpoint**: retried on `429`, `5xx` and when the connection could not be made;
//!   **never after a timeout or a connection lost mid-request**, because the server may have
//!   rotated the refresh token and presenting the old one again could revoke the grant; never
//!   on `invalid_grant`, `invalid_client` or another `4xx`.
//! - **Time**: the cooldown, the quota hold and the elapsed time are read from the client's
//!   [`Clock`], like token expiry; waits sleep on tokio's timer.
//!
//! When the loop gives up, the error tells the attempts made, the time spent and why it
//! stopped ([`Error::retries`], [`StopReason`]), the last status ([`Error::status`]), the last
//! `Retry-After` ([`Error::retry_after`]) and keeps the cause. Each retry is logged with
//! `tracing` (target `authed::retry`: attempt, wait, status — never a header value or a body).
//!
//! See `docs/retries.md` for examples.

pub mod classify;
mod headers;
mod policy;
mod state;

use std::{fmt, future::Future, time::Duration};

use reqwest::{Method, header::HeaderMap};

pub use crate::error::StopReason;
pub use classify::{Classifier, Retryable};
pub use headers::RateLimit;
pub(crate) use headers::retry_after;
pub use policy::{Budget, Jitter, Policy};
pub use state::SharedCooldown;
pub(crate) use state::{ClientState, InFlight};

use crate::{Error, ErrorKind, Result, clock::Clock};

/// The header that makes a non-idempotent request safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A fresh random idempotency key (a UUID v4 string), for
/// [`RequestBuilder::idempotency_key`](crate::RequestBuilder::idempotency_key).
///
/// Create it once per logical operation: the key set on a request is sent unchanged on every
/// retry, so the server can recognise a repeat. Keep it if you retry the operation yourself
/// later. The key is unique (122 random bits), not secret.
///
/// ```
/// let key = authed::retry::new_idempotency_key();
/// assert_eq!(key.len(), 36);
/// ```
pub fn new_idempotency_key() -> String {
    let bits = (u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..)))
        & !(0xf000 << 64 | 0xc << 60)
        | (0x4000 << 64 | 0x8 << 60);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether a request may be sent again after a failure the server may have acted on.
pub(crate) fn is_idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    ) || headers.contains_key(IDEMPOTENCY_KEY)
}

/// An attempt's error and whether the loop may try again.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) retryable: bool,
}

impl Failure {
    /// A failure no retry of this loop may follow (its cause was retried elsewhere, or it is
    /// not the server's).
    pub(crate) fn fatal(error: Error) -> Self {
        Self {
            error,
            retryable: false,
        }
    }

    /// An API request's failure, as the policy's classifier sees it; the verdict is kept in
    /// the error for [`Error::is_retryable`]. A request that cannot be replayed (a streaming
    /// body) is never retried.
    pub(crate) fn api(error: Error, policy: &Policy, idempotent: bool, replayable: bool) -> Self {
        let verdict = policy.classifier.classify(&error);
        let retryable = replayable
            && match verdict {
                Retryable::Always => true,
                Retryable::Idempotent => idempotent,
                Retryable::Never => false,
            };
        Self {
            error: error.with_retryable(verdict),
            retryable,
        }
    }

    /// A token request's failure, with the token endpoint's own verdict (a refresh is retried
    /// only where the refresh token cannot have been consumed), whatever the API's classifier
    /// says.
    pub(crate) fn token(error: Error, retryable: bool) -> Self {
        let verdict = if retryable {
            Retryable::Always
        } else {
            Retryable::Never
        };
        Self {
            error: error.with_retryable(verdict),
            retryable,
        }
    }
}

/// A first attempt made before [`run`] was called (the send path's, see
/// `transport::execute`): when the request began, and the turn it took (with its budget
/// credit) if it has client state.
pub(crate) struct Begun<'a> {
    pub(crate) started: tokio::time::Instant,
    pub(crate) turn: Option<InFlight<'a>>,
}

/// Runs `attempt` until it succeeds, fails for good, or `policy` says stop.
///
/// - A retryable failure with a `Retry-After` within the cap, or one that used up the quota
///   the server reported, is the **server's schedule**: waited out, bounded by
///   `max_server_waits` and the deadline, never drawn from the budget.
/// - Any other retryable failure waits a backoff step: bounded by `max_attempts`, the deadline
///   and (with `client` state) the budget.
///
/// With `client` state (API requests), each attempt first waits out the client-wide cooldown
/// and a used-up quota, and counts as in flight until it ends. `what` names the request in
/// logs and errors (method and path, never a query). Nothing is allocated unless a retry is
/// made or the request fails (`what` is only formatted then).
///
/// With `begun`, the first call of `attempt` finishes an attempt that began before: it is
/// not waited for a turn, credited to the budget or timed again.
pub(crate) async fn run<'a, T, Fut>(
    policy: &Policy,
    client: Option<&'a ClientState>,
    clock: &dyn Clock,
    what: impl fmt::Display,
    begun: Option<Begun<'a>>,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let (started, mut first_turn) = match begun {
        Some(begun) => (begun.started, Some(begun.turn)),
        None => {
            if let Some(state) = client {
                state.deposit();
            }
            (clock.now(), None)
        }
    };
    let deadline = started.checked_add(policy.max_elapsed);
    let mut attempts = 0u32;
    let mut server_waits = 0u32;
    let mut backoff = policy.backoff();
    let mut last: Option<Error> = None;
    loop {
        let turn = match (first_turn.take(), client) {
            (Some(turn), _) => turn,
            (None, Some(state)) => match state.wait_turn(policy.max_retry_after, deadline).await {
                Ok(turn) => Some(turn),
                Err(hold) => {
                    let elapsed = clock.now().saturating_duration_since(started);
                    let error = match last {
                        // A retry held past the cap or the deadline: the last answer is the error.
                        Some(error) => error.with_retries(attempts, elapsed, hold.stopped),
                        None => {
                            let error = Error::new(
                                ErrorKind::RateLimited,
                                format!(
                                    "{what} was not sent: {} for another {:.1?}, longer than the retry policy waits",
                                    hold.why, hold.wait
                                ),
                            )
                            .with_retry_after(Some(hold.wait));
                            // `is_retryable` asks the policy's classifier, as for any failure.
                            let verdict = policy.classifier.classify(&error);
                            error.with_retryable(verdict).with_retries(
                                attempts,
                                elapsed,
                                hold.stopped,
                            )
                        }
                    };
                    return Err(error);
                }
            },
            (None, None) => None,
        };
        attempts += 1;
        let Failure { error, retryable } = match attempt().await {
            Ok(value) => {
                if let Some(turn) = &turn {
                    turn.succeeded();
                }
                return Ok(value);
            }
            Err(failure) => failure,
        };
        drop(turn);
        let elapsed = clock.now().saturating_duration_since(started);
        let stop = |error: Error, stopped: StopReason| {
            tracing::debug!(target: "authed::retry", attempt = attempts, reason = %stopped, "{what}: giving up");
            Err(error.with_retries(attempts, elapsed, stopped))
        };
        if !retryable {
            return if attempts > 1 {
                stop(error, StopReason::NotRetryable)
            } else {
                Err(error)
            };
        }
        // The server's schedule: a Retry-After, else the reset of a quota this answer used up.
        let scheduled = match error.retry_after() {
            Some(asked) if asked > policy.max_retry_after => {
                let error = error.with_kind(ErrorKind::RateLimited);
                return stop(error, StopReason::RetryAfterBeyondCap);
            }
            Some(asked) => Some(asked),
            None => client
                .and_then(ClientState::quota_hold)
                // The hold itself is waited (and checked) by the next turn.
                .map(|_| Duration::ZERO),
        };
        let wait = match scheduled {
            Some(wait) => {
                if server_waits >= policy.max_server_waits {
                    return stop(error, StopReason::MaxAttempts);
                }
                server_waits += 1;
                wait
            }
            None => match backoff.next() {
                Some(wait) => wait,
                None => return stop(error, StopReason::MaxAttempts),
            },
        };
        if elapsed.saturating_add(wait) > policy.max_elapsed {
            return stop(error, StopReason::Deadline);
        }
        if scheduled.is_none() && client.is_some_and(|state| !state.withdraw()) {
            return stop(error, StopReason::BudgetExhausted);
        }
        tracing::info!(
            target: "authed::retry",
            attempt = attempts,
            wait_ms = wait.as_millis() as u64,
            status = error.status().map(|s| s.as_u16()),
            kind = ?error.kind(),
            scheduled = scheduled.is_some(),
            "{what}: retrying"
        );
        last = Some(error);
        // Boxed, as every wait of the send path: the timer stays out of the state that every
        // request in flight carries (docs/benchmarks.md).
        Box::pin(tokio::time::sleep(wait)).await;
    }
}

/// The snippets of `docs/retries.md`, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/retries.md")]
struct RetriesGuide;

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn idempotency_keys_are_uuid_v4_and_distinct() {
        let a = new_idempotency_key();
        let b = new_idempotency_key();
        assert_ne!(a, b);
        let parts: Vec<_> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn classification_follows_method_and_status() {
        let status = |code: u16| {
            Error::new(ErrorKind::Api, "x").with_status(StatusCode::from_u16(code).unwrap())
        };
        let policy = Policy::default();
        let retried = |code, idempotent| Failure::api(status(code), &policy, idempotent, true);
        for code in [429, 503] {
            assert!(retried(code, false).retryable, "{code}");
            assert!(!Failure::api(status(code), &policy, true, false).retryable);
        }
        for code in [408, 502, 504] {
            assert!(retried(code, true).retryable, "{code}");
            assert!(!retried(code, false).retryable, "{code}");
            assert!(retried(code, false).error.is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422, 500, 501] {
            assert!(!retried(code, true).retryable, "{code}");
            assert!(!retried(code, true).error.is_retryable(), "{code}");
            assert!(!status(code).is_retryable(), "{code}");
        }
        let headers = HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static(IDEMPOTENCY_KEY),
            reqwest::header::HeaderValue::from_static("k"),
        )]);
        assert!(is_idempotent(&Method::POST, &headers));
        assert!(!is_idempotent(&Method::POST, &HeaderMap::new()));
        assert!(!is_idempotent(&Method::PATCH, &HeaderMap::new()));
        assert!(is_idempotent(&Method::PUT, &HeaderMap::new()));
    }
}
