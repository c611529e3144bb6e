//! The token endpoint (RFC 6749 §3.2), shared by every grant: client authentication, the
//! request, a bounded read of the answer, its parsing (JSON or form-encoded) and the RFC 6749
//! §5.2 errors.
//!
//! A grant is one file on top of [`TokenEndpoint::request`]: it names its `grant_type` and
//! parameters, and says whether the request may be sent twice (see [`Replay`]).

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::{
    AuthErrorKind, ClientSecret, Error, ErrorKind, RefreshToken, Result,
    body::{self, TooLarge},
    clock::Clock,
    error::{ApiError, request_id},
    retry::{self, Failure, Policy},
};

/// The most of a token endpoint's answer that is read: far more than any token response,
/// small enough that an endless body costs nothing.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest `expires_in` taken as is (ten years); a longer one is clamped to it, and the
/// 401 path covers a token that dies earlier.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How the client authenticates itself to the token endpoint (RFC 6749 §2.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// `client_secret_basic` when a client secret is configured, else [`ClientAuth::None`].
    #[default]
    Auto,
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Post,
    /// A public client: only `client_id` (if any) in the body.
    None,
}

impl ClientAuth {
    /// The method actually used: `Auto` resolved by whether a client secret is configured.
    pub(crate) fn resolve(self, has_secret: bool) -> ClientAuth {
        match self {
            ClientAuth::Auto if has_secret => ClientAuth::Basic,
            ClientAuth::Auto => ClientAuth::None,
            other => other,
        }
    }
}

/// Whether a token request may be sent again after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// The request carries a single-use credential (a refresh token that the server may rotate):
    /// **sent again only when the server cannot have used it** — a `429`, a `503` with
    /// `Retry-After`, or a connection that was never made. A `500`, `502`, `504`, a timeout or a
    /// reset may come after the server rotated the token; presenting it again would be a reuse,
    /// which reuse-detecting servers answer by revoking the grant.
    NotConsumed,
    /// Nothing in the request is single-use (client credentials): also retried on `5xx`,
    /// timeouts and lost connections.
    Safe,
}

/// A successful token response (RFC 6749 §5.1), checked.
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token: never empty, only visible ASCII (it must fit an HTTP header).
    pub access_token: SecretString,
    /// `expires_in`, clamped to [`MAX_TOKEN_LIFETIME`]; `None` when the server did not say.
    pub expires_in: Option<Duration>,
    /// A new refresh token, when the server rotated it.
    pub refresh_token: Option<RefreshToken>,
    /// The scopes granted, when the server said (RFC 6749 §5.1: omitted means as requested).
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// A token endpoint with its client credentials, on the client's HTTP stack and retry policy.
///
/// Cheap to clone. Custom grants build on [`request`](TokenEndpoint::request):
///
/// ```no_run
/// # async fn run(endpoint: authed::auth::TokenEndpoint, assertion: &str) -> authed::Result<()> {
/// use authed::auth::Replay;
/// let response = endpoint
///     .request(
///         &[
///             ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
///             ("assertion", assertion),
///         ],
///         &[assertion],
///         Replay::Safe,
///     )
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenEndpoint {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    url: Url,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    client_auth: ClientAuth,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    policy: Policy,
    /// Time budget of one token request.
    timeout: Option<Duration>,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("url", &self.inner.url.as_str())
            .field("client_id", &self.inner.client_id)
            .field("client_auth", &self.inner.client_auth)
            .finish_non_exhaustive()
    }
}

