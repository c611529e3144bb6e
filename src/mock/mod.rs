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
//!   the built-in routes (priority 9 and 10). Wrap their responder in [`MockApi::protect`] to
//!   put them behind the bearer check, faults, the journal and expectations; otherwise they
//!   skip all four. [`wiremock`] is re-exported, so tests need no dependency of their own.
//! - **Expectations** ([`MockApi::expect_refreshes`], [`MockApi::expect_requests`], ...) are
//!   checked when the `MockApi` is dropped, with a report of what it received.
//! - **Other grants**: the token endpoint serves `client_credentials` to a confidential client,
//!   and the mock is an authorization server for logins: a device authorization endpoint
//!   ([`MockApi::approve_device`]) and an authorization endpoint for PKCE with a loopback
//!   redirect, as `authed::login` (feature `login`) uses them.

use std::{fmt, sync::Arc, time::Duration};

use reqwest::{Method, StatusCode};
use wiremock::{
    Mock, MockServer, Request, Respond,
    matchers::{any, path, path_regex},
};

use crate::{Client, ClientAuth, ClientBuilder, ClientSecret, RefreshToken};

mod audit;
mod collection;
mod expect;
mod login;
mod protected;
mod revoke;
mod server;
mod token;
mod widgets;

/// The [`wiremock`](https://docs.rs/wiremock) crate the harness runs on, re-exported so that
/// tests can mount their own routes (`authed::mock::wiremock::{Mock, ResponseTemplate}`)
/// without a dependency of their own, at the version [`MockApi::server`] speaks.
pub use ::wiremock;
pub use audit::{SECRETS_FILE_ENV, TRACE_ENV};
pub use collection::{Paging, Quirk};
pub use protected::Protected;
use server::{Config, Disconnects, NoRoute, Served, Shared, disconnect};

