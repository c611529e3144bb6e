//! Token revocation (RFC 7009): what [`Client::revoke`](crate::Client::revoke) does to log out.
//!
//! 1. The token cache is logged out first: from then on no request gets a token and no refresh
//!    starts (a refresh already in flight is waited for, and its token is never served).
//! 2. Under the store's lock (other processes sharing the store wait), the refresh token in
//!    force is revoked with `token_type_hint=refresh_token`, then the access token(s) with
//!    `token_type_hint=access_token`, each with the client's authentication (the token
//!    endpoint's, [`ClientAuth`](super::ClientAuth)). RFC 7009 §2.2: `200` means revoked,
//!    also for a token the server did not know; `unsupported_token_type` for an access token
//!    is not an error (it expires on its own).
//! 3. The store is cleared, whatever the server answered: **the client forgets its tokens
//!    even when the revocation could not be confirmed**, and the error says so.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{Replay, TokenEndpoint, cache::TokenCache, grant::refresh_token::RefreshTokenGrant};
use crate::{AuthErrorKind, Error, Result};

/// What a client needs to revoke its tokens.
#[derive(Debug, Default)]
pub(crate) struct Revocation {
    /// The revocation endpoint, with the client's authentication; `None` when it is neither
    /// configured nor derivable from the token URL.
    pub(crate) endpoint: Option<TokenEndpoint>,
    /// The `refresh_token` grant, whose refresh token and store are revoked and cleared.
    pub(crate) grant: Option<Arc<RefreshTokenGrant>>,
}

/// The revocation endpoint of a token endpoint that follows the common naming (Auth0, Okta,
/// Keycloak, Google, Salesforce): the last path segment `token` becomes `revoke`
/// (`/oauth/token` → `/oauth/revoke`). `None` for any other path.
pub(crate) fn derive_url(token_url: &Url) -> Option<Url> {
    let segments: Vec<&str> = token_url.path_segments()?.collect();
    let (last, parent) = segments.split_last()?;
    if *last != "token" {
        return None;
    }
    let mut url = token_url.clone();
    url.set_path(&format!("/{}", [parent, &["revoke"]].concat().join("/")));
    url.set_query(None);
    Some(url)
}

impl Revocation {
    /// Revokes the tokens at the server and forgets them (see the module docs).
    pub(crate) async fn revoke(&self, cache: &TokenCache) -> Result<()> {
        let endpoint = self.endpoint.as_ref().ok_or_else(|| {
            Error::config(
                "no token revocation endpoint: set ClientBuilder::revocation_url or \
                 <PREFIX>_REVOCATION_URL (it is derived only from a token URL ending in /token)",
            )
        })?;
        let (held, in_flight) = cache.log_out(Error::auth(
            AuthErrorKind::InvalidGrant,
            "the client logged out (its tokens were revoked): re-authentication required",
        ));
        if let Some(refresh) = in_flight {
            // Its rotated refresh token is in the store once it ends; its result is unused.
            let _ = refresh.await;
        }
        let mut access_tokens: Vec<SecretString> = held
            .iter()
            .map(|t| SecretString::from(t.expose_secret().to_owned()))
            .collect();
        let mut first_error: Option<Error> = None;
        let (lock, refresh_token) = match &self.grant {
            Some(grant) => {
                let (lock, refresh_token, shared) = grant.begin_log_out().await?;
                access_tokens.extend(shared);
                (Some(lock), refresh_token)
            }
            None => (None, None),
        };
        if let Some(token) = &refresh_token
            && let Err(e) = revoke_one(endpoint, token.expose_secret(), "refresh_token").await
        {
            first_error.get_or_insert(e);
        }
        // The cache's token and the store's shared one are often the same: revoke each once.
        let mut seen = std::collections::HashSet::new();
        access_tokens.retain(|t| seen.insert(t.expose_secret().to_owned()));
        for token in &access_tokens {
            match revoke_one(endpoint, token.expose_secret(), "access_token").await {
                Err(e)
                    if e.api_error().is_some_and(|api| {
                        api.code.as_deref() == Some("unsupported_token_type")
                    }) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(()) => {}
            }
        }
        let cleared = match &self.grant {
            Some(grant) => grant.end_log_out().await,
            None => Ok(()),
        };
        drop(lock);
        match (first_error, cleared) {
            (Some(e), _) => {
                let message = format!(
                    "the token revocation was not confirmed ({e}); the client has forgotten its \
                     tokens"
                );
                Err(e.with_message(message))
            }
            (None, Err(e)) => Err(e),
            (None, Ok(())) => {
                tracing::info!(target: "authed::auth", "logged out: tokens revoked");
                Ok(())
            }
        }
    }
}

/// One revocation request (RFC 7009 §2.1). Idempotent, so retried like any safe request.
async fn revoke_one(endpoint: &TokenEndpoint, token: &str, hint: &str) -> Result<()> {
    endpoint
        .post(
            &[("token", token), ("token_type_hint", hint)],
            &[token],
            Replay::Safe,
        )
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revocation_url_is_derived_from_a_token_url_ending_in_token() {
        let derive = |url: &str| derive_url(&Url::parse(url).unwrap()).map(String::from);
        assert_eq!(
            derive("https://auth.example.com/oauth/token").as_deref(),
            Some("https://auth.example.com/oauth/revoke")
        );
        assert_eq!(
            derive("https://kc.example.com/realms/a/protocol/openid-connect/token?x=1").as_deref(),
            Some("https://kc.example.com/realms/a/protocol/openid-connect/revoke")
        );
        assert_eq!(
            derive("https://oauth2.googleapis.com/token").as_deref(),
            Some("https://oauth2.googleapis.com/revoke")
        );
        assert_eq!(derive("https://auth.example.com/oauth/access_token"), None);
        assert_eq!(derive("https://auth.example.com/token/"), None);
    }
}
