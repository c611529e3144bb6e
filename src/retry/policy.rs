//! [`Policy`]: how often and how long to retry; [`Jitter`]; [`Budget`]; the backoff schedule.

use std::time::Duration;

use super::classify::Classifier;

/// How a request is retried: how many attempts, how long in total, how long between attempts,
/// and how long a `Retry-After` the client is willing to honour.
///
/// Set one for the whole client with [`ClientBuilder::retry_policy`](crate::ClientBuilder::retry_policy)
/// and override it for one request with
/// [`RequestBuilder::retry_policy`](crate::RequestBuilder::retry_policy). The token endpoint
/// uses the client's policy.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`max_attempts`](Policy::max_attempts) | 3 (the first one included) | two retries on backoff ride out a blip or a short overload; more mostly adds load to a server that is down |
/// | [`max_server_waits`](Policy::max_server_waits) | 20 | waits the server scheduled (`Retry-After` within the cap) are not failures; this only bounds a server that never lets the request through |
/// | [`max_elapsed`](Policy::max_elapsed) | 2 min | the deadline: an upper bound a caller can plan around, enough for two honoured one-minute `Retry-After`s |
/// | [`base_delay`](Policy::base_delay) | 500 ms | the ceiling of the first backoff; with full jitter the mean first wait is 250 ms |
/// | [`max_delay`](Policy::max_delay) | 20 s | ceiling of any backoff step (the ceiling doubles per retry up to this) |
/// | [`jitter`](Policy::jitter) | [`Jitter::Full`] | spreads clients that failed together, so they do not come back together |
/// | [`max_retry_after`](Policy::max_retry_after) | 60 s | the longest server-requested wait slept through; a longer one fails fast with [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) and [`Error::retry_after`](crate::Error::retry_after), so the caller decides |
/// | [`classifier`](Policy::classifier) | [`Classifier::default`] | `429`/`503` for any method; `408`/`502`/`504`, connection errors and timeouts for idempotent requests |
///
/// ```
/// use std::time::Duration;
/// use authed::retry::{Jitter, Policy};
///
/// let patient = Policy::default()
///     .max_attempts(5)
///     .max_elapsed(Duration::from_secs(300))
///     .max_retry_after(Duration::from_secs(120));
/// let deterministic = Policy::default().jitter(Jitter::None);
/// let once = Policy::never();
/// # let _ = (patient, deterministic, once);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub(crate) max_attempts: u32,
    pub(crate) max_elapsed: Duration,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) jitter: Jitter,
    pub(crate) max_retry_after: Duration,
    pub(crate) max_server_waits: u32,
    pub(crate) classifier: Classifier,
}

/// How a backoff delay is randomised. With `ceiling = min(max_delay, base_delay × 2ⁿ)` for the
/// n-th retry (n from 0):
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Wait a uniformly random time in `[0, ceiling]` ("full jitter"). The best at spreading
    /// clients that failed at the same moment; the default.
    #[default]
    Full,
    /// Wait `ceiling / 2` plus a uniformly random time in `[0, ceiling / 2]`: never less than
    /// half the ceiling.
    Equal,
    /// Wait exactly `ceiling`. Predictable, but clients that failed together retry together.
    None,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_elapsed: Duration::from_secs(120),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            jitter: Jitter::Full,
            max_retry_after: Duration::from_secs(60),
            max_server_waits: 20,
            classifier: Classifier::default(),
        }
    }
}

impl Policy {
    /// A policy that never retries: one attempt, even when the server asks to come back. A
    /// `Retry-After` is still reported by the error, and the client-wide cooldown still applies
    /// (up to the default `max_retry_after`).
    pub fn never() -> Self {
        Self::default().max_attempts(1).max_server_waits(0)
    }

    /// How many attempts at most when the server does not say when to come back, the first one
    /// included (`1` means no retry on backoff; `0` is read as `1`). These retries also draw on
    /// the client's [`Budget`]. Retries the server scheduled are bounded by
    /// [`max_server_waits`](Self::max_server_waits) instead.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The deadline: the longest time from the first attempt to the start of the last one. A
    /// retry whose wait would end after it is not made, and nothing is retried past it.
    #[must_use]
    pub fn max_elapsed(mut self, elapsed: Duration) -> Self {
        self.max_elapsed = elapsed;
        self
    }

