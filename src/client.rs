//! [`Client`], [`ClientBuilder`] and [`RequestBuilder`].

use std::{borrow::Cow, fmt, sync::Arc, time::Duration};

use futures_util::future::{self, Either};
use reqwest::{
    Method,
    header::{HeaderMap, HeaderName, HeaderValue},
};
use secrecy::ExposeSecret;
use serde::{Serialize, de::DeserializeOwned};
use url::Url;

use crate::{
    ClientSecret, Error, ErrorKind, RefreshToken, Result,
    auth::{
        AccessToken, ClientAuth, DEFAULT_TOKEN_LIFETIME, GrantType, TokenEndpoint, TokenSource,
        cache::TokenCache,
        grant::{client_credentials::ClientCredentials, refresh_token::RefreshTokenGrant},
        redact::Redactor,
        revoke::Revocation,
        store::{FileStore, MemoryStore, RefreshTokenStore},
    },
    clock::{Clock, SystemClock},
    config::{Config, TokenStoreConfig},
    origin::{parse_url, resolve},
    retry::{self, Policy, RateLimit},
    transport::{self, Shared},
};

/// The default of [`RequestBuilder::max_body_bytes`]: 16 MiB, the bound of a page body too.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// An API client that authenticates every request with a fresh bearer token.
///
/// **Cheap to clone**: a `Client` is an `Arc` around its state; clones share the token cache,
/// the connection pool and the rate-limit state. Clone it into tasks instead of wrapping it in
/// an `Arc`.
///
/// ```no_run
/// # async fn run() -> authed::Result<()> {
/// let client = authed::Client::from_env()?;
/// let me: serde_json::Value = client.get("/me").send().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Shared>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.inner.name)
            .field("base_url", &self.inner.base_url.as_str())
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client configured from `AUTHED_*` environment variables (see [`Config::from_env`]).
    pub fn from_env() -> Result<Self> {
        Config::from_env()?.into_builder().build()
    }

    /// A client configured from `<PREFIX>_*` environment variables
    /// (see [`Config::from_env_prefixed`]).
    pub fn from_env_prefixed(prefix: &str) -> Result<Self> {
        Config::from_env_prefixed(prefix)?.into_builder().build()
    }

    /// A builder to configure a client by hand.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The API base URL (always ending with `/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// Starts a `GET` request. `path` is relative to the base URL (`"/me"`, `"v1/widgets?x=1"`)
    /// or an absolute URL; **absolute URLs on another origin are sent without the token**.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// Starts a `POST` request. **Not retried on `502`/`504`/connection errors** unless it has
    /// an idempotency key (see [`RequestBuilder::idempotency_key`]).
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// Starts a `PUT` request.
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    /// Starts a `PATCH` request.
    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// Starts a `DELETE` request.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// The grant that mints this client's tokens (`refresh_token`, `client_credentials`, or a
    /// custom [`TokenSource`]'s name).
    pub fn grant(&self) -> &str {
        self.inner.tokens.grant()
    }

    /// Starts a request with any method.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let (url, on_api) = match resolve(&self.inner.base_url, path) {
            Ok((url, joined)) => (Ok(url), joined),
            Err(err) => (Err(err), false),
        };
        RequestBuilder {
            client: self.clone(),
            method,
            url,
            on_api,
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            retry_policy: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            error: None,
        }
    }

    /// The client's name in logs and metrics ([`ClientBuilder::name`], by default the API host).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether requests to `url` carry the access token: only those to the base URL's origin.
    pub(crate) fn is_api_origin(&self, url: &Url) -> bool {
        self.inner.is_api_origin(url)
    }

    /// A currently valid access token, refreshing it if needed.
    ///
    /// For protocols `authed` does not speak (a WebSocket handshake, a gRPC channel); plain
    /// HTTP requests should go through [`Client::get`] and friends, which also handle 401s.
    pub async fn access_token(&self) -> Result<Arc<AccessToken>> {
        self.inner.tokens.current().await
    }

    /// Logs out: revokes the refresh token and the access token at the authorization server's
    /// revocation endpoint (RFC 7009, with the client's authentication; see
    /// [`ClientBuilder::revocation_url`]), and clears the token store and the token cache.
    /// **No token is used afterwards**: every request of this client (and its clones) fails
    /// with a [re-authentication](Error::is_reauth_required) error.
    ///
    /// The refresh token goes first (a server that supports it also revokes the access tokens
    /// of the grant), under the store's lock, so that no other process sharing the store
    /// rotates it meanwhile. A `200` means revoked, also for a token the server no longer knew
    /// (RFC 7009 §2.2).
    ///
    /// Errors: [`Config`](crate::ErrorKind::Config) when no revocation endpoint is known
    /// (nothing is changed then); the server's refusal ([`AuthErrorKind::InvalidClient`](crate::AuthErrorKind::InvalidClient),
    /// ...) or a transport error, after which **the client has forgotten its tokens all the
    /// same**: a logout never leaves a usable token behind on this side. A token store that
    /// cannot be locked or read fails the logout with [`Store`](crate::ErrorKind::Store) before
    /// anything is revoked: the client uses no token afterwards, but the store keeps its
    /// record (call `revoke` again once the store is back).
    ///
    /// ```no_run
    /// # async fn run() -> authed::Result<()> {
    /// let client = authed::Client::from_env()?;
    /// client.revoke().await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke(&self) -> Result<()> {
        self.inner.revocation.revoke(&self.inner.tokens).await
    }

    /// The last failure of the [`RefreshTokenStore`], if the latest call to it failed (a
    /// rotated token that could not be saved is kept in memory and saved again next time).
    pub fn store_error(&self) -> Option<Error> {
        self.inner
            .store_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The rate-limit values the API last reported (`RateLimit`, `X-RateLimit-*` headers), e.g.
    /// to show the quota left; `None` before any response carried them. A limit the client
    /// learned from `429`s of an API without these headers is not reported here (see
    /// [`ClientBuilder::adaptive_rate_limit`]; it is logged at DEBUG).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.inner.retry.rate_limit()
    }
}

