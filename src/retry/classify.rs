//! [`Classifier`]: which failed attempts are worth another one. The retry loop and
//! [`Error::is_retryable`] both ask it, so they never disagree.
//!
//! A classifier is a list of rules, plain functions from a [`Failed`] attempt to
//! `Option<Retryable>`: the first rule with an opinion decides, and an attempt no rule has an
//! opinion on is not retried. [`Classifier::default`] holds [`status`] and [`connection`];
//! [`Classifier::with`] puts a rule of yours in front of them, and the presets
//! [`Classifier::github`] and [`Classifier::stripe`] are built that way.
//!
//! ```
//! use authed::retry::{Policy, classify::{Classifier, Failed, Retryable}};
//!
//! // An API that answers 409 while a resource is being provisioned, and 409 means
//! // "not yet, nothing done": safe to retry for any method.
//! fn provisioning(failed: &Failed<'_>) -> Option<Retryable> {
//!     (failed.status()?.as_u16() == 409 && failed.header("x-provisioning") == Some("true"))
//!         .then_some(Retryable::Always)
//! }
//!
//! let policy = Policy::default().classifier(Classifier::default().with(provisioning));
//! # let _ = policy;
//! ```

use std::{fmt, sync::Arc};

use reqwest::StatusCode;

use crate::{Error, ErrorKind};

/// What a [`Classifier`] says of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Retryable {
    /// The server did not act on the request and invites another attempt (`429`, `503`):
    /// **retried for any method**.
    Always,
    /// The server may have acted on the request (`408`, `502`, `504`, a connection lost, a
    /// timeout): **retried only for idempotent requests** (`GET`, `HEAD`, `PUT`, `DELETE`,
    /// `OPTIONS`, `TRACE`, or any request with an `Idempotency-Key`).
    Idempotent,
    /// Another attempt would get the same answer (`4xx`, `500`, a decode error): returned as
    /// is.
    Never,
}

/// A failed attempt, as a classifier rule sees it: the error and the headers of the response
/// that caused it (if there was one).
#[derive(Clone, Copy, Debug)]
pub struct Failed<'a> {
    error: &'a Error,
}

impl<'a> Failed<'a> {
    /// A view of `error`, e.g. to test a rule of yours on an error a request returned.
    pub fn new(error: &'a Error) -> Self {
        Self { error }
    }

    /// The error the attempt ended with.
    pub fn error(&self) -> &'a Error {
        self.error
    }

    /// The HTTP status of the answer, if the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.error.status()
    }

    /// A header of the answer as text (`None` if absent or not visible ASCII). Header names
    /// are case-insensitive.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.error.headers()?.get(name)?.to_str().ok()
    }
}

