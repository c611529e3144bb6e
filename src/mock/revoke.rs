//! The token revocation endpoint (RFC 7009): revoking the refresh token revokes the grant
//! (the refresh token and every access token issued from it, §2.1); revoking an access token
//! revokes that token only.

use reqwest::StatusCode;
use wiremock::Request;

use super::{
    server::{Cx, Handler, Reply},
    token::{bad_request, client_form},
};

/// `POST /oauth/revoke`.
pub(super) struct RevocationEndpoint;

impl Handler for RevocationEndpoint {
    const PROTECTED: bool = false;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        let form = match client_form(request, &cx.api.config) {
            Ok(form) => form,
            Err(reply) => return reply,
        };
        let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
            return bad_request("invalid_request", "token is missing");
        };
        let state = &mut *cx.state;
        if *token == state.refresh_token || state.retired.contains(token) {
            state.revoke_grant();
        } else if let Some(issued) = state.tokens.get_mut(token) {
            issued.revoked = true;
        }
        // RFC 7009 §2.2: 200 whether or not the token was known (an invalid token is no error).
        Reply::new(StatusCode::OK).header("cache-control", "no-store")
    }
}
