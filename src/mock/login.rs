//! The login grants: the device authorization grant (RFC 8628) and the authorization code
//! grant with PKCE (RFC 6749 §4.1, RFC 7636) for a loopback redirect (RFC 8252 §7.3).
//!
//! A successful login starts a new grant: its refresh token replaces the grant's, and works
//! even after [`revoke_grant`](super::MockApi::revoke_grant), as after a real re-login.

use std::{collections::HashMap, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use url::Url;
use wiremock::Request;

use super::{
    DEVICE_VERIFICATION_PATH,
    server::{Cx, Handler, Reply, ceil_secs, random_token},
    token::{bad_request, client_form, issue, requested_scope},
};

/// The `grant_type` of a device access token request (RFC 8628 §3.4).
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// How long an authorization code stays valid (RFC 6749 §4.1.2 recommends at most 10 minutes).
const CODE_TTL: Duration = Duration::from_secs(60);

/// RFC 8628 §3.5: each `slow_down` adds 5 seconds to the polling interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Pending device logins and authorization codes.
#[derive(Default)]
pub(super) struct Logins {
    devices: Vec<Device>,
    codes: HashMap<String, Code>,
    /// Codes exchanged already: a second exchange is refused.
    used_codes: Vec<String>,
    /// Whether the authorization endpoint answers `access_denied` (the user said no).
    pub(super) deny_authorizations: bool,
}

/// What the user decided on the verification page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Pending,
    Approved,
    Denied,
}

struct Device {
    device_code: String,
    user_code: String,
    scope: String,
    expires_at: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    decision: Decision,
}

struct Code {
    redirect_uri: String,
    challenge: String,
    scope: String,
    expires_at: Instant,
}

impl Logins {
    /// Approves or denies the pending device login with `user_code`; `false` if there is none.
    pub(super) fn decide(&mut self, user_code: &str, approve: bool) -> bool {
        let wanted = normalize_user_code(user_code);
        match self
            .devices
            .iter_mut()
            .find(|d| d.user_code == wanted && d.decision == Decision::Pending)
        {
            Some(device) => {
                device.decision = if approve {
                    Decision::Approved
                } else {
                    Decision::Denied
                };
                true
            }
            None => false,
        }
    }

    /// The user codes of device logins waiting for the user.
    pub(super) fn pending_user_codes(&self) -> Vec<String> {
        self.devices
            .iter()
            .filter(|d| d.decision == Decision::Pending)
            .map(|d| d.user_code.clone())
            .collect()
    }
}

/// User codes are compared without case or dashes, as users type them.
fn normalize_user_code(code: &str) -> String {
    let bare: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match bare.len() {
        8 => format!("{}-{}", &bare[..4], &bare[4..]),
        _ => bare,
    }
}

/// Eight letters from an alphabet without vowels or look-alikes (RFC 8628 §6.1), `WDJB-MJHT`.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let letters: String = (0..8)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    normalize_user_code(&letters)
}

// ===== device authorization endpoint =====

/// `POST /oauth/device_authorization` (RFC 8628 §3.1, §3.2).
pub(super) struct DeviceEndpoint;

impl Handler for DeviceEndpoint {
    const PROTECTED: bool = false;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        let form = match client_form(request, &cx.api.config) {
            Ok(form) => form,
            Err(reply) => return reply,
        };
        let scope = match requested_scope(&form) {
            Ok(scope) => scope,
            Err(reply) => return reply,
        };
        let config = &cx.api.config;
        let interval = config.device_interval.max(Duration::from_secs(1));
        let device = Device {
            device_code: random_token("dc"),
            user_code: user_code(),
            scope,
            expires_at: cx.now + config.device_code_ttl,
            interval,
            last_poll: None,
            decision: Decision::Pending,
        };
        let verification_uri = format!("{}{DEVICE_VERIFICATION_PATH}", cx.api.base_url);
        let body = json!({
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={}", device.user_code),
            "expires_in": ceil_secs(config.device_code_ttl).max(1),
            "interval": ceil_secs(interval),
        });
        cx.state.login.devices.push(device);
        Reply::json(StatusCode::OK, &body).header("cache-control", "no-store")
    }
}

/// `GET /device[?user_code=…[&deny]]`: the page a user visits to enter the code. With a
/// `user_code`, it approves that login at once (the user signed in and said yes), or denies it
/// with `deny`.
pub(super) struct VerificationPage;

impl Handler for VerificationPage {
    const PROTECTED: bool = false;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        if request.method != Method::GET {
            return Reply::method_not_allowed(request, "GET");
        }
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let Some(code) = query.get("user_code") else {
            return Reply::text(
                StatusCode::OK,
                "authed mock: enter the code your device shows (?user_code=XXXX-XXXX)",
            );
        };
        let approve = !query.contains_key("deny");
        if cx.state.login.decide(code, approve) {
            let verdict = if approve { "approved" } else { "denied" };
            Reply::text(
                StatusCode::OK,
                format!("authed mock: device login {verdict}"),
            )
        } else {
            Reply::text(
                StatusCode::NOT_FOUND,
                "authed mock: no device login waits for this code",
            )
        }
    }
}