impl TokenEndpoint {
    /// An endpoint for a public client with no id; see [`with_client`](Self::with_client).
    pub(crate) fn new(
        url: Url,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        policy: Policy,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                url,
                client_id: None,
                client_secret: None,
                client_auth: ClientAuth::Auto,
                http,
                clock,
                policy,
                timeout,
            }),
        }
    }

    /// The client's credentials and how to send them.
    pub(crate) fn with_client(
        mut self,
        id: Option<String>,
        secret: Option<ClientSecret>,
        auth: ClientAuth,
    ) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        (inner.client_id, inner.client_secret, inner.client_auth) = (id, secret, auth);
        self
    }

    /// The token endpoint's URL.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// The client id, if any.
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }

    /// Whether a client secret is configured.
    pub fn has_client_secret(&self) -> bool {
        self.inner.client_secret.is_some()
    }

    /// The clock the client runs on.
    pub fn clock(&self) -> &dyn Clock {
        &*self.inner.clock
    }

    /// POSTs a token request with `params` (form-encoded, `grant_type` among them) and the
    /// client's authentication, retried under the client's policy as `replay` allows, and
    /// returns the checked answer.
    ///
    /// `secrets` are the values in `params` that must never appear in an error (the refresh
    /// token, an assertion); the client secret is always scrubbed.
    pub async fn request(
        &self,
        params: &[(&str, &str)],
        secrets: &[&str],
        replay: Replay,
    ) -> Result<TokenResponse> {
        let secrets = self.all_secrets(secrets);
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        self.retried(|| async {
            let answer = self.send_once(params, &secrets).await;
            answer.and_then(|a| parse(a, &secrets)).map_err(|error| {
                let retryable = is_retryable(&error, replay);
                Failure::token(error, retryable)
            })
        })
        .await
    }

    /// POSTs `params` to this endpoint's URL with the client's authentication and retries as
    /// [`request`](Self::request) does, and returns the body of a successful answer unparsed:
    /// for the other endpoints of an authorization server that authenticate the client the
    /// same way (device authorization, RFC 8628 §3.1; revocation, RFC 7009 §2.1). A failed
    /// status is an RFC 6749 §5.2 error, as for a token request.
    pub(crate) async fn post(
        &self,
        params: &[(&str, &str)],
        secrets: &[&str],
        replay: Replay,
    ) -> Result<bytes::Bytes> {
        let secrets = self.all_secrets(secrets);
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        self.retried(|| async {
            let answer = self.send_once(params, &secrets).await;
            answer.map(|answer| answer.body).map_err(|error| {
                let retryable = is_retryable(&error, replay);
                Failure::token(error, retryable)
            })
        })
        .await
    }

    /// Runs `attempt` under the endpoint's retry policy (see [`retry::run`]).
    async fn retried<T, Fut>(&self, attempt: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        let clock = &*self.inner.clock;
        retry::run(
            &self.inner.policy,
            None,
            clock,
            "token request",
            None,
            attempt,
        )
        .await
    }

    /// `secrets` and the client secret in every form it is sent.
    fn all_secrets(&self, secrets: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        all.extend(self.credential_secrets());
        all
    }

    /// The client secret in every form it is sent: raw, form-encoded, and the Basic credential.
    pub(crate) fn credential_secrets(&self) -> Vec<String> {
        let Some(secret) = &self.inner.client_secret else {
            return Vec::new();
        };
        let secret = secret.expose_secret();
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!(
                "{}:{}",
                form_urlencode(self.inner.client_id.as_deref().unwrap_or("")),
                form_urlencode(secret)
            ),
        );
        vec![secret.to_owned(), form_urlencode(secret), basic]
    }

    async fn send_once(&self, params: &[(&str, &str)], secrets: &[&str]) -> Result<Answer> {
        let inner = &*self.inner;
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let secret = inner.client_secret.as_ref().map(|s| s.expose_secret());
        let mut request = inner
            .http
            .post(inner.url.clone())
            .header(header::ACCEPT, "application/json");
        match (
            inner.client_auth.resolve(secret.is_some()),
            &inner.client_id,
        ) {
            (ClientAuth::Basic, id) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined and encoded.
                let id = form_urlencode(id.as_deref().unwrap_or(""));
                request = request.basic_auth(id, Some(form_urlencode(secret.unwrap_or(""))));
            }
            (ClientAuth::Post, id) => {
                if let Some(id) = id {
                    form.push(("client_id", id));
                }
                form.push(("client_secret", secret.unwrap_or("")));
            }
            (_, Some(id)) => form.push(("client_id", id)),
            (_, None) => {}
        }
        if let Some(timeout) = inner.timeout {
            request = request.timeout(timeout);
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::transport("could not reach the token endpoint", e))?;
        read(response, secrets, inner.clock.now_utc()).await
    }
}

