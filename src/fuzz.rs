//! Entry points for the fuzz targets in `fuzz/`: thin wrappers over the crate-private parsers
//! of network input, taking plain bytes so that the targets do not change when the parsers'
//! signatures do.
//!
//! Compiled only with `--cfg fuzzing` (which `cargo fuzz` sets); not part of the public API.
//! Every function takes a fixed "now" so that a crash reproduces on any day.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// The fixed "now" of every wrapper: 2026-01-01T00:00:00Z.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// Headers from `(name, value)` pairs; pairs that are not valid header names or values are
/// skipped, as an HTTP stack would have refused them before the parser sees them.
pub fn headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// `Retry-After: <value>` as the retry loop reads it.
pub fn retry_after(value: &[u8]) -> Option<Duration> {
    crate::retry::retry_after(&headers([("retry-after", value)]), now())
}

/// The rate-limit headers of a response: `(limit, remaining, reset)`.
pub fn rate_limit(headers: &HeaderMap) -> Option<(Option<u64>, Option<u64>, Option<Duration>)> {
    crate::retry::RateLimit::from_headers(headers, now(), tokio::time::Instant::now())
        .map(|r| (r.limit, r.remaining, r.reset))
}

/// The base URL the pagination wrappers resolve relative links against.
const PAGE_URL: &str = "https://api.example.com/v1/items?page=1";

/// The `rel="next"` target of a `Link` header value, as the `Link` header strategy reads it:
/// `Ok(Some(url))`, `Ok(None)` for no next link, `Err` with the error's `Display`. (A marker
/// other than a URL, which this strategy never returns, would come as `marker: <Debug>`.)
pub fn link_next(value: &[u8]) -> Result<Option<String>, String> {
    use crate::pagination::LinkHeader;
    next_marker(
        &LinkHeader::new(),
        &headers([("link", value)]),
        &serde_json::Value::Null,
    )
}

/// A page body as the listing reads it (JSON, as `Walk` decodes it), then what each built-in
/// strategy makes of it: one entry per strategy, in the order offset, page number, cursor at
/// `/next_cursor`, next URL at `/next`, `Link` header (with `link` as the header). A next page
/// given as a URL comes as the URL; any other marker as `marker: <Debug>`.
pub fn page(body: &[u8], link: &[u8]) -> Result<Vec<Result<Option<String>, String>>, String> {
    use crate::pagination::{Cursor, LinkHeader, NextUrl, Offset, PageNumber, Strategy};
    let body: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let headers = headers([("link", link)]);
    let strategies: [&dyn Strategy; 5] = [
        &Offset::new("skip", "take"),
        &PageNumber::new("page", "per_page"),
        &Cursor::new("cursor", "/next_cursor"),
        &NextUrl::new("/next"),
        &LinkHeader::new(),
    ];
    Ok(strategies
        .into_iter()
        .map(|strategy| next_marker(strategy, &headers, &body))
        .collect())
}

fn next_marker(
    strategy: &dyn crate::pagination::Strategy,
    headers: &HeaderMap,
    body: &serde_json::Value,
) -> Result<Option<String>, String> {
    let base = url::Url::parse(PAGE_URL).map_err(|e| e.to_string())?;
    crate::pagination::fuzz_next(strategy, &base, headers, body)
        .map(|marker| {
            marker.map(|m| match m {
                crate::pagination::Marker::Url(url) => url,
                other => format!("marker: {other:?}"),
            })
        })
        .map_err(|e| e.to_string())
}

/// The `exp` claim of a JWT access token.
pub fn jwt_expiry(token: &str) -> Option<SystemTime> {
    crate::auth::jwt::expiry(token)
}

/// The refresh token every token-response wrapper presents (and must never show).
pub const REFRESH_TOKEN: &str = "rt-fuzz-refresh-token-0123456789";
/// The client secret every token-response wrapper holds (and must never show).
pub const CLIENT_SECRET: &str = "cs-fuzz-client-secret-0123456789";

/// The `Basic` credential of the client the token-response wrapper stands for.
pub fn basic_credential() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("fuzz-client:{CLIENT_SECRET}"))
}

/// A token endpoint's answer, parsed as the client parses it, holding [`REFRESH_TOKEN`],
/// [`CLIENT_SECRET`] and its Basic credential as the secrets to scrub. `Ok` holds `expires_in`
/// and whether a rotated refresh token came with it; `Err` holds the error's `Display` and
/// `Debug`.
pub fn token_response(
    status: u16,
    header_pairs: &[(&str, &[u8])],
    body: &[u8],
) -> Result<(Option<Duration>, bool), (String, String)> {
    let status = reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::OK);
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = status;
    *response.headers_mut() = headers(header_pairs.iter().copied());
    let response = reqwest::Response::from(response);
    let basic = basic_credential();
    let secrets = [REFRESH_TOKEN, CLIENT_SECRET, basic.as_str()];
    let parsed = block_on(crate::auth::fuzz_parse_token_response(
        response,
        &secrets,
        now(),
    ));
    match parsed {
        Ok(token) => Ok((token.expires_in, token.refresh_token.is_some())),
        Err(e) => Err((e.to_string(), format!("{e:?}"))),
    }
}

/// An API error body, parsed and scrubbed of `secrets` as the client does.
pub fn api_error(body: &[u8], secrets: &[&str]) -> crate::ApiError {
    crate::ApiError::parse(body, secrets)
}

/// Runs a future that needs no timers or I/O readiness (the wrappers' bodies are in memory).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds");
    }
    RUNTIME.with(|rt| rt.block_on(future))
}
