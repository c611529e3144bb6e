//! The `refresh_token` grant (RFC 6749 §6): the request and the parsing of its answer.

use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::jwt;
use crate::{
    AuthErrorKind, ClientAuth, ClientSecret, Error, ErrorKind, RefreshToken, Result,
    error::{ApiError, request_id, scrub, truncate},
};

/// Longest `expires_in` accepted (ten years); more is treated as a broken response.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What the client needs to mint access tokens.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) token_url: Url,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<ClientSecret>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) scope: Option<String>,
    /// Lifetime assumed when the response has no `expires_in` and the token is not a JWT.
    pub(crate) default_lifetime: Duration,
}

/// A successful token response.
pub(crate) struct TokenResponse {
    pub(crate) access_token: SecretString,
    pub(crate) lifetime: Duration,
    /// A rotated refresh token, when the server sent one.
    pub(crate) refresh_token: Option<RefreshToken>,
    pub(crate) scope: Option<String>,
}

impl Grant {
    /// Builds the token request for `refresh_token`.
    pub(crate) fn request(
        &self,
        http: &reqwest::Client,
        refresh_token: &RefreshToken,
    ) -> reqwest::RequestBuilder {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let secret = self.client_secret.as_ref().map(|s| s.expose_secret());
        let mut request = http
            .post(self.token_url.clone())
            .header(header::ACCEPT, "application/json");
        match (
            self.client_auth.resolve(self.client_secret.is_some()),
            &self.client_id,
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
        request.form(&form)
    }

    /// Every secret that must never show in an error built from a token endpoint response.
    fn secrets<'a>(&'a self, refresh_token: &'a RefreshToken) -> Vec<&'a str> {
        let mut secrets = vec![refresh_token.expose_secret()];
        secrets.extend(self.client_secret.as_ref().map(|s| s.expose_secret()));
        secrets
    }

    /// Reads and checks the token endpoint's answer.
    pub(crate) async fn parse(
        &self,
        response: reqwest::Response,
        refresh_token: &RefreshToken,
        now: SystemTime,
    ) -> Result<TokenResponse> {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::transport("could not read the token endpoint's response", e))?;
        let secrets = self.secrets(refresh_token);
        let with_context = |e: Error| {
            e.with_status(status)
                .with_request_id(request_id(&headers))
                .with_retry_after(crate::retry::retry_after(&headers, now))
        };
        if !status.is_success() {
            return Err(with_context(endpoint_error(status, &body, &secrets)));
        }
        let raw: RawTokenResponse = serde_json::from_slice(&body).map_err(|e| {
            let snippet = scrub(&truncate(&body, 200), &secrets);
            with_context(Error::decode(
                format!("the token endpoint's response is not a JSON token response: {snippet}"),
                e,
            ))
        })?;
        if raw.error.is_some() {
            // Some servers answer 200 with an RFC 6749 §5.2 error body.
            return Err(with_context(endpoint_error(status, &body, &secrets)));
        }
        raw.into_token(self.default_lifetime, now)
            .map_err(with_context)
    }
}

/// Maps an RFC 6749 §5.2 error response (or any failed status) to an [`Error`].
fn endpoint_error(status: StatusCode, body: &[u8], secrets: &[&str]) -> Error {
    let api = ApiError::parse(body, secrets);
    let error = Error::new(
        ErrorKind::Auth(AuthErrorKind::Rejected),
        "token refresh failed",
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

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    refresh_token: Option<String>,
    scope: Option<String>,
    error: Option<serde_json::Value>,
}

impl RawTokenResponse {
    fn into_token(self, default_lifetime: Duration, now: SystemTime) -> Result<TokenResponse> {
        let invalid = |msg: String| Error::auth(AuthErrorKind::InvalidResponse, msg);
        let access_token = self
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| invalid("the token response has no access_token".into()))?;
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
        let lifetime = match self.expires_in {
            Some(value) => parse_expires_in(&value).map_err(invalid)?,
            None => jwt::expiry(&access_token)
                .map(|exp| exp.duration_since(now).unwrap_or(Duration::ZERO))
                .unwrap_or(default_lifetime),
        };
        Ok(TokenResponse {
            access_token: SecretString::from(access_token),
            lifetime,
            refresh_token: self
                .refresh_token
                .filter(|t| !t.trim().is_empty())
                .map(RefreshToken::new),
            scope: self.scope,
        })
    }
}

/// `expires_in` as a positive number of seconds; numeric strings are accepted (some servers
/// send `"3599"`), anything else is refused.
fn parse_expires_in(value: &serde_json::Value) -> std::result::Result<Duration, String> {
    let seconds = match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let shown = truncate(value.to_string().as_bytes(), 32);
    match seconds {
        Some(s) if s.is_finite() && s >= 1.0 && s <= MAX_LIFETIME.as_secs_f64() => {
            Ok(Duration::from_secs_f64(s))
        }
        Some(s) if s.is_finite() && s > 0.0 && s > MAX_LIFETIME.as_secs_f64() => Err(format!(
            "the token response's expires_in ({shown}) is beyond the 10-year limit"
        )),
        Some(_) => Err(format!(
            "the token response's expires_in ({shown}) is not a positive number of seconds"
        )),
        None => Err(format!(
            "the token response's expires_in ({shown}) is not a number"
        )),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B).
fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings_only() {
        use serde_json::json;
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
        for bad in [
            json!(-5),
            json!(0),
            json!("soon"),
            json!(1e20),
            json!(null),
            json!([1]),
        ] {
            assert!(parse_expires_in(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        assert_eq!(form_urlencode("a+b:c/d%e f"), "a%2Bb%3Ac%2Fd%25e+f");
    }
}
