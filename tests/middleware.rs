//! `reqwest-middleware` integration: `AuthMiddleware` (bearer token from the client's cache,
//! 401 → refresh → replay) and `RetryMiddleware` (the client's retry policy), against the mock
//! API and wiremock servers.
#![cfg(all(feature = "middleware", feature = "mock"))]

mod common;

use std::time::Duration;

use authed::{Client, mock::MockApi, retry::Policy};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// A reqwest client with no idle-pool timer, so that paused-time tests do not fire it.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

/// The recommended stack: retries outermost, so that each attempt gets a current token.
fn stack(client: &Client) -> ClientWithMiddleware {
    ClientBuilder::new(http())
        .with(client.retry_middleware())
        .with(client.auth_middleware())
        .build()
}

fn auth_only(client: &Client) -> ClientWithMiddleware {
    ClientBuilder::new(http())
        .with(client.auth_middleware())
        .build()
}

#[tokio::test]
async fn auth_middleware_adds_the_token_and_replays_after_the_server_expired_it() {
    let api = MockApi::start().await;
    let client = api.client();
    let http = auth_only(&client);
    let me = format!("{}/v1/me", api.base_url());

    let first = http.get(&me).send().await.unwrap();
    assert_eq!(first.status(), 200);
    api.expire_access_tokens();
    let second = http.get(&me).send().await.unwrap();

    assert_eq!(second.status(), 200, "the 401 after expiry is replayed");
    let stats = api.stats();
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.refreshes, 2);
}

