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

use std::{fmt, sync::Arc, time::Duration};

use base64::Engine;
use secrecy::SecretString;
use url::Url;

use crate::{
    AuthErrorKind, ClientAuth, ClientSecret, Error, ErrorKind, RefreshToken, Result,
    auth::{TokenEndpoint, TokenResponse},
    clock::SystemClock,
    retry::Policy,
};

mod code;
mod device;

pub use code::PendingAuthorization;
pub use device::DeviceAuthorization;

/// How long a request to the token or device endpoint may take with the default HTTP client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ===== Login and LoginBuilder =====

/// An OAuth 2.0 login against one authorization server. See the [module docs](self).
///
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Login {
    /// The token endpoint with the client's authentication: the same request, bounded read,
    /// parsing and RFC 6749 §5.2 errors as the client's own grants.
    token: TokenEndpoint,
    /// The device authorization endpoint, authenticated the same way.
    device_authorization: Option<TokenEndpoint>,
    authorize_url: Option<Url>,
    client_id: String,
    scope: Option<String>,
    redirect_path: String,
    redirect_timeout: Duration,
}

impl Login {
    /// A builder; [`token_url`](LoginBuilder::token_url) and
    /// [`client_id`](LoginBuilder::client_id) are required.
    pub fn builder() -> LoginBuilder {
        LoginBuilder::default()
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
        let endpoint = |url: Url| {
            TokenEndpoint::new(
                url,
                http.clone(),
                Arc::new(SystemClock),
                Policy::default(),
                None,
            )
            .with_client(
                Some(client_id.clone()),
                self.client_secret.clone(),
                self.client_auth,
            )
        };
        Ok(Login {
            token: endpoint(token_url),
            device_authorization: url(
                self.device_authorization_url,
                "the device authorization URL",
            )?
            .map(endpoint),
            authorize_url: url(self.authorize_url, "the authorization URL")?,
            client_id,
            scope: self.scope.filter(|s| !s.trim().is_empty()),
            redirect_path: self.redirect_path,
            redirect_timeout: self.redirect_timeout,
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

// ===== answers =====

impl From<TokenResponse> for LoginTokens {
    fn from(response: TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            expires_in: response.expires_in,
            scope: response.scope,
        }
    }
}

/// The token endpoint's refusal of a login, in the login's terms: the RFC 6749 §5.2 and
/// RFC 8628 §3.5 codes a login acts on get their own kind and message; the status, request id
/// and parsed error body are kept.
fn login_error(error: Error) -> Error {
    let code = error.api_error().and_then(|api| api.code.as_deref());
    let (kind, message) = match code {
        Some("access_denied") => (
            AuthErrorKind::AccessDenied,
            "the user denied the authorization request (access_denied)",
        ),
        Some("expired_token") => (
            AuthErrorKind::LoginExpired,
            "the device code expired before the user approved (expired_token): start again",
        ),
        Some("invalid_grant") => (
            AuthErrorKind::InvalidGrant,
            "the authorization grant was rejected (invalid_grant)",
        ),
        _ => return error,
    };
    error.with_kind(ErrorKind::Auth(kind)).with_message(message)
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
