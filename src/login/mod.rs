//! Getting the first refresh token (feature `login`): the OAuth 2.0 device authorization
//! grant ([RFC 8628]) and the authorization code grant with PKCE ([RFC 7636]) and a loopback
//! redirect ([RFC 8252]).
//!
//! A [`Client`](crate::Client) needs a refresh token to start from. A user gets one once, by
//! logging in; afterwards the client renews its access tokens alone. This module is that
//! login, for command-line tools and services set up by hand:
//!
//! - **Device flow** ([`Login::start_device`]): the program shows a short code and a URL; the
//!   user opens the URL on any device (a phone will do), signs in and enters the code; the
//!   program polls the token endpoint until the user has approved. Needs no browser on the
//!   machine running the program.
//! - **Authorization code with PKCE** ([`Login::start_authorization_code`]): the program
//!   listens on `127.0.0.1` on a free port, sends the user's browser to the authorization
//!   endpoint, receives the redirect with the code, checks its `state` and exchanges the code
//!   with the PKCE `code_verifier`.
//!
//! Either way the result is a [`LoginTokens`], whose refresh token goes into a
//! [`FileStore`](crate::FileStore) (or an environment variable) for the client to start from.
//!
//! ```no_run
//! # async fn run() -> authed::Result<()> {
//! use authed::{FileStore, auth::store::RefreshTokenStore, login::Login};
//!
//! let login = Login::builder()
//!     .token_url("https://auth.example.com/oauth/token")
//!     .device_authorization_url("https://auth.example.com/oauth/device_authorization")
//!     .client_id("my-cli")
//!     .scope("api:read offline_access")
//!     .build()?;
//!
//! let device = login.start_device().await?;
//! println!("Open {} and enter {}", device.verification_uri(), device.user_code());
//! let tokens = login.finish_device(&device).await?;
//!
//! if let Some(refresh_token) = tokens.refresh_token() {
//!     // A new login replaces whatever the store held (mode 0600, written atomically).
//!     let store = FileStore::new("refresh-token.json");
//!     let held = store.load().await?.map(|record| record.refresh_token);
//!     let record = authed::auth::store::StoredTokens::new(refresh_token.clone(), None);
//!     store.save(held.as_ref(), &record).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Security
//!
//! - **Secrets stay in `secrecy` types**: the device code, the authorization code, the PKCE
//!   verifier, the access and refresh tokens and the client secret; `Debug` shows
//!   `[redacted]` and no error message contains them.
//! - **Plain `http://` is refused** for the token, device authorization and authorization
//!   endpoints except on loopback hosts, as for the [`Client`](crate::Client).
//! - **PKCE S256 and `state` come from the operating system's secure random source**; a
//!   redirect whose `state` differs is refused (it may be a forged redirect), and the listener
//!   only ever binds `127.0.0.1`.
//! - **Every response is read with a bound** (64 KiB for the token and device endpoints, 8 KiB
//!   for the redirect's request head); a larger one is an error, not a memory spike.
//! - **The token endpoint's redirects are not followed** (with the default HTTP client): a
//!   token request is never re-sent somewhere else.
//! - **What the server sends for display is checked**: a user code or verification URI with
//!   control characters (a terminal escape sequence could rewrite what the user reads) is an
//!   [`InvalidResponse`](crate::AuthErrorKind::InvalidResponse) error; error codes quoted in
//!   messages are cut to 64 printable characters.
//!
//! [RFC 8628]: https://www.rfc-editor.org/rfc/rfc8628
//! [RFC 7636]: https://www.rfc-editor.org/rfc/rfc7636
//! [RFC 8252]: https://www.rfc-editor.org/rfc/rfc8252

