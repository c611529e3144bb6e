//! What the `middleware` and `tower` integrations need from a client: its token cache, its
//! origin rule, its 401 replay rule and its name, in one place so that neither reaches into
//! the transport's internals.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::{
    Client, Result,
    auth::AccessToken,
    transport::{self, MAX_401_REPLAYS, Shared},
};

/// A client's auth state, shared with the client it came from (same token cache).
#[derive(Clone)]
pub(crate) struct Auth {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("client", &self.shared.name)
            .field(
                "origin",
                &crate::origin::Origin(&self.shared.base_url).to_string(),
            )
            .finish()
    }
}

impl Auth {
    pub(crate) fn new(client: &Client) -> Self {
        Self {
            shared: Arc::clone(&client.inner),
        }
    }

    /// Whether a request to `scheme://host:port` goes to the API origin (`port` `None`: the
    /// scheme's default).
    pub(crate) fn is_api_origin_parts(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let base = &self.shared.base_url;
        let default_port = match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        base.scheme().eq_ignore_ascii_case(scheme)
            && base
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(host))
            && base.port_or_known_default() == port.or(default_port)
    }

    /// A valid access token, waited for until `deadline` at most (`None`: no bound), as the
    /// client's own send path bounds the wait by the request's timeout.
    pub(crate) async fn token_until(&self, deadline: Option<Instant>) -> Result<Arc<AccessToken>> {
        transport::token_until(&self.shared, deadline).await.0
    }

    /// The client's own time budget of one attempt ([`ClientBuilder::timeout`](crate::ClientBuilder::timeout)),
    /// for a request that brings none.
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.shared.timeout
    }

    /// After the API answered `401` to `token` on replay number `replays`: whether to send the
    /// request again, with the same rule as the client's own send path — the first `401`
    /// replays once; more only while the token that failed had been superseded meanwhile, at
    /// most `MAX_401_REPLAYS` times. Invalidates `token` when it says yes.
    pub(crate) fn replay_after_401(&self, token: &AccessToken, replays: u32) -> bool {
        if replays >= MAX_401_REPLAYS {
            return false;
        }
        let superseded = self.shared.tokens.is_superseded(token);
        if replays > 0 && !superseded {
            return false;
        }
        tracing::debug!(
            target: "authed::request",
            superseded,
            "401 from the API; replaying with a fresh token"
        );
        self.shared.tokens.invalidate(token);
        #[cfg(feature = "metrics")]
        crate::metrics::replay_401(&self.shared.name);
        true
    }

    /// The span of one request through an integration: the same fields as the client's own
    /// request span (client name, origin, method, path).
    pub(crate) fn request_span(
        &self,
        method: &str,
        origin: &dyn std::fmt::Display,
        path: &str,
    ) -> tracing::Span {
        tracing::info_span!(
            target: "authed::request",
            "request",
            client = %self.shared.name,
            origin = %origin,
            method = %method,
            path,
        )
    }

    /// Counts one request (feature `metrics`).
    pub(crate) fn count_request(&self) {
        #[cfg(feature = "metrics")]
        crate::metrics::request(&self.shared.name);
    }

    /// Counts a `429` answer from the API (feature `metrics`).
    pub(crate) fn count_status(&self, _status: u16) {
        #[cfg(feature = "metrics")]
        if _status == 429 {
            crate::metrics::rate_limited(&self.shared.name);
        }
    }
}