// ===== impl RequestBuilder =====

/// A request being built; finish it with [`send`](RequestBuilder::send) or
/// [`send_raw`](RequestBuilder::send_raw).
///
/// Setters never fail: the first invalid input is kept and returned by `send`.
#[must_use = "a request does nothing until it is sent"]
#[derive(Debug)]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    url: Result<Url>,
    /// Whether the URL is known to be on the API origin: a relative path, joined to the base
    /// URL and checked (else the send path checks it).
    on_api: bool,
    headers: HeaderMap,
    body: Option<transport::Body>,
    timeout: Option<Duration>,
    /// Boxed: rarely set, and every request's future would hold its room.
    retry_policy: Option<Box<Policy>>,
    max_body_bytes: usize,
    error: Option<Error>,
}

impl RequestBuilder {
    fn fail(mut self, error: Error) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// Adds query parameters, serialized with `serde_urlencoded` (a struct, a map or pairs).
    pub fn query<Q: Serialize + ?Sized>(mut self, query: &Q) -> Self {
        let encoded = match serde_urlencoded::to_string(query) {
            Ok(q) => q,
            Err(e) => return self.fail(Error::config("invalid query parameters").with_source(e)),
        };
        if let Ok(url) = &mut self.url {
            append_query(url, &encoded);
        }
        self
    }