/// Where the token endpoint is mounted.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Where the device authorization endpoint (RFC 8628 §3.1) is mounted.
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device_authorization";
/// Where the verification page a user would visit to enter a device login's user code is.
pub const DEVICE_VERIFICATION_PATH: &str = "/device";
/// Where the authorization endpoint (RFC 6749 §3.1) is mounted.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Where the token revocation endpoint (RFC 7009) is mounted: revoking the refresh token
/// revokes the grant, revoking an access token revokes that token.
pub const REVOCATION_PATH: &str = "/oauth/revoke";

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

    /// The token revocation endpoint (RFC 7009), `<base_url>/oauth/revoke`: what
    /// [`Client::revoke`](crate::Client::revoke) derives from the token URL.
    pub fn revocation_url(&self) -> String {
        format!("{}{REVOCATION_PATH}", self.shared.base_url)
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
    /// and a problem+json body, without touching the state. A `429` carries `Retry-After`
    /// (one second unless [`MockApiBuilder::fault_retry_after`] says otherwise).
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
    /// served in the order they were added. They apply to the built-in routes, collections and
    /// your routes behind [`protect`](MockApi::protect), not to your other mocks (except
    /// [`Fault::Disconnect`], which applies to any request).
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

    // ===== your own routes =====

    /// Puts a responder of yours behind this API's bearer check: mount it on
    /// [`server`](MockApi::server) with any wiremock matchers, and revocation, expiry, faults,
    /// the rate limit, the journal and the expectations apply to your route as to the built-in
    /// ones.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> authed::Result<()> {
    /// use authed::mock::{
    ///     MockApi,
    ///     wiremock::{Mock, ResponseTemplate, matchers::{method, path}},
    /// };
    ///
    /// let api = MockApi::start().await;
    /// Mock::given(method("GET"))
    ///     .and(path("/v1/reports"))
    ///     .respond_with(api.protect(ResponseTemplate::new(200).set_body_json([1, 2, 3])))
    ///     .mount(api.server())
    ///     .await;
    ///
    /// let client = api.client();
    /// let reports: Vec<u32> = client.get("/v1/reports").send().await?;
    /// assert_eq!(reports, [1, 2, 3]);
    ///
    /// api.revoke_grant(); // the route now answers 401, and the refresh token is refused
    /// let err = client.get("/v1/reports").send::<Vec<u32>>().await.unwrap_err();
    /// assert!(err.is_reauth_required());
    /// # Ok(()) }
    /// ```
    pub fn protect<R: Respond + 'static>(&self, responder: R) -> Protected<R> {
        Protected::new(&self.shared, responder)
    }

    // ===== expectations =====

    /// Expects exactly `n` access tokens to be issued (by any grant) by the time this
    /// `MockApi` is dropped. See [`verify`](MockApi::verify).
    pub fn expect_refreshes(&self, n: usize) {
        self.expect(expect::Counted::Refreshes, n);
    }

    /// Expects exactly `n` requests to the token endpoint (successful or not) by the time this
    /// `MockApi` is dropped. See [`verify`](MockApi::verify).
    pub fn expect_token_requests(&self, n: usize) {
        self.expect(expect::Counted::TokenRequests, n);
    }

    /// Expects exactly `n` requests to `route` (built-in or your own) by the time this
    /// `MockApi` is dropped. See [`verify`](MockApi::verify).
    pub fn expect_requests(&self, route: impl Into<Route>, n: usize) {
        self.expect(expect::Counted::Requests(route.into()), n);
    }

    fn expect(&self, counted: expect::Counted, expected: usize) {
        self.shared
            .lock()
            .expectations
            .push(expect::Expectation { counted, expected });
    }

    /// Checks the expectations now. Dropping the `MockApi` does the same (unless the thread
    /// is already panicking), as wiremock checks its mocks' `expect`.
    ///
    /// # Panics
    ///
    /// When an expectation is not met, with a report of each one and of every request the API
    /// received (method, path, query, grant type, status, error code — no secret).
    pub fn verify(&self) {
        let state = self.shared.lock();
        if let Some(report) = expect::report(&state.expectations, &state.journal) {
            drop(state);
            panic!("{report}");
        }
    }

    // ===== logins =====

    /// The device authorization endpoint, `<base_url>/oauth/device_authorization`.
    pub fn device_authorization_url(&self) -> String {
        format!("{}{DEVICE_AUTHORIZATION_PATH}", self.shared.base_url)
    }

    /// The authorization endpoint, `<base_url>/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}{AUTHORIZE_PATH}", self.shared.base_url)
    }

    /// The user codes of device logins waiting for the user, oldest first.
    pub fn pending_device_logins(&self) -> Vec<String> {
        self.shared.lock().login.pending_user_codes()
    }

    /// Approves the device login showing `user_code` (case and dashes do not matter), as the
    /// user would on the verification page; `false` if no login waits for it.
    pub fn approve_device(&self, user_code: &str) -> bool {
        self.shared.lock().login.decide(user_code, true)
    }

    /// Denies the device login showing `user_code`: its polls get `access_denied`.
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.shared.lock().login.decide(user_code, false)
    }

    /// Whether the authorization endpoint denies every request (`error=access_denied` on the
    /// redirect), as a user clicking "deny" would; by default it approves at once.
    pub fn deny_authorizations(&self, deny: bool) {
        self.shared.lock().login.deny_authorizations = deny;
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        // A failed assertion is already unwinding: a second panic would abort the test binary.
        if !std::thread::panicking() {
            self.verify();
        }
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
    /// limit, 25 widgets, pages of at most 100 items, no latency, `Retry-After: 1` on `429`
    /// faults, device logins polled every 5 s and valid for 10 minutes.
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
                rate_limit_headers: true,
                retry_after_http_date: false,
                widgets: 25,
                max_page_size: 100,
                latency: Duration::ZERO,
                revoke_on_rotation: false,
                fault_retry_after: Some(Duration::from_secs(1)),
                device_interval: Duration::from_secs(5),
                device_code_ttl: Duration::from_secs(600),
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

    /// Whether answers under a [`rate_limit`](Self::rate_limit) carry the `RateLimit`,
    /// `RateLimit-Policy` and `X-RateLimit-*` headers (default `true`). With `false` the only
    /// sign of the limit is the `429` with `Retry-After`, as from servers that send nothing
    /// else, so a client cannot pace itself ahead of the limit.
    pub fn rate_limit_headers(mut self, send: bool) -> Self {
        self.config.rate_limit_headers = send;
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

    /// Whether a refresh that rotates the refresh token also **revokes the access tokens
    /// issued before it**, live ones included, as django-oauth-toolkit does (it deletes the
    /// access token of the refresh token it rotates out). A client that keeps sending the
    /// previous access token after an early refresh then gets `401`. Needs
    /// [`rotate_refresh_tokens(true)`](Self::rotate_refresh_tokens).
    pub fn revoke_previous_access_tokens(mut self, revoke: bool) -> Self {
        self.config.revoke_on_rotation = revoke;
        self
    }

    /// Delays every answer by `latency` (real time, on the server's thread), the token
    /// endpoint's included: a token is issued when its request arrives and reaches the client
    /// `latency` later. A delay set with [`MockApi::set_delay`] on a route replaces it there.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.config.latency = latency;
        self
    }

    /// The `Retry-After` of `429` faults injected with [`MockApi::fail_next`] (default one
    /// second, rounded up to whole seconds); `None` sends none.
    /// [`Fault::RateLimited`] sets its own.
    pub fn fault_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.config.fault_retry_after = retry_after;
        self
    }

    /// The polling `interval` the device authorization endpoint announces (default 5 s,
    /// rounded up to whole seconds, at least 1 s). Polling sooner gets `slow_down`.
    pub fn device_interval(mut self, interval: Duration) -> Self {
        self.config.device_interval = interval;
        self
    }

    /// How long a device login waits for the user (default 10 minutes); later polls get
    /// `expired_token`.
    pub fn device_code_ttl(mut self, ttl: Duration) -> Self {
        self.config.device_code_ttl = ttl;
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
        Mock::given(path(DEVICE_AUTHORIZATION_PATH))
            .respond_with(Served::new(&shared, login::DeviceEndpoint))
            .with_priority(10)
            .named("MockApi device authorization endpoint")
            .mount(&server)
            .await;
        Mock::given(path(DEVICE_VERIFICATION_PATH))
            .respond_with(Served::new(&shared, login::VerificationPage))
            .with_priority(10)
            .named("MockApi device verification page")
            .mount(&server)
            .await;
        Mock::given(path(REVOCATION_PATH))
            .respond_with(Served::new(&shared, revoke::RevocationEndpoint))
            .with_priority(10)
            .named("MockApi token revocation endpoint")
            .mount(&server)
            .await;
        Mock::given(path(AUTHORIZE_PATH))
            .respond_with(Served::new(&shared, login::AuthorizeEndpoint))
            .with_priority(10)
            .named("MockApi authorization endpoint")
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

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Some(method) => write!(f, "{method} {}", self.path),
            None => f.write_str(&self.path),
        }
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
    /// `429 Too Many Requests` with this `Retry-After` (whole seconds, rounded up; none when
    /// `None`) and a problem+json body; the request does not reach the API.
    RateLimited(Option<Duration>),
    /// `400` with an RFC 6749 §5.2 error body carrying this code (`"invalid_grant"`,
    /// `"temporarily_unavailable"`, ...), meant for the token endpoint; nothing is revoked.
    OAuthError(&'static str),
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
    /// The parameters of a form body (token and device authorization requests:
    /// `grant_type`, `scope`, `audience`, ...), in order. **The value of a parameter that may
    /// carry a secret** — its name contains `token`, `secret`, `password`, `assertion`, `code`
    /// or `key` — is recorded as `[redacted]`.
    pub params: Vec<(String, String)>,
}

