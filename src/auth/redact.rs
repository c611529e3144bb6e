//! The secrets an error must never show, in every form the client sent them.

use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};

/// How many secrets are remembered (the newest win): rotated refresh tokens pile up.
const KEPT: usize = 16;

/// Every secret the client holds or has sent: the client secret and its Basic credential, the
/// refresh tokens (configured and rotated). Errors built from responses are scrubbed of them.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Arc<Mutex<Vec<SecretString>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

impl Redactor {
    /// Remembers `secret` (ignored if already known).
    pub(crate) fn add(&self, secret: &str) {
        let mut secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if secrets.iter().any(|s| s.expose_secret() == secret) {
            return;
        }
        if secrets.len() >= KEPT {
            secrets.remove(0);
        }
        secrets.push(SecretString::from(secret.to_owned()));
    }

    /// Calls `f` with the secrets plus `extra` (the access token of the request).
    pub(crate) fn with<R>(&self, extra: Option<&str>, f: impl FnOnce(&[&str]) -> R) -> R {
        let secrets = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        all.extend(extra);
        f(&all)
    }
}
