//! The one send path every request takes:
//! cooldown → token → `Authorization` header (API origin only) → send → 401 replay → classify
//! → retry ([`crate::retry`]).

use std::{
    sync::{Arc, Mutex},
    time::Instant as StdInstant,
};

use futures_util::FutureExt;
use reqwest::{
    Method, StatusCode,
    header::{self, HeaderMap},
    redirect,
};
use secrecy::ExposeSecret;
use tracing::Instrument;
use url::Url;

use crate::{
    Client, Error, ErrorKind, RefreshToken, Result,
    auth::{AccessToken, Clock, cache::Fetch, refresh::Grant},
    error::{ApiError, request_id},
    retry::{self, Failure, Policy},
};

/// Everything needed to send (and re-send) one request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Body>,
    pub(crate) timeout: Option<std::time::Duration>,
}

/// A request body: bytes can be sent again, a stream only once (it is taken by the first send).
#[derive(Debug)]
pub(crate) enum Body {
    Bytes(bytes::Bytes),
    Stream(Mutex<Option<reqwest::Body>>),
}

impl Request {
    /// Whether the request can be sent more than once (after a 401, or as a retry).
    fn is_replayable(&self) -> bool {
        !matches!(self.body, Some(Body::Stream(_)))
    }
}

/// Sends `request` through the client: authenticated, replayed once after a 401, retried as
/// `policy` (else the client's) allows, and turned into an [`Error`] unless the status is a
/// success.
pub(crate) async fn execute(
    client: &Client,
    request: Request,
    policy: Option<&Policy>,
) -> Result<reqwest::Response> {
    let span = tracing::info_span!(
        target: "authed::request",
        "request",
        method = %request.method,
        path = request.url.path(),
        status = tracing::field::Empty,
    );
    async move {
        let started = StdInstant::now();
        let what = format!("{} {}", request.method, request.url.path());
        let policy = policy.unwrap_or(&client.inner.retry_policy);
        let idempotent = retry::is_idempotent(&request.method, &request.headers);
        // A streaming body cannot be replayed: the first attempt is the only one.
        let replayable = request.is_replayable();
        // Cooldown, quota and budget describe the API server, not other origins.
        let shared = client.is_api_origin(&request.url).then_some(&client.inner.retry);
        let request = &request;
        let clock = &*client.inner.clock;
        let result = retry::run(policy, shared, clock, &what, || async move {
            send_authenticated(client, request, |error| {
                Failure::api(error, policy, idempotent, replayable)
            })
            .await
        })
        .await;
        let span = tracing::Span::current();
        match &result {
            Ok(response) => {
                span.record("status", response.status().as_u16());
                tracing::debug!(target: "authed::request", elapsed_ms = started.elapsed().as_millis() as u64, "request succeeded");
            }
            Err(err) => {
                if let Some(status) = err.status() {
                    span.record("status", status.as_u16());
                }
                tracing::debug!(target: "authed::request", error = %err, "request failed");
            }
        }
        result
    }
    .instrument(span)
    .await
}

/// One attempt from the caller's view: send with the current token; on 401, invalidate that
/// token, refresh and replay once. Errors getting a token are final (the token endpoint has
/// its own retries); errors from the API go through `classify`.
async fn send_authenticated(
    client: &Client,
    request: &Request,
    classify: impl Fn(Error) -> Failure,
) -> Result<reqwest::Response, Failure> {
    let method = &request.method;
    let authenticate =
        client.is_api_origin(&request.url) && !request.headers.contains_key(header::AUTHORIZATION);
    if !authenticate {
        let response = send(client, request, None).await.map_err(&classify)?;
        return check_status(client, method, response, None)
            .await
            .map_err(classify);
    }
    let token = client
        .inner
        .tokens
        .current()
        .await
        .map_err(Failure::fatal)?;
    let response = send(client, request, Some(&token))
        .await
        .map_err(&classify)?;
    if response.status() != StatusCode::UNAUTHORIZED || !request.is_replayable() {
        return check_status(client, method, response, Some(&token))
            .await
            .map_err(classify);
    }
    tracing::debug!(target: "authed::request", "401 from the API; refreshing the token and replaying once");
    client.inner.tokens.invalidate(&token);
    let fresh = client
        .inner
        .tokens
        .current()
        .await
        .map_err(Failure::fatal)?;
    let response = send(client, request, Some(&fresh))
        .await
        .map_err(&classify)?;
    check_status(client, method, response, Some(&fresh))
        .await
        .map_err(classify)
}

