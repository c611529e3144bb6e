//! The one error type of the crate.
//!
//! [`Error`] is opaque and pointer-sized: ask it what happened with [`Error::kind`],
//! [`Error::status`], [`Error::is_retryable`], [`Error::retry_after`], [`Error::request_id`]
//! and [`Error::api_error`]; its [`source`](std::error::Error::source) chain is kept.
//!
//! **No error ever contains a secret.** Messages are written by this crate, and response
//! bodies kept for debugging are scrubbed of the tokens the client holds before they are stored.

use std::{error::Error as StdError, fmt, sync::Arc, time::Duration};

use reqwest::{StatusCode, header::HeaderMap};
use serde::Deserialize;

use crate::retry::classify::{Classifier, Retryable};

/// A `Result` whose error defaults to [`authed::Error`](Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Everything that can go wrong when calling an API through `authed`.
///
/// It is cheap to move (one pointer) and cheap enough to clone (errors are shared with every
/// caller that waited on the same token refresh).
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
    status: Option<StatusCode>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    api: Option<ApiError>,
    retries: Option<RetrySummary>,
    position: Option<serde_json::Value>,
    /// The headers of the response that caused the error, for retry classifiers. Never shown:
    /// a server may echo a secret in one.
    headers: Option<HeaderMap>,
    /// What the retry classifier said of this error, when one ran.
    retryable: Option<Retryable>,
}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client is misconfigured: a missing environment variable, a bad URL, plain `http://`
    /// to a public host, a header that is not valid HTTP. Fix the configuration.
    Config,
    /// Getting an access token failed; see [`AuthErrorKind`] for why.
    Auth(AuthErrorKind),
    /// The API answered `401 Unauthorized` even to a freshly minted access token.
    Unauthorized,
    /// The API answered with an error status (other than 401 and 429).
    /// [`Error::api_error`] holds the parsed problem body.
    Api,
    /// The API (or the token endpoint) kept answering `429 Too Many Requests`, or asked for a
    /// wait longer than the retry policy allows (by `Retry-After`, a client-wide cooldown or
    /// an exhausted rate-limit quota). [`Error::retry_after`] tells how long it asked for.
    RateLimited,
    /// The request could not be sent or the response could not be read (DNS, connect, TLS, reset).
    Transport,
    /// The request took longer than its timeout.
    Timeout,
    /// A response body was not what the caller asked for (not JSON, wrong shape).
    Decode,
    /// A paginated listing could not go on: a repeated cursor or next URL, too many empty pages,
    /// or a next URL on another origin. [`Error::position`] tells where to resume.
    /// [`pagination::Reason::of`](crate::pagination::Reason::of) tells which (a listing that
    /// ended short of its announced total, a repeated page, a page too large, ...).
    Pagination,
    /// A rotated refresh token could not be saved by the configured store.
    Store,
}

/// Why getting an access token failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The refresh token is invalid, expired or revoked (`invalid_grant`):
    /// **re-authentication required**. Retrying cannot help.
    InvalidGrant,
    /// The token endpoint rejected the client credentials (`invalid_client`).
    InvalidClient,
    /// The token endpoint answered with another OAuth error (`invalid_scope`,
    /// `unauthorized_client`, ...) or an unexpected status.
    Rejected,
    /// The token endpoint's answer was not a usable token response: missing `access_token`,
    /// a `token_type` other than `Bearer`, an `expires_in` that is negative, zero or not a number.
    InvalidResponse,
    /// The user declined a login of `authed::login` (`access_denied`).
    AccessDenied,
    /// A device login of `authed::login` expired before the user approved it (`expired_token`):
    /// start again.
    LoginExpired,
}

/// A summary of the retries made before an error was returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySummary {
    /// How many attempts were sent (the first one included).
    pub attempts: u32,
    /// Time from the first attempt to giving up.
    pub elapsed: Duration,
    /// Why the retry loop stopped.
    pub stopped: StopReason,
}

