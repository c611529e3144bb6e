//! Bad input gets a clear, typed error: from the token endpoint, from the API, from the
//! environment and from the caller.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use authed::{AuthErrorKind, Client, ErrorKind};
use common::builder;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// Mounts `response` as the token endpoint and returns the error a request gets.
async fn token_endpoint_error(response: ResponseTemplate) -> authed::Error {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    // No retries: each case is about what one answer means (tests/retry.rs covers retries).
    let client = builder(&server)
        .timeout(Duration::from_millis(500))
        .retry_policy(authed::retry::Policy::never())
        .build()
        .unwrap();
    client.get("/me").send::<Value>().await.unwrap_err()
}

fn json_200(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn malformed_token_responses_are_typed_errors() {
    let cases = [
        (
            "HTML",
            ResponseTemplate::new(200).set_body_raw("<html>login</html>", "text/html"),
            ErrorKind::Decode,
            "not a JSON token response",
        ),
        (
            "no access_token",
            json_200(json!({"token_type": "Bearer", "expires_in": 60})),
            ErrorKind::Auth(AuthErrorKind::InvalidResponse),
            "no access_token",
        ),
        (
            "negative expires_in",
            json_200(json!({"access_token": "a", "token_type": "Bearer", "expires_in": -5})),
            ErrorKind::Auth(AuthErrorKind::InvalidResponse),
            "not a positive number",
        ),
        (
            "zero expires_in",
            json_200(json!({"access_token": "a", "token_type": "Bearer", "expires_in": 0})),
            ErrorKind::Auth(AuthErrorKind::InvalidResponse),
            "not a positive number",
        ),
        (
            "string expires_in",
            json_200(json!({"access_token": "a", "token_type": "Bearer", "expires_in": "soon"})),
            ErrorKind::Auth(AuthErrorKind::InvalidResponse),
            "is not a number",
        ),
        (
            "mac token",
            json_200(json!({"access_token": "a", "token_type": "mac", "expires_in": 60})),
            ErrorKind::Auth(AuthErrorKind::InvalidResponse),
            "only Bearer tokens are supported",
        ),
        (
            "200 with an error body",
            json_200(json!({"error": "invalid_grant", "error_description": "expired"})),
            ErrorKind::Auth(AuthErrorKind::InvalidGrant),
            "re-authentication required",
        ),
        (
            "400 invalid_grant",
            ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})),
            ErrorKind::Auth(AuthErrorKind::InvalidGrant),
            "re-authentication required",
        ),
        (
            "401 invalid_client",
            ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})),
            ErrorKind::Auth(AuthErrorKind::InvalidClient),
            "rejected the client credentials",
        ),
        (
            "400 invalid_scope",
            ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_scope"})),
            ErrorKind::Auth(AuthErrorKind::Rejected),
            "invalid_scope",
        ),
        (
            "500 with HTML",
            ResponseTemplate::new(500).set_body_raw("<h1>oops</h1>", "text/html"),
            ErrorKind::Auth(AuthErrorKind::Rejected),
            "HTTP 500",
        ),
        (
            "hung connection",
            json_200(common::token_body("a", 60)).set_delay(Duration::from_secs(5)),
            ErrorKind::Timeout,
            "token endpoint",
        ),
    ];
    for (case, response, kind, text) in cases {
        let err = token_endpoint_error(response).await;
        assert_eq!(err.kind(), kind, "{case}: {err}");
        assert!(err.to_string().contains(text), "{case}: {err}");
        assert!(!err.to_string().contains(common::REFRESH_TOKEN), "{case}");
    }
}

#[tokio::test]
async fn lenient_but_sound_token_responses_are_accepted() {
    for body in [
        json!({"access_token": "a", "token_type": "bearer", "expires_in": "3599"}),
        json!({"access_token": "a", "token_type": "BEARER", "expires_in": 60.5}),
        json!({"access_token": "a", "expires_in": 60}),
        json!({"access_token": "a", "token_type": "Bearer"}),
        // Clamped to ten years; a token that dies earlier gets a 401 and a refresh.
        json!({"access_token": "a", "expires_in": 1e20}),
        json!({"access_token": "a", "expires_in": 2_147_483_648_u64}),
        // A scope of the wrong type is ignored, not a reason to fail.
        json!({"access_token": "a", "expires_in": 60, "scope": 5}),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(common::TOKEN_PATH))
            .respond_with(json_200(body.clone()))
            .mount(&server)
            .await;
        let client = builder(&server).build().unwrap();
        client
            .access_token()
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

#[tokio::test]
async fn a_token_without_expires_in_uses_the_jwt_exp_then_the_default() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let jwt = format!(
        "eyJhbGciOiJub25lIn0.{}.sig",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#))
    );
    for (token, lifetime) in [(jwt.as_str(), 600), ("opaque", 15 * 60)] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(common::TOKEN_PATH))
            .respond_with(json_200(
                json!({"access_token": token, "token_type": "Bearer"}),
            ))
            .mount(&server)
            .await;
        let client = builder(&server).build().unwrap();
        let before = tokio::time::Instant::now();
        let token = client.access_token().await.unwrap();
        let left = token.expires_at() - before;
        assert!(
            left.as_secs().abs_diff(lifetime) <= 2,
            "{token:?}: expected ~{lifetime}s, got {left:?}"
        );
    }
}

