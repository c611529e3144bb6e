//! The `client_credentials` grant (RFC 6749 §4.4): machine to machine.

use super::Params;
use crate::auth::{AccessToken, Replay, Token, TokenEndpoint, TokenFuture, TokenSource};

/// Mints tokens with the client id and secret alone. Nothing in the request is single-use, so a
/// failed request is retried on `5xx`, timeouts and lost connections as well.
#[derive(Debug)]
pub(crate) struct ClientCredentials {
    pub(crate) endpoint: TokenEndpoint,
    pub(crate) scope: Option<String>,
    pub(crate) params: Params,
}

impl TokenSource for ClientCredentials {
    fn fetch<'a>(&'a self, _replacing: Option<&'a AccessToken>) -> TokenFuture<'a> {
        Box::pin(async move {
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend(self.scope.as_deref().map(|s| ("scope", s)));
            form.extend(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let response = self.endpoint.request(&form, &[], Replay::Safe).await?;
            let mut token = Token::from(response);
            // RFC 6749 §5.1: an omitted scope is the scope requested.
            token.scope = token.scope.or_else(|| self.scope.clone());
            Ok(token)
        })
    }

    fn grant(&self) -> &str {
        "client_credentials"
    }
}