/// Why a request stopped being retried (see [`RetrySummary::stopped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last answer is not one the retry classifier retries (for this method).
    NotRetryable,
    /// [`Policy::max_attempts`](crate::retry::Policy::max_attempts) retries on backoff, or
    /// [`Policy::max_server_waits`](crate::retry::Policy::max_server_waits) waits the server
    /// asked for, were made.
    MaxAttempts,
    /// The client's [retry budget](crate::retry::Budget) is used up: the server failed without
    /// saying when to come back, too often.
    BudgetExhausted,
    /// The server asked to wait (`Retry-After`, a client-wide cooldown or a rate-limit reset)
    /// longer than [`Policy::max_retry_after`](crate::retry::Policy::max_retry_after).
    RetryAfterBeyondCap,
    /// The next wait would end after
    /// [`Policy::max_elapsed`](crate::retry::Policy::max_elapsed).
    Deadline,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::NotRetryable => "the answer is not retryable",
            StopReason::MaxAttempts => "the retry policy's attempts are used up",
            StopReason::BudgetExhausted => "the client's retry budget is used up",
            StopReason::RetryAfterBeyondCap => {
                "the server asked to wait longer than the retry policy's max_retry_after"
            }
            StopReason::Deadline => {
                "the next attempt would start after the retry policy's max_elapsed"
            }
        })
    }
}