impl Exchange {
    /// The value of the form parameter `name`, if the request had one.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The form parameters of a request, secrets redacted.
fn form_params(request: &Request) -> Vec<(String, String)> {
    let is_form = request
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Vec::new();
    }
    const SECRET_PARTS: [&str; 6] = ["token", "secret", "password", "assertion", "code", "key"];
    url::form_urlencoded::parse(&request.body)
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            // RFC 7009's hint names a kind of token, not a token.
            let public = lower == "token_type_hint";
            let value = if !public && SECRET_PARTS.iter().any(|part| lower.contains(part)) {
                "[redacted]".to_owned()
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect()
}

impl fmt::Display for Exchange {
    /// `POST /oauth/token grant_type=refresh_token -> 400 invalid_grant`: no secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(query) = &self.query {
            write!(f, "?{query}")?;
        }
        if let Some(grant) = self.param("grant_type") {
            write!(f, " grant_type={grant}")?;
        }
        match self.status {
            Some(status) => write!(f, " -> {}", status.as_u16())?,
            None => f.write_str(" -> connection dropped")?,
        }
        if let Some(error) = self.error {
            write!(f, " {error}")?;
        }
        if let Some(fault) = &self.fault {
            write!(f, " (fault {fault:?})")?;
        }
        Ok(())
    }
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
            params: form_params(request),
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
    /// Requests to the revocation endpoint answered `200` (RFC 7009: also for unknown tokens).
    pub revocations: usize,
}

impl Stats {
    pub(super) fn of(journal: &[Exchange]) -> Self {
        journal.iter().fold(Self::default(), |mut stats, e| {
            let token = e.path == TOKEN_PATH;
            stats.requests += 1;
            stats.token_requests += usize::from(token);
            stats.refreshes +=
                usize::from(token && e.status == Some(StatusCode::OK) && e.fault.is_none());
            stats.invalid_grants += usize::from(e.error == Some("invalid_grant"));
            stats.unauthorized += usize::from(!token && e.status == Some(StatusCode::UNAUTHORIZED));
            stats.rate_limited += usize::from(e.status == Some(StatusCode::TOO_MANY_REQUESTS));
            stats.revocations +=
                usize::from(e.path == REVOCATION_PATH && e.status == Some(StatusCode::OK));
            stats
        })
    }
}
