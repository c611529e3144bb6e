//! Retries: `Retry-After`, backoff with jitter, which requests may be retried, and how a client
//! stays polite under rate limiting.
//!
//! Every request sent through a [`Client`](crate::Client) — and every token refresh — goes
//! through a retry loop driven by a [`Policy`] (see its table of defaults). The rules:
//!
//! - **`429` and `503` are retried for any method**: the server refused the request without
//!   acting on it and asked to come back. Their `Retry-After` is honoured (delta-seconds or an
//!   HTTP-date), else the wait is an exponential backoff with full [`Jitter`].
//! - **Non-idempotent requests are not retried on `408`, `502`, `504`, connection errors or
//!   timeouts** — the server may have acted on them. `GET`, `HEAD`, `PUT`, `DELETE`,
//!   `OPTIONS` and `TRACE` are idempotent; a `POST` or `PATCH` becomes retryable when it carries
//!   an `Idempotency-Key` header ([`RequestBuilder::idempotency_key`](crate::RequestBuilder::idempotency_key),
//!   [`new_idempotency_key`]), which is the same on every attempt.
//! - **Other `4xx` are never retried, nor `500` and other `5xx`**: they usually come from a
//!   bug that answers the same way every time. A `401` is handled by the auth layer (refresh,
//!   replay once) inside one attempt and does not count as a retry.
//! - **A streaming body is sent once**: it cannot be replayed, so whatever the answer, it is
//!   returned as is.
//! - **A `Retry-After` longer than [`Policy::max_retry_after`] is not slept through**: the
//!   request fails at once with [`ErrorKind::RateLimited`] and [`Error::retry_after`] tells how
//!   long the server asked for, so the caller decides. Garbage, negative, past or absurd
//!   (over a day) values are ignored in favour of backoff.
//! - **Client-wide cooldown**: after a `429` with `Retry-After`, every request through the same
//!   client (and its clones) waits until the cooldown ends instead of collecting more `429`s.
//! - **Rate-limit headers** (`RateLimit`, `RateLimit-Policy`, `X-RateLimit-*`) are remembered
//!   ([`Client::rate_limit`](crate::Client::rate_limit)); when `remaining` reaches 0, requests
//!   wait for the reset (opt out with
//!   [`ClientBuilder::wait_for_quota_reset`](crate::ClientBuilder::wait_for_quota_reset)).
//! - **Retry budget**: retries of one client are at most `reserve + ratio × requests`
//!   ([`Budget`]), so a server that is down sees little more than the normal traffic.
//! - **Token endpoint**: retried on `429`, `5xx` and when the connection could not be made;
//!   **never after a timeout or a connection lost mid-request**, because the server may have
//!   rotated the refresh token and presenting the old one again could revoke the grant; never
//!   on `invalid_grant`, `invalid_client` or another `4xx`.
//!
//! When the loop gives up, the error tells the attempts made and the time spent
//! ([`Error::retries`]), the last status ([`Error::status`]), the last `Retry-After`
//! ([`Error::retry_after`]) and keeps the cause. Each retry is logged with `tracing`
//! (target `authed::retry`: attempt, wait, status — never a header value or a body).
//!
//! See `docs/retries.md` for examples.

mod headers;
mod policy;
mod state;

use std::{
    future::Future,
    sync::atomic::{AtomicU32, Ordering},
};

use backon::Retryable;
use reqwest::{Method, StatusCode, header::HeaderMap};
use tokio::time::Instant;

pub use headers::RateLimit;
pub(crate) use headers::retry_after;
pub use policy::{Budget, Jitter, Policy};
pub(crate) use state::ClientState;
pub use state::SharedCooldown;

use crate::{Error, ErrorKind, Result};

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

/// Whether the API request that failed with `error` may be retried.
pub(crate) fn is_retryable_api(error: &Error, idempotent: bool) -> bool {
    match error.status().map(|s| s.as_u16()) {
        Some(429 | 503) => true,
        Some(408 | 502 | 504) => idempotent,
        Some(_) => false,
        None => idempotent && matches!(error.kind(), ErrorKind::Transport | ErrorKind::Timeout),
    }
}

/// An attempt's error and whether the loop may try again.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) retryable: bool,
}

impl Failure {
    pub(crate) fn fatal(error: Error) -> Self {
        Self {
            error,
            retryable: false,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `policy` says stop.
///
/// With `client` state (API requests), each attempt first waits out the client-wide cooldown and
/// exhausted quota, a `429` with `Retry-After` starts a cooldown, and retries draw on the
/// budget. `what` names the request in logs and errors (method and path, never a query).
pub(crate) async fn run<T, Fut>(
    policy: &Policy,
    client: Option<&ClientState>,
    what: &str,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let attempts = AtomicU32::new(0);
    if let Some(state) = client {
        state.deposit();
    }
    let result = (|| {
        let sent = attempt();
        let attempts = &attempts;
        async move {
            if let Some(state) = client {
                state
                    .wait_turn(policy, what)
                    .await
                    .map_err(Failure::fatal)?;
            }
            attempts.fetch_add(1, Ordering::Relaxed);
            let result = sent.await;
            if let (Some(state), Err(failure)) = (client, &result)
                && failure.error.status() == Some(StatusCode::TOO_MANY_REQUESTS)
                && let Some(wait) = failure.error.retry_after()
            {
                state.cool_down(wait);
            }
            result
        }
    })
    .retry(policy.backoff())
    .sleep(tokio::time::sleep)
    .when(|failure: &Failure| failure.retryable)
    .adjust(|failure, backoff| {
        let attempt = attempts.load(Ordering::Relaxed);
        let give_up = |reason: &str| {
            tracing::debug!(target: "authed::retry", attempt, reason, "{what}: giving up");
            None
        };
        let Some(backoff) = backoff else {
            return give_up("the policy's max_attempts is reached");
        };
        let wait = match failure.error.retry_after() {
            Some(asked) if asked > policy.max_retry_after => {
                return give_up("Retry-After is longer than the policy's max_retry_after");
            }
            Some(asked) => asked,
            None => backoff,
        };
        if started.elapsed() + wait > policy.max_elapsed {
            return give_up("the policy's max_elapsed would be exceeded");
        }
        if client.is_some_and(|state| !state.withdraw()) {
            return give_up("the client's retry budget is used up");
        }
        Some(wait)
    })
    .notify(|failure: &Failure, wait| {
        tracing::info!(
            target: "authed::retry",
            attempt = attempts.load(Ordering::Relaxed),
            wait_ms = wait.as_millis() as u64,
            status = failure.error.status().map(|s| s.as_u16()),
            kind = ?failure.error.kind(),
            "{what}: retrying"
        );
    })
    .await;
    result.map_err(
        |Failure {
             mut error,
             retryable,
         }| {
            let attempts = attempts.load(Ordering::Relaxed);
            if retryable
                && error
                    .retry_after()
                    .is_some_and(|asked| asked > policy.max_retry_after)
            {
                error = error.with_kind(ErrorKind::RateLimited);
            }
            if retryable || attempts > 1 {
                error = error.with_retries(attempts, started.elapsed());
            }
            error
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for code in [429, 503] {
            assert!(is_retryable_api(&status(code), false), "{code}");
        }
        for code in [408, 502, 504] {
            assert!(is_retryable_api(&status(code), true), "{code}");
            assert!(!is_retryable_api(&status(code), false), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422, 500, 501] {
            assert!(!is_retryable_api(&status(code), true), "{code}");
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