    /// Adds a header. An `Authorization` header set here replaces the bearer token.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(name), Ok(mut value)) => {
                mark_credential(&name, &mut value);
                self.headers.append(name, value);
                self
            }
            _ => self.fail(Error::config("invalid header name or value")),
        }
    }

    /// Adds several headers.
    pub fn headers(mut self, mut headers: HeaderMap) -> Self {
        for (name, value) in headers.iter_mut() {
            mark_credential(name, value);
        }
        self.headers.extend(headers);
        self
    }

    /// Sends `body` as JSON (`Content-Type: application/json`).
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                self.body = Some(transport::Body::Bytes(bytes.into()));
                self
            }
            Err(e) => self.fail(Error::config("could not serialize the JSON body").with_source(e)),
        }
    }

    /// Sends `body` as `application/x-www-form-urlencoded`.
    pub fn form<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_urlencoded::to_string(body) {
            Ok(encoded) => {
                self.headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                self.body = Some(transport::Body::Bytes(encoded.into()));
                self
            }
            Err(e) => self.fail(Error::config("could not serialize the form body").with_source(e)),
        }
    }

    /// Sends raw bytes (a `Vec<u8>`, a `String`, `bytes::Bytes`, ...).
    pub fn body(mut self, body: impl Into<bytes::Bytes>) -> Self {
        self.body = Some(transport::Body::Bytes(body.into()));
        self
    }

    /// Sends a streaming body. **A stream cannot be replayed**: such a request is sent once,
    /// and a 401, 429 or 503 answer is returned as an error instead of being retried (a
    /// client-wide cooldown is still waited out before sending).
    pub fn body_stream(mut self, body: reqwest::Body) -> Self {
        self.body = Some(transport::Body::Stream(Some(body).into()));
        self
    }

    /// The largest response body [`send`](Self::send) reads (default
    /// [`DEFAULT_MAX_BODY_BYTES`], 16 MiB): a larger one fails with
    /// [`ErrorKind::Decode`](crate::ErrorKind::Decode) as soon as it is known to be larger
    /// (from its `Content-Length`, or from the bytes received), so that memory stays bounded
    /// whatever a server sends. [`send_raw`](Self::send_raw) reads no body: bound your own
    /// reads there.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Fails the request with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) if one
    /// attempt takes longer than `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The retry policy of this request, instead of the client's.
    pub fn retry_policy(mut self, policy: Policy) -> Self {
        self.retry_policy = Some(Box::new(policy));
        self
    }

    /// Sets the `Idempotency-Key` header, which the server uses to recognise a repeated
    /// request. **It makes a `POST` or `PATCH` retryable on `502`, `504`, connection errors and
    /// timeouts**, and the same key is sent on every attempt. Use one key per logical operation,
    /// e.g. from [`retry::new_idempotency_key`](crate::retry::new_idempotency_key); only do so
    /// if the API honours the header.
    ///
    /// ```no_run
    /// # async fn run(client: authed::Client) -> authed::Result<()> {
    /// let order: serde_json::Value = client
    ///     .post("/v1/orders")
    ///     .json(&serde_json::json!({ "sku": "W-7" }))
    ///     .idempotency_key(authed::retry::new_idempotency_key())
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn idempotency_key(self, key: impl AsRef<str>) -> Self {
        self.header(retry::IDEMPOTENCY_KEY, key.as_ref())
    }

    /// Sends the request and decodes a JSON response body into `T`.
    ///
    /// An empty body decodes as JSON `null`, so `send::<()>()` and `send::<Option<T>>()`
    /// accept `204 No Content`.
    ///
    /// The future owns what it needs (`Send + 'static`): it can be spawned.
    pub fn send<T: DeserializeOwned>(self) -> impl Future<Output = Result<T>> + Send + 'static {
        let (method, limit) = (self.method.clone(), self.max_body_bytes);
        // Read and decoded within the send path's own future (`transport::execute`).
        self.dispatch(move |mut response| async move {
            // Read by chunks rather than `bytes()`, which consumes the response: its path is
            // only needed for an error message, and is not copied for the usual success.
            let read = crate::body::read_bounded(&mut response, limit).await;
            let path = response.url().path();
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(crate::body::TooLarge)) => {
                    return Err(Error::new(
                        ErrorKind::Decode,
                        format!("{method} {path}: the response body is larger than {limit} bytes (`RequestBuilder::max_body_bytes`)"),
                    ));
                }
                Err(e) => {
                    return Err(Error::transport(
                        format!("{method} {path}: could not read the response body"),
                        e,
                    ));
                }
            };
            decode(&bytes, &method, path)
        })
    }

    /// Sends the request and returns the successful response as it came: for bodies that are
    /// not JSON, streaming, or headers. Error statuses are still turned into [`Error`]s.
    ///
    /// The future owns what it needs (`Send + 'static`): it can be spawned.
    pub fn send_raw(self) -> impl Future<Output = Result<reqwest::Response>> + Send + 'static {
        self.dispatch(|response| future::ready(Ok(response)))
    }

    /// Sends the request, and has `finish` turn the successful response into the result.
    fn dispatch<O, F>(
        self,
        finish: impl FnOnce(reqwest::Response) -> F + Send + 'static,
    ) -> impl Future<Output = Result<O>> + Send + 'static
    where
        F: Future<Output = Result<O>> + Send,
    {
        // Taken apart before the future is made, so that the future holds the request once
        // and lends it to the send path rather than moving it again.
        let url = match (self.error, self.url) {
            // An `async` block rather than `future::ready`: its state holds the error alone, not
            // a room for `O`, which then need not be `Send`.
            (Some(err), _) | (None, Err(err)) => return Either::Left(async move { Err(err) }),
            (None, Ok(url)) => url,
        };
        let (client, policy) = (self.client, self.retry_policy);
        let request = transport::Request {
            method: self.method,
            url,
            headers: self.headers,
            body: self.body,
            timeout: self.timeout,
        };
        // Not boxed: the send path keeps its rare states (retries, redirects, waits) in boxes
        // of their own, so what is left is little more than `reqwest`'s own request.
        Either::Right(transport::execute(
            client.inner,
            request,
            self.on_api,
            policy,
            finish,
        ))
    }
}

