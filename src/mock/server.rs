//! What every route shares: the state, the clock, the journal, faults, delays, the bearer check
//! and the rate limit. Each concern of the fake API is a [`Handler`]; [`Served`] wraps it into a
//! wiremock [`Respond`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, SystemTime},
};

use reqwest::{Method, StatusCode, header::HeaderValue};
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::{runtime::Handle, time::Instant};
use wiremock::{Match, Request, Respond, ResponseTemplate};

use super::{Exchange, Fault, Route, widgets::Widget};
use crate::{ClientAuth, ClientSecret};

/// The scopes of the grant; a token request may ask for a subset.
pub(super) const GRANTED_SCOPE: &str = "widgets:read widgets:write";

/// How the fake API behaves, as set on the [`MockApiBuilder`](super::MockApiBuilder).
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) token_ttl: Duration,
    pub(super) rotate_refresh_tokens: bool,
    pub(super) jwt_access_tokens: bool,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<ClientSecret>,
    pub(super) client_auth: ClientAuth,
    pub(super) rate_limit: Option<(u32, Duration)>,
    pub(super) rate_limit_headers: bool,
    pub(super) retry_after_http_date: bool,
    pub(super) widgets: u64,
    pub(super) max_page_size: usize,
    /// Added to every answer (real time, on the server's thread).
    pub(super) latency: Duration,
    /// Whether a rotating refresh revokes the access tokens issued before it.
    pub(super) revoke_on_rotation: bool,
    /// The `Retry-After` of a `429` status fault; `None` sends none.
    pub(super) fault_retry_after: Option<Duration>,
    /// The device authorization grant's polling interval and device code lifetime.
    pub(super) device_interval: Duration,
    pub(super) device_code_ttl: Duration,
}

impl Config {
    /// The client authentication the token endpoint demands, as a client with the same
    /// settings would choose it.
    pub(super) fn effective_client_auth(&self) -> ClientAuth {
        self.client_auth.resolve(self.client_secret.is_some())
    }

    pub(super) fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_ref().map(|s| s.expose_secret())
    }
}

/// The state of one fake API, shared by all its responders.
pub(super) struct Shared {
    pub(super) config: Config,
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub(super) base_url: String,
    /// The runtime that started the API, whose clock (paused or not) the server reads.
    runtime: Option<Handle>,
    state: Mutex<State>,
}

/// Everything that changes as requests come in.
pub(super) struct State {
    /// The refresh token of the grant.
    pub(super) refresh_token: String,
    /// Refresh tokens replaced by rotation: presenting one again is reuse.
    pub(super) retired: HashSet<String>,
    pub(super) grant_revoked: bool,
    pub(super) tokens: HashMap<String, Issued>,
    windows: HashMap<String, Window>,
    pub(super) widgets: BTreeMap<u64, Widget>,
    pub(super) next_widget_id: u64,
    faults: Vec<(Route, Fault, u32)>,
    /// Faults served at random: `(route, probability, status)`.
    random_faults: Vec<(Route, f64, StatusCode)>,
    delays: Vec<(Route, Duration)>,
    pub(super) journal: Vec<Exchange>,
    /// How far [`MockApi::advance`](super::MockApi::advance) moved the server's clock.
    pub(super) skew: Duration,
    /// Device codes and authorization codes of the login flows.
    pub(super) login: super::login::Logins,
    /// Counts checked when the API is dropped.
    pub(super) expectations: Vec<super::expect::Expectation>,
}

/// An access token the token endpoint issued.
pub(super) struct Issued {
    pub(super) expires_at: Instant,
    pub(super) revoked: bool,
    pub(super) scope: String,
    /// Minted from the user's grant (refresh token, login), not by `client_credentials`.
    pub(super) from_grant: bool,
}

/// A fixed rate-limit window of one access token.
struct Window {
    start: Instant,
    used: u32,
}