use std::{fmt, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::{
    AuthErrorKind, ClientAuth, ClientSecret, Error, ErrorKind, RefreshToken, Result,
    error::{ApiError, request_id, truncate},
};

mod code;
mod device;

pub use code::PendingAuthorization;
pub use device::DeviceAuthorization;

/// The largest token or device endpoint response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// How long a request to the token or device endpoint may take with the default HTTP client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ===== Login and LoginBuilder =====

/// An OAuth 2.0 login against one authorization server. See the [module docs](self).
///
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Login {
    token_url: Url,
    device_authorization_url: Option<Url>,
    authorize_url: Option<Url>,
    client_id: String,
    client_secret: Option<ClientSecret>,
    client_auth: ClientAuth,
    scope: Option<String>,
    redirect_path: String,
    redirect_timeout: Duration,
    http: reqwest::Client,
}

impl Login {
    /// A builder; [`token_url`](LoginBuilder::token_url) and
    /// [`client_id`](LoginBuilder::client_id) are required.
    pub fn builder() -> LoginBuilder {
        LoginBuilder::default()
    }

    /// Sends a form to the token or device endpoint with the client's authentication, and
    /// reads the answer with a bound.
    async fn post_form(&self, url: &Url, mut form: Vec<(&str, &str)>) -> Result<Answer> {
        let secret = self.client_secret.as_ref().map(|s| s.expose_secret());
        let mut request = self
            .http
            .post(url.clone())
            .header(header::ACCEPT, "application/json");
        match self.client_auth.resolve(secret.is_some()) {
            ClientAuth::Basic => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
                let id = form_urlencode(&self.client_id);
                let encoded =
                    STANDARD.encode(format!("{id}:{}", form_urlencode(secret.unwrap_or(""))));
                let mut value =
                    header::HeaderValue::try_from(format!("Basic {encoded}")).map_err(|e| {
                        Error::config("the client credentials are not valid in a header")
                            .with_source(e)
                    })?;
                value.set_sensitive(true);
                request = request.header(header::AUTHORIZATION, value);
            }
            ClientAuth::Post => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.unwrap_or("")));
            }
            _ => form.push(("client_id", &self.client_id)),
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::transport("the login request could not be sent", e))?;
        let status = response.status();
        let request_id = request_id(response.headers(), &[]);
        let body = read_bounded(response, MAX_RESPONSE).await?;
        Ok(Answer {
            status,
            request_id,
            body,
        })
    }

    /// Every secret that must never show in an error built from a response.
    fn secrets<'a>(&'a self, more: &[&'a str]) -> Vec<&'a str> {
        let mut secrets: Vec<&str> = more.to_vec();
        secrets.extend(self.client_secret.as_ref().map(|s| s.expose_secret()));
        secrets
    }
}

/// Configures a [`Login`]. Setters never fail; [`build`](LoginBuilder::build) returns the
/// first problem.
#[must_use]
#[derive(Debug)]
pub struct LoginBuilder {
    token_url: Option<String>,
    device_authorization_url: Option<String>,
    authorize_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    client_auth: ClientAuth,
    scope: Option<String>,
    redirect_path: String,
    redirect_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl Default for LoginBuilder {
    fn default() -> Self {
        Self {
            token_url: None,
            device_authorization_url: None,
            authorize_url: None,
            client_id: None,
            client_secret: None,
            client_auth: ClientAuth::Auto,
            scope: None,
            redirect_path: "/callback".to_owned(),
            redirect_timeout: Duration::from_secs(300),
            http: None,
        }
    }
}

impl LoginBuilder {
    /// The token endpoint (required).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The device authorization endpoint, for [`Login::start_device`].
    pub fn device_authorization_url(mut self, url: impl Into<String>) -> Self {
        self.device_authorization_url = Some(url.into());
        self
    }

    /// The authorization endpoint, for [`Login::start_authorization_code`].
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = Some(url.into());
        self
    }

