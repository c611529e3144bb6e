//! Configuration from the environment: where the API and the token endpoint are, which grant,
//! the credentials, and where the refresh token is kept.
//!
//! [`Config::from_env`] reads the variables below (prefix `AUTHED`); [`Config::from_env_prefixed`]
//! reads the same names under another prefix (`ACME_BASE_URL`, ...).
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `<P>_BASE_URL` | yes | the API's base URL, e.g. `https://api.example.com/v1/` |
//! | `<P>_TOKEN_URL` | yes | the OAuth 2.0 token endpoint |
//! | `<P>_GRANT` | no | `refresh_token` (default) or `client_credentials` |
//! | `<P>_REFRESH_TOKEN` | with `refresh_token`, unless the token store holds one | the refresh token |
//! | `<P>_CLIENT_ID` | with `client_credentials` | the OAuth client id |
//! | `<P>_CLIENT_SECRET` | with `client_credentials` | the client secret of a confidential client |
//! | `<P>_SCOPE` | no | space-separated scopes to ask for |
//! | `<P>_REVOCATION_URL` | no | the token revocation endpoint (RFC 7009) of [`Client::revoke`](crate::Client::revoke); default derived from a token URL ending in `/token` (`…/revoke`) |
//! | `<P>_TOKEN_STORE` | no | `memory` (default), `file:PATH` or `file:///abs/path`, `redis://…` / `rediss://…` (feature `redis`; the URL is a secret) |
//! | `<P>_TOKEN_STORE_KEY` | no | with Redis: the key prefix (default derived from a hash of the token URL and client id) |
//! | `<P>_TOKEN_STORE_SECRET` | no | with Redis: encrypts the stored record (ChaCha20-Poly1305, key = SHA-256 of it) |
//! | `<P>_TOKEN_STORE_CA` | no | with `rediss://`: a PEM file of the private CA that signs the Redis server's certificate (then only it is trusted) |
//!
//! A missing or empty required variable is a [`Config`](crate::ErrorKind::Config) error that
//! names the variable and never shows its value. An empty optional variable counts as unset.
//!
//! **Plain `http://` is refused** for both URLs unless the host is loopback (`127.0.0.0/8`,
//! `::1`, `localhost`), so tokens never cross a network in clear text while local mocks work.

use std::{fmt, path::PathBuf, str::FromStr};

use url::Url;

use crate::{
    ClientSecret, Error, RefreshToken, Result,
    auth::GrantType,
    env::{optional_var, required_var},
    origin::parse_url,
};

/// The default environment variable prefix.
pub const DEFAULT_ENV_PREFIX: &str = "AUTHED";
/// Suffix of the variable holding the API base URL.
pub const ENV_BASE_URL: &str = "BASE_URL";
/// Suffix of the variable holding the token endpoint URL.
pub const ENV_TOKEN_URL: &str = "TOKEN_URL";
/// Suffix of the variable naming the grant (`refresh_token` or `client_credentials`).
pub const ENV_GRANT: &str = "GRANT";
/// Suffix of the variable holding the refresh token.
pub const ENV_REFRESH_TOKEN: &str = "REFRESH_TOKEN";
/// Suffix of the variable holding the client id.
pub const ENV_CLIENT_ID: &str = "CLIENT_ID";
/// Suffix of the variable holding the client secret.
pub const ENV_CLIENT_SECRET: &str = "CLIENT_SECRET";
/// Suffix of the variable holding the scopes.
pub const ENV_SCOPE: &str = "SCOPE";
/// Suffix of the variable holding the token revocation endpoint (RFC 7009).
pub const ENV_REVOCATION_URL: &str = "REVOCATION_URL";
/// Suffix of the variable selecting the token store.
pub const ENV_TOKEN_STORE: &str = "TOKEN_STORE";
/// Suffix of the variable holding the key prefix of a shared (Redis) token store.
pub const ENV_TOKEN_STORE_KEY: &str = "TOKEN_STORE_KEY";
/// Suffix of the variable holding the secret that encrypts a shared (Redis) token record.
pub const ENV_TOKEN_STORE_SECRET: &str = "TOKEN_STORE_SECRET";
/// Suffix of the variable holding the path of a PEM file of the CA that signs a `rediss://`
/// token store's certificate.
pub const ENV_TOKEN_STORE_CA: &str = "TOKEN_STORE_CA";