/// Whether a failed token request may be sent again (see [`Replay`]).
pub(crate) fn is_retryable(error: &Error, replay: Replay) -> bool {
    if let ErrorKind::Auth(AuthErrorKind::InvalidGrant | AuthErrorKind::InvalidClient) =
        error.kind()
    {
        return false;
    }
    match (replay, error.status()) {
        (_, Some(StatusCode::TOO_MANY_REQUESTS)) => true,
        (Replay::NotConsumed, Some(StatusCode::SERVICE_UNAVAILABLE)) => {
            error.retry_after().is_some()
        }
        (Replay::NotConsumed, Some(_)) => false,
        (Replay::NotConsumed, None) => error.is_connect(),
        (Replay::Safe, Some(status)) => status.is_server_error(),
        (Replay::Safe, None) => matches!(error.kind(), ErrorKind::Transport | ErrorKind::Timeout),
    }
}

/// [`parse`] for the fuzz targets (`src/fuzz.rs`).
#[cfg(fuzzing)]
pub(crate) async fn fuzz_parse(
    response: reqwest::Response,
    secrets: &[&str],
    now: SystemTime,
) -> Result<TokenResponse> {
    parse(read(response, secrets, now).await?, secrets)
}

/// A successful answer of the token endpoint (or another endpoint of the server), read within
/// the bound.
pub(crate) struct Answer {
    pub(crate) body: bytes::Bytes,
    form_encoded: bool,
    status: StatusCode,
    request_id: Option<String>,
    retry_after: Option<Duration>,
}

impl Answer {
    /// `e` with the answer's status, request id and `Retry-After`.
    fn context(&self, e: Error) -> Error {
        e.with_status(self.status)
            .with_request_id(self.request_id.clone())
            .with_retry_after(self.retry_after)
    }
}

/// Reads an answer within the bound; a failed status is an RFC 6749 §5.2 error.
async fn read(
    mut response: reqwest::Response,
    secrets: &[&str],
    now: SystemTime,
) -> Result<Answer> {
    let status = response.status();
    let headers = response.headers().clone();
    let mut answer = Answer {
        body: bytes::Bytes::new(),
        form_encoded: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")),
        status,
        request_id: request_id(&headers, secrets),
        retry_after: crate::retry::retry_after(&headers, now),
    };
    answer.body = match body::read_bounded(&mut response, MAX_TOKEN_RESPONSE_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(TooLarge)) => {
            return Err(answer.context(Error::auth(
                AuthErrorKind::InvalidResponse,
                format!(
                    "the token endpoint's response is larger than {} KiB",
                    MAX_TOKEN_RESPONSE_BYTES / 1024
                ),
            )));
        }
        Err(e) => {
            return Err(answer.context(Error::transport(
                "could not read the token endpoint's response",
                e,
            )));
        }
    };
    if !status.is_success() {
        return Err(answer.context(endpoint_error(status, &answer.body, secrets)));
    }
    Ok(answer)
}

/// Checks a successful answer of the token endpoint: a token response (JSON or form-encoded),
/// or the RFC 6749 §5.2 error some servers send with a `200`.
fn parse(answer: Answer, secrets: &[&str]) -> Result<TokenResponse> {
    let body = &answer.body;
    let raw: RawTokenResponse = if answer.form_encoded {
        serde_urlencoded::from_bytes(body).map_err(|e| {
            // Never a snippet of a 200: it holds the new access and refresh tokens.
            answer.context(Error::decode(
                format!(
                    "the token endpoint's form-encoded response is not a token response ({} bytes)",
                    body.len()
                ),
                e,
            ))
        })?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            answer.context(Error::decode(
                format!(
                    "the token endpoint's response is not a JSON token response ({} bytes, {})",
                    body.len(),
                    e.classify_name()
                ),
                // The source keeps serde's description without the input it quotes.
                e,
            ))
        })?
    };
    if raw.error.is_some() {
        // Some servers answer 200 with an RFC 6749 §5.2 error body.
        return Err(answer.context(endpoint_error(answer.status, body, secrets)));
    }
    raw.into_response().map_err(|e| answer.context(e))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected field types",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Maps an RFC 6749 §5.2 error response (or any failed status) to an [`Error`].
