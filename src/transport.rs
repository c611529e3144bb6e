//! The one send path every request takes:
//! cooldown → token → `Authorization` header (API origin only) → send, following redirects →
//! 401 replay → classify → retry ([`crate::retry`]).
//!
//! It works on [`Shared`], the narrow state every clone of a client shares, and knows nothing
//! of [`Client`](crate::Client) itself.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant as StdInstant},
};

use reqwest::{
    Method, StatusCode,
    header::{self, HeaderMap},
};
use secrecy::ExposeSecret;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::{
    Error, ErrorKind, Result,
    auth::{AccessToken, cache::TokenCache, redact::Redactor},
    body,
    clock::Clock,
    error::{ApiError, request_id},
    origin::{Origin, is_loopback, same_origin},
    retry::{self, Failure, Policy},
};

/// Headers that carry credentials: marked sensitive when a request sets them (so `Debug`
/// shows no value), and left behind when a redirect leaves the request's origin.
pub(crate) const CREDENTIAL_HEADERS: [header::HeaderName; 3] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// How many redirects one request follows.
const MAX_REDIRECTS: usize = 10;

/// How many times one attempt is replayed after a `401` (see [`send_authenticated`]).
pub(crate) const MAX_401_REPLAYS: u32 = 3;

/// How much of an error body is read: enough for any problem document, bounded against
/// a server that streams megabytes of HTML.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// What every request of a client (and its clones) shares.
pub(crate) struct Shared {
    /// The client's name in spans and metrics (`ClientBuilder::name`), set once.
    pub(crate) name: Arc<str>,
    pub(crate) http: reqwest::Client,
    /// Always ends with `/`, so that relative paths join under it.
    pub(crate) base_url: Url,
    pub(crate) tokens: TokenCache,
    pub(crate) clock: Arc<dyn Clock>,
    /// Sent with every request to the API origin, never elsewhere.
    pub(crate) default_headers: HeaderMap,
    /// Time budget of one attempt, token wait included (a request's own timeout wins). Also
    /// set as `http`'s own timeout, which bounds a send that nothing was waited for before
    /// (see [`Budget`]).
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry_policy: Policy,
    /// Cooldown, last rate-limit values and retry budget, shared by every request.
    pub(crate) retry: retry::ClientState,
    /// Secrets to scrub from every error.
    pub(crate) redactor: Redactor,
    /// The last failure of the refresh token store.
    pub(crate) store_error: Arc<Mutex<Option<Error>>>,
    /// The revocation endpoint and the grant, for `Client::revoke` (`auth/revoke.rs`).
    pub(crate) revocation: crate::auth::revoke::Revocation,
}

impl Shared {
    /// Whether requests to `url` carry the access token and default headers: only those to
    /// the base URL's origin.
    pub(crate) fn is_api_origin(&self, url: &Url) -> bool {
        same_origin(url, &self.base_url)
    }
}

/// Everything needed to send (and re-send) one request.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Body>,
    pub(crate) timeout: Option<Duration>,
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

