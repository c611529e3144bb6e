//! A fake of a whole token-protected API on a local HTTP server, for tests (feature `mock`).
//!
//! [`MockApi`] starts a [`wiremock`] server that behaves like the servers `authed` talks to:
//! a token endpoint with real refresh-token semantics, a bearer check on every resource route,
//! the stateful Widgets API, paged collections, rate limits and injected faults — and it
//! counts what happened, so a test can assert "exactly one refresh".
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> authed::Result<()> {
//! use authed::mock::MockApi;
//!
//! let api = MockApi::builder().rotate_refresh_tokens(true).start().await;
//! let client = api.client(); // configured against the mock, with its refresh token
//!
//! let widget: serde_json::Value = client.get("/v1/widgets/7").send().await?;
//! assert_eq!(widget["name"], "Widget 7");
//!
//! api.expire_access_tokens(); // the server now answers 401 to the token the client holds
//! let me: serde_json::Value = client.get("/v1/me").send().await?; // refreshed and replayed
//! assert_eq!(me["id"], "user-1");
//! assert_eq!(api.stats().refreshes, 2);
//! assert_eq!(api.stats().unauthorized, 1);
//! # Ok(()) }
//! ```
//!
//! The guide is `docs/testing.md` in the repository (its examples are compiled as doctests).
//! In short:
//!
//! - **For tests only.** JWT access tokens are unsigned (`alg: none`); tokens are kept in clear
//!   text in memory (never in the journal or `Debug` output).
//! - **Time.** Token expiry and rate-limit windows are measured on tokio's clock *of the runtime
//!   that started the `MockApi`*, although wiremock answers on its own thread: paused test time
//!   and `tokio::time::advance` reach the server. But **paused time and real sockets mix
//!   badly**: while a request waits for the server, tokio auto-advances to the next timer, which
//!   fires the client's request timeout at once. Prefer real time with
//!   [`MockApi::expire_access_tokens`] and [`MockApi::advance`] (server clock only); with paused
//!   time, build the client with `api.client_builder().timeout(None)`.
//! - **One `MockApi` per test**: each has its own port and state.
//! - Your own mocks on [`MockApi::server`] (default wiremock priority 5) take precedence over
//!   the built-in routes (priority 9 and 10); they skip the bearer check, faults and journal.

use std::{fmt, sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use wiremock::{
    Mock, MockServer, Request,
    matchers::{any, path, path_regex},
};

use crate::{Client, ClientAuth, ClientBuilder, ClientSecret, RefreshToken};

mod audit;
mod collection;
mod server;
mod token;
mod widgets;

pub use audit::{SECRETS_FILE_ENV, TRACE_ENV};
pub use collection::Paging;
use server::{Config, Disconnects, NoRoute, Served, Shared, disconnect};

/// Where the token endpoint is mounted.
pub const TOKEN_PATH: &str = "/oauth/token";

/// A running fake API. Dropping it shuts the server down.
///
/// Start it with [`MockApi::start`] (defaults) or [`MockApi::builder`].
pub struct MockApi {
    server: MockServer,
    shared: Arc<Shared>,
}

impl fmt::Debug for MockApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockApi")
            .field("base_url", &self.shared.base_url)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl MockApi {
    /// Starts a fake API with the defaults of [`MockApiBuilder`].
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A builder to configure the fake API.
    pub fn builder() -> MockApiBuilder {
        MockApiBuilder::default()
    }

    /// A client configured against this API: its base URL, token URL, current refresh token
    /// and client credentials.
    ///
    /// # Panics
    ///
    /// Never in practice: the configuration it builds is always valid.
    pub fn client(&self) -> Client {
        self.client_builder()
            .build()
            .expect("a client for the mock API always builds: loopback URLs and a refresh token")
    }

    /// The builder behind [`client`](MockApi::client), to adjust it first (timeouts, a token
    /// store, a clock, ...).
    ///
    /// **It sets no timers of its own**: no request or connect timeout and no idle-pool
    /// timeout, so that tests on paused tokio time work (tokio auto-advances a paused clock to
    /// the next timer whenever the test waits for the server's thread, and would fire a
    /// timeout at once). A test of timeouts sets one: `.timeout(Duration::from_millis(50))`.
    pub fn client_builder(&self) -> ClientBuilder {
        let config = &self.shared.config;
        let mut builder = Client::builder()
            .base_url(self.base_url())
            .token_url(self.token_url())
            .refresh_token(self.refresh_token())
            .client_auth(config.client_auth)
            .timeout(None)
            .connect_timeout(None)
            .pool_idle_timeout(None);
        if let Some(id) = &config.client_id {
            builder = builder.client_id(id.clone());
        }
        if let Some(secret) = &config.client_secret {
            builder = builder.client_secret(secret.clone());
        }
        builder
    }

    /// The grant's current refresh token: after rotation, the newest one; after revocation,
    /// the revoked one (which the token endpoint refuses).
    pub fn refresh_token(&self) -> RefreshToken {
        RefreshToken::new(self.shared.lock().refresh_token.clone())
    }

    /// The API base URL, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The token endpoint, `<base_url>/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.shared.base_url)
    }

    /// The underlying wiremock server, to mount your own mocks. They take precedence over the
    /// built-in routes when mounted with wiremock's default priority.
    pub fn server(&self) -> &MockServer {
        &self.server
    }

    /// Revokes the grant, as an administrator or a user signing out everywhere would: the
    /// refresh token gets `invalid_grant` and every access token issued so far gets 401.
    pub fn revoke_grant(&self) {
        self.shared.lock().revoke_grant();
    }

    /// Makes every access token issued so far expired: the next request with one gets 401.
    /// The client's own idea of the expiry does not change, as with a server whose clock is
    /// ahead of the client's.
    pub fn expire_access_tokens(&self) {
        let mut state = self.shared.lock();
        let now = self.shared.now(&state);
        state
            .tokens
            .values_mut()
            .for_each(|t| t.expires_at = t.expires_at.min(now));
    }

    /// Moves the server's clock forward by `by`: access tokens expire and rate-limit windows
    /// reset as if that time had passed. The client's clock does not move.
    pub fn advance(&self, by: Duration) {
        self.shared.lock().skew += by;
    }

    /// Answers the next `times` requests to `route` with `status` (typically 500, 502 or 503)
    /// and a problem+json body, without touching the state.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let api = authed::mock::MockApi::start().await;
    /// api.fail_next("GET /v1/widgets", 2, 503);
    /// api.fail_next(authed::mock::Route::token_endpoint(), 1, 500);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `status` is not between 100 and 999.
    pub fn fail_next(&self, route: impl Into<Route>, times: u32, status: u16) {
        let status =
            StatusCode::from_u16(status).expect("fail_next needs an HTTP status (100..=999)");
        self.fault_next(route, times, Fault::Status(status));
    }

    /// Applies `fault` to the next `times` requests to `route`. Faults for one route are
    /// served in the order they were added. They apply to the built-in routes and collections,
    /// not to your own mocks (except [`Fault::Disconnect`], which applies to any request).
    pub fn fault_next(&self, route: impl Into<Route>, times: u32, fault: Fault) {
        self.shared.lock().add_fault(route.into(), fault, times);
    }

    /// Answers each request to `route` with `status` (and a problem+json body) with
    /// probability `ratio` (0 to 1), drawn independently per request; the request does not
    /// reach the API. For soak tests: `api.fail_ratio("/oauth/token", 0.05, 503)`. A later call
    /// for the same route replaces the ratio; `0.0` removes it. Faults queued with
    /// [`fail_next`](MockApi::fail_next) are served first.
    ///
    /// # Panics
    ///
    /// If `status` is not between 100 and 999.
    pub fn fail_ratio(&self, route: impl Into<Route>, ratio: f64, status: u16) {
        let status =
            StatusCode::from_u16(status).expect("fail_ratio needs an HTTP status (100..=999)");
        self.shared
            .lock()
            .set_fail_ratio(route.into(), ratio.clamp(0.0, 1.0), status);
    }

    /// Delays every answer on `route` by `delay` (real time, on the server's thread);
    /// `Duration::ZERO` removes the delay.
    pub fn set_delay(&self, route: impl Into<Route>, delay: Duration) {
        self.shared.lock().set_delay(route.into(), delay);
    }

    /// Serves `items` at `GET path`, under the bearer check, paged as `paging` says and
    /// filtered by any top-level field given as a query parameter (`?color=blue`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> authed::Result<()> {
    /// use authed::mock::{MockApi, Paging};
    /// use serde_json::json;
    ///
    /// let api = MockApi::start().await;
    /// let items = (1..=25).map(|i| json!({ "id": i, "even": i % 2 == 0 })).collect();
    /// api.collection("/items", items, Paging::cursor("cursor")).await;
    ///
    /// let page: serde_json::Value = api.client().get("/items?even=true&limit=5").send().await?;
    /// assert_eq!(page["items"].as_array().unwrap().len(), 5);
    /// assert!(page["next_cursor"].is_string());
    /// # Ok(()) }
    /// ```
    pub async fn collection(&self, path: &str, items: Vec<serde_json::Value>, paging: Paging) {
        Mock::given(wiremock::matchers::path(path))
            .respond_with(Served::new(
                &self.shared,
                collection::Collection { items, paging },
            ))
            .with_priority(9)
            .named(format!("MockApi collection {path}"))
            .mount(&self.server)
            .await;
    }

    /// Counters over everything the API answered so far.
    pub fn stats(&self) -> Stats {
        Stats::of(&self.shared.lock().journal)
    }

    /// How many requests `route` received (`"GET /v1/widgets/7"`, `"/v1/me"` for any method).
    pub fn requests(&self, route: impl Into<Route>) -> usize {
        let route = route.into();
        let state = self.shared.lock();
        state
            .journal
            .iter()
            .filter(|e| route.matches_parts(&e.method, &e.path))
            .count()
    }

    /// Every request the API answered (or dropped), oldest first.
    pub fn journal(&self) -> Vec<Exchange> {
        self.shared.lock().journal.clone()
    }
}

// ===== MockApiBuilder =====

/// Configures a [`MockApi`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use authed::{ClientAuth, mock::MockApi};
///
/// let api = MockApi::builder()
///     .token_ttl(Duration::from_secs(300))
///     .rotate_refresh_tokens(true)
///     .client_secret("s3cret")
///     .client_auth(ClientAuth::Post)
///     .rate_limit(100, Duration::from_secs(60))
///     .widgets(500)
///     .start()
///     .await;
/// # }
/// ```
#[must_use]
#[derive(Debug)]
pub struct MockApiBuilder {
    config: Config,
}

impl Default for MockApiBuilder {
    /// One-hour tokens, no rotation, opaque tokens, a public client `authed-mock`, no rate
    /// limit, 25 widgets, pages of at most 100 items.
    fn default() -> Self {
        Self {
            config: Config {
                token_ttl: Duration::from_secs(3600),
                rotate_refresh_tokens: false,
                jwt_access_tokens: false,
                client_id: Some("authed-mock".to_owned()),
                client_secret: None,
                client_auth: ClientAuth::Auto,
                rate_limit: None,
                retry_after_http_date: false,
                widgets: 25,
                max_page_size: 100,
            },
        }
    }
}

impl MockApiBuilder {
    /// How long access tokens live (`expires_in`, rounded up to whole seconds).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.config.token_ttl = ttl;
        self
    }

    /// Whether each refresh issues a new refresh token. With rotation, **presenting a refresh
    /// token that was already rotated out is reuse**: the token endpoint answers
    /// `invalid_grant` and revokes the whole grant, live access tokens included.
    pub fn rotate_refresh_tokens(mut self, rotate: bool) -> Self {
        self.config.rotate_refresh_tokens = rotate;
        self
    }

    /// Whether access tokens are **unsigned** JWTs (`alg: none`; claims `sub`, `iat`, `exp`,
    /// `jti`, `scope`) instead of random opaque strings. `exp` is on the wall clock.
    pub fn jwt_access_tokens(mut self, jwt: bool) -> Self {
        self.config.jwt_access_tokens = jwt;
        self
    }

    /// The client id the token endpoint expects (default `authed-mock`).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = Some(id.into());
        self
    }

    /// The client secret the token endpoint expects; by default there is none (a public
    /// client).
    pub fn client_secret(mut self, secret: impl Into<ClientSecret>) -> Self {
        self.config.client_secret = Some(secret.into());
        self
    }

    /// How the client must authenticate, with the same meaning as on the client:
    /// [`ClientAuth::Auto`] (the default) demands HTTP Basic when a secret is set and only the
    /// `client_id` otherwise. Others get `401 invalid_client`.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.config.client_auth = auth;
        self
    }

    /// Allows `requests` per `per` window to each access token on resource routes; beyond,
    /// `429` with `Retry-After` (the seconds until the window resets). Every answer carries
    /// `RateLimit`, `RateLimit-Policy` and `X-RateLimit-*` headers.
    pub fn rate_limit(mut self, requests: u32, per: Duration) -> Self {
        self.config.rate_limit = Some((requests, per));
        self
    }

    /// Whether `Retry-After` is an HTTP-date (wall clock) rather than delta-seconds.
    pub fn retry_after_http_date(mut self, http_date: bool) -> Self {
        self.config.retry_after_http_date = http_date;
        self
    }

    /// How many widgets to seed (default 25): ids `1..=n`, named `"Widget {id}"`, colors
    /// red, green, blue, yellow in turn, `100 + id % 50` grams, no tags.
    pub fn widgets(mut self, n: u64) -> Self {
        self.config.widgets = n;
        self
    }

    /// The largest page any list answers (default 100); larger page sizes are capped.
    pub fn max_page_size(mut self, n: usize) -> Self {
        self.config.max_page_size = n.max(1);
        self
    }

    /// Starts the server and mounts the API.
    pub async fn start(self) -> MockApi {
        audit::init_trace();
        if let Some(secret) = self.config.client_secret() {
            audit::record("client_secret", secret);
            let id = self.config.client_id.as_deref().unwrap_or("");
            audit::record("basic", &audit::basic(id, secret));
        }
        let server = MockServer::start().await;
        let shared = Arc::new(Shared::new(self.config, server.uri()));
        Mock::given(Disconnects(shared.clone()))
            .respond_with_err(disconnect)
            .with_priority(1)
            .named("MockApi injected connection drops")
            .mount(&server)
            .await;
        Mock::given(path(TOKEN_PATH))
            .respond_with(Served::new(&shared, token::TokenEndpoint))
            .with_priority(10)
            .named("MockApi token endpoint")
            .mount(&server)
            .await;
        Mock::given(path_regex(r"^/v1/(me|widgets(/[^/]+)?)$"))
            .respond_with(Served::new(&shared, widgets::WidgetsApi))
            .with_priority(10)
            .named("MockApi Widgets API")
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(Served::new(&shared, NoRoute))
            .with_priority(255)
            .named("MockApi catch-all 404")
            .mount(&server)
            .await;
        MockApi { server, shared }
    }
}