    /// The client id (required). Login clients are usually public: no secret.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The client secret, for a confidential client.
    pub fn client_secret(mut self, secret: impl Into<ClientSecret>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// How the client authenticates to the token and device endpoints, as on the
    /// [`ClientBuilder`](crate::ClientBuilder) (default [`ClientAuth::Auto`]).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// The scope to ask for (space-separated). Many servers issue a refresh token only for
    /// `offline_access` or a similar scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The path of the loopback redirect URI (default `/callback`):
    /// `http://127.0.0.1:<port><path>`.
    pub fn redirect_path(mut self, path: impl Into<String>) -> Self {
        self.redirect_path = path.into();
        self
    }

    /// How long [`PendingAuthorization::finish`] waits for the browser's redirect (default
    /// five minutes).
    pub fn redirect_timeout(mut self, timeout: Duration) -> Self {
        self.redirect_timeout = timeout;
        self
    }

    /// The HTTP client for the token and device endpoints. The default follows no redirects
    /// and gives each request 30 seconds. Tests on paused tokio time pass one without a
    /// timeout.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Checks the configuration: the URLs (`https`, or `http` to a loopback host), a client
    /// id, a redirect path starting with `/`.
    pub fn build(self) -> Result<Login> {
        let url = |value: Option<String>, what: &str| {
            value
                .map(|v| crate::origin::parse_url(&v, what))
                .transpose()
        };
        let token_url = url(self.token_url, "the token URL")?
            .ok_or_else(|| Error::config("the login needs a token URL"))?;
        let client_id = self
            .client_id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| Error::config("the login needs a client id"))?;
        if !self.redirect_path.starts_with('/') {
            return Err(Error::config("the redirect path must start with /"));
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT)
                .build()
                .map_err(|e| Error::transport("could not build the HTTP client", e))?,
        };
        Ok(Login {
            token_url,
            device_authorization_url: url(
                self.device_authorization_url,
                "the device authorization URL",
            )?,
            authorize_url: url(self.authorize_url, "the authorization URL")?,
            client_id,
            client_secret: self.client_secret,
            client_auth: self.client_auth,
            scope: self.scope.filter(|s| !s.trim().is_empty()),
            redirect_path: self.redirect_path,
            redirect_timeout: self.redirect_timeout,
            http,
        })
    }
}

// ===== LoginTokens =====

/// What a successful login returns. `Debug` shows no token.
pub struct LoginTokens {
    access_token: SecretString,
    refresh_token: Option<RefreshToken>,
    expires_in: Option<Duration>,
    scope: Option<String>,
}

impl LoginTokens {
    /// The refresh token, the point of the login. `None` when the server issued none (many
    /// issue one only for an `offline_access` scope).
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// The access token issued with it.
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// The access token's lifetime, when the server said.
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_in
    }

    /// The scope granted, when the server said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
}

impl fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginTokens")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

// ===== responses =====

/// A response read in full (within the bound).
struct Answer {
    status: StatusCode,
    request_id: Option<String>,
    body: Vec<u8>,
}

/// A token endpoint answer: tokens, or an RFC 6749 §5.2 error code to act on.
enum TokenAnswer {
    Tokens(LoginTokens),
    /// The error code and the error to return if the caller does not act on the code.
    Error(String, Error),
}

#[derive(Deserialize)]
struct RawTokens {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    scope: Option<String>,
    error: Option<String>,
}

