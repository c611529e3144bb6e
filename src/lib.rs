//! An async client SDK for HTTP APIs protected by short-lived bearer tokens minted from a
//! long-lived refresh token (OAuth 2.0, [RFC 6749 §6]).
//!
//! You keep one secret, the refresh token, in an environment variable. `authed` does the rest:
//! it obtains an access token on first use, renews it before it expires (one refresh at a
//! time, however many tasks share the client), sends `Authorization: Bearer`, replays a request
//! once after a `401`, and turns error responses into a typed [`Error`].
//!
//! # Contents
//!
//! - [Getting started](#getting-started)
//! - [Typed requests](#typed-requests)
//! - [Errors](#errors)
//! - [Refresh token rotation](#refresh-token-rotation)
//! - [Security](#security)
//! - Modules: [`config`] (environment variables, URL rules), [`auth`] (token lifecycle,
//!   stores, clock), [`retry`] (429, `Retry-After`, backoff), [`pagination`] (listings as
//!   streams), [`widgets`] (the typed reference API), `mock` (feature `mock`: a fake API for
//!   tests), `login` (feature `login`: getting the first refresh token)
//! - Guides in the repository's `docs/` folder (their examples are compiled as doctests):
//!   `architecture.md`, `auth.md`, `benchmarks.md`, `retries.md`, `pagination.md`, `testing.md`,
//!   `security.md`, `widgets-api.md`
//!
//! # Getting started
//!
//! `authed` is not on crates.io yet: depend on a checkout by path (or on its git repository,
//! `{ git = "<URL>", rev = "<commit>" }`).
//!
//! ```toml
//! [dependencies]
//! authed = { path = "../authed" }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! Set `AUTHED_BASE_URL`, `AUTHED_TOKEN_URL` and `AUTHED_REFRESH_TOKEN` (and, if your
//! authorization server wants them, `AUTHED_CLIENT_ID`, `AUTHED_CLIENT_SECRET`,
//! `AUTHED_SCOPE`), then:
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> authed::Result<()> {
//!     let client = authed::Client::from_env()?;
//!     let me: serde_json::Value = client.get("/me").send().await?;
//!     println!("{me}");
//!     Ok(())
//! }
//! ```
//!
//! Several APIs in one program? Give each its own prefix:
//! [`Client::from_env_prefixed("ACME")`](Client::from_env_prefixed) reads `ACME_BASE_URL`, ...
//! Or configure everything in code with [`Client::builder`].
//!
//! # Typed requests
//!
//! Any `T: DeserializeOwned` comes back from [`RequestBuilder::send`]; query strings, JSON and
//! form bodies, headers and per-request timeouts are on the [`RequestBuilder`].
//!
//! ```no_run
//! # use std::time::Duration;
//! #[derive(serde::Deserialize)]
//! struct Widget { id: u64, name: String }
//!
//! # async fn run(client: authed::Client) -> authed::Result<()> {
//! let widget: Widget = client
//!     .post("/v1/widgets")
//!     .json(&serde_json::json!({ "name": "sprocket", "color": "blue", "weight_grams": 120 }))
//!     .timeout(Duration::from_secs(5))
//!     .send()
//!     .await?;
//! let blue: Vec<Widget> = client.get("/v1/widgets").query(&[("color", "blue")]).send().await?;
//! client.delete(&format!("/v1/widgets/{}", widget.id)).send::<()>().await?; // 204 is fine
//! let raw = client.get("/v1/export.csv").send_raw().await?; // not JSON: the raw response
//! # Ok(()) }
//! ```
//!
//! [`Client`] is cheap to clone (an `Arc` inside): clone it into every task rather than
//! wrapping it in an `Arc`.
//!
//! # Errors
//!
//! Every failure is an [`Error`]. Match on [`Error::kind`]; the status, the parsed problem body
//! ([`Error::api_error`]), the server's request id and `Retry-After` are kept.
//!
//! ```no_run
//! # async fn run(client: authed::Client) -> authed::Result<()> {
//! use authed::ErrorKind;
//! match client.get("/v1/widgets/7").send::<serde_json::Value>().await {
//!     Ok(widget) => println!("{widget}"),
//!     Err(e) if e.is_reauth_required() => eprintln!("the refresh token is dead; log in again"),
//!     Err(e) if e.kind() == ErrorKind::Api && e.status() == Some(authed::StatusCode::NOT_FOUND) => {
//!         eprintln!("no such widget")
//!     }
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```
//!
//! # Refresh token rotation
//!
//! When the token endpoint sends a new refresh token, it replaces the old one and is handed to
//! the [`RefreshTokenStore`] **before** the new access token is used. The default store keeps
//! it in memory; use a [`FileStore`] (or your own store) so a restart does not present a token
//! the server has already retired:
//!
//! ```no_run
//! # fn run() -> authed::Result<()> {
//! let client = authed::Config::from_env()?
//!     .into_builder()
//!     .refresh_token_store(authed::FileStore::new("/var/lib/myapp/refresh-token"))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # Security
//!
//! - **Secrets never appear in `Debug`, `Display`, error messages or `tracing` output.** The
//!   refresh token, client secret and access tokens live in [`secrecy`] wrappers; the
//!   `Authorization` header is marked sensitive; error bodies are scrubbed of the tokens the
//!   client holds before they are kept.
//! - **Plain `http://` is refused** for the API and the token endpoint, except for loopback
//!   hosts (local mocks).
//! - **The token is sent only to the API's origin**: an absolute URL to another host, or a
//!   redirect that leaves the origin, goes without it. Token requests never follow redirects,
//!   and redirects from `https` to plain `http` are refused.
//! - **One refresh at a time**: servers that detect refresh token reuse revoke the whole grant;
//!   `authed` never sends two refreshes concurrently, and a refresh finishes even if the caller
//!   that started it is cancelled, so a rotated token is never lost.
//!
//! [RFC 6749 §6]: https://www.rfc-editor.org/rfc/rfc6749#section-6
#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]
// No panic on input from the network: the library itself never unwraps, expects or panics.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Entry points for the fuzz targets in `fuzz/` (`cargo fuzz` sets `cfg(fuzzing)`).
#[cfg(fuzzing)]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
pub mod auth;
mod body;
mod client;
mod clock;
pub mod config;
mod env;
mod error;
#[cfg(any(feature = "middleware", feature = "tower"))]
mod integration;
#[cfg(feature = "login")]
#[cfg_attr(docsrs, doc(cfg(feature = "login")))]
pub mod login;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "middleware")))]
pub mod middleware;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
// Test support: a broken mock should fail the test loudly (expectations panic on drop).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod mock;
mod origin;
pub mod pagination;
pub mod retry;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod transport;
#[cfg(feature = "widgets")]
#[cfg_attr(docsrs, doc(cfg(feature = "widgets")))]
pub mod widgets;

