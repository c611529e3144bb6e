//! `authed`'s bearer auth and 401 replay as a tower [`Layer`] (feature `tower`), for services
//! of [`http::Request`]: hyper clients, tonic channels, anything built with `tower`.
//!
//! [`AuthLayer`] ([`Client::auth_layer`]) wraps a service so that every request to the
//! client's API origin gets `Authorization: Bearer` from the client's token cache (the same
//! cache as the client: one refresh between them), and a request the server refused with a
//! `401` is sent again, once, with a fresh token.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use http_body_util::Full;
//! use hyper_util::{client::legacy::Client as HyperClient, rt::TokioExecutor};
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! let client = authed::Client::from_env()?;
//! let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
//! let mut service = client.auth_layer().layer(hyper); // or `ServiceBuilder::layer`
//! let request = http::Request::get(client.base_url().join("v1/widgets")?.as_str())
//!     .body(Full::default())?;
//! std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
//! let response = service.call(request).await?;
//! # let _ = response; Ok(()) }
//! ```
//!
//! - **The body must be `Clone`** to be replayed after a `401`: the layer keeps a copy of each
//!   request until the answer is known. `http_body_util::Full<Bytes>` and `Empty` (hyper) are
//!   cheap to clone. For a body that is not `Clone` — **tonic's `Body`**, a stream — use
//!   [`AuthLayer::buffered`], which collects each body (with a size bound) and rebuilds it for
//!   each attempt.
//! - **The token goes only to the client's API origin**: a request whose URI has a scheme and
//!   host gets it only when they (and the port) are the base URL's. A request whose URI is
//!   only a path — as tonic's generated clients send them, the channel adding the origin — is
//!   taken to go where the wrapped service sends everything, and gets the token: wrap only a
//!   service (a channel) that talks to the API. A request that already has an `Authorization`
//!   header passes through untouched.
//! - **gRPC** (tonic): the bearer token is the `authorization` metadata, i.e. the same header,
//!   so a tonic `Channel` wrapped in [`AuthLayer::buffered`] is authenticated. A call rejected
//!   with `UNAUTHENTICATED` in a **trailers-only response** (`grpc-status: 16` in the response
//!   headers: how tonic and other servers answer a call refused before its handler produced a
//!   message, e.g. by an auth interceptor) is treated as a `401`: the token is invalidated and
//!   the call replayed once with a fresh one and the same message. An `UNAUTHENTICATED` that
//!   comes in the trailers after response headers (a handler that started to answer) is not
//!   seen by the layer — reading trailers means waiting for the whole response — and reaches
//!   the caller as the call's status, with no replay.
//! - **The wait for a token is bounded**: by the call's gRPC deadline when it has one (the
//!   `grpc-timeout` header that tonic's `Request::set_timeout` sends), else by the client's
//!   [`timeout`](crate::ClientBuilder::timeout) (default 30 s); a wait that runs out is an
//!   [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error. An `http::Request` carries no
//!   timeout of its own: to bound the whole call (wait and send), put tower's `Timeout` layer
//!   outside this one.
//! - A second refusal is returned as is. Errors getting a token are an
//!   [`Error`](crate::Error) in the service's [`BoxError`].
//!
//! Retries are not part of this layer: tower's own `retry` layer, or the client, does that.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::{Client, integration::Auth};

/// The error type of [`AuthService`]: the inner service's error or an [`Error`](crate::Error)
/// getting a token, boxed (as tower's own layers do).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `grpc-status` of a call rejected for missing or invalid credentials.
const GRPC_UNAUTHENTICATED: &str = "16";

// ===== impl Client =====

impl Client {
    /// A tower [`Layer`] that adds this client's bearer token and replays a request after a
    /// `401` (see [`AuthLayer`]).
    pub fn auth_layer(&self) -> AuthLayer {
        AuthLayer::new(self)
    }
}

// ===== impl AuthLayer =====

/// Wraps a service in an [`AuthService`]: bearer token from a [`Client`]'s token cache, `401`
/// replay (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct AuthLayer {
    auth: Auth,
}

impl AuthLayer {
    /// The layer of `client`: same token cache, same API origin.
    pub fn new(client: &Client) -> Self {
        Self {
            auth: Auth::new(client),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

// ===== impl AuthService =====

/// A service that authenticates requests with a [`Client`]'s bearer token and replays them
/// after a `401`; made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    auth: Auth,
}

impl<S, B, R> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready takes this call; the clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            if !goes_to_api(&auth, request.uri())
                || request.headers().contains_key(header::AUTHORIZATION)
            {
                return inner.call(request).await.map_err(Into::into);
            }
            auth.count_request();
            let span = auth.request_span(
                request.method().as_str(),
                &UriOrigin(request.uri()),
                request.uri().path(),
            );
            let mut request = request;
            let mut replays = 0;
            // A gRPC deadline (`grpc-timeout`, what tonic's `Request::set_timeout` sends)
            // bounds the token wait; else the client's timeout does.
            let deadline = grpc_timeout(request.headers())
                .or(auth.default_timeout())
                .map(|budget| Instant::now() + budget);
            async move {
                loop {
                    let token = auth.token_until(deadline).await?;
                    let spare = copy(&request);
                    request
                        .headers_mut()
                        .insert(header::AUTHORIZATION, token.header_value().clone());
                    let response = inner.call(request).await.map_err(Into::into)?;
                    auth.count_status(response.status().as_u16());
                    if is_rejected(&response) && auth.replay_after_401(&token, replays) {
                        request = spare;
                        replays += 1;
                        std::future::poll_fn(|cx| inner.poll_ready(cx))
                            .await
                            .map_err(Into::into)?;
                        continue;
                    }
                    return Ok::<_, BoxError>(response);
                }
            }
            .instrument(span)
            .await
        })
    }
}