/// One rule of a [`Classifier`].
type Rule = dyn Fn(&Failed<'_>) -> Option<Retryable> + Send + Sync;

/// Which failed attempts are retried: a list of rules, asked in turn until one has an opinion
/// (see the [module docs](self)). Cheap to clone.
///
/// Set it with [`Policy::classifier`](super::Policy::classifier).
#[derive(Clone)]
pub struct Classifier {
    /// Rules in the order they are asked.
    rules: Option<Arc<[Arc<Rule>]>>,
    /// Whether [`status`] and [`connection`] are asked after `rules`.
    defaults: bool,
}

impl Default for Classifier {
    /// [`status`], then [`connection`].
    fn default() -> Self {
        Self {
            rules: None,
            defaults: true,
        }
    }
}

impl Classifier {
    /// A classifier with no rule: nothing is retried until rules are added with
    /// [`with`](Self::with).
    pub fn none() -> Self {
        Self {
            rules: None,
            defaults: false,
        }
    }

    /// This classifier with `rule` asked **first**, before the rules it already has: the
    /// last rule added speaks first, so a rule can override the defaults for the answers it
    /// knows and return `None` for the others.
    #[must_use]
    pub fn with(
        self,
        rule: impl Fn(&Failed<'_>) -> Option<Retryable> + Send + Sync + 'static,
    ) -> Self {
        let mut rules: Vec<Arc<Rule>> = vec![Arc::new(rule)];
        rules.extend(self.rules.iter().flat_map(|r| r.iter().cloned()));
        Self {
            rules: Some(rules.into()),
            defaults: self.defaults,
        }
    }

    /// The defaults with [`github_secondary_rate_limit`]: a `403` that GitHub uses for its
    /// secondary rate limits is waited out like a `429`.
    pub fn github() -> Self {
        Self::default().with(github_secondary_rate_limit)
    }

    /// The defaults with [`stripe_should_retry`]: Stripe's `Stripe-Should-Retry` header
    /// decides where it is present.
    pub fn stripe() -> Self {
        Self::default().with(stripe_should_retry)
    }

    /// What the rules say of `error`: the first opinion, else [`Retryable::Never`].
    pub fn classify(&self, error: &Error) -> Retryable {
        let failed = Failed::new(error);
        let mut rules = self.rules.iter().flat_map(|r| r.iter());
        rules
            .find_map(|rule| rule(&failed))
            .or_else(|| {
                self.defaults
                    .then(|| status(&failed).or_else(|| connection(&failed)))
                    .flatten()
            })
            .unwrap_or(Retryable::Never)
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("rules", &self.rules.as_ref().map_or(0, |r| r.len()))
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl PartialEq for Classifier {
    /// Two classifiers are equal when they hold the very same rules.
    fn eq(&self, other: &Self) -> bool {
        self.defaults == other.defaults
            && match (&self.rules, &other.rules) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for Classifier {}

// ===== default rules =====

/// The default rule for answers: `429` and `503` → [`Retryable::Always`] (the server refused
/// without acting, and asks to come back); `408`, `502`, `504` → [`Retryable::Idempotent`]
/// (a proxy or the server gave up, maybe after acting); any other status →
/// [`Retryable::Never`], `500` included (it usually reports a bug that answers the same way
/// every time). `None` when the server did not answer.
pub fn status(failed: &Failed<'_>) -> Option<Retryable> {
    let status = failed.status()?;
    Some(match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => Retryable::Always,
        StatusCode::REQUEST_TIMEOUT | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            Retryable::Idempotent
        }
        _ => Retryable::Never,
    })
}

/// The default rule for attempts without an answer: a connection error or a timeout →
/// [`Retryable::Idempotent`] (the request may have reached the server); a request the client
/// held back for a cooldown or quota longer than the policy waits →
/// [`Retryable::Always`] (it was not sent); anything else (a configuration or decode error)
/// → [`Retryable::Never`].
pub fn connection(failed: &Failed<'_>) -> Option<Retryable> {
    if failed.status().is_some() {
        return None;
    }
    Some(match failed.error().kind() {
        ErrorKind::Transport | ErrorKind::Timeout => Retryable::Idempotent,
        ErrorKind::RateLimited => Retryable::Always,
        _ => Retryable::Never,
    })
}

/// GitHub's secondary rate limits: a `403` with `Retry-After`, or with
/// `X-RateLimit-Remaining: 0`, is a rate limit, not a refusal → [`Retryable::Always`]. The
/// wait is the `Retry-After`, else the `X-RateLimit-Reset` the client holds requests for
/// (see [`crate::retry`]). `None` for anything else.
pub fn github_secondary_rate_limit(failed: &Failed<'_>) -> Option<Retryable> {
    let limited = failed.status()? == StatusCode::FORBIDDEN
        && (failed.header("retry-after").is_some()
            || failed.header("x-ratelimit-remaining").map(str::trim) == Some("0"));
    limited.then_some(Retryable::Always)
}

/// Stripe's `Stripe-Should-Retry` header: `true` → [`Retryable::Always`] (Stripe says a retry
/// is safe), `false` → [`Retryable::Never`]; `None` without the header.
pub fn stripe_should_retry(failed: &Failed<'_>) -> Option<Retryable> {
    match failed.header("stripe-should-retry")?.trim() {
        v if v.eq_ignore_ascii_case("true") => Some(Retryable::Always),
        v if v.eq_ignore_ascii_case("false") => Some(Retryable::Never),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    use super::*;

    fn answer(code: u16, headers: &[(&'static str, &str)]) -> Error {
        let headers: HeaderMap = headers
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect();
        Error::new(ErrorKind::Api, "x")
            .with_status(StatusCode::from_u16(code).unwrap())
            .with_headers(headers)
    }

    #[test]
    fn defaults_retry_429_503_always_and_gateway_errors_when_idempotent() {
        let c = Classifier::default();
        for code in [429, 503] {
            assert_eq!(c.classify(&answer(code, &[])), Retryable::Always, "{code}");
        }
        for code in [408, 502, 504] {
            assert_eq!(
                c.classify(&answer(code, &[])),
                Retryable::Idempotent,
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 422, 500, 501] {
            assert_eq!(c.classify(&answer(code, &[])), Retryable::Never, "{code}");
        }
        assert_eq!(
            c.classify(&Error::new(ErrorKind::Timeout, "x")),
            Retryable::Idempotent
        );
        assert_eq!(
            c.classify(&Error::new(ErrorKind::Decode, "x")),
            Retryable::Never
        );
        assert_eq!(
            c.classify(&Error::new(ErrorKind::RateLimited, "not sent")),
            Retryable::Always
        );
    }

    #[test]
    fn github_preset_retries_secondary_rate_limits_only() {
        let c = Classifier::github();
        assert_eq!(
            c.classify(&answer(403, &[("retry-after", "60")])),
            Retryable::Always
        );
        assert_eq!(
            c.classify(&answer(403, &[("x-ratelimit-remaining", "0")])),
            Retryable::Always
        );
        assert_eq!(
            c.classify(&answer(403, &[("x-ratelimit-remaining", "12")])),
            Retryable::Never
        );
        assert_eq!(c.classify(&answer(503, &[])), Retryable::Always);
        assert_eq!(
            Classifier::default().classify(&answer(403, &[("retry-after", "60")])),
            Retryable::Never
        );
    }

    #[test]
    fn stripe_preset_follows_the_header_over_the_defaults() {
        let c = Classifier::stripe();
        assert_eq!(
            c.classify(&answer(409, &[("stripe-should-retry", "true")])),
            Retryable::Always
        );
        assert_eq!(
            c.classify(&answer(503, &[("stripe-should-retry", "false")])),
            Retryable::Never
        );
        assert_eq!(c.classify(&answer(503, &[])), Retryable::Always);
    }

    #[test]
    fn the_last_rule_added_speaks_first_and_none_retries_nothing() {
        let c = Classifier::none().with(|_: &Failed<'_>| Some(Retryable::Never));
        let c = c.with(|f: &Failed<'_>| (f.status()? == 500).then_some(Retryable::Always));
        assert_eq!(c.classify(&answer(500, &[])), Retryable::Always);
        assert_eq!(c.classify(&answer(429, &[])), Retryable::Never);
        assert_eq!(
            Classifier::none().classify(&answer(429, &[])),
            Retryable::Never
        );
        assert_eq!(Classifier::default(), Classifier::default());
        assert_ne!(Classifier::default(), Classifier::github());
    }
}
