//! Helpers shared by the integration tests: a token endpoint on a wiremock server and a client
//! configured against it.
#![allow(dead_code)] // each test binary uses a different subset

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
