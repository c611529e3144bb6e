//! [`TokenSource`]: where access tokens come from.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use secrecy::SecretString;

use super::{AccessToken, TokenResponse};
use crate::Result;

/// The future returned by [`TokenSource::fetch`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token>> + Send + 'a>>;

/// Mints access tokens: a grant (refresh token, client credentials) or your own token endpoint.
///
/// The client's token cache calls [`fetch`](TokenSource::fetch) **one call at a time** per
/// client, in a task of its own (a cancelled request cannot interrupt it), when the token is
/// missing, in its refresh window, or rejected by the API. The cache keeps everything else: the
/// refresh window with jitter, the background refresh, waiting callers, the 401 invalidation,
/// and the expiry rules (`expires_in`, else a JWT `exp`, else the default lifetime).
///
/// A custom token endpoint that takes JSON and a vendor header:
///
/// ```
/// use std::time::Duration;
/// use authed::auth::{AccessToken, Token, TokenFuture, TokenSource};
/// use authed::ExposeSecret;
///
/// #[derive(Debug)]
/// struct VendorTokens { http: reqwest::Client, api_key: authed::ClientSecret }
///
/// impl TokenSource for VendorTokens {
///     fn fetch<'a>(&'a self, _replacing: Option<&'a AccessToken>) -> TokenFuture<'a> {
///         Box::pin(async move {
///             #[derive(serde::Deserialize)]
///             struct Answer { jwt: String, ttl_seconds: u64 }
///             let answer: Answer = self
///                 .http
///                 .post("https://auth.vendor.example/v1/session")
///                 .header("x-vendor-key", self.api_key.expose_secret())
///                 .json(&serde_json::json!({ "audience": "api" }))
///                 .send()
///                 .await
///                 .and_then(|r| r.error_for_status())
///                 .map_err(|e| authed::Error::token_source("the vendor token endpoint failed", e))?
///                 .json()
///                 .await
///                 .map_err(|e| authed::Error::token_source("the vendor token response is not JSON", e))?;
///             Ok(Token::new(answer.jwt, Some(Duration::from_secs(answer.ttl_seconds))))
///         })
///     }
///
///     fn grant(&self) -> &str {
///         "vendor-session"
///     }
/// }
///
/// # fn run() -> authed::Result<()> {
/// let client = authed::Client::builder()
///     .base_url("https://api.vendor.example")
///     .token_source(VendorTokens { http: reqwest::Client::new(), api_key: "k-123".into() })
///     .build()?;
/// # Ok(()) }
/// ```
pub trait TokenSource: fmt::Debug + Send + Sync + 'static {
    /// Mints an access token.
    ///
    /// `replacing` is the token the client holds now, if any: expiring, or just rejected by the
    /// API. A source that shares tokens between processes must not hand it back.
    fn fetch<'a>(&'a self, replacing: Option<&'a AccessToken>) -> TokenFuture<'a>;

    /// The grant's name, for logs and spans (`refresh_token`, `client_credentials`, ...).
    fn grant(&self) -> &str;
}

/// A freshly minted access token, as a [`TokenSource`] returns it.
#[non_exhaustive]
pub struct Token {
    /// The access token.
    pub access_token: SecretString,
    /// How long it lives, **counted from when [`TokenSource::fetch`] was called**; `None` lets
    /// the cache use the JWT `exp` claim, else the default lifetime.
    pub expires_in: Option<Duration>,
    /// The scopes granted, if known.
    pub scope: Option<String>,
}

impl Token {
    /// A token living `expires_in` (see [`Token::expires_in`]).
    pub fn new(access_token: impl Into<String>, expires_in: Option<Duration>) -> Self {
        Self {
            access_token: SecretString::from(access_token.into()),
            expires_in,
            scope: None,
        }
    }

    /// The scopes granted.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl From<TokenResponse> for Token {
    fn from(response: TokenResponse) -> Self {
        Self {
            access_token: response.access_token,
            expires_in: response.expires_in,
            scope: response.scope,
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}