// ===== impl Error =====

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
                status: None,
                request_id: None,
                retry_after: None,
                api: None,
                retries: None,
                position: None,
                headers: None,
                retryable: None,
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn auth(kind: AuthErrorKind, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth(kind), message)
    }

    /// A body that does not decode. The decoder's description is kept as the source with the
    /// values it quotes from the input left out: serde quotes what it could not use
    /// (`invalid type: string "…"`), which can be a token a server put in the wrong field.
    pub(crate) fn decode(message: impl Into<String>, source: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Decode, message)
            .with_source(DecodeDetail(without_quoted_input(&source.to_string())))
    }

    /// Wraps a `reqwest` error, telling timeouts from other transport failures.
    pub(crate) fn transport(message: impl Into<String>, source: reqwest::Error) -> Self {
        let kind = if source.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Transport
        };
        // reqwest's own message can contain the URL; ours never carries query strings.
        Self::new(kind, message).with_source(source.without_url())
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(Arc::from(source.into()));
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_request_id(mut self, id: Option<String>) -> Self {
        self.inner.request_id = id;
        self
    }

    pub(crate) fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.inner.retry_after = wait;
        self
    }

    pub(crate) fn with_api_error(mut self, api: ApiError) -> Self {
        self.inner.api = Some(api);
        self
    }

    pub(crate) fn with_retries(
        mut self,
        attempts: u32,
        elapsed: Duration,
        stopped: StopReason,
    ) -> Self {
        self.inner.retries = Some(RetrySummary {
            attempts,
            elapsed,
            stopped,
        });
        self
    }

    /// Keeps the headers of the response that caused the error, for retry classifiers.
    pub(crate) fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.inner.headers = Some(headers);
        self
    }

    pub(crate) fn headers(&self) -> Option<&HeaderMap> {
        self.inner.headers.as_ref()
    }

    pub(crate) fn with_retryable(mut self, verdict: Retryable) -> Self {
        self.inner.retryable = Some(verdict);
        self
    }

    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.inner.message = message.into();
        self
    }

    /// An error of a custom [`TokenSource`](crate::auth::TokenSource): kind
    /// [`Auth(Rejected)`](AuthErrorKind::Rejected), with `message` and the cause kept as its
    /// source. **Neither may contain a secret.**
    pub fn token_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::auth(AuthErrorKind::Rejected, message).with_source(source)
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self
    }

    pub(crate) fn with_position(mut self, position: serde_json::Value) -> Self {
        self.inner.position = Some(position);
        self
    }

    /// Whether the connection could not be established (so the request never reached a server).
    pub(crate) fn is_connect(&self) -> bool {
        let source = self.inner.source.as_deref();
        source
            .and_then(|s| s.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_connect)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status of the response that caused this error, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The server's request id (`x-request-id`, `request-id`, `x-amzn-requestid`,
    /// `x-correlation-id`), to quote when asking the API's support for help.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// How long the server asked the client to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The API's error body, parsed, with a truncated and scrubbed copy of the raw body.
    pub fn api_error(&self) -> Option<&ApiError> {
        self.inner.api.as_ref()
    }

    /// How many attempts were made and for how long, when the request was retried.
    pub fn retries(&self) -> Option<RetrySummary> {
        self.inner.retries
    }

    /// For errors from a paginated stream: the position to resume from, as serialized by
    /// [`Position`](crate::pagination::Position).
    pub fn position(&self) -> Option<&serde_json::Value> {
        self.inner.position.as_ref()
    }

    /// Whether the refresh token can no longer be used and the user must authenticate again.
    pub fn is_reauth_required(&self) -> bool {
        self.inner.kind == ErrorKind::Auth(AuthErrorKind::InvalidGrant)
    }

    /// Whether sending the same request again later might succeed, as the retry classifier
    /// that `authed` itself follows says: the one of the request's
    /// [`Policy`](crate::retry::Policy) when the error comes from a request, else
    /// [`Classifier::default`] (`429`, `503`, `408`, `502`, `504`, connection errors and
    /// timeouts; not `500` or another status).
    ///
    /// A `true` for an answer the server may have acted on (`502`, `504`, a timeout, ...) is
    /// only safe to act on for an idempotent request: `authed` retries those only for
    /// idempotent methods or with an `Idempotency-Key` (see [`crate::retry`]).
    pub fn is_retryable(&self) -> bool {
        let verdict = self
            .inner
            .retryable
            .unwrap_or_else(|| Classifier::default().classify(self));
        verdict != Retryable::Never
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("authed::Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(id) = &self.inner.request_id {
            d.field("request_id", id);
        }
        if let Some(wait) = self.inner.retry_after {
            d.field("retry_after", &wait);
        }
        if let Some(r) = &self.inner.retries {
            d.field("retries", r);
        }
        if let Some(api) = &self.inner.api {
            d.field("api", api);
        }
        if let Some(p) = &self.inner.position {
            d.field("position", p);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(status) = self.inner.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(api) = &self.inner.api
            && let Some(summary) = api.summary()
        {
            write!(f, ": {summary}")?;
        }
        match &self.inner.retries {
            Some(r) if r.attempts == 0 => write!(f, " (stopped: {})", r.stopped)?,
            Some(r) => {
                let plural = if r.attempts == 1 { "" } else { "s" };
                write!(
                    f,
                    " after {} attempt{plural} in {:.1?} (stopped: {})",
                    r.attempts, r.elapsed, r.stopped
                )?;
            }
            None => {}
        }
        if let Some(wait) = self.inner.retry_after {
            write!(f, "; server asked to retry after {wait:?}")?;
        }
        if let Some(id) = &self.inner.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

// ===== impl ApiError =====

/// The body of an API error response.
///
/// Understands RFC 9457 `application/problem+json` (`type`, `title`, `status`, `detail`,
/// `instance`) and the common `{"error": ..., "message": ...}` shapes
/// (including OAuth's `error_description` and `{"error": {"message": ...}}`).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ApiError {
    /// RFC 9457 `type`: a URI identifying the problem type.
    pub problem_type: Option<String>,
    /// RFC 9457 `title`: a short summary of the problem type.
    pub title: Option<String>,
    /// RFC 9457 `detail`: an explanation of this occurrence.
    pub detail: Option<String>,
    /// RFC 9457 `instance`: a URI identifying this occurrence.
    pub instance: Option<String>,
    /// A machine-readable code: `error` or `code` in the common shapes.
    pub code: Option<String>,
    /// A human-readable message: `message`, `error_description` or `error.message`.
    pub message: Option<String>,
    /// OAuth's `error_uri` (RFC 6749 §5.2): a page about the error.
    pub error_uri: Option<String>,
    /// The raw body, truncated to [`ApiError::RAW_LIMIT`] bytes, with the client's secrets
    /// replaced by `[redacted]`.
    pub raw: String,
}

impl ApiError {
    /// How many bytes of the raw body are kept.
    pub const RAW_LIMIT: usize = 2048;

    /// Parses an error body; never fails (an unparseable body is kept only as `raw`).
    /// `secrets` are replaced by `[redacted]` before anything is kept: in a JSON body after its
    /// strings are decoded (so `\u0041T-…` is caught), elsewhere raw and percent-encoded.
    /// Form-encoded OAuth errors (`error=access_denied&error_description=…`) are understood too.
    pub(crate) fn parse(body: &[u8], secrets: &[&str]) -> Self {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Field {
            Text(String),
            Object {
                message: Option<String>,
                code: Option<serde_json::Value>,
            },
            Number(serde_json::Number),
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Shape {
            #[serde(rename = "type")]
            problem_type: Option<String>,
            title: Option<String>,
            detail: Option<String>,
            instance: Option<String>,
            error: Option<Field>,
            code: Option<Field>,
            message: Option<String>,
            error_description: Option<String>,
            error_uri: Option<String>,
        }
        let (shape, raw) = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut value) => {
                scrub_json(&mut value, secrets);
                let raw = value.to_string();
                (serde_json::from_value(value).unwrap_or_default(), raw)
            }
            Err(_) => {
                let raw = scrub(&String::from_utf8_lossy(body), secrets);
                let mut shape = Shape::default();
                if raw.contains("error=") && !raw.trim_start().starts_with('<') {
                    for (k, v) in url::form_urlencoded::parse(raw.trim().as_bytes()) {
                        let v = Some(scrub(&v, secrets));
                        match &*k {
                            "error" => shape.error = v.map(Field::Text),
                            "error_description" => shape.error_description = v,
                            "error_uri" => shape.error_uri = v,
                            _ => {}
                        }
                    }
                }
                (shape, raw)
            }
        };
        let text = |f: Option<Field>| match f {
            Some(Field::Text(s)) => (Some(s), None),
            Some(Field::Number(n)) => (Some(n.to_string()), None),
            Some(Field::Object { message, code }) => (
                code.map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned)),
                message,
            ),
            None => (None, None),
        };
        let (error_code, nested_message) = text(shape.error);
        let (code, _) = text(shape.code);
        ApiError {
            problem_type: shape.problem_type,
            title: shape.title,
            detail: shape.detail,
            instance: shape.instance,
            code: error_code.or(code),
            message: shape.message.or(shape.error_description).or(nested_message),
            error_uri: shape.error_uri,
            raw: truncate(raw.as_bytes(), Self::RAW_LIMIT),
        }
    }

    /// One line for `Display`: the most specific human-readable text available.
    fn summary(&self) -> Option<String> {
        let text = self
            .detail
            .as_ref()
            .or(self.message.as_ref())
            .or(self.title.as_ref());
        match (&self.code, text) {
            (Some(code), Some(text)) => Some(format!("{code}: {text}")),
            (None, Some(text)) => Some(text.clone()),
            (Some(code), None) => Some(code.clone()),
            (None, None) => None,
        }
    }
}