#[tokio::test]
async fn auth_middleware_shares_the_clients_token_cache() {
    let api = MockApi::start().await;
    let client = api.client();
    let http = auth_only(&client);

    let _: serde_json::Value = client.get("/v1/me").send().await.unwrap();
    let response = http
        .get(format!("{}/v1/me", api.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        api.stats().refreshes,
        1,
        "one token for the client and its middleware"
    );
}

#[tokio::test]
async fn auth_middleware_sends_no_token_to_another_origin() {
    let api = MockApi::start().await;
    let client = api.client();
    let other = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&other)
        .await;

    let response = auth_only(&client)
        .get(format!("{}/elsewhere", other.uri()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let received = common::received(&other, "/elsewhere").await;
    assert_eq!(received.len(), 1);
    assert_eq!(common::bearer(&received[0]), None);
    assert_eq!(api.stats().token_requests, 0, "no token was even fetched");
}

#[tokio::test]
async fn auth_middleware_reports_a_revoked_grant_as_reauth_required() {
    let api = MockApi::start().await;
    let client = api.client();
    let http = auth_only(&client);
    let me = format!("{}/v1/me", api.base_url());
    assert_eq!(http.get(&me).send().await.unwrap().status(), 200);

    api.revoke_grant();
    let err = http.get(&me).send().await.unwrap_err();

    let reqwest_middleware::Error::Middleware(err) = err else {
        panic!("expected authed's error, got {err:?}");
    };
    let err = err
        .downcast_ref::<authed::Error>()
        .expect("an authed::Error");
    assert!(err.is_reauth_required(), "{err}");
    assert!(!format!("{err:?}").contains(api.refresh_token().expose()));
}

/// Exposes a refresh token's text for a "never in the output" check.
trait Expose {
    fn expose(&self) -> &str;
}

impl Expose for authed::RefreshToken {
    fn expose(&self) -> &str {
        authed::ExposeSecret::expose_secret(self)
    }
}

#[tokio::test(start_paused = true)]
async fn retry_middleware_waits_for_retry_after_then_succeeds() {
    let api = MockApi::start().await;
    let client = api.client();
    Mock::given(method("GET"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(api.server())
        .await;
    Mock::given(method("GET"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(api.server())
        .await;

    let started = tokio::time::Instant::now();
    let response = stack(&client)
        .get(format!("{}/busy", api.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "Retry-After was honoured"
    );
    assert_eq!(common::received(api.server(), "/busy").await.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_middleware_starts_the_clients_cooldown() {
    let api = MockApi::start().await;
    let client = api.client();
    Mock::given(method("GET"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(api.server())
        .await;
    let http = ClientBuilder::new(http())
        .with(client.retry_middleware().with_policy(Policy::never()))
        .with(client.auth_middleware())
        .build();

    let response = http
        .get(format!("{}/busy", api.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "the last response is handed back");
    let started = tokio::time::Instant::now();
    let _: serde_json::Value = client.get("/v1/me").send().await.unwrap();

    assert!(
        started.elapsed() >= Duration::from_secs(29),
        "the client waited out the cooldown the middleware saw: {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_middleware_retries_a_502_only_for_idempotent_requests() {
    let api = MockApi::start().await;
    let client = api
        .client_builder()
        .retry_policy(Policy::default().max_attempts(3))
        .build()
        .unwrap();
    Mock::given(path("/flaky"))
        .respond_with(ResponseTemplate::new(502))
        .mount(api.server())
        .await;
    let http = stack(&client);
    let url = format!("{}/flaky", api.base_url());

    let post = http.post(&url).body("{}").send().await.unwrap();
    let posts = common::received(api.server(), "/flaky").await.len();
    let keyed = http
        .post(&url)
        .header("idempotency-key", "k-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    let keyed_posts = common::received(api.server(), "/flaky").await.len() - posts;
    let get = http.get(&url).send().await.unwrap();
    let gets = common::received(api.server(), "/flaky").await.len() - posts - keyed_posts;

    for response in [&post, &keyed, &get] {
        assert_eq!(response.status(), 502);
    }
    assert_eq!(posts, 1, "a POST without an Idempotency-Key is sent once");
    assert_eq!(keyed_posts, 3, "a POST with an Idempotency-Key is retried");
    assert_eq!(gets, 3, "a GET is retried up to max_attempts");
}

#[tokio::test(start_paused = true)]
async fn retries_and_the_401_replay_work_together() {
    let api = MockApi::start().await;
    let client = api.client();
    let http = stack(&client);
    let me = format!("{}/v1/me", api.base_url());
    assert_eq!(http.get(&me).send().await.unwrap().status(), 200);

    api.expire_access_tokens();
    api.fail_next("GET /v1/me", 1, 503);
    let response = http.get(&me).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let stats = api.stats();
    assert_eq!(stats.refreshes, 2);
    assert_eq!(api.requests("GET /v1/me"), 4, "200, 503, 401, 200");
}

#[tokio::test]
async fn auth_middleware_replays_once_then_returns_the_second_401() {
    let api = MockApi::start().await;
    let client = api.client();
    Mock::given(path("/locked"))
        .respond_with(ResponseTemplate::new(401))
        .mount(api.server())
        .await;

    let response = auth_only(&client)
        .get(format!("{}/locked", api.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.status(),
        401,
        "the second refusal is returned as is"
    );
    assert_eq!(common::received(api.server(), "/locked").await.len(), 2);
    assert_eq!(api.stats().refreshes, 2, "one refresh for the one replay");
}

#[tokio::test]
async fn auth_middleware_keeps_an_authorization_header_set_by_the_caller() {
    let api = MockApi::start().await;
    let client = api.client();
    Mock::given(path("/own"))
        .respond_with(ResponseTemplate::new(200))
        .mount(api.server())
        .await;

    auth_only(&client)
        .get(format!("{}/own", api.base_url()))
        .header("authorization", "Basic dXNlcjpwdw==")
        .send()
        .await
        .unwrap();

    let received = common::received(api.server(), "/own").await;
    assert_eq!(
        common::bearer(&received[0]).as_deref(),
        Some("Basic dXNlcjpwdw==")
    );
    assert_eq!(api.stats().token_requests, 0);
}

/// The `authed::Error` inside a middleware error.
fn authed_error(err: &reqwest_middleware::Error) -> &authed::Error {
    match err {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref().expect("an authed::Error"),
        other => panic!("not an authed error: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_token_wait_is_bounded_by_the_requests_timeout() {
    let api = MockApi::start().await;
    api.set_delay(
        authed::mock::Route::token_endpoint(),
        Duration::from_secs(3),
    );
    let client = api.client(); // no timeout of its own: only the request's bounds the wait
    let http = auth_only(&client);
    let started = tokio::time::Instant::now();

    let err = http
        .get(format!("{}/v1/me", api.base_url()))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();

    let err = authed_error(&err);
    assert_eq!(err.kind(), authed::ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("access token"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}

/// A token source that never answers (a token endpoint that hangs without a timer of its
/// own): only a bound on the wait ends a request.
#[derive(Debug)]
struct NeverAnswers;

impl authed::TokenSource for NeverAnswers {
    fn fetch<'a>(&'a self, _: Option<&'a authed::AccessToken>) -> authed::auth::TokenFuture<'a> {
        Box::pin(std::future::pending())
    }

    fn grant(&self) -> &str {
        "never"
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_request_timeout_the_clients_timeout_bounds_the_token_wait() {
    let api = MockApi::start().await;
    let client = authed::Client::builder()
        .base_url(api.base_url())
        .token_source(NeverAnswers)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let http = auth_only(&client);
    let started = tokio::time::Instant::now();

    let sent = http.get(format!("{}/v1/me", api.base_url())).send();
    let err = tokio::time::timeout(Duration::from_secs(60), sent)
        .await
        .expect("the token wait is bounded")
        .unwrap_err();

    assert_eq!(authed_error(&err).kind(), authed::ErrorKind::Timeout);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}