    /// The ceiling of the first backoff step; it doubles for every further retry.
    #[must_use]
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The largest backoff step.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How backoff steps are randomised (default [`Jitter::Full`]).
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The longest server-requested wait (`Retry-After`, a client-wide cooldown, a rate-limit
    /// reset) the client sleeps through. A longer one fails at once with
    /// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) carrying the requested wait in
    /// [`Error::retry_after`](crate::Error::retry_after).
    #[must_use]
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// How many times at most one request waits out a wait the server asked for (a
    /// `Retry-After` no longer than [`max_retry_after`](Self::max_retry_after), or the reset of
    /// a used-up rate-limit quota) and tries again. Such a retry is **the server's schedule,
    /// not a failure**: it does not count against [`max_attempts`](Self::max_attempts) nor the
    /// [`Budget`]. Default 20; [`max_elapsed`](Self::max_elapsed) bounds them too.
    #[must_use]
    pub fn max_server_waits(mut self, waits: u32) -> Self {
        self.max_server_waits = waits;
        self
    }

    /// Which failures are retried (default [`Classifier::default`]); [`Error::is_retryable`]
    /// of the errors a request returns follows it too.
    ///
    /// ```
    /// use authed::retry::{Policy, classify::Classifier};
    ///
    /// // GitHub answers its secondary rate limits with 403 and Retry-After.
    /// let github = Policy::default().classifier(Classifier::github());
    /// # let _ = github;
    /// ```
    ///
    /// [`Error::is_retryable`]: crate::Error::is_retryable
    #[must_use]
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// The backoff waits between attempts: `max_attempts - 1` of them.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff {
            base: self.base_delay,
            max: self.max_delay,
            jitter: self.jitter,
            retry: 0,
            left: self.max_attempts.saturating_sub(1),
        }
    }
}

/// Exponential backoff with the policy's jitter: full jitter as described in AWS's
/// "Exponential Backoff And Jitter".
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    jitter: Jitter,
    retry: u32,
    left: u32,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.left = self.left.checked_sub(1)?;
        let ceiling = self
            .base
            .checked_mul(2u32.saturating_pow(self.retry))
            .map_or(self.max, |d| d.min(self.max));
        self.retry += 1;
        Some(match self.jitter {
            Jitter::Full => ceiling.mul_f64(fastrand::f64()),
            Jitter::Equal => ceiling / 2 + (ceiling / 2).mul_f64(fastrand::f64()),
            Jitter::None => ceiling,
        })
    }
}

/// A client-wide retry budget: a token bucket that keeps retries a bounded fraction of traffic.
///
/// The bucket starts full with [`reserve`](Budget::reserve) retries; every request (not every
/// attempt) adds [`ratio`](Budget::ratio) of a retry, up to the reserve; every retry takes one.
/// When it is empty, failures are returned without retrying. So however the server fails,
/// **over any run of N requests the client makes at most `reserve + ratio × N` retries**.
///
/// Default: a reserve of 10 and a ratio of 0.2 — an outage adds at most 20 % load (plus 10
/// requests) instead of the `max_attempts`-fold load of unbudgeted retries, while a client
/// with little traffic can still retry every failure of an isolated blip. The same shape as
/// Finagle's `RetryBudget` and gRPC's retry throttling.
///
/// The token endpoint's retries are not budgeted: the client sends at most one token request
/// at a time, so they cannot storm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub(crate) reserve: f64,
    pub(crate) ratio: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            reserve: 10.0,
            ratio: 0.2,
        }
    }
}

impl Budget {
    /// A budget that never runs out: every retry the policy allows is made.
    pub fn unlimited() -> Self {
        Self {
            reserve: f64::INFINITY,
            ratio: 0.0,
        }
    }

    /// How many retries the bucket holds when full (default 10).
    #[must_use]
    pub fn reserve(mut self, retries: u32) -> Self {
        self.reserve = f64::from(retries);
        self
    }

    /// The fraction of a retry every request earns (default 0.2, clamped to `[0, 1]`).
    #[must_use]
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_up_to_the_max_and_stops_after_max_attempts() {
        let policy = Policy::default()
            .max_attempts(6)
            .base_delay(MS(100))
            .max_delay(MS(500))
            .jitter(Jitter::None);
        let waits: Vec<_> = policy.backoff().collect();
        assert_eq!(waits, [MS(100), MS(200), MS(400), MS(500), MS(500)]);
        assert_eq!(Policy::never().backoff().count(), 0);
    }

    #[test]
    fn full_jitter_spreads_over_zero_to_ceiling() {
        let policy = Policy::default().max_attempts(2).base_delay(MS(1000));
        let waits: Vec<_> = (0..2000)
            .map(|_| policy.backoff().next().unwrap())
            .collect();
        assert!(waits.iter().all(|w| *w <= MS(1000)));
        assert!(
            waits.iter().any(|w| *w < MS(100)),
            "full jitter reaches near zero"
        );
        assert!(
            waits.iter().any(|w| *w > MS(900)),
            "full jitter reaches near the ceiling"
        );
    }

    #[test]
    fn equal_jitter_stays_in_the_upper_half() {
        let policy = Policy::default()
            .max_attempts(2)
            .base_delay(MS(1000))
            .jitter(Jitter::Equal);
        assert!((0..500).all(|_| {
            let w = policy.backoff().next().unwrap();
            w >= MS(500) && w <= MS(1000)
        }));
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        let mut backoff = Policy::default()
            .max_attempts(u32::MAX)
            .jitter(Jitter::None)
            .backoff();
        assert_eq!(backoff.nth(200), Some(Duration::from_secs(20)));
    }

    #[test]
    fn budget_ratio_is_clamped() {
        assert_eq!(Budget::default().ratio(7.0).ratio, 1.0);
        assert_eq!(Budget::default().ratio(f64::NAN).ratio, 0.0);
    }
}