/// `body` as text (invalid UTF-8 replaced), cut to at most `limit` bytes on a character
/// boundary, with a marker when anything was cut.
pub(crate) fn truncate(body: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(body);
    if text.len() <= limit {
        return text.into_owned();
    }
    let end = (0..=limit)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…[truncated]", &text[..end])
}

/// A decoder's description of a failure, without the input it quoted.
#[derive(Debug)]
struct DecodeDetail(String);

impl fmt::Display for DecodeDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for DecodeDetail {}

/// A serde error message with the input it quotes replaced by `…`: every `"string"` (serde
/// writes strings from the input that way) and the first `` `span` `` (an unexpected number,
/// variant or field name), except in `missing field` and `duplicate field`, where the span is
/// a field of the target type. Positions (`at line 1 column 29`) are kept.
fn without_quoted_input(message: &str) -> String {
    let mut tick_kept =
        message.starts_with("missing field") || message.starts_with("duplicate field");
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push_str("\"…\"");
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
            }
            '`' if !tick_kept => {
                tick_kept = true;
                out.push_str("`…`");
                chars.by_ref().find(|&c| c == '`');
            }
            c => out.push(c),
        }
    }
    out
}

/// Replaces every occurrence of a secret, raw or percent-encoded, by `[redacted]`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != *secret {
            text = text.replace(&encoded, "[redacted]");
        }
    }
    text
}

/// Scrubs every string (and key) of a JSON value, once JSON escapes are decoded.
fn scrub_json(value: &mut serde_json::Value, secrets: &[&str]) {
    match value {
        serde_json::Value::String(s) => *s = scrub(s, secrets),
        // A number is shown re-rendered from its parsed value (`2.2222222222222e+19`), which
        // may spell an all-digit secret the raw text did not: scrub what is shown.
        serde_json::Value::Number(n) => {
            let shown = n.to_string();
            let scrubbed = scrub(&shown, secrets);
            if scrubbed != shown {
                *value = serde_json::Value::String(scrubbed);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| scrub_json(v, secrets)),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                scrub_json(&mut v, secrets);
                map.insert(scrub(&k, secrets), v);
            }
        }
        _ => {}
    }
}