/// Sends `request`: authenticated, replayed after a 401, retried as `policy` (else the
/// client's) allows, and turned into an [`Error`] unless the status is a success.
///
/// One `async` block owns what the request needs and lends it to the send path: an `async fn`
/// taking them, awaited from another block, would hold each twice (docs/benchmarks.md).
///
/// **The first send of a request that nothing holds back** (no cooldown or used-up quota, a
/// token in the cache) is made from this block itself, and a success ends the request there:
/// that is nearly every request, and its state is then little more than `reqwest`'s. Any
/// other answer (a redirect, a `401`, an error, a failed send) is handed to the general
/// path, [`retry::run`] over [`send_authenticated`], as the outcome of its first attempt's
/// first send, so that it is followed, replayed, classified and retried as if that path had
/// sent it. A request held back, or waiting for a token, takes the general path from the
/// start. Both general cases are boxed: their state stays out of every other request's.
///
/// `on_api`: whether the request's URL is known to be on the API origin (a relative path
/// joined to the base URL); if not, it is checked here. (An argument rather than a field of
/// [`Request`]: the block keeps it beside its other flags, and the future stays 8 B smaller.)
///
/// `finish` turns the successful response into the caller's result (reads and decodes its
/// body, say), awaited in this block too: one state machine for the whole request, whose
/// body read takes the room the send had, rather than a second future chained after this one
/// (`and_then`), which cost every request a move of the response and a layer of polls
/// (docs/benchmarks.md).
pub(crate) fn execute<O, F>(
    shared: Arc<Shared>,
    request: Request,
    on_api: bool,
    policy: Option<Box<Policy>>,
    finish: impl FnOnce(reqwest::Response) -> F + Send + 'static,
) -> impl Future<Output = Result<O>> + Send + 'static
where
    F: Future<Output = Result<O>> + Send,
{
    let span = tracing::info_span!(
        target: "authed::request",
        "request",
        client = %shared.name,
        origin = %Origin(&request.url),
        method = %request.method,
        path = request.url.path(),
        status = tracing::field::Empty,
    );
    // Looking the span up again costs a dispatcher lookup per request: done only if it is on.
    let traced = !span.is_disabled();
    async move {
        // The send phase is awaited as one value, so that its state and `finish`'s take the
        // same room in this block's state (the compiler overlaps two awaited values that are
        // never alive together, not the locals of one long block). It borrows what this
        // block owns, so nothing is held twice.
        let response = send_logged(&shared, &request, on_api, policy.as_deref(), traced).await?;
        finish(response).await
    }
    .instrument(span)
}

/// The send phase of [`execute`]: the first send, else the general path, then the outcome
/// recorded on the request's span (when `traced`) and logged.
async fn send_logged(
    shared: &Shared,
    request: &Request,
    on_api: bool,
    policy: Option<&Policy>,
    traced: bool,
) -> Result<reqwest::Response> {
    // For the log line of the outcome: the clock is not read when it is off.
    let started =
        tracing::enabled!(target: "authed::request", tracing::Level::DEBUG).then(StdInstant::now);
    let policy = policy.unwrap_or(&shared.retry_policy);
    // Cooldown, quota and budget describe the API server, not other origins.
    // Checked once per request: the URL is the same for every attempt.
    let on_api = on_api || shared.is_api_origin(&request.url);
    #[cfg(feature = "metrics")]
    crate::metrics::request(&shared.name);
    // A value matched on keeps its room in this block's state across an `await` inside
    // the match, even once its parts are moved out, and every request in flight holds
    // that state (matching on what `first_send` returns and on the builder held 608 B
    // so). So it is taken apart with `let`, and only the send future, 16 B, is matched on
    // across an await.
    let result = 'done: {
        let Some(FirstSend {
            begun,
            token,
            budget,
            send,
        }) = first_send(shared, request, on_api, policy)
        else {
            let general = Box::pin(general(shared, request, on_api, policy, None));
            break 'done general.await;
        };
        let general = {
            let outcome = match send {
                Ok(send) => send.await.map_err(|e| transport_error(request, e)),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(response) if response.status().is_success() => {
                    // `reqwest` follows no redirect: the answer is from the request's URL.
                    observe(shared, on_api, &response);
                    if let Some(turn) = &begun.turn {
                        turn.succeeded();
                    }
                    break 'done Ok(response);
                }
                outcome => {
                    let first = Sent {
                        token,
                        budget,
                        outcome,
                    };
                    Box::pin(general(
                        shared,
                        request,
                        on_api,
                        policy,
                        Some((begun, first)),
                    ))
                }
            }
        };
        general.await
    };
    let span = traced.then(tracing::Span::current);
    let status = match &result {
        Ok(response) => Some(response.status()),
        Err(err) => err.status(),
    };
    if let (Some(span), Some(status)) = (span, status) {
        span.record("status", status.as_u16());
    }
    match &result {
        Ok(_) => {
            tracing::debug!(target: "authed::request", elapsed_ms = started.map(|s| s.elapsed().as_millis() as u64), "request succeeded");
        }
        Err(err) => {
            tracing::debug!(target: "authed::request", error = %err, "request failed");
        }
    }
    result
}