/// The device access token request (RFC 8628 §3.4, §3.5).
pub(super) fn device_code(form: &HashMap<String, String>, cx: &mut Cx<'_>) -> Reply {
    let Some(presented) = form.get("device_code") else {
        return bad_request("invalid_request", "device_code is missing");
    };
    let now = cx.now;
    let logins = &mut cx.state.login;
    let Some(i) = logins
        .devices
        .iter()
        .position(|d| d.device_code == *presented)
    else {
        return bad_request("invalid_grant", "the device code is unknown or was used");
    };
    let device = &mut logins.devices[i];
    if now >= device.expires_at {
        return bad_request("expired_token", "the device code expired; start again");
    }
    match device.decision {
        Decision::Denied => bad_request("access_denied", "the user denied the request"),
        Decision::Pending => {
            let too_soon = device
                .last_poll
                .is_some_and(|last| now.duration_since(last) < device.interval);
            device.last_poll = Some(now);
            if too_soon {
                device.interval += SLOW_DOWN_STEP;
                bad_request("slow_down", "polling faster than the interval")
            } else {
                bad_request(
                    "authorization_pending",
                    "the user has not approved the request yet",
                )
            }
        }
        Decision::Approved => {
            let device = logins.devices.remove(i);
            let refresh_token = cx.state.new_grant();
            issue(cx, &device.scope, Some(refresh_token), true)
        }
    }
}

// ===== authorization endpoint =====

/// `GET /oauth/authorize` (RFC 6749 §4.1.1 with RFC 7636 §4.3): approves at once, as a user
/// already signed in who clicks "allow", and redirects to the loopback `redirect_uri` with the
/// code and the `state`.
pub(super) struct AuthorizeEndpoint;

impl Handler for AuthorizeEndpoint {
    const PROTECTED: bool = false;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        if request.method != Method::GET {
            return Reply::method_not_allowed(request, "GET");
        }
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let param = |name: &str| query.get(name).map(String::as_str);
        // Errors about the client or the redirect URI are shown, never redirected (§4.1.2.1).
        if let Some(expected) = &cx.api.config.client_id
            && param("client_id") != Some(expected.as_str())
        {
            return Reply::text(StatusCode::BAD_REQUEST, "authed mock: unknown client_id")
                .error("invalid_client");
        }
        let Some(redirect) = param("redirect_uri")
            .and_then(|uri| Url::parse(uri).ok())
            .filter(is_loopback_redirect)
        else {
            return Reply::text(
                StatusCode::BAD_REQUEST,
                "authed mock: redirect_uri must be an http:// loopback URI (RFC 8252 §7.3)",
            )
            .error("invalid_request");
        };
        let state = param("state");
        let deny = |code: &'static str, description: &str| {
            let mut location = redirect.clone();
            location
                .query_pairs_mut()
                .append_pair("error", code)
                .append_pair("error_description", description)
                .extend_pairs(state.map(|s| ("state", s)));
            Reply::redirect(location.as_str()).error(code)
        };
        if param("response_type") != Some("code") {
            return deny("unsupported_response_type", "only response_type=code");
        }
        let challenge = match (param("code_challenge"), param("code_challenge_method")) {
            (Some(challenge), Some("S256")) if is_pkce_value(challenge) => challenge,
            _ => {
                return deny(
                    "invalid_request",
                    "PKCE with code_challenge_method=S256 is required",
                );
            }
        };
        let scope = match requested_scope(&query) {
            Ok(scope) => scope,
            Err(_) => return deny("invalid_scope", "the scope exceeds what the grant allows"),
        };
        if cx.state.login.deny_authorizations {
            return deny("access_denied", "the user denied the request");
        }
        let code = random_token("ac");
        cx.state.login.codes.insert(
            code.clone(),
            Code {
                redirect_uri: redirect.to_string(),
                challenge: challenge.to_owned(),
                scope,
                expires_at: cx.now + CODE_TTL,
            },
        );
        let mut location = redirect.clone();
        location
            .query_pairs_mut()
            .append_pair("code", &code)
            .extend_pairs(state.map(|s| ("state", s)));
        Reply::redirect(location.as_str())
    }
}

/// `http://127.0.0.1:<port>/…`, `http://[::1]:<port>/…` or `http://localhost:<port>/…`.
fn is_loopback_redirect(url: &Url) -> bool {
    url.scheme() == "http" && crate::origin::is_loopback(url) && url.fragment().is_none()
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]` (verifiers and S256 challenges).
fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The authorization code access token request (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub(super) fn authorization_code(form: &HashMap<String, String>, cx: &mut Cx<'_>) -> Reply {
    let param = |name: &str| form.get(name).map(String::as_str);
    let (Some(presented), Some(redirect_uri)) = (param("code"), param("redirect_uri")) else {
        return bad_request("invalid_request", "code and redirect_uri are required");
    };
    let logins = &mut cx.state.login;
    if logins.used_codes.iter().any(|c| c == presented) {
        return bad_request("invalid_grant", "the authorization code was already used");
    }
    let Some(code) = logins.codes.remove(presented) else {
        return bad_request("invalid_grant", "the authorization code is unknown");
    };
    logins.used_codes.push(presented.to_owned());
    if cx.now >= code.expires_at {
        return bad_request("invalid_grant", "the authorization code expired");
    }
    if code.redirect_uri != redirect_uri {
        return bad_request(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    let Some(verifier) = param("code_verifier").filter(|v| is_pkce_value(v)) else {
        return bad_request(
            "invalid_request",
            "code_verifier is missing or not 43 to 128 unreserved characters",
        );
    };
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != code.challenge {
        return bad_request(
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
        );
    }
    let refresh_token = cx.state.new_grant();
    issue(cx, &code.scope, Some(refresh_token), true)
}