// ===== impl BufferedAuthLayer =====

impl AuthLayer {
    /// The layer for services whose request body is not `Clone`, such as a tonic `Channel`
    /// (`tonic::body::Body`): each request body is collected, **at most `limit` bytes**, so that
    /// it can be sent again after a `401` or an `UNAUTHENTICATED`, and `rebuild` turns the bytes
    /// into the inner service's body for each attempt.
    ///
    /// ```no_run
    /// # async fn run(client: authed::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_layer::Layer;
    ///
    /// let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051")
    ///     .connect()
    ///     .await?;
    /// let channel = client
    ///     .auth_layer()
    ///     .buffered(4 << 20, |bytes| tonic::body::Body::new(http_body_util::Full::new(bytes)))
    ///     .layer(channel);
    /// let mut grpc = tonic::client::Grpc::new(channel); // or a generated client's `new`
    /// # let _ = &mut grpc; Ok(()) }
    /// ```
    ///
    /// A body larger than `limit` fails the call with an [`Error`](crate::Error) of kind
    /// [`Config`](crate::ErrorKind::Config) before anything is sent. **The whole body is read
    /// before the call goes out**: fine for unary and server-streaming gRPC calls, whose request
    /// is one message; a client-streaming call would wait for its stream to end, so send those
    /// through the unbuffered channel.
    pub fn buffered<F, B>(self, limit: usize, rebuild: F) -> BufferedAuthLayer<F>
    where
        F: Fn(bytes::Bytes) -> B + Clone,
    {
        BufferedAuthLayer {
            auth: self,
            limit,
            rebuild,
        }
    }
}

/// [`AuthLayer`] for services whose request body is not `Clone`; made by
/// [`AuthLayer::buffered`].
#[derive(Clone)]
pub struct BufferedAuthLayer<F> {
    auth: AuthLayer,
    limit: usize,
    rebuild: F,
}

impl<F> std::fmt::Debug for BufferedAuthLayer<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedAuthLayer")
            .field("auth", &self.auth)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S, F: Clone> Layer<S> for BufferedAuthLayer<F> {
    type Service = BufferedAuthService<S, F>;

    fn layer(&self, inner: S) -> BufferedAuthService<S, F> {
        BufferedAuthService {
            inner: self.auth.layer(Rebuild {
                inner,
                rebuild: self.rebuild.clone(),
            }),
            limit: self.limit,
        }
    }
}

/// A service that buffers each request body and then works as [`AuthService`]; made by
/// [`AuthLayer::buffered`].
#[derive(Clone)]
pub struct BufferedAuthService<S, F> {
    inner: AuthService<Rebuild<S, F>>,
    limit: usize,
}

impl<S, F> std::fmt::Debug for BufferedAuthService<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedAuthService")
            .field("auth", &self.inner.auth)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<S, F, B, B2, R> Service<Request<B>> for BufferedAuthService<S, F>
where
    S: Service<Request<B2>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    F: Fn(bytes::Bytes) -> B2 + Clone + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready takes this call; the clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit))
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        BoxError::from(crate::Error::config(format!(
                            "the request body is larger than the {limit} bytes the layer buffers \
                             to replay it"
                        )))
                    } else {
                        e
                    }
                })?
                .to_bytes();
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

/// Turns buffered bytes into the inner service's body, for each attempt.
#[derive(Clone)]
struct Rebuild<S, F> {
    inner: S,
    rebuild: F,
}

impl<S, F, B2> Service<Request<bytes::Bytes>> for Rebuild<S, F>
where
    S: Service<Request<B2>>,
    F: Fn(bytes::Bytes) -> B2,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<bytes::Bytes>) -> S::Future {
        self.inner.call(request.map(&self.rebuild))
    }
}

/// Shows the origin of a URI (`scheme://authority`; `-` for a path-only URI) for log fields,
/// formatted only when a subscriber records it.
struct UriOrigin<'a>(&'a Uri);

impl std::fmt::Display for UriOrigin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.scheme_str(), self.0.authority()) {
            (Some(scheme), Some(authority)) => write!(f, "{scheme}://{authority}"),
            _ => f.write_str("-"),
        }
    }
}

/// Whether a request to `uri` carries the token (see the module docs: a path-only URI does).
fn goes_to_api(auth: &Auth, uri: &Uri) -> bool {
    match (uri.scheme_str(), uri.host()) {
        (Some(scheme), Some(host)) => auth.is_api_origin_parts(scheme, host, uri.port_u16()),
        (None, None) => true,
        _ => false,
    }
}

/// Whether the server refused the credentials: `401`, or gRPC `UNAUTHENTICATED` in a
/// trailers-only response.
fn is_rejected<R>(response: &Response<R>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|status| status == HeaderValue::from_static(GRPC_UNAUTHENTICATED))
}

/// The `grpc-timeout` header (gRPC over HTTP/2: 1 to 8 digits and a unit, `H` `M` `S` `m`
/// `u` `n`), if present and valid.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<std::time::Duration> {
    use std::time::Duration;
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A copy of `request` to replay: same method, URI, version, headers, extensions and body.
fn copy<B: Clone>(request: &Request<B>) -> Request<B> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_every_unit_and_bad_ones_ignored() {
        let read = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(read("2S"), Some(Duration::from_secs(2)));
        assert_eq!(read("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(read("3M"), Some(Duration::from_secs(180)));
        assert_eq!(read("250m"), Some(Duration::from_millis(250)));
        assert_eq!(read("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(read("5n"), Some(Duration::from_nanos(5)));
        for bad in ["", "S", "123456789S", "1.5S", "-1S", "10x", "10"] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