#[tokio::test]
async fn api_errors_carry_status_problem_body_and_request_id() {
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/widgets/7"))
        .respond_with(
            ResponseTemplate::new(404)
                .insert_header("x-request-id", "req-7")
                .set_body_raw(
                    r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"widget 7 does not exist"}"#,
                    "application/problem+json",
                ),
        )
        .mount(&server)
        .await;

    let err = client
        .get("/v1/widgets/7")
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.status(), Some(authed::StatusCode::NOT_FOUND));
    assert_eq!(err.request_id(), Some("req-7"));
    let api = err.api_error().unwrap();
    assert_eq!(api.title.as_deref(), Some("Not Found"));
    assert_eq!(api.detail.as_deref(), Some("widget 7 does not exist"));
    assert!(api.raw.contains("widget 7"));
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "GET /v1/widgets/7 failed (HTTP 404 Not Found): widget 7 does not exist [request id req-7]"
    );
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_decode_error() {
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/count"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"count": "many"})))
        .mount(&server)
        .await;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Count {
        count: u64,
    }
    let err = client.get("/count").send::<Count>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("GET /count"), "{err}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("invalid type"), "{source}");
}

#[tokio::test]
async fn requests_cover_methods_query_headers_bodies_and_no_content() {
    let (server, client) = common::setup().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/widgets/3"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;

    client.delete("/v1/widgets/3").send::<()>().await.unwrap();
    client
        .put("/v1/widgets/3")
        .json(&json!({"name": "x"}))
        .send::<Value>()
        .await
        .unwrap();
    client
        .patch("v1/widgets/3")
        .form(&[("name", "y z")])
        .send::<Value>()
        .await
        .unwrap();
    client
        .get("/v1/widgets?color=blue")
        .query(&[("take", "5")])
        .header("x-trace", "t-1")
        .send::<Value>()
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path() != common::TOKEN_PATH)
        .collect();
    assert_eq!(api[1].method.as_str(), "PUT");
    assert_eq!(api[1].headers["content-type"], "application/json");
    assert_eq!(api[2].body, b"name=y+z");
    assert_eq!(api[3].url.query(), Some("color=blue&take=5"));
    assert_eq!(api[3].headers["x-trace"], "t-1");
    assert!(
        api.iter()
            .all(|r| r.headers["authorization"] == "Bearer at-test-access-0123456789")
    );
}

#[tokio::test]
async fn the_base_url_path_is_kept_when_joining() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    Mock::given(method("GET"))
        .and(path("/api/v2/me"))
        .respond_with(json_200(json!({"id": 1})))
        .expect(2)
        .mount(&server)
        .await;
    let client = builder(&server)
        .base_url(format!("{}/api/v2", server.uri()))
        .build()
        .unwrap();

    client.get("/me").send::<Value>().await.unwrap();
    client.get("me").send::<Value>().await.unwrap();
}

#[tokio::test]
async fn invalid_request_input_is_reported_by_send() {
    let (_server, client) = common::setup().await;
    let err = client
        .get("/me")
        .header("bad header\n", "x")
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = client
        .get("http://example.com/me")
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("plain http://"), "{err}");
}

#[test]
fn missing_or_empty_env_vars_are_named() {
    // Each case uses its own prefix: tests in this binary run in parallel.
    let set = |name: &str, value: &str| unsafe { std::env::set_var(name, value) };
    set("T1_BASE_URL", "https://api.example.com");
    set("T1_TOKEN_URL", "https://auth.example.com/token");
    let err = Client::from_env_prefixed("T1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("T1_REFRESH_TOKEN"), "{err}");

    set("T2_BASE_URL", "https://api.example.com");
    set("T2_TOKEN_URL", "https://auth.example.com/token");
    set("T2_REFRESH_TOKEN", "   ");
    let err = Client::from_env_prefixed("T2").unwrap_err();
    assert!(err.to_string().contains("T2_REFRESH_TOKEN"), "{err}");

    set("T3_BASE_URL", "not a url");
    let err = Client::from_env_prefixed("T3").unwrap_err();
    assert!(
        err.to_string().contains("T3_BASE_URL is not a valid URL"),
        "{err}"
    );

    set("T4_BASE_URL", "http://api.example.com");
    let err = Client::from_env_prefixed("T4").unwrap_err();
    assert!(
        err.to_string().contains("T4_BASE_URL uses plain http://"),
        "{err}"
    );

    set("T5_BASE_URL", "http://127.0.0.1:9/");
    set("T5_TOKEN_URL", "http://localhost:9/token");
    set("T5_REFRESH_TOKEN", "rt-env-secret-value");
    set("T5_CLIENT_SECRET", "");
    let client = Client::from_env_prefixed("T5").expect("loopback http is allowed");
    assert_eq!(client.base_url().as_str(), "http://127.0.0.1:9/");
    assert!(!format!("{client:?}").contains("rt-env-secret-value"));
}

#[test]
fn the_builder_reports_the_first_problem_at_build() {
    let err = Client::builder().build().unwrap_err();
    assert!(err.to_string().contains("base URL is not set"), "{err}");
    let err = Client::builder()
        .base_url("https://api.example.com")
        .token_url("http://auth.example.com/token")
        .refresh_token("rt")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("token URL uses plain http://"),
        "{err}"
    );
    let err = Client::builder()
        .base_url("https://api.example.com")
        .token_url("https://auth.example.com/token")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("refresh token is not set"),
        "{err}"
    );
}