/// Where the refresh token is kept (`<P>_TOKEN_STORE`); see [`crate::auth::store`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenStoreConfig {
    /// `memory`: in this process only (the default).
    #[default]
    Memory,
    /// `file:PATH` or `file:///abs/path`: a [`FileStore`](crate::FileStore), shared safely by the
    /// processes of one host.
    File(PathBuf),
    /// `redis://…`, `rediss://…` or `redis+unix://…` (feature `redis`): a
    /// [`RedisStore`](crate::auth::store::RedisStore) shared by a fleet of hosts.
    #[cfg(feature = "redis")]
    Redis(crate::auth::store::RedisConfig),
}

impl FromStr for TokenStoreConfig {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("memory") {
            return Ok(TokenStoreConfig::Memory);
        }
        if let Some(rest) = s.strip_prefix("file:") {
            let path = match rest.strip_prefix("//") {
                Some(_) => Url::parse(s)
                    .ok()
                    .filter(|u| u.host_str().is_none_or(str::is_empty))
                    .and_then(|u| u.to_file_path().ok())
                    .ok_or_else(|| {
                        Error::config("a file:// token store must be an absolute path: file:///dir/token.json")
                    })?,
                None => PathBuf::from(rest),
            };
            if path.as_os_str().is_empty() {
                return Err(Error::config(
                    "the file token store has no path: file:/dir/token.json",
                ));
            }
            return Ok(TokenStoreConfig::File(path));
        }
        let scheme = s.split(':').next().unwrap_or("");
        #[cfg(feature = "redis")]
        if crate::auth::store::RedisConfig::is_redis_url(s) {
            return Ok(TokenStoreConfig::Redis(
                crate::auth::store::RedisConfig::new(s),
            ));
        }
        if scheme.eq_ignore_ascii_case("redis") || scheme.eq_ignore_ascii_case("rediss") {
            return Err(Error::config(
                "a redis:// token store needs the `redis` feature of authed",
            ));
        }
        Err(Error::config(format!(
            "unknown token store {:?}: expected memory, file:PATH or file:///abs/path",
            scheme.chars().take(20).collect::<String>()
        )))
    }
}

/// Everything needed to reach the API, as read from the environment.
///
/// Turn it into a client with [`Config::into_builder`] (to adjust it) or
/// [`Client::from_env`](crate::Client::from_env).
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The API base URL.
    pub base_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The grant that mints access tokens.
    pub grant: GrantType,
    /// The refresh token, if configured (the `refresh_token` grant).
    pub refresh_token: Option<RefreshToken>,
    /// The client id, if any.
    pub client_id: Option<String>,
    /// The client secret, if any.
    pub client_secret: Option<ClientSecret>,
    /// The scopes to request, if any.
    pub scope: Option<String>,
    /// Where the refresh token is kept.
    pub token_store: TokenStoreConfig,
    /// The token revocation endpoint, if configured (else derived from the token URL).
    pub revocation_url: Option<Url>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("grant", &self.grant)
            .field("refresh_token", &self.refresh_token)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("scope", &self.scope)
            .field("token_store", &self.token_store)
            .field(
                "revocation_url",
                &self.revocation_url.as_ref().map(Url::as_str),
            )
            .finish()
    }
}