// ===== RequestBuilder: what a listing reads of it =====

impl RequestBuilder {
    /// The client the request is sent with.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The URL of the request, or the first error of its setters.
    pub(crate) fn url(&self) -> Result<&Url> {
        match &self.error {
            Some(err) => Err(err.clone()),
            None => self.url.as_ref().map_err(Clone::clone),
        }
    }

    /// A copy of this request, sent to `url` instead (one page of a listing). A streaming body
    /// cannot be copied.
    pub(crate) fn to_url(&self, url: Url) -> Result<Self> {
        let body = match &self.body {
            None => None,
            Some(transport::Body::Bytes(bytes)) => Some(transport::Body::Bytes(bytes.clone())),
            Some(transport::Body::Stream(_)) => {
                return Err(Error::config(
                    "a streaming body cannot be sent again with each page of a listing",
                ));
            }
        };
        Ok(Self {
            client: self.client.clone(),
            method: self.method.clone(),
            url: Ok(url),
            on_api: false,
            headers: self.headers.clone(),
            body,
            timeout: self.timeout,
            retry_policy: self.retry_policy.clone(),
            max_body_bytes: self.max_body_bytes,
            error: self.error.clone(),
        })
    }
}

/// Marks the value of a credential header (`Authorization`, `Cookie`, `Proxy-Authorization`)
/// sensitive, so that a request's `Debug` output shows none.
fn mark_credential(name: &HeaderName, value: &mut HeaderValue) {
    if transport::CREDENTIAL_HEADERS.contains(name) {
        value.set_sensitive(true);
    }
}

/// Appends an already encoded query string to the URL's own query, if any.
pub(crate) fn append_query(url: &mut Url, encoded: &str) {
    if encoded.is_empty() {
        return;
    }
    let joined = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{encoded}"),
        _ => encoded.to_owned(),
    };
    url.set_query(Some(&joined));
}

/// Decodes a JSON body into `T`; empty bodies decode as `null`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], method: &Method, path: &str) -> Result<T> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        Error::decode(
            format!("{method} {path}: the response body does not match the expected type"),
            e,
        )
    })
}

// ===== impl ClientBuilder =====

/// Configures a [`Client`]. Setters never fail; [`build`](ClientBuilder::build) returns the
/// first problem.
///
/// ```no_run
/// # fn run() -> authed::Result<()> {
/// let client = authed::Client::builder()
///     .base_url("https://api.example.com")
///     .token_url("https://auth.example.com/oauth/token")
///     .refresh_token(authed::RefreshToken::from_env("ACME_REFRESH_TOKEN")?)
///     .client_id("my-app")
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    base_url: Option<String>,
    token_url: Option<String>,
    revocation_url: Option<String>,
    grant: GrantType,
    refresh_token: Option<RefreshToken>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    client_auth: ClientAuth,
    scope: Option<String>,
    token_params: Vec<(String, String)>,
    token_source: Option<Arc<dyn TokenSource>>,
    store: Option<Arc<dyn RefreshTokenStore>>,
    store_timeout: Duration,
    clock: Arc<dyn Clock>,
    default_lifetime: Duration,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    /// Borrowed: the default, a static value.
    user_agent: Cow<'static, str>,
    default_headers: HeaderMap,
    retry_policy: Policy,
    retry_budget: retry::Budget,
    wait_for_quota_reset: bool,
    adaptive_rate_limit: bool,
    pool_idle_timeout: Option<Duration>,
    configure_http: Option<HttpHook>,
    name: Option<String>,
    error: Option<Error>,
    /// Where cooldowns and quota holds are shared with a fleet (a Redis store, or your own).
    shared_cooldown: Option<Arc<dyn retry::SharedCooldown>>,
    #[cfg(feature = "redis")]
    redis: Option<crate::auth::store::RedisStore>,
}

