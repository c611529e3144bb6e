//! The token endpoint: client authentication, the `refresh_token` grant with rotation and
//! reuse detection, and the `client_credentials` grant. The login grants are in `login.rs`.

use std::{collections::HashMap, time::SystemTime};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use reqwest::{Method, StatusCode};
use serde_json::json;
use wiremock::Request;

use super::server::{Config, Cx, GRANTED_SCOPE, Handler, Issued, Reply, ceil_secs, random_token};
use crate::ClientAuth;

/// `POST /oauth/token`.
pub(super) struct TokenEndpoint;

impl Handler for TokenEndpoint {
    const PROTECTED: bool = false;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        let form = match client_form(request, &cx.api.config) {
            Ok(form) => form,
            Err(reply) => return reply,
        };
        match form.get("grant_type").map(String::as_str) {
            Some("refresh_token") => refresh(&form, cx),
            Some("client_credentials") => client_credentials(&form, cx),
            Some("authorization_code") => super::login::authorization_code(&form, cx),
            Some(super::login::DEVICE_CODE_GRANT) => super::login::device_code(&form, cx),
            _ => bad_request(
                "unsupported_grant_type",
                "the grant types are refresh_token, client_credentials, authorization_code and \
                 urn:ietf:params:oauth:grant-type:device_code",
            ),
        }
    }
}

/// The `refresh_token` grant (RFC 6749 §6), with rotation and reuse detection.
fn refresh(form: &HashMap<String, String>, cx: &mut Cx<'_>) -> Reply {
    let Some(presented) = form.get("refresh_token") else {
        return bad_request("invalid_request", "refresh_token is missing");
    };
    let state = &mut *cx.state;
    if state.retired.contains(presented) {
        // Reuse of a rotated refresh token means it may have leaked: revoke everything.
        state.revoke_grant();
        return bad_request(
            "invalid_grant",
            "the refresh token was already used; the grant is revoked",
        );
    }
    if *presented != state.refresh_token || state.grant_revoked {
        return bad_request("invalid_grant", "the refresh token is invalid or revoked");
    }
    let scope = match requested_scope(form) {
        Ok(scope) => scope,
        Err(reply) => return reply,
    };
    let rotated = cx.api.config.rotate_refresh_tokens.then(|| {
        if cx.api.config.revoke_on_rotation {
            // As django-oauth-toolkit does: the access token of the rotated-out refresh token
            // dies with it, even if it has not expired.
            cx.state
                .tokens
                .values_mut()
                .filter(|t| t.from_grant)
                .for_each(|t| t.revoked = true);
        }
        let next = random_token("rt");
        let state = &mut *cx.state;
        state
            .retired
            .insert(std::mem::replace(&mut state.refresh_token, next.clone()));
        next
    });
    issue(cx, &scope, rotated, true)
}

/// The `client_credentials` grant (RFC 6749 §4.4): only for a confidential client, which has
/// authenticated by now; no refresh token (§4.4.3).
fn client_credentials(form: &HashMap<String, String>, cx: &mut Cx<'_>) -> Reply {
    if cx.api.config.client_secret.is_none() {
        return bad_request(
            "unauthorized_client",
            "the client_credentials grant is for confidential clients; configure a client secret",
        );
    }
    match requested_scope(form) {
        Ok(scope) => issue(cx, &scope, None, false),
        Err(reply) => reply,
    }
}

/// The scope a token request asks for: a subset of the grant's, or all of it when absent.
pub(super) fn requested_scope(form: &HashMap<String, String>) -> Result<String, Reply> {
    let asked: Vec<&str> = form
        .get("scope")
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    if asked.is_empty() {
        Ok(GRANTED_SCOPE.to_owned())
    } else if asked
        .iter()
        .all(|s| GRANTED_SCOPE.split(' ').any(|g| g == *s))
    {
        Ok(asked.join(" "))
    } else {
        Err(bad_request(
            "invalid_scope",
            "the scope exceeds what the grant allows",
        ))
    }
}

/// Issues an access token for `scope` (and hands out `refresh_token` if given): the `200`
/// token response of RFC 6749 §5.1.
pub(super) fn issue(
    cx: &mut Cx<'_>,
    scope: &str,
    refresh_token: Option<String>,
    from_grant: bool,
) -> Reply {
    let ttl = cx.api.config.token_ttl;
    let access_token = if cx.api.config.jwt_access_tokens {
        let jwt = unsigned_jwt(scope, ttl);
        super::audit::record("access_token", &jwt);
        jwt
    } else {
        random_token("at")
    };
    let issued = Issued {
        expires_at: cx.now + ttl,
        revoked: false,
        scope: scope.to_owned(),
        from_grant,
    };
    cx.state.tokens.insert(access_token.clone(), issued);
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ceil_secs(ttl).max(1),
        "scope": scope,
    });
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    Reply::json(StatusCode::OK, &body).header("cache-control", "no-store")
}

/// The form of a POST to an OAuth endpoint whose client authenticated, or the error to answer.
pub(super) fn client_form(
    request: &Request,
    config: &Config,
) -> Result<HashMap<String, String>, Reply> {
    if request.method != Method::POST {
        return Err(Reply::method_not_allowed(request, "POST"));
    }
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(&request.body) else {
        return Err(bad_request(
            "invalid_request",
            "the body is not application/x-www-form-urlencoded",
        ));
    };
    if let Err(why) = authenticate_client(config, request, &form) {
        return Err(
            Reply::oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why)
                .header("www-authenticate", "Basic realm=\"authed-mock\""),
        );
    }
    Ok(form)
}

pub(super) fn bad_request(code: &'static str, description: &str) -> Reply {
    Reply::oauth_error(StatusCode::BAD_REQUEST, code, description)
}

/// Checks the client credentials the way the API is configured (RFC 6749 §2.3).
pub(super) fn authenticate_client(
    config: &Config,
    request: &Request,
    form: &HashMap<String, String>,
) -> Result<(), &'static str> {
    let expected = (config.client_id.as_deref(), config.client_secret());
    match config.effective_client_auth() {
        ClientAuth::Basic => {
            let (id, secret) =
                basic_credentials(request).ok_or("the client must authenticate with HTTP Basic")?;
            if (Some(id.as_str()), Some(secret.as_str())) != expected {
                return Err("unknown client or wrong client secret");
            }
        }
        ClientAuth::Post => {
            let given = (
                form.get("client_id").map(String::as_str),
                form.get("client_secret").map(String::as_str),
            );
            if given != expected {
                return Err("unknown client or wrong client secret");
            }
        }
        _ => {
            if let Some(id) = expected.0
                && form.get("client_id").map(String::as_str) != Some(id)
            {
                return Err("unknown client");
            }
        }
    }
    Ok(())
}

/// The client id and secret of an `Authorization: Basic` header, each form-urldecoded as
/// RFC 6749 §2.3.1 requires.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers
        .get(reqwest::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |part: &str| -> String {
        url::form_urlencoded::parse(part.as_bytes())
            .map(|(k, _)| k.into_owned())
            .next()
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// An **unsigned** (`alg: none`) JWT: good enough for a client that only reads `exp`, and
/// obviously not something a real server would issue.
fn unsigned_jwt(scope: &str, ttl: std::time::Duration) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let encode = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let header = encode(json!({ "alg": "none", "typ": "JWT" }));
    let claims = encode(json!({
        "sub": super::widgets::USER_ID,
        "iat": now.as_secs(),
        "exp": (now + ttl).as_secs(),
        "jti": random_token("jti"),
        "scope": scope,
    }));
    format!("{header}.{claims}.")
}