impl Config {
    /// Reads the `AUTHED_*` variables (see the [module docs](self)).
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
        let base_url = url(ENV_BASE_URL)?;
        let token_url = url(ENV_TOKEN_URL)?;
        let named = |var: String| {
            move |e: Error| {
                let message = format!("{var}: {e}");
                e.with_message(message)
            }
        };
        let grant = match optional_var(&name(ENV_GRANT))? {
            Some(g) => g.parse().map_err(named(name(ENV_GRANT)))?,
            None => GrantType::default(),
        };
        #[allow(unused_mut)] // mutated with the `redis` feature only
        let mut token_store = match optional_var(&name(ENV_TOKEN_STORE))? {
            Some(s) => s.parse().map_err(named(name(ENV_TOKEN_STORE)))?,
            None => TokenStoreConfig::default(),
        };
        #[cfg(feature = "redis")]
        if let TokenStoreConfig::Redis(redis) = &mut token_store {
            redis.key_prefix = optional_var(&name(ENV_TOKEN_STORE_KEY))?;
            redis.secret =
                optional_var(&name(ENV_TOKEN_STORE_SECRET))?.map(secrecy::SecretString::from);
            redis.ca_file = optional_var(&name(ENV_TOKEN_STORE_CA))?.map(PathBuf::from);
        }
        let (refresh_token, client_id, client_secret) = match grant {
            GrantType::ClientCredentials => (
                None,
                Some(required_var(&name(ENV_CLIENT_ID))?),
                Some(ClientSecret::from_env(&name(ENV_CLIENT_SECRET))?),
            ),
            _ => {
                let var = name(ENV_REFRESH_TOKEN);
                let refresh_token = match token_store {
                    // The store may hold the token (written by a login, or rotated).
                    TokenStoreConfig::File(_) => optional_var(&var)?.map(RefreshToken::new),
                    #[cfg(feature = "redis")]
                    TokenStoreConfig::Redis(_) => optional_var(&var)?.map(RefreshToken::new),
                    _ => Some(RefreshToken::from_env(&var)?),
                };
                (
                    refresh_token,
                    optional_var(&name(ENV_CLIENT_ID))?,
                    optional_var(&name(ENV_CLIENT_SECRET))?.map(ClientSecret::new),
                )
            }
        };
        Ok(Config {
            base_url,
            token_url,
            grant,
            refresh_token,
            client_id,
            client_secret,
            scope: optional_var(&name(ENV_SCOPE))?,
            token_store,
            revocation_url: optional_var(&name(ENV_REVOCATION_URL))?
                .map(|v| parse_url(&v, &name(ENV_REVOCATION_URL)))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_store_specs_parse_or_fail_clearly() {
        assert_eq!(
            "memory".parse::<TokenStoreConfig>().unwrap(),
            TokenStoreConfig::Memory
        );
        assert_eq!(
            "file:/var/lib/app/token.json"
                .parse::<TokenStoreConfig>()
                .unwrap(),
            TokenStoreConfig::File("/var/lib/app/token.json".into())
        );
        assert_eq!(
            "file:relative/token".parse::<TokenStoreConfig>().unwrap(),
            TokenStoreConfig::File("relative/token".into())
        );
        assert_eq!(
            "file:///abs/token.json"
                .parse::<TokenStoreConfig>()
                .unwrap(),
            TokenStoreConfig::File("/abs/token.json".into())
        );
        for (bad, expect) in [
            ("s3://bucket/key", "unknown token store"),
            ("file:", "has no path"),
            ("file://host/x", "absolute path"),
        ] {
            let err = bad.parse::<TokenStoreConfig>().unwrap_err();
            assert!(err.to_string().contains(expect), "{bad}: {err}");
        }
        #[cfg(not(feature = "redis"))]
        assert!(
            "redis://127.0.0.1/0"
                .parse::<TokenStoreConfig>()
                .unwrap_err()
                .to_string()
                .contains("`redis` feature")
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_urls_select_the_redis_store_and_never_show_the_password() {
        for url in [
            "redis://:s3cret-pass@10.0.0.5:6379/2",
            "rediss://app:s3cret-pass@redis.internal:6380/0",
            "redis+unix:///run/redis.sock",
        ] {
            let parsed = url.parse::<TokenStoreConfig>().unwrap();
            let TokenStoreConfig::Redis(config) = &parsed else {
                panic!("{url} is not a Redis store");
            };
            assert_eq!(secrecy::ExposeSecret::expose_secret(&config.url), url);
            assert!(!format!("{parsed:?}").contains("s3cret-pass"));
            assert!(!format!("{parsed:?}").contains("redis.internal"));
        }
    }
}
