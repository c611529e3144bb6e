//! Users' own routes behind the mock's bearer check.

use std::{fmt, sync::Arc};

use wiremock::{Request, Respond, ResponseTemplate};

use super::server::{Cx, Handler, Reply, Served, Shared};

/// A responder of yours behind the [`MockApi`](super::MockApi)'s bearer check, made by
/// [`MockApi::protect`](super::MockApi::protect).
///
/// A request reaches your responder only with a live access token of this API: a missing,
/// unknown, expired or revoked one gets the same `401` as the built-in routes. Faults, the
/// rate limit, delays, the journal and the expectations apply as they do to the built-in
/// routes, except [`Fault::TruncatedBody`](super::Fault::TruncatedBody): your response is
/// sent whole.
pub struct Protected<R> {
    served: Served<UserRoute<R>>,
}

impl<R: Respond + 'static> Protected<R> {
    pub(super) fn new(api: &Arc<Shared>, responder: R) -> Self {
        Self {
            served: Served::new(api, UserRoute(responder)),
        }
    }
}

impl<R> fmt::Debug for Protected<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protected").finish_non_exhaustive()
    }
}

impl<R: Respond + 'static> Respond for Protected<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.served.respond(request)
    }
}

/// The user's responder as a [`Handler`] of a protected route.
struct UserRoute<R>(R);

impl<R: Respond + 'static> Handler for UserRoute<R> {
    const PROTECTED: bool = true;

    fn handle(&self, request: &Request, _: &mut Cx<'_>) -> Reply {
        Reply::template(self.0.respond(request))
    }
}
