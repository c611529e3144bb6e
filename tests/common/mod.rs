//! Helpers shared by the integration tests: a token endpoint on a wiremock server and a client
//! configured against it.
#![allow(dead_code)] // each test binary uses a different subset

pub mod hostile;

use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// The refresh token every test client starts with.
pub const REFRESH_TOKEN: &str = "rt-test-refresh-0123456789";
/// The access token the default token endpoint issues.
pub const ACCESS_TOKEN: &str = "at-test-access-0123456789";
/// Where the token endpoint is mounted.
pub const TOKEN_PATH: &str = "/oauth/token";

/// A successful token response body.
pub fn token_body(access_token: &str, expires_in: u64) -> serde_json::Value {
    json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": expires_in })
}

/// Mounts a token endpoint that always issues [`ACCESS_TOKEN`] for an hour.
pub async fn mount_token_endpoint(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body(ACCESS_TOKEN, 3600)))
        .named("token endpoint")
        .mount(server)
        .await;
}

/// A builder configured against `server` (API and token endpoint on the same server).
pub fn builder(server: &MockServer) -> authed::ClientBuilder {
    authed::Client::builder()
        .base_url(server.uri())
        .token_url(format!("{}{TOKEN_PATH}", server.uri()))
        .refresh_token(REFRESH_TOKEN)
        .client_id("test-client")
}

/// A server with a token endpoint, and a client configured against it.
pub async fn setup() -> (MockServer, authed::Client) {
    let server = MockServer::start().await;
    mount_token_endpoint(&server).await;
    let client = builder(&server).build().expect("test client builds");
    (server, client)
}

/// A clock that only moves when told to: token expiry without waiting.
#[derive(Clone, Debug)]
pub struct TestClock {
    offset: std::sync::Arc<std::sync::Mutex<std::time::Duration>>,
    start: tokio::time::Instant,
    start_utc: std::time::SystemTime,
}

impl TestClock {
    pub fn new() -> Self {
        Self {
            offset: Default::default(),
            start: tokio::time::Instant::now(),
            start_utc: std::time::SystemTime::now(),
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        *self.offset.lock().unwrap() += by;
    }

    fn offset(&self) -> std::time::Duration {
        *self.offset.lock().unwrap()
    }
}

impl authed::Clock for TestClock {
    fn now(&self) -> tokio::time::Instant {
        self.start + self.offset()
    }

    fn now_utc(&self) -> std::time::SystemTime {
        self.start_utc + self.offset()
    }
}

/// A token endpoint that issues `at-1`, `at-2`, ... with the given lifetime, and records the
/// refresh token presented each time. With `rotate`, it also issues `rt-1`, `rt-2`, ...
#[derive(Clone, Default)]
pub struct TokenIssuer {
    pub expires_in: u64,
    pub rotate: bool,
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenIssuer {
    pub fn new(expires_in: u64) -> Self {
        Self {
            expires_in,
            ..Default::default()
        }
    }

    pub fn rotating(mut self) -> Self {
        self.rotate = true;
        self
    }

    pub fn issued(&self) -> usize {
        self.issued.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn mount(&self, server: &MockServer) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(self.clone())
            .named("token endpoint")
            .mount(server)
            .await;
    }
}

impl wiremock::Respond for TokenIssuer {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let mut body = token_body(&format!("at-{n}"), self.expires_in);
        if self.rotate {
            body["refresh_token"] = json!(format!("rt-{n}"));
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// The form fields of a recorded token request.
pub fn form(request: &wiremock::Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

/// The requests `server` received on `path_`, in order.
pub async fn received(server: &MockServer, path_: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path_)
        .collect()
}

/// The `Authorization` header of a recorded request.
pub fn bearer(request: &wiremock::Request) -> Option<String> {
    request
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Collects everything a `tracing` subscriber at TRACE level writes, for every target.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The process-wide capture. A global subscriber (not a scoped one) is used because tests
    /// run on several threads, and `log` records (from reqwest) are captured too. Every test
    /// of a binary that installs it has everything it logs checked.
    pub fn install() -> Self {
        static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        CAPTURED
            .get_or_init(|| {
                let logs = Captured::default();
                let writer = logs.clone();
                tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::TRACE)
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .init();
                logs
            })
            .clone()
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