/// The first send of a request, prepared by [`first_send`].
struct FirstSend<'a, F> {
    /// When the request began, and its turn (with its budget credit).
    begun: retry::Begun<'a>,
    token: Option<Arc<AccessToken>>,
    budget: Budget,
    /// The send, or why it could not be prepared.
    send: Result<F>,
}

/// The first send of a request, prepared if nothing holds it back. `None`, with nothing
/// taken, when the request must wait for a turn or a token.
fn first_send<'a>(
    shared: &'a Shared,
    request: &Request,
    on_api: bool,
    policy: &Policy,
) -> Option<FirstSend<'a, impl Future<Output = reqwest::Result<reqwest::Response>> + use<>>> {
    // One read of the client's clock for the token's expiry, the turn and the retry
    // deadline's start.
    let started = shared.clock.now();
    let token = if authenticates(request, on_api) {
        match shared.tokens.now_or_wait_at(started) {
            Ok(Ok(token)) => Some(token),
            // A token error is the general path's to report, a wait its to make.
            _ => return None,
        }
    } else {
        None
    };
    let turn = match on_api {
        true => Some(shared.retry.turn_now(started, policy.max_retry_after)?),
        false => None,
    };
    let budget = Budget::new(shared, request);
    let hop = Hop::first(request, on_api);
    let send = prepare(shared, request, &hop, token.as_deref(), budget)
        .map(|prepared| shared.http.execute(prepared));
    Some(FirstSend {
        begun: retry::Begun { started, turn },
        token,
        budget,
        send,
    })
}

/// The send path for every request the first send does not end: the retry loop over
/// authenticated attempts, taking over the first send's outcome if it was made.
async fn general<'a>(
    shared: &'a Shared,
    request: &Request,
    on_api: bool,
    policy: &Policy,
    first: Option<(retry::Begun<'a>, Sent)>,
) -> Result<reqwest::Response> {
    // Formatted only if a retry, a hold or a failure names the request.
    let what = What(&request.method, &request.url);
    let idempotent = retry::is_idempotent(&request.method, &request.headers);
    // A streaming body cannot be replayed: the first attempt is the only one.
    let replayable = request.is_replayable();
    let state = on_api.then_some(&shared.retry);
    let (begun, mut first) = first.unzip();
    #[cfg(feature = "metrics")]
    let mut sent = 0_u32;
    retry::run(policy, state, &*shared.clock, &what, begun, || {
        #[cfg(feature = "metrics")]
        {
            if sent > 0 {
                crate::metrics::retry(&shared.name);
            }
            sent += 1;
        }
        let first = first.take();
        async move {
            send_authenticated(shared, request, on_api, first, |error| {
                Failure::api(error, policy, idempotent, replayable)
            })
            .await
        }
    })
    .await
}

/// The outcome of an attempt's first send, made before the attempt's own code ran.
struct Sent {
    token: Option<Arc<AccessToken>>,
    /// The attempt's budget as it was before the send.
    budget: Budget,
    outcome: Result<reqwest::Response>,
}

/// Whether requests to this URL get the client's access token: those to the API origin that
/// do not carry an `Authorization` of their own.
fn authenticates(request: &Request, on_api: bool) -> bool {
    on_api && !request.headers.contains_key(header::AUTHORIZATION)
}

/// `METHOD /path` of a request for logs and errors (never the query, which may hold a secret);
/// it allocates nothing unless it is formatted.
#[derive(Clone, Copy)]
struct What<'a>(&'a Method, &'a Url);

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1.path())
    }
}