type HttpHook = Box<dyn FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send>;

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("grant", &self.grant)
            .field("refresh_token", &self.refresh_token)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("token_source", &self.token_source)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// A [`ClientBuilder`] preset with this configuration, to adjust before building.
    pub fn into_builder(self) -> ClientBuilder {
        ClientBuilder::from_config(self)
    }
}

impl ClientBuilder {
    /// An empty builder; `base_url`, `token_url` and the grant's credentials are required.
    pub fn new() -> Self {
        Self {
            base_url: None,
            token_url: None,
            revocation_url: None,
            grant: GrantType::default(),
            refresh_token: None,
            client_id: None,
            client_secret: None,
            client_auth: ClientAuth::Auto,
            scope: None,
            token_params: Vec::new(),
            token_source: None,
            store: None,
            store_timeout: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            default_lifetime: DEFAULT_TOKEN_LIFETIME,
            timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(10)),
            user_agent: Cow::Borrowed(concat!("authed/", env!("CARGO_PKG_VERSION"))),
            default_headers: HeaderMap::new(),
            retry_policy: Policy::default(),
            retry_budget: retry::Budget::default(),
            wait_for_quota_reset: true,
            adaptive_rate_limit: true,
            pool_idle_timeout: Some(Duration::from_secs(90)),
            configure_http: None,
            name: None,
            error: None,
            shared_cooldown: None,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }

    /// A builder preset with `config` (what [`Config::from_env`] read).
    pub fn from_config(config: Config) -> Self {
        let mut builder = ClientBuilder::new()
            .base_url(config.base_url.as_str())
            .token_url(config.token_url.as_str())
            .grant(config.grant);
        if let Some(token) = config.refresh_token {
            builder = builder.refresh_token(token);
        }
        if let Some(id) = config.client_id {
            builder = builder.client_id(id);
        }
        if let Some(secret) = config.client_secret {
            builder = builder.client_secret(secret);
        }
        if let Some(scope) = config.scope {
            builder = builder.scope(scope);
        }
        if let Some(url) = config.revocation_url {
            builder = builder.revocation_url(url.as_str());
        }
        match config.token_store {
            TokenStoreConfig::Memory => builder,
            TokenStoreConfig::File(path) => {
                let store = FileStore::new(path);
                match store.check() {
                    Ok(()) => builder.token_store(store),
                    Err(e) => builder.fail(e),
                }
            }
            #[cfg(feature = "redis")]
            TokenStoreConfig::Redis(config) => {
                match crate::auth::store::RedisStore::from_config(config) {
                    Ok(store) => builder.redis_store(store),
                    Err(e) => builder.fail(e),
                }
            }
        }
    }

    fn fail(mut self, error: Error) -> Self {
        self.error.get_or_insert(error);
        self
    }