/// Sends `request` once. The URL and headers are copied into reqwest's request; a bytes body
/// is shared, a streaming body is taken.
async fn send(
    client: &Client,
    request: &Request,
    token: Option<&AccessToken>,
) -> Result<reqwest::Response> {
    let mut builder = client
        .inner
        .http
        .request(request.method.clone(), request.url.clone());
    if !client.inner.default_headers.is_empty() {
        builder = builder.headers(client.inner.default_headers.clone());
    }
    builder = builder.headers(request.headers.clone());
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, token.header_value()?);
    }
    match &request.body {
        Some(Body::Bytes(bytes)) => builder = builder.body(bytes.clone()),
        Some(Body::Stream(stream)) => {
            let stream = stream.lock().unwrap_or_else(|e| e.into_inner()).take();
            let stream = stream
                .ok_or_else(|| Error::config("a streaming request body cannot be sent twice"))?;
            builder = builder.body(stream);
        }
        None => {}
    }
    if let Some(timeout) = request.timeout {
        builder = builder.timeout(timeout);
    }
    builder.send().await.map_err(|e| {
        Error::transport(
            format!("{} {} failed", request.method, request.url.path()),
            e,
        )
    })
}

/// Passes successes through; turns anything else into an [`Error`] with the status, the
/// parsed body (scrubbed of the token), the request id and `Retry-After`.
pub(crate) async fn check_status(
    client: &Client,
    method: &Method,
    response: reqwest::Response,
    token: Option<&AccessToken>,
) -> Result<reqwest::Response> {
    let status = response.status();
    let now_utc = client.inner.clock.now_utc();
    // Only the API origin's answers may hold the client's requests (not a redirect's target).
    if client.is_api_origin(response.url()) {
        client.inner.retry.observe(status, response.headers());
    }
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let what = format!("{method} {}", response.url().path());
    let body = read_limited(response, ERROR_BODY_LIMIT).await;
    let secrets: Vec<&str> = token.map(|t| t.expose_secret()).into_iter().collect();
    let (kind, message) = match status {
        StatusCode::UNAUTHORIZED => (
            ErrorKind::Unauthorized,
            format!("{what} was refused: the access token is not accepted"),
        ),
        StatusCode::TOO_MANY_REQUESTS => {
            (ErrorKind::RateLimited, format!("{what} was rate limited"))
        }
        _ => (ErrorKind::Api, format!("{what} failed")),
    };
    Err(Error::new(kind, message)
        .with_status(status)
        .with_request_id(request_id(&headers))
        .with_retry_after(retry::retry_after(&headers, now_utc))
        .with_api_error(ApiError::parse(&body, &secrets))
        .with_headers(headers))
}

/// How much of an error body is read: enough for any problem document, bounded against
/// a server that streams megabytes of HTML.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Reads at most `limit` bytes of the body; a body that fails half-way keeps what arrived.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The function the token cache calls to mint a token: a POST to the token endpoint, retried
/// under `policy` only when the refresh token cannot have been consumed (see
/// [`retry::is_retryable_token`]).
pub(crate) fn token_fetcher(
    http: reqwest::Client,
    grant: Arc<Grant>,
    clock: Arc<dyn Clock>,
    policy: Policy,
) -> Fetch {
    Arc::new(move |refresh_token: RefreshToken| {
        let (http, grant, clock, policy) =
            (http.clone(), grant.clone(), clock.clone(), policy.clone());
        async move {
            retry::run(&policy, None, &*clock, "token request", || async {
                let result = match grant.request(&http, &refresh_token).send().await {
                    Ok(response) => grant.parse(response, &refresh_token, clock.now_utc()).await,
                    Err(e) => Err(Error::transport("could not reach the token endpoint", e)),
                };
                result.map_err(Failure::token)
            })
            .await
        }
        .boxed()
    })
}

/// Redirects: at most 10; **never** for token requests (the body holds the refresh token);
/// never from `https` down to plain `http` on a non-loopback host. `reqwest` itself drops the
/// `Authorization` header when a redirect leaves the origin.
pub(crate) fn redirect_policy(token_url: Url) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        let first = attempt.previous().first();
        if first.is_some_and(|u| u.origin() == token_url.origin() && u.path() == token_url.path()) {
            return attempt.stop();
        }
        if attempt.previous().len() >= 10 {
            return attempt.error("too many redirects");
        }
        let downgrade = attempt.url().scheme() == "http"
            && !crate::config::is_loopback(attempt.url())
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            return attempt.error("refusing a redirect from https to plain http");
        }
        attempt.follow()
    })
}
