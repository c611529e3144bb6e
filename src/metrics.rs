//! Counters through the [`metrics`](https://crates.io/crates/metrics) facade (feature
//! `metrics`).
//!
//! `authed` only emits: install the recorder or exporter of your choice (Prometheus,
//! StatsD, …) and the counters below appear in it. Without a recorder they cost nothing.
//!
//! Every counter has one label, [`CLIENT_LABEL`] (`client`): the client's name
//! ([`ClientBuilder::name`](crate::ClientBuilder::name), by default the API host), so that two
//! clients in one program are told apart. **No label ever holds a secret, a path, a query or a
//! header value**: only the name you chose.
//!
//! | counter | counts |
//! |---|---|
//! | [`REQUESTS`] | requests sent through a client, its middleware or its tower layer (one per request, whatever its retries) |
//! | [`RETRIES`] | attempts after the first, as the retry policy allowed them |
//! | [`REPLAYS_401`] | requests sent again with a fresh token after a `401` |
//! | [`RATE_LIMITED`] | `429 Too Many Requests` answers from the API |
//! | [`REFRESHES`] | token refreshes, successful or not |
//! | [`REFRESH_FAILURES`] | refreshes that failed |
//!
//! ```no_run
//! # fn run() -> authed::Result<()> {
//! // With a recorder installed (e.g. `metrics-exporter-prometheus`), this client's counters
//! // carry `client="billing"`.
//! let client = authed::Config::from_env()?.into_builder().name("billing").build()?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

/// The label every counter carries: the client's name.
pub const CLIENT_LABEL: &str = "client";
/// Requests sent (one per request, whatever its retries and replays).
pub const REQUESTS: &str = "authed_requests_total";
/// Attempts after the first one of a request.
pub const RETRIES: &str = "authed_retries_total";
/// Requests replayed with a fresh token after a `401`.
pub const REPLAYS_401: &str = "authed_401_replays_total";
/// `429 Too Many Requests` answers from the API.
pub const RATE_LIMITED: &str = "authed_rate_limited_total";
/// Token refreshes, successful or not.
pub const REFRESHES: &str = "authed_token_refreshes_total";
/// Token refreshes that failed.
pub const REFRESH_FAILURES: &str = "authed_token_refresh_failures_total";

fn count(name: &'static str, client: &Arc<str>) {
    ::metrics::counter!(name, CLIENT_LABEL => client.clone()).increment(1);
}

pub(crate) fn request(client: &Arc<str>) {
    count(REQUESTS, client);
}

pub(crate) fn retry(client: &Arc<str>) {
    count(RETRIES, client);
}

pub(crate) fn replay_401(client: &Arc<str>) {
    count(REPLAYS_401, client);
}

pub(crate) fn rate_limited(client: &Arc<str>) {
    count(RATE_LIMITED, client);
}

pub(crate) fn refresh(client: &Arc<str>, ok: bool) {
    count(REFRESHES, client);
    if !ok {
        count(REFRESH_FAILURES, client);
    }
}