/// The request id header a server set, among the common names, scrubbed of `secrets` (a
/// server may echo anything into it).
pub(crate) fn request_id(headers: &reqwest::header::HeaderMap, secrets: &[&str]) -> Option<String> {
    [
        "x-request-id",
        "request-id",
        "x-amzn-requestid",
        "x-correlation-id",
    ]
    .iter()
    .find_map(|name| headers.get(*name)?.to_str().ok())
    .map(|id| scrub(id, secrets).chars().take(128).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static_and_pointer_sized() {
        fn assert_traits<T: Send + Sync + 'static>() {}
        assert_traits::<Error>();
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Result<()>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn parses_problem_json() {
        let body = br#"{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","status":403,"detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc"}"#;
        let api = ApiError::parse(body, &[]);
        assert_eq!(api.title.as_deref(), Some("You do not have enough credit."));
        assert_eq!(
            api.detail.as_deref(),
            Some("Your current balance is 30, but that costs 50.")
        );
        assert_eq!(
            api.summary().unwrap(),
            "Your current balance is 30, but that costs 50."
        );
    }

    #[test]
    fn parses_common_error_shapes() {
        let api = ApiError::parse(br#"{"error":"not_found","message":"no widget 7"}"#, &[]);
        assert_eq!(api.summary().unwrap(), "not_found: no widget 7");
        let api = ApiError::parse(br#"{"error":{"code":"E42","message":"boom"}}"#, &[]);
        assert_eq!(api.summary().unwrap(), "E42: boom");
        let api = ApiError::parse(
            br#"{"error":"invalid_grant","error_description":"expired"}"#,
            &[],
        );
        assert_eq!(api.summary().unwrap(), "invalid_grant: expired");
    }

    #[test]
    fn keeps_unparseable_bodies_truncated_and_scrubbed() {
        let body = format!("<html>token sekrit-token-123 {}</html>", "x".repeat(5000));
        let api = ApiError::parse(body.as_bytes(), &["sekrit-token-123"]);
        assert!(api.summary().is_none());
        assert!(api.raw.starts_with("<html>token [redacted] xxx"));
        assert!(api.raw.ends_with("…[truncated]"));
        assert!(api.raw.len() < ApiError::RAW_LIMIT + 40);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let body = "ééé".as_bytes(); // 6 bytes
        assert_eq!(truncate(body, 3), "é…[truncated]");
        assert_eq!(truncate(body, 6), "ééé");
        // What the fuzzer found: a cut inside a character kept a U+FFFD and went over the limit.
        let body = format!("{}é", "x".repeat(ApiError::RAW_LIMIT - 1));
        let raw = ApiError::parse(body.as_bytes(), &[]).raw;
        assert!(raw.len() <= ApiError::RAW_LIMIT + "…[truncated]".len());
        assert!(!raw.contains('\u{FFFD}'));
    }

    #[test]
    fn decode_errors_keep_no_input_the_decoder_quoted() {
        let quoted = |json: &str| {
            let e =
                serde_json::from_str::<std::collections::HashMap<String, bool>>(json).unwrap_err();
            let error = Error::decode("x", e);
            format!("{error} {error:?}")
        };
        for (json, secret) in [
            (r#"{"a": "AT-secret-1"}"#, "AT-secret-1"),
            (r#"{"a": "AT-\"secret-2"}"#, "secret-2"),
            (r#"{"a": 222222222222}"#, "222222222222"),
            (r#"{"a": 2.5e300}"#, "2.5e300"),
        ] {
            let shown = quoted(json);
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("line 1 column"), "{shown}");
        }
        assert_eq!(
            without_quoted_input("missing field `id` at line 1 column 2"),
            "missing field `id` at line 1 column 2"
        );
        assert_eq!(
            without_quoted_input("unknown variant `AT-x`, expected `a` or `b`"),
            "unknown variant `…`, expected `a` or `b`"
        );
    }

    #[test]
    fn an_all_digit_secret_does_not_survive_in_a_re_rendered_number() {
        // The fuzzer's reproducer: a JSON number too large for an integer comes back as
        // `2.2222222222222222e19`, spelling the secret although the raw text was scrubbed.
        let secret = "222222222222";
        for body in [
            "22222222222222222222",
            r#"{"code": 22222222222222222222, "message": 2.222222222222e30}"#,
        ] {
            let api = ApiError::parse(body.as_bytes(), &[secret]);
            let shown = format!("{api:?} {:?} {:?} {}", api.code, api.message, api.raw);
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn display_includes_status_summary_retries_and_request_id() {
        let err = Error::new(ErrorKind::Api, "GET /v1/widgets/7 failed")
            .with_status(StatusCode::NOT_FOUND)
            .with_api_error(ApiError::parse(br#"{"message":"no such widget"}"#, &[]))
            .with_request_id(Some("req-1".into()))
            .with_retries(3, Duration::from_millis(1500), StopReason::NotRetryable);
        assert_eq!(
            err.to_string(),
            "GET /v1/widgets/7 failed (HTTP 404 Not Found): no such widget after 3 attempts in 1.5s (stopped: the answer is not retryable) [request id req-1]"
        );
    }
}