fn endpoint_error(status: StatusCode, body: &[u8], secrets: &[&str]) -> Error {
    let api = ApiError::parse(body, secrets);
    let error = Error::new(
        ErrorKind::Auth(AuthErrorKind::Rejected),
        "the token request was refused",
    );
    let error = match api.code.as_deref() {
        Some("invalid_grant") => Error::auth(
            AuthErrorKind::InvalidGrant,
            "the refresh token was rejected (invalid_grant): re-authentication required",
        ),
        Some("invalid_client") => Error::auth(
            AuthErrorKind::InvalidClient,
            "the token endpoint rejected the client credentials (invalid_client)",
        ),
        _ if status == StatusCode::TOO_MANY_REQUESTS => error.with_kind(ErrorKind::RateLimited),
        _ => error,
    };
    error.with_api_error(api)
}

/// The fields of RFC 6749 §5.1 and §5.2, leniently typed: servers send numbers as strings,
/// scopes as arrays, and extra fields of any type.
#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    scope: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "lenient")]
    error: Option<serde_json::Value>,
}

/// Any JSON value, or a string in a form body.
fn lenient<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<serde_json::Value>, D::Error> {
    Option::<serde_json::Value>::deserialize(deserializer)
}

impl RawTokenResponse {
    fn into_response(self) -> Result<TokenResponse> {
        let invalid = |msg: String| Error::auth(AuthErrorKind::InvalidResponse, msg);
        let access_token = self
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| invalid("the token response has no access_token".into()))?;
        if !is_header_safe(&access_token) {
            return Err(invalid(
                "the token response's access_token has characters not allowed in an HTTP header"
                    .into(),
            ));
        }
        match self.token_type.as_deref() {
            None => {}
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "the token endpoint issued a {:?} token; only Bearer tokens are supported",
                    other.chars().take(32).collect::<String>()
                )));
            }
        }
        let expires_in = match &self.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(parse_expires_in(value).map_err(invalid)?),
        };
        let scope = match self.scope {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        };
        Ok(TokenResponse {
            access_token: SecretString::from(access_token),
            expires_in,
            refresh_token: self
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .map(RefreshToken::new),
            scope,
        })
    }
}

/// Whether `Bearer <token>` is a valid header value: visible ASCII only (RFC 6750 §2.1 allows
/// less, but servers issue more; CR, LF and other controls are what must never pass).
pub(crate) fn is_header_safe(token: &str) -> bool {
    token.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// `expires_in` as a positive number of seconds, clamped to [`MAX_TOKEN_LIFETIME`]; numeric
/// strings are accepted (some servers send `"3599"`), anything else is refused.
fn parse_expires_in(value: &serde_json::Value) -> std::result::Result<Duration, String> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(
            s.min(MAX_TOKEN_LIFETIME.as_secs_f64()),
        )),
        Some(s) if s == f64::INFINITY => Ok(MAX_TOKEN_LIFETIME),
        Some(_) => {
            Err("the token response's expires_in is not a positive number of seconds".to_owned())
        }
        None => Err("the token response's expires_in is not a number".to_owned()),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B).