impl Answer {
    /// The body as JSON of type `T`, or a decode error that shows a scrubbed snippet.
    fn json<T: serde::de::DeserializeOwned>(&self, what: &str, secrets: &[&str]) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let snippet = crate::error::scrub(&truncate(&self.body, 200), secrets);
            Error::decode(format!("{what} is not the JSON expected: {snippet}"), e)
                .with_status(self.status)
                .with_request_id(self.request_id.clone())
        })
    }

    /// An error from an RFC 6749 §5.2 body (or any failed status).
    fn oauth_error(&self, secrets: &[&str]) -> (String, Error) {
        let api = ApiError::parse(&self.body, secrets);
        let code = api.code.clone().unwrap_or_default();
        let (kind, message) = match code.as_str() {
            "access_denied" => (
                ErrorKind::Auth(AuthErrorKind::AccessDenied),
                "the user denied the authorization request (access_denied)".to_owned(),
            ),
            "expired_token" => (
                ErrorKind::Auth(AuthErrorKind::LoginExpired),
                "the device code expired before the user approved (expired_token): start again"
                    .to_owned(),
            ),
            "invalid_grant" => (
                ErrorKind::Auth(AuthErrorKind::InvalidGrant),
                "the authorization grant was rejected (invalid_grant)".to_owned(),
            ),
            "invalid_client" => (
                ErrorKind::Auth(AuthErrorKind::InvalidClient),
                "the server rejected the client credentials (invalid_client)".to_owned(),
            ),
            _ if self.status == StatusCode::TOO_MANY_REQUESTS => (
                ErrorKind::RateLimited,
                "the server is rate limiting the login".to_owned(),
            ),
            "" => (
                ErrorKind::Auth(AuthErrorKind::Rejected),
                format!(
                    "the login request failed with HTTP {}",
                    self.status.as_u16()
                ),
            ),
            other => (
                ErrorKind::Auth(AuthErrorKind::Rejected),
                format!(
                    "the login request was refused ({})",
                    other
                        .chars()
                        .filter(|c| c.is_ascii_graphic())
                        .take(64)
                        .collect::<String>()
                ),
            ),
        };
        let error = Error::new(kind, message)
            .with_status(self.status)
            .with_request_id(self.request_id.clone())
            .with_api_error(api);
        (code, error)
    }

    /// Reads a token endpoint answer (RFC 6749 §5.1, §5.2).
    fn tokens(&self, secrets: &[&str]) -> Result<TokenAnswer> {
        if !self.status.is_success() {
            let (code, error) = self.oauth_error(secrets);
            return Ok(TokenAnswer::Error(code, error));
        }
        let raw: RawTokens = self.json("the token endpoint's response", secrets)?;
        if raw.error.is_some() {
            let (code, error) = self.oauth_error(secrets);
            return Ok(TokenAnswer::Error(code, error));
        }
        let invalid = |message: &str| {
            Error::auth(AuthErrorKind::InvalidResponse, message.to_owned())
                .with_status(self.status)
                .with_request_id(self.request_id.clone())
        };
        let access_token = raw
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| invalid("the token response has no access_token"))?;
        if raw
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(invalid(
                "the token endpoint issued a token that is not a Bearer token",
            ));
        }
        let expires_in = match raw.expires_in {
            None => None,
            Some(value) => Some(
                seconds(&value, 10 * 365 * 24 * 3600)
                    .ok_or_else(|| invalid("the token response's expires_in is not valid"))?,
            ),
        };
        Ok(TokenAnswer::Tokens(LoginTokens {
            access_token: SecretString::from(access_token),
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .map(RefreshToken::new),
            expires_in,
            scope: raw.scope,
        }))
    }
}

/// A positive whole or fractional number of seconds up to `max`, as a number or a numeric
/// string.
fn seconds(value: &serde_json::Value, max: u64) -> Option<Duration> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (seconds.is_finite() && seconds > 0.0 && seconds <= max as f64)
        .then(|| Duration::from_secs_f64(seconds))
}

/// Reads a response body, refusing one larger than `limit` bytes without reading it all.
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    let too_large = || {
        Error::new(
            ErrorKind::Decode,
            format!("the login response is larger than {} KiB", limit / 1024),
        )
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large().with_status(response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Error::transport("could not read the login response", e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large().with_status(response.status()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B).
fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `n` bytes from the operating system's secure random source, base64url without padding.
fn random_urlsafe(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Auth(AuthErrorKind::Rejected),
            format!("the operating system's random source failed: {e}"),
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accepts_positive_numbers_within_the_bound_only() {
        use serde_json::json;
        assert_eq!(seconds(&json!(5), 60), Some(Duration::from_secs(5)));
        assert_eq!(seconds(&json!("7"), 60), Some(Duration::from_secs(7)));
        for bad in [json!(0), json!(-1), json!(61), json!("soon"), json!(null)] {
            assert_eq!(seconds(&bad, 60), None, "{bad}");
        }
    }

    #[test]
    fn random_values_are_long_urlsafe_and_distinct() {
        let a = random_urlsafe(32).unwrap();
        let b = random_urlsafe(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn login_tokens_debug_shows_no_token() {
        let tokens = LoginTokens {
            access_token: SecretString::from("at-visible?"),
            refresh_token: Some(RefreshToken::new("rt-visible?")),
            expires_in: None,
            scope: None,
        };
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("visible"), "{debug}");
    }
}