/// One attempt from the caller's view, within its time budget (the token wait included).
///
/// On a `401` **from the API origin**: the token that failed is invalidated (unless a newer one
/// replaced it already) and the request replayed with a fresh token. It is replayed again only
/// while the token that failed had been superseded by then (an early refresh that made the
/// server revoke it while the request was on its way), at most [`MAX_401_REPLAYS`] times; a
/// `401` to a token that was the newest when it failed is final. Errors getting a token are
/// final (the token endpoint has its own retries); errors from the API go through `classify`.
async fn send_authenticated(
    shared: &Shared,
    request: &Request,
    on_api: bool,
    first: Option<Sent>,
    classify: impl Fn(Error) -> Failure,
) -> Result<reqwest::Response, Failure> {
    let method = &request.method;
    let (mut budget, mut first) = match first {
        Some(sent) => (sent.budget, Some((sent.token, sent.outcome))),
        None => (Budget::new(shared, request), None),
    };
    if !authenticates(request, on_api) {
        let outcome = first.map(|(_, outcome)| outcome);
        let response = send(shared, request, on_api, None, budget, outcome)
            .await
            .map_err(&classify)?;
        return check_status(shared, method, response, None)
            .await
            .map_err(classify);
    }
    let mut replays = 0;
    loop {
        let (token, outcome) = match first.take() {
            Some((Some(token), outcome)) => (token, Some(outcome)),
            // No first send yet (a first send without a token is handed over only for a
            // request that is not authenticated, above).
            _ => {
                let token = token_within(shared, &mut budget)
                    .await
                    .map_err(Failure::fatal)?;
                (token, None)
            }
        };
        let response = send(shared, request, on_api, Some(&token), budget, outcome)
            .await
            .map_err(&classify)?;
        // A replay sends within what is left.
        budget.spent = true;
        let rejected = response.status() == StatusCode::UNAUTHORIZED
            && shared.is_api_origin(response.url())
            && request.is_replayable();
        if rejected && replays < MAX_401_REPLAYS {
            let superseded = shared.tokens.is_superseded(&token);
            if replays == 0 || superseded {
                tracing::debug!(target: "authed::request", superseded, "401 from the API; replaying with a fresh token");
                shared.tokens.invalidate(&token);
                #[cfg(feature = "metrics")]
                crate::metrics::replay_401(&shared.name);
                replays += 1;
                continue;
            }
        }
        return check_status(shared, method, response, Some(&token))
            .await
            .map_err(classify);
    }
}

/// The time budget of one attempt: the token wait, `401` replays and redirect hops included.
///
/// `reqwest` stores a per-request timeout in the request's extensions (a map and a box, 3 of
/// the 5 allocations `authed` added to a request: docs/benchmarks.md), so a send that nothing
/// was waited for before is bounded by `Shared::http`'s own timeout, the client's `timeout`,
/// which starts with the send, microseconds after the attempt began; only a send after a
/// token wait, a replay or a redirect, or with the request's own timeout, carries what is
/// left of the budget.
#[derive(Clone, Copy)]
struct Budget {
    deadline: Option<Instant>,
    /// Whether the HTTP client's timeout no longer ends the next send at `deadline`.
    spent: bool,
}

impl Budget {
    fn new(shared: &Shared, request: &Request) -> Self {
        let budget = request.timeout.or(shared.timeout);
        Self {
            deadline: budget.map(|budget| Instant::now() + budget),
            spent: request.timeout.is_some() || budget.is_some_and(|b| b.is_zero()),
        }
    }

    /// The timeout to give the next send, if it needs its own; a `Timeout` error if the
    /// budget is used up.
    fn left(&self, what: What<'_>) -> Result<Option<Duration>> {
        match self.deadline {
            Some(deadline) if self.spent => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, format!("{what} timed out")));
                }
                Ok(Some(left))
            }
            _ => Ok(None),
        }
    }
}

/// A valid token, waited for no longer than the attempt's deadline.
async fn token_within(shared: &Shared, budget: &mut Budget) -> Result<Arc<AccessToken>> {
    let (token, waited) = token_until(shared, budget.deadline).await;
    budget.spent |= waited;
    token
}

