//! `authed`'s bearer auth and retry policy for an existing
//! [`reqwest-middleware`](https://crates.io/crates/reqwest-middleware) stack (feature
//! `middleware`).
//!
//! Two independent middlewares, both built from a [`Client`] whose state they share:
//!
//! - [`AuthMiddleware`] ([`Client::auth_middleware`]) adds `Authorization: Bearer` from the
//!   client's token cache (the same cache, so the client and the stack make one refresh
//!   between them) and, after a `401` from the API, refreshes and replays the request once.
//! - [`RetryMiddleware`] ([`Client::retry_middleware`]) retries with the client's
//!   [`Policy`]: `Retry-After`, backoff with jitter, the client-wide cooldown after a `429`
//!   and the retry budget (both shared with the client).
//!
//! Put the retry middleware first (outermost), so that every retry goes through the auth
//! middleware and gets a current token:
//!
//! ```no_run
//! # fn run() -> authed::Result<()> {
//! let client = authed::Client::from_env()?;
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(client.retry_middleware())
//!     .with(client.auth_middleware())
//!     .build();
//! # let _ = http; Ok(()) }
//! ```
//!
//! The rules are those of the client's own send path:
//!
//! - **The token goes only to the client's API origin** (scheme, host and port of its base
//!   URL); a request to any other origin passes through untouched, and so does a request that
//!   already has an `Authorization` header. When the inner `reqwest::Client` follows a
//!   redirect to another host, reqwest drops the header.
//! - **The wait for a token is bounded by the request's timeout**
//!   ([`reqwest::RequestBuilder::timeout`]), which covers the wait and the send as in the
//!   client's own send path (what the wait used is taken off the send's share); a request
//!   without one waits at most the client's [`timeout`](crate::ClientBuilder::timeout)
//!   (default 30 s). A wait that runs out is an [`ErrorKind::Timeout`] error.
//! - **A `401` is replayed only when the body can be sent again**
//!   ([`reqwest::Request::try_clone`]: no streaming body), with a fresh token; a second `401`
//!   is returned as is.
//! - **Non-idempotent requests are not retried on `408`, `502`, `504`, connection errors or
//!   timeouts** unless they carry an `Idempotency-Key`; `429` and `503` are retried for any
//!   method; a request with a streaming body is sent once.
//! - When the retries end, the stack gets **the last response** (a `429`, a `503`, …) or the
//!   last error, as reqwest would have returned them. Errors of `authed`'s own (the token could
//!   not be obtained, the cooldown is longer than the policy allows) are
//!   [`reqwest_middleware::Error::Middleware`] wrapping an [`Error`].
//!
//! Each attempt of the retry middleware runs the rest of the stack with a copy of the
//! request's [`Extensions`], as extensions written by an attempt that failed must not leak
//! into the next one.

use std::sync::Mutex;

use http::Extensions;
use reqwest::{Request, Response, StatusCode, header};
use reqwest_middleware::{Middleware, Next};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    Client, Error, ErrorKind,
    integration::Auth,
    origin::Origin,
    retry::{self, Failure, Policy},
};

// ===== impl Client =====

impl Client {
    /// A [`reqwest-middleware`](reqwest_middleware) middleware that adds this client's bearer
    /// token and replays a request after a `401` (see [`AuthMiddleware`]).
    pub fn auth_middleware(&self) -> AuthMiddleware {
        AuthMiddleware::new(self)
    }

    /// A [`reqwest-middleware`](reqwest_middleware) middleware that retries with this client's
    /// policy, cooldown and budget (see [`RetryMiddleware`]).
    pub fn retry_middleware(&self) -> RetryMiddleware {
        RetryMiddleware::new(self)
    }
}

// ===== impl AuthMiddleware =====

/// Adds `Authorization: Bearer` from a [`Client`]'s token cache to requests to its API origin,
/// and after a `401` refreshes and replays the request (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct AuthMiddleware {
    auth: Auth,
}

impl AuthMiddleware {
    /// The middleware of `client`: same token cache, same API origin.
    pub fn new(client: &Client) -> Self {
        Self {
            auth: Auth::new(client),
        }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let url = request.url();
        let authenticate = self.auth.is_api_origin_parts(
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port(),
        ) && !request.headers().contains_key(header::AUTHORIZATION);
        if !authenticate {
            return next.run(request, extensions).await;
        }
        self.auth.count_request();
        let span = self.auth.request_span(
            request.method().as_str(),
            &Origin(request.url()),
            request.url().path(),
        );
        self.authenticate(request, extensions, next)
            .instrument(span)
            .await
    }
}

