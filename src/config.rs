//! Configuration: where the API and the token endpoint are, and the credentials.
//!
//! [`Config::from_env`] reads the variables below (prefix `AUTHED`); [`Config::from_env_prefixed`]
//! reads the same names under another prefix (`ACME_BASE_URL`, ...).
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `<P>_BASE_URL` | yes | the API's base URL, e.g. `https://api.example.com/v1/` |
//! | `<P>_TOKEN_URL` | yes | the OAuth 2.0 token endpoint |
//! | `<P>_REFRESH_TOKEN` | yes | the refresh token (the one secret the user keeps) |
//! | `<P>_CLIENT_ID` | no | the OAuth client id |
//! | `<P>_CLIENT_SECRET` | no | the client secret of a confidential client |
//! | `<P>_SCOPE` | no | space-separated scopes to ask for on refresh |
//!
//! A missing or empty required variable is a [`Config`](crate::ErrorKind::Config) error that
//! names the variable and never shows its value. An empty optional variable counts as unset.
//!
//! **Plain `http://` is refused** for both URLs unless the host is loopback (`127.0.0.0/8`,
//! `::1`, `localhost`), so tokens never cross a network in clear text while local mocks work.

use std::{env, net::IpAddr};

use url::{Host, Url};

use crate::{ClientBuilder, ClientSecret, Error, RefreshToken, Result};

/// The default environment variable prefix.
pub const DEFAULT_ENV_PREFIX: &str = "AUTHED";
/// Suffix of the variable holding the API base URL.
pub const ENV_BASE_URL: &str = "BASE_URL";
/// Suffix of the variable holding the token endpoint URL.
pub const ENV_TOKEN_URL: &str = "TOKEN_URL";
/// Suffix of the variable holding the refresh token.
pub const ENV_REFRESH_TOKEN: &str = "REFRESH_TOKEN";
/// Suffix of the variable holding the client id.
pub const ENV_CLIENT_ID: &str = "CLIENT_ID";
/// Suffix of the variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "CLIENT_SECRET";
/// Suffix of the variable holding the scopes.
pub const ENV_SCOPE: &str = "SCOPE";

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

/// Everything needed to reach the API, as read from the environment.
///
/// Turn it into a client with [`Config::into_builder`] (to adjust it) or
/// [`Client::from_env`](crate::Client::from_env).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// The API base URL.
    pub base_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// The client id, if any.
    pub client_id: Option<String>,
    /// The client secret, if any.
    pub client_secret: Option<ClientSecret>,
    /// The scopes to request, if any.
    pub scope: Option<String>,
}

impl Config {
    /// Reads `AUTHED_BASE_URL`, `AUTHED_TOKEN_URL`, `AUTHED_REFRESH_TOKEN` and the optional
    /// `AUTHED_CLIENT_ID`, `AUTHED_CLIENT_SECRET`, `AUTHED_SCOPE`.
    pub fn from_env() -> Result<Self> {
        Self::from_env_prefixed(DEFAULT_ENV_PREFIX)
    }

    /// Reads `<PREFIX>_BASE_URL`, `<PREFIX>_TOKEN_URL`, ... (see the [module docs](self)).
    pub fn from_env_prefixed(prefix: &str) -> Result<Self> {
        let name = |suffix: &str| format!("{}_{suffix}", prefix.trim_end_matches('_'));
        let url = |suffix: &str| {
            let var = name(suffix);
            parse_url(&required_var(&var)?, &var)
        };
        Ok(Config {
            base_url: url(ENV_BASE_URL)?,
            token_url: url(ENV_TOKEN_URL)?,
            refresh_token: RefreshToken::from_env(&name(ENV_REFRESH_TOKEN))?,
            client_id: optional_var(&name(ENV_CLIENT_ID))?,
            client_secret: optional_var(&name(ENV_CLIENT_SECRET))?.map(ClientSecret::new),
            scope: optional_var(&name(ENV_SCOPE))?,
        })
    }

    /// A [`ClientBuilder`] preset with this configuration, to adjust before building.
    pub fn into_builder(self) -> ClientBuilder {
        let mut builder = ClientBuilder::new()
            .base_url(self.base_url.as_str())
            .token_url(self.token_url.as_str())
            .refresh_token(self.refresh_token);
        if let Some(id) = self.client_id {
            builder = builder.client_id(id);
        }
        if let Some(secret) = self.client_secret {
            builder = builder.client_secret(secret);
        }
        if let Some(scope) = self.scope {
            builder = builder.scope(scope);
        }
        builder
    }
}

/// Reads a required variable: missing, empty or not UTF-8 is an error naming it.
pub(crate) fn required_var(name: &str) -> Result<String> {
    optional_var(name)?.ok_or_else(|| {
        Error::config(format!(
            "environment variable {name} is not set (or is empty)"
        ))
    })
}

/// Reads an optional variable: missing or empty is `None`, not UTF-8 is an error naming it.
fn optional_var(name: &str) -> Result<Option<String>> {
    match env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(env::VarError::NotPresent) => Ok(None),
        Err(env::VarError::NotUnicode(_)) => Err(Error::config(format!(
            "environment variable {name} is not valid UTF-8"
        ))),
    }
}

/// Parses and checks a URL: `https`, or `http` to a loopback host.
pub(crate) fn parse_url(input: &str, what: &str) -> Result<Url> {
    let url = Url::parse(input.trim())
        .map_err(|e| Error::config(format!("{what} is not a valid URL")).with_source(e))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::config(format!(
                "{what} uses plain http:// to a non-loopback host ({}); tokens must only travel over https",
                url.host_str().unwrap_or("")
            )));
        }
        other => {
            return Err(Error::config(format!(
                "{what} must be an https:// URL, not {other}:"
            )));
        }
    }
    if url.host().is_none() {
        return Err(Error::config(format!("{what} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL end up in logs and error messages.
        return Err(Error::config(format!(
            "{what} must not contain credentials"
        )));
    }
    Ok(url)
}

/// Whether the URL's host is `localhost`, in `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://api.example.com",
            "http://127.0.0.1:8080/v1/",
            "http://127.3.4.5",
            "http://[::1]:9000",
            "http://localhost:1234",
            "http://LOCALHOST",
        ] {
            parse_url(ok, "base URL").unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn plain_http_to_public_hosts_and_odd_schemes_are_refused() {
        for (bad, expect) in [
            ("http://api.example.com", "plain http://"),
            ("http://10.0.0.1", "plain http://"),
            ("http://localhost.evil.com", "plain http://"),
            ("ftp://example.com", "must be an https:// URL"),
            ("not a url", "not a valid URL"),
            (
                "https://user:pw@example.com",
                "must not contain credentials",
            ),
        ] {
            let err = parse_url(bad, "base URL").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config);
            assert!(err.to_string().contains(expect), "{bad}: {err}");
        }
    }
}