/// A valid token, waited for until `deadline` at most (`None`: no bound), and whether it had
/// to be waited for. The middleware and tower integrations bound their wait with it too.
pub(crate) async fn token_until(
    shared: &Shared,
    deadline: Option<Instant>,
) -> (Result<Arc<AccessToken>>, bool) {
    let waiting = match shared.tokens.now_or_wait() {
        Ok(ready) => return (ready, false),
        Err(waiting) => waiting,
    };
    let Some(deadline) = deadline else {
        return (waiting.await, true);
    };
    let token = tokio::time::timeout_at(deadline, waiting)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Timeout,
                "timed out waiting for an access token from the token endpoint (the request's timeout covers the wait)",
            ))
        });
    (token, true)
}

/// Sends `request` once, following redirects: **the token and the default headers go only to
/// the API origin**, `Authorization` and cookies set on the request are dropped when a redirect
/// leaves the request's origin, and a redirect from `https` down to plain `http` (to a
/// non-loopback host) is refused. `request_on_api`: whether the request's own URL is on the API
/// origin (checked once by the caller). `first`: the first hop's outcome, if it was sent
/// already (by [`execute`]).
async fn send(
    shared: &Shared,
    request: &Request,
    request_on_api: bool,
    token: Option<&AccessToken>,
    mut budget: Budget,
    mut first: Option<Result<reqwest::Response>>,
) -> Result<reqwest::Response> {
    let mut hop = Hop::first(request, request_on_api);
    for _ in 0..=MAX_REDIRECTS {
        let response = match first.take() {
            Some(outcome) => outcome?,
            None => {
                let prepared = prepare(shared, request, &hop, token, budget)?;
                shared
                    .http
                    .execute(prepared)
                    .await
                    .map_err(|e| transport_error(request, e))?
            }
        };
        // The next hop sends within what is left.
        budget.spent = true;
        let Some(next) = redirect_target(&response) else {
            return Ok(response);
        };
        let url = hop.url.as_ref().unwrap_or(&request.url);
        if next.scheme() == "http" && url.scheme() == "https" && !is_loopback(&next) {
            return Err(Error::config(format!(
                "{} {}: refusing a redirect from https to plain http",
                request.method,
                request.url.path()
            )));
        }
        match response.status() {
            // The stream is gone: the caller gets the redirect as it is.
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                if !request.is_replayable() =>
            {
                return Ok(response);
            }
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {}
            StatusCode::SEE_OTHER => {
                hop.method = if hop.method == Method::HEAD {
                    Method::HEAD
                } else {
                    Method::GET
                };
                hop.with_body = false;
            }
            _ if hop.method == Method::POST => {
                hop.method = Method::GET;
                hop.with_body = false;
            }
            _ => {}
        }
        hop.on_api = shared.is_api_origin(&next);
        hop.on_origin = same_origin(&next, &request.url);
        hop.url = Some(next);
    }
    Err(Error::new(
        ErrorKind::Transport,
        format!(
            "{} {}: too many redirects (more than {MAX_REDIRECTS})",
            request.method,
            request.url.path()
        ),
    ))
}

/// Where one hop of a request goes, and what it carries.
struct Hop {
    /// `None`: the request's own URL (`reqwest` takes an owned copy, one per hop).
    url: Option<Url>,
    method: Method,
    with_body: bool,
    /// Whether the hop is to the API origin (token, default headers).
    on_api: bool,
    /// Whether the hop is to the request's own origin (its `Authorization` and cookies).
    on_origin: bool,
}

impl Hop {
    fn first(request: &Request, on_api: bool) -> Self {
        Self {
            url: None,
            method: request.method.clone(),
            with_body: true,
            on_api,
            on_origin: true,
        }
    }
}