// ===== Route, Fault, Exchange, Stats =====

/// A method and an exact path, or a path for any method.
///
/// Converts from `"GET /v1/widgets"` or `"/v1/widgets"` (any method).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    method: Option<Method>,
    path: String,
}

impl Route {
    /// `method` on `path`.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method: Some(method),
            path: path.into(),
        }
    }

    /// Any method on `path`.
    pub fn any_method(path: impl Into<String>) -> Self {
        Self {
            method: None,
            path: path.into(),
        }
    }

    /// `POST /oauth/token`.
    pub fn token_endpoint() -> Self {
        Self::new(Method::POST, TOKEN_PATH)
    }
}

impl From<&str> for Route {
    fn from(route: &str) -> Self {
        match route.trim().split_once(' ') {
            Some((method, path)) => match Method::from_bytes(method.as_bytes()) {
                Ok(method) => Self::new(method, path.trim()),
                Err(_) => Self::any_method(route.trim()),
            },
            None => Self::any_method(route.trim()),
        }
    }
}

/// A misbehaviour to inject with [`MockApi::fault_next`].
///
/// wiremock answers every request it reads completely, so a response cannot stop half-way
/// through its body: [`TruncatedBody`](Fault::TruncatedBody) sends a short body with a
/// matching `Content-Length`, and [`Disconnect`](Fault::Disconnect) closes the connection
/// before any response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// This status with a problem+json body; the request does not reach the API.
    Status(StatusCode),
    /// `200` with `Content-Type: application/json` and a body that is not JSON; the request
    /// does not reach the API.
    MalformedJson,
    /// The real answer (the request takes effect) with its body cut in half.
    TruncatedBody,
    /// The connection closes without a response; the request does not reach the API.
    Disconnect,
}