impl Shared {
    pub(super) fn new(config: Config, base_url: String) -> Self {
        let widgets = (1..=config.widgets)
            .map(|id| (id, Widget::seed(id)))
            .collect();
        let state = State {
            refresh_token: random_token("rt"),
            retired: HashSet::new(),
            grant_revoked: false,
            tokens: HashMap::new(),
            windows: HashMap::new(),
            widgets,
            next_widget_id: config.widgets + 1,
            faults: Vec::new(),
            random_faults: Vec::new(),
            delays: Vec::new(),
            journal: Vec::new(),
            skew: Duration::ZERO,
            login: Default::default(),
            expectations: Vec::new(),
        };
        Self {
            config,
            base_url,
            runtime: Handle::try_current().ok(),
            state: Mutex::new(state),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test must not turn every later request into a second panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server's clock: tokio's clock of the runtime that started the API, plus the skew.
    ///
    /// wiremock answers on its own thread and runtime, whose clock never pauses; entering the
    /// test's runtime makes `Instant::now()` read the test's clock (paused or not) instead.
    pub(super) fn now(&self, state: &State) -> Instant {
        let _runtime = self.runtime.as_ref().map(Handle::enter);
        Instant::now() + state.skew
    }
}

impl State {
    /// Revokes the grant: its refresh token and every access token issued from it.
    pub(super) fn revoke_grant(&mut self) {
        self.grant_revoked = true;
        self.tokens.values_mut().for_each(|t| t.revoked = true);
    }

    pub(super) fn add_fault(&mut self, route: Route, fault: Fault, times: u32) {
        if times > 0 {
            self.faults.push((route, fault, times));
        }
    }

    pub(super) fn set_fail_ratio(&mut self, route: Route, ratio: f64, status: StatusCode) {
        self.random_faults.retain(|(r, ..)| *r != route);
        if ratio > 0.0 {
            self.random_faults.push((route, ratio, status));
        }
    }

    /// A status fault drawn at random for `request`, as set by `MockApi::fail_ratio`.
    fn random_fault(&self, request: &Request) -> Option<Fault> {
        let (_, ratio, status) = self
            .random_faults
            .iter()
            .find(|(route, ..)| route.matches(request))?;
        (fastrand::f64() < *ratio).then_some(Fault::Status(*status))
    }

    pub(super) fn set_delay(&mut self, route: Route, delay: Duration) {
        self.delays.retain(|(r, _)| *r != route);
        if !delay.is_zero() {
            self.delays.push((route, delay));
        }
    }

    /// Consumes the first pending fault for `request` if `wanted` accepts it. Faults for one
    /// route are served in the order they were added.
    fn take_fault(&mut self, request: &Request, wanted: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|(route, ..)| route.matches(request))?;
        let (_, fault, left) = &mut self.faults[i];
        if !wanted(fault) {
            return None;
        }
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }

    /// The route's delay, else the configured latency.
    fn delay(&self, request: &Request, latency: Duration) -> Option<Duration> {
        self.delays
            .iter()
            .rev()
            .find(|(route, _)| route.matches(request))
            .map(|(_, d)| *d)
            .or((!latency.is_zero()).then_some(latency))
    }

    /// Starts a new grant (a fresh login): a new refresh token that works, whatever happened
    /// to the previous one.
    pub(super) fn new_grant(&mut self) -> String {
        self.refresh_token = random_token("rt");
        self.grant_revoked = false;
        self.retired.clear();
        self.refresh_token.clone()
    }

    /// Counts one request of `token` against its window.
    fn take_quota(&mut self, token: &str, limit: u32, per: Duration, now: Instant) -> Quota {
        let window = self.windows.entry(token.to_owned()).or_insert(Window {
            start: now,
            used: 0,
        });
        if now.duration_since(window.start) >= per {
            *window = Window {
                start: now,
                used: 0,
            };
        }
        let exceeded = window.used >= limit;
        if !exceeded {
            window.used += 1;
        }
        Quota {
            limit,
            remaining: limit - window.used,
            reset: ceil_secs((window.start + per).duration_since(now)).max(1),
            window: ceil_secs(per),
            exceeded,
        }
    }
}

/// Where a token stands in its rate-limit window.
struct Quota {
    limit: u32,
    remaining: u32,
    /// Seconds until the window resets.
    reset: u64,
    window: u64,
    exceeded: bool,
}

impl Quota {
    /// The IETF draft `RateLimit` / `RateLimit-Policy` fields
    /// (draft-ietf-httpapi-ratelimit-headers-09) and the common `X-RateLimit-*` trio
    /// (`X-RateLimit-Reset` in Unix seconds, as GitHub sends it).
    fn headers(&self, reply: Reply) -> Reply {
        let reset_at = SystemTime::now() + Duration::from_secs(self.reset);
        let epoch = reset_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        reply
            .header(
                "ratelimit-policy",
                format!("\"default\";q={};w={}", self.limit, self.window),
            )
            .header(
                "ratelimit",
                format!("\"default\";r={};t={}", self.remaining, self.reset),
            )
            .header("x-ratelimit-limit", self.limit)
            .header("x-ratelimit-remaining", self.remaining)
            .header("x-ratelimit-reset", epoch.as_secs())
    }