    /// The API base URL. Request paths are joined under it: with
    /// `https://api.example.com/v2`, `get("/me")` requests `https://api.example.com/v2/me`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The client's name in logs (the `client` field of the request span) and metrics (the
    /// `client` label); by default the API host. Tells two clients of one program apart.
    /// It is shown as is: never put a secret in it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The OAuth 2.0 token endpoint.
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The token revocation endpoint (RFC 7009) that [`Client::revoke`] calls. By default it
    /// is derived from a token URL whose last segment is `token` (`…/oauth/token` →
    /// `…/oauth/revoke`, as Auth0, Okta, Keycloak and Google name theirs); set it when your
    /// server names it otherwise (its metadata's `revocation_endpoint`, RFC 8414).
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self
    }

    /// The grant that mints access tokens (default [`GrantType::RefreshToken`]).
    /// [`GrantType::ClientCredentials`] needs [`client_id`](Self::client_id) and
    /// [`client_secret`](Self::client_secret), and no refresh token.
    pub fn grant(mut self, grant: GrantType) -> Self {
        self.grant = grant;
        self
    }

    /// The refresh token (the `refresh_token` grant). If it differs from the one the token store
    /// was seeded from, it is a new login and replaces the stored one; see [`crate::auth::store`].
    pub fn refresh_token(mut self, token: impl Into<RefreshToken>) -> Self {
        self.refresh_token = Some(token.into());
        self
    }

    /// The OAuth client id.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The client secret of a confidential client.
    pub fn client_secret(mut self, secret: impl Into<ClientSecret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// How to authenticate the client to the token endpoint; by default `client_secret_basic`
    /// when a secret is set, else a public client.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Space-separated scopes to request.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// An extra parameter of every token request: `audience`, `resource` (RFC 8707; repeat it
    /// for several), or any name and value your authorization server wants.
    pub fn token_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.token_params.push((name.into(), value.into()));
        self
    }

    /// Mints access tokens with your own [`TokenSource`] instead of a built-in grant; the
    /// token URL, grant and credentials are then not needed. The client's cache keeps single
    /// flight, the refresh window and the 401 handling for it.
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.token_source = Some(Arc::new(source));
        self
    }

    /// Where the refresh token is kept (default: memory only); see [`crate::auth::store`].
    pub fn token_store(mut self, store: impl RefreshTokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Shares the grant and the rate limit with a fleet through Redis (feature `redis`; what
    /// `<P>_TOKEN_STORE=redis://…` selects): `store` keeps the refresh token and the shared
    /// access token, and holds every client of the fleet after a 429 or an exhausted quota.
    /// Unless set, its key prefix is derived from the token URL and client id; the token
    /// request timeout is capped at half its [lease](crate::RedisStore::lease). See
    /// `docs/fleet.md`.
    ///
    /// ```no_run
    /// # fn run() -> authed::Result<()> {
    /// let store = authed::RedisStore::from_url("rediss://app:password@redis.internal:6380/0")?;
    /// let client = authed::Config::from_env()?.into_builder().redis_store(store).build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis_store(mut self, store: crate::auth::store::RedisStore) -> Self {
        self.redis = Some(store);
        self
    }

    /// Shares 429 cooldowns and exhausted-quota holds with other clients (other processes,
    /// other hosts) through `cooldown`; [`redis_store`](Self::redis_store) sets it for you.
    pub fn shared_cooldown(mut self, cooldown: impl retry::SharedCooldown) -> Self {
        self.shared_cooldown = Some(Arc::new(cooldown));
        self
    }

    /// Alias of [`token_store`](Self::token_store), the name `authed` 0.1 used.
    pub fn refresh_token_store(self, store: impl RefreshTokenStore) -> Self {
        self.token_store(store)
    }

    /// The longest any call to the token store may take (default 10 s); a store that does not
    /// answer in time fails the refresh with [`ErrorKind::Store`](crate::ErrorKind::Store)
    /// instead of hanging every request.
    pub fn token_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The clock for token expiry and for the retry state — cooldowns, quota holds, elapsed
    /// time (default: [`SystemClock`], which honours paused tokio time).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The lifetime assumed for tokens whose response has neither `expires_in` nor a JWT `exp`
    /// (default [`DEFAULT_TOKEN_LIFETIME`], 15 minutes). A 401 still triggers a refresh.
    pub fn default_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Time budget of each attempt (default 30 s), **the wait for an access token included**;
    /// `None` for no timeout.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Timeout for establishing a connection (default 10 s); `None` for no timeout.
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connect_timeout = timeout.into();
        self
    }

    /// The `User-Agent` header (default `authed/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Cow::Owned(user_agent.into());
        self
    }

    /// Headers sent with every request **to the API origin** (never to other hosts, nor with
    /// token requests).
    pub fn default_headers(mut self, headers: HeaderMap) -> Self {
        self.default_headers.extend(headers);
        self
    }

    /// How requests and token refreshes are retried (default [`Policy::default`]); see
    /// [`crate::retry`].
    pub fn retry_policy(mut self, policy: Policy) -> Self {
        self.retry_policy = policy;
        self
    }

    /// The client-wide retry budget (default [`retry::Budget::default`]: 10 + 20 % of requests).
    pub fn retry_budget(mut self, budget: retry::Budget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Whether requests wait for the rate-limit window to reset once the API reported
    /// `remaining` 0 (default `true`; the wait is capped like a `Retry-After`, see
    /// [`Policy::max_retry_after`]). With `false` they are sent anyway.
    pub fn wait_for_quota_reset(mut self, wait: bool) -> Self {
        self.wait_for_quota_reset = wait;
        self
    }

    /// Whether the client learns a rate limit from the `429`s of an API that sends no quota
    /// headers, and paces its requests against it (default `true`).
    ///
    /// Such an API tells the client that a window is full only by its first `429`; by then
    /// every request on its way is over the limit too. With this on, the requests of the
    /// window that ended with a `429` which succeeded become the limit: after the cooldown,
    /// requests beyond it wait for the next window (the `Retry-After` long), the limit is
    /// probed upward after each window used in full, learned anew from the next `429`, and
    /// forgotten after a minute without requests or once the API sends quota headers. A hold
    /// for it is never longer than [`Policy::max_retry_after`] nor past the deadline: it is
    /// skipped instead, so it never makes a call fail. Changes are logged at DEBUG
    /// (target `authed::retry`). See `docs/retries.md`.
    pub fn adaptive_rate_limit(mut self, adaptive: bool) -> Self {
        self.adaptive_rate_limit = adaptive;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s); `None` keeps it until the
    /// server closes it.
    pub fn pool_idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.pool_idle_timeout = timeout.into();
        self
    }

    /// Configures the HTTP stack: `configure` receives the `reqwest::ClientBuilder` (with the
    /// user agent, connect timeout and pool settings above already applied) for a proxy, root
    /// certificates, a client identity (mTLS), HTTP/2 options, a local address...
    ///
    /// The request timeout is [`timeout`](Self::timeout)'s, which covers the wait for a token:
    /// unless that is `None`, it replaces a `timeout` set on `reqwest`'s builder here.
    ///
    /// **`authed`'s redirect rules are applied on top** and cannot be turned off here: redirects
    /// are followed by the client itself, the token and default headers never leave the API
    /// origin, https→http is refused, token requests never follow redirects.
    ///
    /// ```no_run
    /// # fn run(ca_pem: &[u8]) -> authed::Result<()> {
    /// let ca = reqwest::Certificate::from_pem(ca_pem).expect("a PEM certificate");
    /// let client = authed::Config::from_env()?
    ///     .into_builder()
    ///     .configure_http(move |http| {
    ///         http.add_root_certificate(ca)
    ///             .proxy(reqwest::Proxy::https("http://proxy.corp.example:3128").expect("proxy URL"))
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn configure_http(
        mut self,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + 'static,
    ) -> Self {
        self.configure_http = Some(Box::new(configure));
        self
    }

    /// Checks the configuration and builds the client.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) on a missing or invalid URL,
    /// plain `http://` to a non-loopback host, missing or empty credentials for the grant.
    pub fn build(self) -> Result<Client> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let required = |v: Option<String>, what: &str| {
            v.ok_or_else(|| Error::config(format!("the {what} is not set")))
        };
        let mut base_url = parse_url(&required(self.base_url, "base URL")?, "base URL")?;
        if !base_url.path().ends_with('/') {
            base_url.set_path(&format!("{}/", base_url.path()));
        }
        base_url.set_query(None);
        base_url.set_fragment(None);

        // `reqwest` copies its default headers into every request: a static value is copied
        // without counting a reference that every worker thread would update.
        let user_agent = match self.user_agent {
            Cow::Borrowed(static_value) => HeaderValue::from_static(static_value),
            Cow::Owned(value) => HeaderValue::try_from(value)
                .map_err(|e| Error::config("invalid user agent").with_source(e))?,
        };
        let mut http = reqwest::Client::builder()
            .user_agent(user_agent)
            .pool_idle_timeout(self.pool_idle_timeout);
        if let Some(timeout) = self.connect_timeout {
            http = http.connect_timeout(timeout);
        }
        if let Some(configure) = self.configure_http {
            http = configure(http);
        }
        // The attempt's budget bounds a send that nothing was waited for before (`transport`'s
        // `Budget`); token requests carry their own timeout.
        if let Some(timeout) = self.timeout {
            http = http.timeout(timeout);
        }
        // Redirects are followed by the send path, which applies the origin rules.
        let http = http
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::config("could not build the HTTP client").with_source(e))?;

        #[allow(unused_mut)] // changed by a Redis store only
        let (mut store, mut shared_cooldown, mut token_timeout) =
            (self.store, self.shared_cooldown, self.timeout);
        #[cfg(feature = "redis")]
        if let Some(redis) = self.redis {
            let redis = redis.with_default_prefix(
                self.token_url.as_deref().unwrap_or_default(),
                self.client_id.as_deref(),
            );
            // A token request must never outlive the lease that keeps the fleet waiting.
            let bound = redis.lease_duration() / 2;
            token_timeout = Some(token_timeout.map_or(bound, |t| t.min(bound)));
            shared_cooldown.get_or_insert_with(|| Arc::new(redis.clone()));
            store = Some(Arc::new(redis));
        }
        let redactor = Redactor::default();
        let store_error = Arc::default();
        let explicit_revocation_url = self
            .revocation_url
            .as_deref()
            .map(|url| parse_url(url, "revocation URL"))
            .transpose()?;
        // The token and revocation endpoints: same client authentication, HTTP client, retries.
        let endpoint_at = |url: Url| {
            TokenEndpoint::new(
                url,
                http.clone(),
                self.clock.clone(),
                self.retry_policy.clone(),
                token_timeout,
            )
            .with_client(
                self.client_id.clone(),
                self.client_secret.clone(),
                self.client_auth,
            )
        };
        let mut revocation = Revocation {
            endpoint: explicit_revocation_url.clone().map(endpoint_at),
            grant: None,
        };
        let source: Arc<dyn TokenSource> = match self.token_source {
            Some(source) => source,
            None => {
                let token_url = parse_url(&required(self.token_url, "token URL")?, "token URL")?;
                if let Some(secret) = &self.client_secret
                    && secret.expose_secret().trim().is_empty()
                {
                    return Err(Error::config("the client secret is empty"));
                }
                let endpoint = endpoint_at(token_url);
                endpoint
                    .credential_secrets()
                    .iter()
                    .for_each(|s| redactor.add(s));
                if revocation.endpoint.is_none() {
                    revocation.endpoint =
                        crate::auth::revoke::derive_url(endpoint.url()).map(endpoint_at);
                }
                match self.grant {
                    GrantType::ClientCredentials => {
                        if self.client_id.is_none() || self.client_secret.is_none() {
                            return Err(Error::config(
                                "the client_credentials grant needs a client id and a client secret",
                            ));
                        }
                        Arc::new(ClientCredentials {
                            endpoint,
                            scope: self.scope,
                            params: self.token_params,
                        })
                    }
                    GrantType::RefreshToken => {
                        let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
                        match &self.refresh_token {
                            Some(t) if t.expose_secret().trim().is_empty() => {
                                return Err(Error::config("the refresh token is empty"));
                            }
                            None if !store.is_persistent() => {
                                return Err(Error::config("the refresh token is not set"));
                            }
                            _ => {}
                        }
                        let mut grant = RefreshTokenGrant::new(
                            endpoint,
                            self.refresh_token,
                            store,
                            self.scope,
                            self.token_params,
                            self.store_timeout,
                            redactor.clone(),
                        );
                        grant.store_error = Arc::clone(&store_error);
                        let grant = Arc::new(grant);
                        revocation.grant = Some(Arc::clone(&grant));
                        grant
                    }
                }
            }
        };
        let name: Arc<str> = match self.name {
            Some(name) => name.into(),
            None => base_url.host_str().unwrap_or_default().into(),
        };
        let tokens = TokenCache::new(source, self.clock.clone(), self.default_lifetime)
            .with_client_name(name.clone());
        Ok(Client {
            inner: Arc::new(Shared {
                name,
                http,
                base_url,
                tokens,
                clock: self.clock.clone(),
                default_headers: self.default_headers,
                timeout: self.timeout,
                retry_policy: self.retry_policy,
                retry: retry::ClientState::new(
                    self.retry_budget,
                    self.wait_for_quota_reset,
                    self.clock.clone(),
                )
                .with_shared_cooldown(shared_cooldown)
                .with_adaptive_limit(self.adaptive_rate_limit),
                redactor,
                store_error,
                revocation,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_future_stays_under_2_kib() {
        // Every request in flight holds one: 256 in flight are 256 of these. The retry loop and
        // the error path are boxed, so they do not count here.
        let client = Client::builder()
            .base_url("https://api.example.com")
            .token_url("https://auth.example.com/token")
            .refresh_token("r")
            .build()
            .unwrap();
        let typed = client.get("/me").send::<serde_json::Value>();
        let raw = client.get("/me").send_raw();
        assert!(size_of_val(&typed) <= 2048, "{} B", size_of_val(&typed));
        assert!(size_of_val(&raw) <= 2048, "{} B", size_of_val(&raw));
    }
}
