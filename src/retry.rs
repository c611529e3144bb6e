//! Retries: `Retry-After`, backoff with jitter, and which requests may be retried.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The wait a response's `Retry-After` header asks for (RFC 9110 §10.2.3), as delta-seconds
/// or an HTTP-date measured against `now`. Garbage, negative values and dates in the past give
/// `None` (the caller falls back to backoff); absurdly long waits are clamped, never slept
/// (the policy's cap decides what to do with them).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than fit in u64 is still "a very long time".
        let secs = value
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .min(MAX_RETRY_AFTER.as_secs());
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    date.duration_since(now)
        .ok()
        .map(|d| d.min(MAX_RETRY_AFTER))
}

/// Longest `Retry-After` represented; anything longer is reported as this (a day).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