    fn too_many_requests(&self, http_date: bool) -> Reply {
        let retry_after = if http_date {
            // HTTP dates have whole seconds and are formatted rounded down: round up instead,
            // so the client never retries before the window resets.
            let at =
                SystemTime::now() + Duration::from_secs(self.reset) + Duration::from_millis(999);
            httpdate::fmt_http_date(at)
        } else {
            self.reset.to_string()
        };
        Reply::problem(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "rate limit of {} requests per {} s exceeded",
                self.limit, self.window
            ),
        )
        .header("retry-after", retry_after)
    }
}

// ===== Reply =====

/// A response being built: a [`ResponseTemplate`] that still knows its status, error code and
/// body (for the journal and for [`Fault::TruncatedBody`]).
pub(super) struct Reply {
    status: StatusCode,
    /// The OAuth or bearer error code, for the journal.
    error: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Option<(Vec<u8>, &'static str)>,
    /// A response of the user's own (from a protected route), sent as it is plus `headers`.
    template: Option<Box<ResponseTemplate>>,
}

impl Reply {
    pub(super) fn new(status: StatusCode) -> Self {
        Self {
            status,
            error: None,
            headers: Vec::new(),
            body: None,
            template: None,
        }
    }

    /// A response built by the user's own responder. Its status is read from the template's
    /// `Debug` output (wiremock has no getter), for the journal only.
    pub(super) fn template(template: ResponseTemplate) -> Self {
        let debug = format!("{template:?}");
        let status = debug
            .split_once("status_code: ")
            .and_then(|(_, rest)| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::OK);
        Self {
            template: Some(Box::new(template)),
            ..Self::new(status)
        }
    }

    /// A redirect to `location`.
    pub(super) fn redirect(location: &str) -> Self {
        Self::new(StatusCode::FOUND)
            .header("location", location)
            .header("cache-control", "no-store")
    }

    /// A plain text answer (the pages a browser would show).
    pub(super) fn text(status: StatusCode, text: impl Into<String>) -> Self {
        Self::new(status).body(text.into().into_bytes(), "text/plain; charset=utf-8")
    }

    pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => Self::new(status).body(bytes, "application/json"),
            Err(e) => Self::problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not encode the response: {e}"),
            ),
        }
    }

    /// An RFC 9457 `application/problem+json` error.
    pub(super) fn problem(status: StatusCode, detail: impl Into<String>) -> Self {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail.into(),
        });
        Self::new(status).body(body.to_string().into_bytes(), "application/problem+json")
    }

    /// An RFC 6749 §5.2 token endpoint error.
    pub(super) fn oauth_error(status: StatusCode, code: &'static str, description: &str) -> Self {
        let body = serde_json::json!({ "error": code, "error_description": description });
        Self::json(status, &body)
            .error(code)
            .header("cache-control", "no-store")
    }

    /// An RFC 6750 §3 bearer challenge: 401 or 403 with `WWW-Authenticate`.
    fn bearer_error(
        status: StatusCode,
        code: Option<&'static str>,
        detail: &str,
        extra: &str,
    ) -> Self {
        let challenge = match code {
            // §3.1: a request without any token gets a challenge without an error code.
            None => "Bearer realm=\"authed-mock\"".to_owned(),
            Some(code) => format!(
                "Bearer realm=\"authed-mock\", error=\"{code}\", error_description=\"{detail}\"{extra}"
            ),
        };
        let reply = Self::problem(status, detail).header("www-authenticate", challenge);
        match code {
            Some(code) => reply.error(code),
            None => reply,
        }
    }

    /// 403 `insufficient_scope` when the token lacks `scope`.
    pub(super) fn insufficient_scope(scope: &str) -> Self {
        let detail = format!("the access token lacks the {scope} scope");
        Self::bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            &detail,
            &format!(", scope=\"{scope}\""),
        )
    }

    /// 405 with the `Allow` header.
    pub(super) fn method_not_allowed(request: &Request, allow: &str) -> Self {
        let detail = format!(
            "{} is not allowed on {}",
            request.method,
            request.url.path()
        );
        Self::problem(StatusCode::METHOD_NOT_ALLOWED, detail).header("allow", allow)
    }

    pub(super) fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    fn body(mut self, bytes: Vec<u8>, mime: &'static str) -> Self {
        self.body = Some((bytes, mime));
        self
    }

    pub(super) fn error(mut self, code: &'static str) -> Self {
        self.error = Some(code);
        self
    }

    fn into_template(self) -> ResponseTemplate {
        let mut template = self
            .template
            .map_or_else(|| ResponseTemplate::new(self.status), |t| *t);
        for (name, value) in self.headers {
            // Every value is built here from text we control; skip rather than panic.
            if let Ok(value) = HeaderValue::try_from(value) {
                template = template.append_header(name, value);
            }
        }
        match self.body {
            Some((bytes, mime)) => template.set_body_raw(bytes, mime),
            None => template,
        }
    }
}

// ===== Handler and Served =====

/// One concern of the fake API (the token endpoint, the Widgets API, a collection, ...).
pub(super) trait Handler: Send + Sync + 'static {
    /// Whether requests need a valid bearer token and count against the rate limit.
    const PROTECTED: bool;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply;
}

/// What a handler sees besides the request.
pub(super) struct Cx<'a> {
    pub(super) api: &'a Shared,
    pub(super) state: &'a mut State,
    pub(super) now: Instant,
    /// The scope of the presented access token (empty on unprotected routes).
    pub(super) scope: String,
}

impl Cx<'_> {
    pub(super) fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// A [`Handler`] as a wiremock responder, adding what every route shares: faults, the bearer
/// check, the rate limit, delays and the journal.
pub(super) struct Served<H> {
    api: Arc<Shared>,
    handler: H,
}

impl<H: Handler> Served<H> {
    pub(super) fn new(api: &Arc<Shared>, handler: H) -> Self {
        Self {
            api: api.clone(),
            handler,
        }
    }

    fn serve(&self, request: &Request, state: &mut State, now: Instant) -> Reply {
        let api = &*self.api;
        if !H::PROTECTED {
            let mut cx = Cx {
                api,
                state,
                now,
                scope: String::new(),
            };
            return self.handler.handle(request, &mut cx);
        }
        let Some(token) = bearer_token(request) else {
            return Reply::bearer_error(
                StatusCode::UNAUTHORIZED,
                None,
                "an access token is required",
                "",
            );
        };
        let scope = match state.tokens.get(token) {
            None => Err("the access token is not known"),
            Some(t) if t.revoked => Err("the access token was revoked"),
            Some(t) if now >= t.expires_at => Err("the access token expired"),
            Some(t) => Ok(t.scope.clone()),
        };
        let scope = match scope {
            Ok(scope) => scope,
            Err(why) => {
                return Reply::bearer_error(
                    StatusCode::UNAUTHORIZED,
                    Some("invalid_token"),
                    why,
                    "",
                );
            }
        };
        let quota = api
            .config
            .rate_limit
            .map(|(limit, per)| state.take_quota(token, limit, per, now));
        let reply = match &quota {
            Some(quota) if quota.exceeded => {
                quota.too_many_requests(api.config.retry_after_http_date)
            }
            _ => self.handler.handle(
                request,
                &mut Cx {
                    api,
                    state,
                    now,
                    scope,
                },
            ),
        };
        match quota {
            Some(quota) if api.config.rate_limit_headers => quota.headers(reply),
            _ => reply,
        }
    }
}