pub(crate) fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings_and_clamps_huge_ones() {
        assert_eq!(
            parse_expires_in(&json!(3600)).unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_expires_in(&json!("3599")).unwrap(),
            Duration::from_secs(3599)
        );
        assert_eq!(
            parse_expires_in(&json!(59.5)).unwrap(),
            Duration::from_secs_f64(59.5)
        );
        for huge in [json!(2_147_483_648_u64), json!(1e20), json!("1e300")] {
            assert_eq!(
                parse_expires_in(&huge).unwrap(),
                MAX_TOKEN_LIFETIME,
                "{huge}"
            );
        }
        for bad in [json!(-5), json!(0), json!("soon"), json!([1]), json!({})] {
            assert!(parse_expires_in(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        assert_eq!(form_urlencode("a+b:c/d%e f"), "a%2Bb%3Ac%2Fd%25e+f");
    }

    #[test]
    fn header_unsafe_tokens_are_refused() {
        assert!(is_header_safe("at-Abc.123_~+/="));
        for bad in ["a\r\nb", "a b", "a\tb", "é", "a\0"] {
            assert!(!is_header_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn token_request_retries_only_where_the_refresh_token_was_not_consumed() {
        let status = |code: u16| {
            Error::auth(AuthErrorKind::Rejected, "x")
                .with_status(StatusCode::from_u16(code).unwrap())
        };
        let not_consumed = |e: &Error| is_retryable(e, Replay::NotConsumed);
        assert!(not_consumed(&status(429)));
        assert!(not_consumed(
            &status(503).with_retry_after(Some(Duration::from_secs(1)))
        ));
        for code in [500, 502, 503, 504, 400] {
            assert!(!not_consumed(&status(code)), "{code}");
        }
        assert!(!not_consumed(&Error::new(ErrorKind::Timeout, "x")));
        for code in [500, 502, 503, 504] {
            assert!(is_retryable(&status(code), Replay::Safe), "{code}");
        }
        assert!(is_retryable(
            &Error::new(ErrorKind::Timeout, "x"),
            Replay::Safe
        ));
        let invalid_grant =
            Error::auth(AuthErrorKind::InvalidGrant, "x").with_status(StatusCode::BAD_REQUEST);
        assert!(!is_retryable(&invalid_grant, Replay::Safe));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use secrecy::ExposeSecret;

        const HELD: [&str; 2] = ["rt-held-refresh-0123456789", "cs-held-secret-0123456789"];

        fn parse_now(status: u16, form: bool, body: Vec<u8>) -> Result<TokenResponse> {
            let mut response = http::Response::new(body);
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            let content_type = if form {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(async {
                    parse(
                        read(response.into(), &HELD, SystemTime::now()).await?,
                        &HELD,
                    )
                })
        }

        /// `expires_in` as servers send it, with the lifetime the client must take from it
        /// (`Err(())`: the response must be refused).
        fn expires_in() -> impl Strategy<
            Value = (
                Option<serde_json::Value>,
                std::result::Result<Option<Duration>, ()>,
            ),
        > {
            let max = MAX_TOKEN_LIFETIME.as_secs();
            prop_oneof![
                Just((None, Ok(None))),
                Just((Some(serde_json::Value::Null), Ok(None))),
                (1u64..u64::MAX)
                    .prop_map(move |n| (Some(json!(n)), Ok(Some(Duration::from_secs(n.min(max)))))),
                (1u64..1_000_000)
                    .prop_map(|n| (Some(json!(n.to_string())), Ok(Some(Duration::from_secs(n))))),
                // Milliseconds: decimals serde_json parses exactly (it does not round every
                // float correctly, which is not what this property is about).
                (1u64..1_000_000_000).prop_map(|ms| {
                    let f = ms as f64 / 1000.0;
                    (Some(json!(f)), Ok(Some(Duration::from_secs_f64(f))))
                }),
                (i64::MIN..=0).prop_map(|n| (Some(json!(n)), Err(()))),
                "[a-z ]{0,12}".prop_map(|s| (Some(json!(s)), Err(()))),
                Just((Some(json!([60])), Err(()))),
                Just((Some(json!(true)), Err(()))),
            ]
        }

        fn scope() -> impl Strategy<Value = (Option<serde_json::Value>, Option<String>)> {
            prop_oneof![
                Just((None, None)),
                "[a-z:]{1,8}( [a-z:]{1,8}){0,3}".prop_map(|s| (Some(json!(s.clone())), Some(s))),
                proptest::collection::vec("[a-z:]{1,8}", 0..4)
                    .prop_map(|v| (Some(json!(v.clone())), Some(v.join(" ")))),
                any::<i32>().prop_map(|n| (Some(json!(n)), None)),
            ]
        }

        fn token_type() -> impl Strategy<Value = (Option<&'static str>, bool)> {
            prop_oneof![
                Just((None, true)),
                Just((Some("Bearer"), true)),
                Just((Some("bearer"), true)),
                Just((Some("BEARER"), true)),
                Just((Some("mac"), false)),
                Just((Some("DPoP"), false)),
            ]
        }

        fn shows(error: &Error, secret: &str) -> bool {
            format!("{error} {error:?}").contains(secret)
        }

        proptest! {
            /// A well-formed response parses to exactly what it says; any field the client cannot
            /// use refuses it with a typed error that shows neither new token.
            #[test]
            fn token_responses_parse_to_what_they_say_or_are_refused_without_their_tokens(
                access in "AT[A-Za-z0-9._~+/-]{12,40}",
                refresh in proptest::option::of("RT[A-Za-z0-9._~+/-]{12,40}"),
                (expires_json, expires) in expires_in(),
                (scope_json, scope) in scope(),
                (token_type, bearer) in token_type(),
                extra in proptest::option::of(("x_[a-z]{1,8}", any::<i64>())),
            ) {
                let mut body = serde_json::Map::new();
                body.insert("access_token".into(), json!(access));
                if let Some(refresh) = &refresh {
                    body.insert("refresh_token".into(), json!(refresh));
                }
                if let Some(v) = expires_json {
                    body.insert("expires_in".into(), v);
                }
                if let Some(v) = scope_json {
                    body.insert("scope".into(), v);
                }
                if let Some(t) = token_type {
                    body.insert("token_type".into(), json!(t));
                }
                if let Some((k, v)) = extra {
                    body.insert(k, json!(v));
                }
                let parsed = parse_now(200, false, serde_json::to_vec(&body).unwrap());
                match (expires, bearer) {
                    (Ok(expires), true) => {
                        let token = parsed.unwrap();
                        prop_assert_eq!(token.access_token.expose_secret(), access.as_str());
                        prop_assert_eq!(token.expires_in, expires);
                        prop_assert_eq!(token.scope, scope);
                        prop_assert_eq!(
                            token.refresh_token.map(|t| t.expose_secret().to_owned()),
                            refresh.clone()
                        );
                    }
                    _ => {
                        let error = parsed.unwrap_err();
                        prop_assert_eq!(error.kind(), ErrorKind::Auth(AuthErrorKind::InvalidResponse));
                        prop_assert!(!shows(&error, &access));
                        if let Some(refresh) = &refresh {
                            prop_assert!(!shows(&error, refresh));
                        }
                    }
                }
            }

            /// A body cut anywhere (a dropped connection, a proxy's limit) is a typed error that
            /// shows no part of the tokens it carried.
            #[test]
            fn truncated_token_responses_show_no_part_of_their_tokens(
                access in "AT[A-Za-z0-9]{20,40}",
                refresh in "RT[A-Za-z0-9]{20,40}",
                form: bool,
                cut in any::<prop::sample::Index>(),
            ) {
                let body = if form {
                    format!("access_token={access}&token_type=bearer&expires_in=3600&refresh_token={refresh}")
                } else {
                    json!({"access_token": access, "token_type": "bearer", "expires_in": 3600, "refresh_token": refresh}).to_string()
                };
                let cut = cut.index(body.len());
                // A form body cut inside a value is still a form: only JSON is sure to break.
                if form {
                    let _ = parse_now(200, true, body.as_bytes()[..cut].to_vec());
                    return Ok(());
                }
                let error = parse_now(200, false, body.as_bytes()[..cut].to_vec()).unwrap_err();
                prop_assert_eq!(error.kind(), ErrorKind::Decode);
                for token in [&access, &refresh] {
                    prop_assert!(!shows(&error, &token[..8]), "{} in {:?}", &token[..8], error);
                }
            }

            /// Whatever a token endpoint answers (status, content type, bytes, echoes of what
            /// the client sent), parsing does not panic and no held secret is shown.
            #[test]
            fn any_answer_is_parsed_without_panic_or_held_secrets(
                status in prop_oneof![Just(200u16), Just(400), Just(401), Just(429), Just(500), 100u16..600],
                form: bool,
                parts in proptest::collection::vec(prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..16),
                    Just(HELD[0].as_bytes().to_vec()),
                    Just(HELD[1].as_bytes().to_vec()),
                    Just(b"\"error\":\"invalid_grant\",\"error_description\":\"".to_vec()),
                    Just(b"{\"access_token\":\"".to_vec()),
                    Just(b"error=".to_vec()),
                    Just(b"\"}".to_vec()),
                ], 0..12),
            ) {
                let body = parts.concat();
                if let Err(error) = parse_now(status, form, body) {
                    for secret in HELD {
                        prop_assert!(!shows(&error, secret), "{} in {:?}", secret, error);
                    }
                }
            }
        }
    }
}