#[cfg(feature = "redis")]
pub use auth::store::RedisStore;
pub use auth::{
    AccessToken, ClientAuth, ClientSecret, Clock, DEFAULT_TOKEN_LIFETIME, GrantType, RefreshToken,
    SystemClock, TokenSource,
    store::{FileStore, FnStore, MemoryStore, RefreshTokenStore},
};
pub use client::{Client, ClientBuilder, DEFAULT_MAX_BODY_BYTES, RequestBuilder};
pub use config::Config;
pub use error::{ApiError, AuthErrorKind, Error, ErrorKind, Result, RetrySummary, StopReason};
pub use pagination::{Page, Pagination, Paginator};
pub use reqwest::{Method, StatusCode, header};
pub use secrecy::{ExposeSecret, SecretString};
pub use url::Url;

/// The README's code blocks, compiled as doctests so that the first example a user reads works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The guides in `docs/`, compiled as doctests so that every snippet in them keeps working.
/// Blocks that are not Rust are marked (`text`, `sh`, `toml`, `json`, `http`).
///
/// They are compiled here rather than rendered as module docs because they link to each other
/// and to the source with relative links, which work where the guides are read (the
/// repository) and would be dead in rendered rustdoc. `tests/docs.rs` fails if a guide is
/// missing from this list.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../docs/auth.md")]
    struct Auth;
    #[doc = include_str!("../docs/benchmarks.md")]
    struct Benchmarks;
    #[cfg(all(feature = "redis", feature = "mock"))]
    #[doc = include_str!("../docs/fleet.md")]
    struct Fleet;
    #[doc = include_str!("../docs/pagination.md")]
    struct Pagination;
    #[doc = include_str!("../docs/reliability.md")]
    struct Reliability;
    #[doc = include_str!("../docs/retries.md")]
    struct Retries;
    #[doc = include_str!("../docs/security.md")]
    struct Security;
    #[cfg(feature = "mock")]
    #[doc = include_str!("../docs/testing.md")]
    struct Testing;
    #[cfg(feature = "widgets")]
    #[doc = include_str!("../docs/widgets-api.md")]
    struct WidgetsApi;
}