impl<H: Handler> Respond for Served<H> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut guard = self.api.lock();
        let state = &mut *guard;
        let now = self.api.now(state);
        let fault = state
            .take_fault(request, |f| *f != Fault::Disconnect)
            .or_else(|| state.random_fault(request));
        let reply = match &fault {
            Some(Fault::Status(status)) => {
                let reply = Reply::problem(*status, "fault injected by MockApi::fail_next");
                match self.api.config.fault_retry_after {
                    Some(wait) if *status == StatusCode::TOO_MANY_REQUESTS => {
                        reply.header("retry-after", ceil_secs(wait))
                    }
                    _ => reply,
                }
            }
            Some(Fault::RateLimited(wait)) => {
                let reply = Reply::problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "fault injected by MockApi::fault_next",
                );
                match wait {
                    Some(wait) => reply.header("retry-after", ceil_secs(*wait)),
                    None => reply,
                }
            }
            Some(Fault::OAuthError(code)) => Reply::oauth_error(
                StatusCode::BAD_REQUEST,
                code,
                "fault injected by MockApi::fault_next",
            ),
            Some(Fault::MalformedJson) => Reply::new(StatusCode::OK)
                .body(br#"{"id": 1, "name": "Wid"#.to_vec(), "application/json"),
            Some(Fault::TruncatedBody) => {
                let mut reply = self.serve(request, state, now);
                if let Some((bytes, _)) = &mut reply.body {
                    bytes.truncate(bytes.len() / 2);
                }
                reply
            }
            Some(Fault::Disconnect) | None => self.serve(request, state, now),
        };
        state.journal.push(Exchange::new(
            request,
            Some(reply.status),
            reply.error,
            fault,
        ));
        let delay = state.delay(request, self.api.config.latency);
        let template = reply.into_template();
        match delay {
            Some(delay) => template.set_delay(delay),
            None => template,
        }
    }
}

/// Matches (and consumes) a pending [`Fault::Disconnect`]; mounted first, with
/// `respond_with_err`, which makes wiremock close the connection without answering.
pub(super) struct Disconnects(pub(super) Arc<Shared>);

impl Match for Disconnects {
    fn matches(&self, request: &Request) -> bool {
        let mut state = self.0.lock();
        let hit = state
            .take_fault(request, |f| *f == Fault::Disconnect)
            .is_some();
        if hit {
            state
                .journal
                .push(Exchange::new(request, None, None, Some(Fault::Disconnect)));
        }
        hit
    }
}

/// The error wiremock turns into a dropped connection.
pub(super) fn disconnect(_: &Request) -> io::Error {
    io::Error::other("connection dropped by MockApi fault injection")
}

/// The catch-all mounted last: a readable 404 instead of wiremock's empty one.
pub(super) struct NoRoute;

impl Handler for NoRoute {
    const PROTECTED: bool = false;

    fn handle(&self, request: &Request, _: &mut Cx<'_>) -> Reply {
        let detail = format!(
            "the mock API has no route for {} {}; mount one with MockApi::server()",
            request.method,
            request.url.path()
        );
        Reply::problem(StatusCode::NOT_FOUND, detail)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(request: &Request) -> Option<&str> {
    let value = request
        .headers
        .get(reqwest::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A random token with a recognizable prefix (`rt-…`, `at-…`).
pub(super) fn random_token(prefix: &str) -> String {
    let random: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect();
    let token = format!("{prefix}-{random}");
    match prefix {
        "at" => super::audit::record("access_token", &token),
        "rt" => super::audit::record("refresh_token", &token),
        "dc" | "ac" => super::audit::record("login_code", &token),
        _ => {}
    }
    token
}

/// Whole seconds, rounded up.
pub(super) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Route {
    pub(super) fn matches(&self, request: &Request) -> bool {
        self.matches_parts(&request.method, request.url.path())
    }

    pub(super) fn matches_parts(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method) && self.path == path
    }
}