impl AuthMiddleware {
    /// Sends `request` with the token; after a `401`, again with a fresh one.
    async fn authenticate(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut replays = 0;
        // The request's own timeout covers the token wait and the send, as in the client's
        // send path; without one, the client's timeout bounds the token wait.
        let own_timeout = request.timeout().copied();
        let deadline = own_timeout
            .or(self.auth.default_timeout())
            .map(|budget| Instant::now() + budget);
        loop {
            let token = self
                .auth
                .token_until(deadline)
                .await
                .map_err(reqwest_middleware::Error::middleware)?;
            if let (Some(_), Some(deadline)) = (own_timeout, deadline) {
                // What is left of it for the send; zero fails at once as a timeout.
                *request.timeout_mut() = Some(deadline.saturating_duration_since(Instant::now()));
            }
            // Kept for a replay; `None` for a streaming body, which is sent once.
            let spare = request.try_clone();
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, token.header_value().clone());
            let response = next.clone().run(request, extensions).await?;
            self.auth.count_status(response.status().as_u16());
            let rejected = response.status() == StatusCode::UNAUTHORIZED && {
                let url = response.url();
                self.auth.is_api_origin_parts(
                    url.scheme(),
                    url.host_str().unwrap_or_default(),
                    url.port(),
                )
            };
            match spare {
                Some(spare) if rejected && self.auth.replay_after_401(&token, replays) => {
                    request = spare;
                    replays += 1;
                }
                _ => return Ok(response),
            }
        }
    }
}

// ===== impl RetryMiddleware =====

/// Retries requests with a [`Client`]'s retry [`Policy`], sharing its cooldown and retry
/// budget (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct RetryMiddleware {
    auth: Auth,
    policy: Option<Policy>,
}

impl RetryMiddleware {
    /// The middleware of `client`: its policy, cooldown and budget.
    pub fn new(client: &Client) -> Self {
        Self {
            auth: Auth::new(client),
            policy: None,
        }
    }

    /// Retries with `policy` instead of the client's (the cooldown and budget stay shared).
    #[must_use]
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }
}

/// What an attempt returned, kept to hand back when the retries end.
type Outcome = reqwest_middleware::Result<Response>;

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if request.try_clone().is_none() {
            // A streaming body cannot be sent again: the first attempt is the only one.
            return next.run(request, extensions).await;
        }
        let shared = &*self.auth.shared;
        let policy = self.policy.as_ref().unwrap_or(&shared.retry_policy);
        let idempotent = retry::is_idempotent(request.method(), request.headers());
        let url = request.url();
        let on_api = self.auth.is_api_origin_parts(
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port(),
        );
        // Cooldown, quota and budget describe the API server, not other origins.
        let state = on_api.then_some(&shared.retry);
        let what = format!("{} {}", request.method(), url.path());
        let last: Mutex<Option<Outcome>> = Mutex::new(None);
        let keep = |outcome: Outcome| {
            *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        };
        let first = extensions.clone();
        #[cfg(feature = "metrics")]
        let mut sent = 0_u32;
        let clock = &*shared.clock;
        let result = retry::run(policy, state, clock, &what, None, || {
            #[cfg(feature = "metrics")]
            {
                if sent > 0 {
                    crate::metrics::retry(&shared.name);
                }
                sent += 1;
            }
            let attempt = request.try_clone();
            let mut extensions = first.clone();
            let (next, what, keep) = (next.clone(), &what, &keep);
            async move {
                let attempt = attempt.ok_or_else(|| {
                    Failure::fatal(Error::config("the request body cannot be sent again"))
                })?;
                match next.run(attempt, &mut extensions).await {
                    Ok(response) => {
                        let status = response.status();
                        let now_utc = shared.clock.now_utc();
                        if on_api {
                            shared.retry.observe(status, response.headers());
                        }
                        if status.is_success()
                            || status.is_redirection()
                            || status.is_informational()
                        {
                            return Ok(response);
                        }
                        let error = Error::new(ErrorKind::Api, format!("{what} failed"))
                            .with_status(status)
                            .with_retry_after(retry::retry_after(response.headers(), now_utc))
                            .with_headers(response.headers().clone());
                        keep(Ok(response));
                        Err(Failure::api(error, policy, idempotent, true))
                    }
                    Err(failed) => {
                        // Errors of other middlewares are theirs to retry; transport errors
                        // follow the idempotency rule.
                        let kind = if failed.is_timeout() {
                            ErrorKind::Timeout
                        } else {
                            ErrorKind::Transport
                        };
                        let retryable = !failed.is_middleware()
                            && (failed.is_connect() || failed.is_timeout() || failed.is_request())
                            && idempotent;
                        keep(Err(failed));
                        Err(Failure {
                            error: Error::new(kind, format!("{what} failed")),
                            retryable,
                        })
                    }
                }
            }
        })
        .await;
        match result {
            Ok(response) => Ok(response),
            Err(error) => last
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(reqwest_middleware::Error::middleware(error))),
        }
    }
}
