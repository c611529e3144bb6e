//! The source of time: token expiry, `Retry-After` dates, JWT `exp` claims, cooldowns.

use std::{fmt, time::SystemTime};

use tokio::time::Instant;

/// The source of time for token expiry, `Retry-After` dates and JWT `exp` claims.
///
/// The default, [`SystemClock`], reads [`tokio::time::Instant`], so tests running on paused
/// tokio time (`#[tokio::test(start_paused = true)]` and `tokio::time::advance`) control token
/// expiry without sleeping. Implement it to control time some other way.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// Monotonic now, for expiry.
    fn now(&self) -> Instant;
    /// Wall-clock now, for HTTP dates, JWT `exp` and expiry shared with other processes.
    fn now_utc(&self) -> SystemTime;
}

/// Tokio's clock (honours paused test time) and the system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_utc(&self) -> SystemTime {
        SystemTime::now()
    }
}
