//! The device authorization grant (RFC 8628).

use std::{fmt, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use super::{Login, LoginTokens, login_error, seconds};
use crate::{
    AuthErrorKind, Error, ErrorKind, Result,
    auth::Replay,
    error::{scrub, truncate},
};

/// The `grant_type` of the device access token request (RFC 8628 §3.4).
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The polling interval when the server announces none (RFC 8628 §3.2).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Bounds on what the server announces, so that a broken answer cannot stall the program.
const MAX_INTERVAL: Duration = Duration::from_secs(300);
const MAX_LIFETIME: u64 = 24 * 3600;

/// RFC 8628 §3.5: each `slow_down` adds 5 seconds to the interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Consecutive failed polls (network errors, `5xx`) tolerated before giving up.
const MAX_POLL_FAILURES: u32 = 5;

/// A device login waiting for the user: show [`user_code`](Self::user_code) and
/// [`verification_uri`](Self::verification_uri), then call [`Login::finish_device`].
/// `Debug` does not show the device code.
pub struct DeviceAuthorization {
    device_code: SecretString,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_at: Instant,
    interval: Duration,
}

impl DeviceAuthorization {
    /// The code the user enters on the verification page (`WDJB-MJHT`).
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// The page where the user enters the code.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// The page with the code filled in, when the server offers one (for a QR code, say).
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// When the device code expires, on tokio's clock.
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// How long to wait between polls, as the server announced.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[redacted]")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawDeviceAuthorization {
    device_code: String,
    user_code: String,
    // Some servers (Google) still say `verification_url`.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: serde_json::Value,
    interval: Option<serde_json::Value>,
}

impl Login {
    /// Asks the device authorization endpoint for a device code and a user code
    /// (RFC 8628 §3.1). Show the user code and the verification URI to the user, then call
    /// [`finish_device`](Login::finish_device).
    ///
    /// Errors: a [`Config`](ErrorKind::Config) error without a
    /// [`device_authorization_url`](super::LoginBuilder::device_authorization_url); the
    /// server's refusal; a [`Decode`](ErrorKind::Decode) error for an answer that is not a
    /// device authorization response.
    pub async fn start_device(&self) -> Result<DeviceAuthorization> {
        let endpoint = self
            .device_authorization
            .as_ref()
            .ok_or_else(|| Error::config("the device flow needs a device authorization URL"))?;
        let mut form = Vec::new();
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        let sent = Instant::now();
        // Nothing in it is single-use: retried as a client-credentials token request would be.
        let body = endpoint.post(&form, &[], Replay::Safe).await.map_err(|e| {
            if e.kind() == ErrorKind::Auth(AuthErrorKind::InvalidResponse) {
                // The only answer `post` refuses unread: one over the size bound.
                e.with_kind(ErrorKind::Decode)
            } else {
                login_error(e)
            }
        })?;
        let raw: RawDeviceAuthorization = serde_json::from_slice(&body).map_err(|e| {
            let secrets = endpoint.credential_secrets();
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            // Scrubbed before the cut: a secret cut in two would leave its first part.
            let snippet = truncate(
                scrub(&String::from_utf8_lossy(&body), &secrets).as_bytes(),
                200,
            );
            Error::decode(
                format!("the device authorization response is not the JSON expected: {snippet}"),
                e,
            )
        })?;
        let invalid = |what: &str| {
            Error::auth(
                AuthErrorKind::InvalidResponse,
                format!("the device authorization response has an invalid {what}"),
            )
        };
        if raw.device_code.trim().is_empty() {
            return Err(invalid("device_code"));
        }
        // Both are shown to the user: no control characters (a terminal escape sequence could
        // rewrite what the user reads), and a sane length.
        if !is_displayable(&raw.user_code, 64) {
            return Err(invalid("user_code"));
        }
        if !is_displayable(&raw.verification_uri, 2048) {
            return Err(invalid("verification_uri"));
        }
        let lifetime =
            seconds(&raw.expires_in, MAX_LIFETIME).ok_or_else(|| invalid("expires_in"))?;
        let interval = match &raw.interval {
            None => DEFAULT_INTERVAL,
            Some(value) => {
                seconds(value, MAX_INTERVAL.as_secs()).ok_or_else(|| invalid("interval"))?
            }
        };
        Ok(DeviceAuthorization {
            device_code: SecretString::from(raw.device_code),
            user_code: raw.user_code,
            verification_uri: raw.verification_uri,
            verification_uri_complete: raw
                .verification_uri_complete
                .filter(|u| is_displayable(u, 2048)),
            // Counted from when the request was sent: the server's clock started no later.
            expires_at: sent + lifetime,
            interval,
        })
    }

    /// Polls the token endpoint until the user approves (RFC 8628 §3.4, §3.5): every
    /// `interval`, 5 seconds more after each `slow_down`, doubling after a network error or a
    /// `5xx` (at most five in a row).
    ///
    /// Errors: [`AuthErrorKind::AccessDenied`] when the user declines;
    /// [`AuthErrorKind::LoginExpired`] when the device code expires first (`expired_token`, or
    /// the announced lifetime passes); any other refusal of the server.
    pub async fn finish_device(&self, device: &DeviceAuthorization) -> Result<LoginTokens> {
        let mut interval = device.interval;
        let mut failures = 0;
        loop {
            if Instant::now() + interval >= device.expires_at {
                return Err(expired());
            }
            tokio::time::sleep(interval).await;
            let device_code = device.device_code.expose_secret();
            let form = [("grant_type", GRANT_TYPE), ("device_code", device_code)];
            // A device code is single-use once the user approved: never sent twice for one poll.
            let failed = match self
                .token
                .request(&form, &[device_code], Replay::NotConsumed)
                .await
            {
                Ok(response) => return Ok(response.into()),
                Err(e) => match e.api_error().and_then(|api| api.code.as_deref()) {
                    Some("authorization_pending") => {
                        failures = 0;
                        continue;
                    }
                    Some("slow_down") => {
                        failures = 0;
                        interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
                        continue;
                    }
                    _ if e.status().is_some_and(|s| s.is_server_error())
                        || matches!(e.kind(), ErrorKind::Transport | ErrorKind::Timeout) =>
                    {
                        e
                    }
                    _ => return Err(login_error(e)),
                },
            };
            failures += 1;
            if failures >= MAX_POLL_FAILURES {
                return Err(failed);
            }
            interval = (interval * 2).min(MAX_INTERVAL);
        }
    }
}

/// Not blank, at most `max` bytes, no control characters.
fn is_displayable(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.len() <= max && !text.chars().any(char::is_control)
}

fn expired() -> Error {
    Error::auth(
        AuthErrorKind::LoginExpired,
        "the device code expired before the user approved: start again",
    )
}