/// The `reqwest` request of one hop: headers, token and body as [`send`] describes, and what
/// is left of the budget if the send needs a timeout of its own.
///
/// A `reqwest::Request`, sent with `Client::execute`, rather than `Client::request`'s
/// builder: the builder holds a clone of the HTTP client (a reference count that every
/// worker thread updates) only to hand the request back to it.
fn prepare(
    shared: &Shared,
    request: &Request,
    hop: &Hop,
    token: Option<&AccessToken>,
    budget: Budget,
) -> Result<reqwest::Request> {
    let url = hop.url.as_ref().unwrap_or(&request.url);
    let mut prepared = reqwest::Request::new(hop.method.clone(), url.clone());
    let headers = prepared.headers_mut();
    if hop.on_api && !shared.default_headers.is_empty() {
        *headers = shared.default_headers.clone();
    }
    // The request's own headers replace the defaults of their names; off its origin, its
    // credentials stay behind.
    let carried = |name: &header::HeaderName| hop.on_origin || !CREDENTIAL_HEADERS.contains(name);
    if headers.is_empty() && hop.on_origin {
        // Nothing to replace: the request's own headers as they are.
        if !request.headers.is_empty() {
            headers.clone_from(&request.headers);
        }
    } else {
        for name in request.headers.keys().filter(|name| carried(name)) {
            headers.remove(name);
        }
        for (name, value) in request.headers.iter().filter(|(name, _)| carried(name)) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let (Some(token), true) = (token, hop.on_api) {
        headers.append(header::AUTHORIZATION, token.header_value().clone());
    }
    if hop.with_body {
        match &request.body {
            Some(Body::Bytes(bytes)) => *prepared.body_mut() = Some(bytes.clone().into()),
            Some(Body::Stream(stream)) => {
                let stream = stream.lock().unwrap_or_else(|e| e.into_inner()).take();
                let stream = stream.ok_or_else(|| {
                    Error::config("a streaming request body cannot be sent twice")
                })?;
                *prepared.body_mut() = Some(stream);
            }
            None => {}
        }
    }
    if let Some(left) = budget.left(What(&request.method, &request.url))? {
        *prepared.timeout_mut() = Some(left);
    }
    Ok(prepared)
}

/// A send that failed: named by method and path, never the query.
fn transport_error(request: &Request, error: reqwest::Error) -> Error {
    Error::transport(
        format!("{} {} failed", request.method, request.url.path()),
        error,
    )
}

/// Where a redirect response points, if it is one and says where.
fn redirect_target(response: &reqwest::Response) -> Option<Url> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
    let next = response.url().join(location).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

/// Passes successes through; turns anything else into an [`Error`] with the status, the
/// parsed body and the request id (scrubbed of every secret the client holds), and
/// `Retry-After`.
async fn check_status(
    shared: &Shared,
    method: &Method,
    response: reqwest::Response,
    token: Option<&AccessToken>,
) -> Result<reqwest::Response> {
    let status = response.status();
    observe(shared, shared.is_api_origin(response.url()), &response);
    if status.is_success() {
        return Ok(response);
    }
    // Boxed: reading an error stays out of the state of every request in flight.
    Err(Box::pin(error_from(shared, method, response, token)).await)
}

/// Takes in an answer's rate-limit headers and `429`: only the API origin's answers
/// (`on_api`) may hold the client's requests, not a redirect's target.
fn observe(shared: &Shared, on_api: bool, response: &reqwest::Response) {
    if on_api {
        let status = response.status();
        shared.retry.observe(status, response.headers());
        #[cfg(feature = "metrics")]
        if status == StatusCode::TOO_MANY_REQUESTS {
            crate::metrics::rate_limited(&shared.name);
        }
    }
}

/// The [`Error`] for an answer that is not a success (see [`check_status`]).
async fn error_from(
    shared: &Shared,
    method: &Method,
    response: reqwest::Response,
    token: Option<&AccessToken>,
) -> Error {
    let status = response.status();
    let now_utc = shared.clock.now_utc();
    let headers = response.headers().clone();
    let what = format!("{method} {}", response.url().path());
    let body = body::read_prefix(response, ERROR_BODY_LIMIT).await;
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
    let (api, id) = shared
        .redactor
        .with(token.map(|t| t.expose_secret()), |secrets| {
            (
                ApiError::parse(&body, secrets),
                request_id(&headers, secrets),
            )
        });
    Error::new(kind, message)
        .with_status(status)
        .with_request_id(id)
        .with_retry_after(retry::retry_after(&headers, now_utc))
        .with_api_error(api)
        .with_headers(headers)
}