/// One request the API answered, as recorded in the [journal](MockApi::journal).
///
/// **No secret is recorded**: not the `Authorization` header, not the bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exchange {
    /// The request method.
    pub method: Method,
    /// The request path.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The status answered; `None` when the connection was dropped.
    pub status: Option<StatusCode>,
    /// The OAuth or bearer error code answered (`invalid_grant`, `invalid_client`,
    /// `invalid_token`, `insufficient_scope`, ...).
    pub error: Option<&'static str>,
    /// The injected fault, if one was served.
    pub fault: Option<Fault>,
}

impl Exchange {
    fn new(
        request: &Request,
        status: Option<StatusCode>,
        error: Option<&'static str>,
        fault: Option<Fault>,
    ) -> Self {
        Self {
            method: request.method.clone(),
            path: request.url.path().to_owned(),
            query: request.url.query().map(str::to_owned),
            status,
            error,
            fault,
        }
    }
}

/// Counters over the [journal](MockApi::journal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Every request answered or dropped.
    pub requests: usize,
    /// Requests to the token endpoint.
    pub token_requests: usize,
    /// Access tokens issued (token endpoint `200`s without an injected fault).
    pub refreshes: usize,
    /// `invalid_grant` answers (revoked, reused or unknown refresh tokens).
    pub invalid_grants: usize,
    /// `401`s from the bearer check of resource routes.
    pub unauthorized: usize,
    /// `429`s.
    pub rate_limited: usize,
}

impl Stats {
    fn of(journal: &[Exchange]) -> Self {
        journal.iter().fold(Self::default(), |mut stats, e| {
            let token = e.path == TOKEN_PATH;
            stats.requests += 1;
            stats.token_requests += usize::from(token);
            stats.refreshes +=
                usize::from(token && e.status == Some(StatusCode::OK) && e.fault.is_none());
            stats.invalid_grants += usize::from(e.error == Some("invalid_grant"));
            stats.unauthorized += usize::from(!token && e.status == Some(StatusCode::UNAUTHORIZED));
            stats.rate_limited += usize::from(e.status == Some(StatusCode::TOO_MANY_REQUESTS));
            stats
        })
    }
}
