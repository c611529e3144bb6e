//! The tower layer: bearer token from the client's cache and the 401 replay, with a hyper
//! client against the mock API, and a gRPC-shaped service for the `UNAUTHENTICATED` replay.
#![cfg(all(feature = "tower", feature = "mock"))]

mod common;

use std::{
    convert::Infallible,
    future::{Ready, poll_fn, ready},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use tower_layer::Layer;
use tower_service::Service;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use authed::{mock::MockApi, tower::AuthService};

type Hyper = HyperClient<HttpConnector, Full<Bytes>>;

fn hyper() -> Hyper {
    HyperClient::builder(TokioExecutor::new()).build_http()
}

async fn get<S>(service: &mut S, url: &str) -> (http::StatusCode, Bytes)
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: std::fmt::Debug,
{
    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let request = http::Request::get(url).body(Full::default()).unwrap();
    let response = service.call(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

#[tokio::test]
async fn layer_adds_the_token_and_replays_after_the_server_expired_it() {
    let api = MockApi::start().await;
    let client = api.client();
    let mut service: AuthService<Hyper> = client.auth_layer().layer(hyper());
    let me = format!("{}/v1/me", api.base_url());

    let (first, _) = get(&mut service, &me).await;
    api.expire_access_tokens();
    let (second, body) = get(&mut service, &me).await;

    assert_eq!(first, 200);
    assert_eq!(second, 200, "the 401 after expiry is replayed: {body:?}");
    let stats = api.stats();
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.refreshes, 2);
}

#[tokio::test]
async fn layer_replays_a_post_body_after_a_401() {
    let api = MockApi::start().await;
    let client = api.client();
    let mut service = client.auth_layer().layer(hyper());
    let _: serde_json::Value = client.get("/v1/me").send().await.unwrap();
    api.expire_access_tokens();

    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let request = http::Request::post(format!("{}/v1/widgets", api.base_url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"name":"sprocket","color":"blue","weight_grams":120}"#,
        )))
        .unwrap();
    let response = service.call(request).await.unwrap();

    assert_eq!(response.status(), 201, "the replay carried the body");
    assert_eq!(api.stats().unauthorized, 1);
}

#[tokio::test]
async fn layer_sends_no_token_to_another_origin() {
    let api = MockApi::start().await;
    let client = api.client();
    let other = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&other)
        .await;
    let mut service = client.auth_layer().layer(hyper());

    let (status, _) = get(&mut service, &format!("{}/elsewhere", other.uri())).await;

    assert_eq!(status, 200);
    let received = common::received(&other, "/elsewhere").await;
    assert_eq!(common::bearer(&received[0]), None);
    assert_eq!(api.stats().token_requests, 0);
}

#[tokio::test]
async fn a_revoked_grant_is_an_authed_error() {
    let api = MockApi::start().await;
    let client = api.client();
    let mut service = client.auth_layer().layer(hyper());
    let me = format!("{}/v1/me", api.base_url());
    get(&mut service, &me).await;

    api.revoke_grant();
    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let err = service
        .call(http::Request::get(&me).body(Full::default()).unwrap())
        .await
        .unwrap_err();

    let err = err
        .downcast_ref::<authed::Error>()
        .expect("an authed::Error");
    assert!(err.is_reauth_required(), "{err}");
}

/// A gRPC-shaped service: path-only URIs (tonic adds the origin inside its channel), answers
/// `UNAUTHENTICATED` in a trailers-only response to the first call, records the metadata.
#[derive(Clone, Default)]
struct Grpc {
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl Service<http::Request<Bytes>> for Grpc {
    type Response = http::Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<()>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Bytes>) -> Self::Future {
        let mut seen = self.seen.lock().unwrap();
        seen.push(
            request
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
        let status = if seen.len() == 1 { "16" } else { "0" };
        ready(Ok(http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", status)
            .body(())
            .unwrap()))
    }
}

#[tokio::test]
async fn grpc_unauthenticated_is_replayed_with_a_fresh_token_in_the_metadata() {
    let api = MockApi::start().await;
    let client = api.client();
    let grpc = Grpc::default();
    let mut service = client.auth_layer().layer(grpc.clone());

    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let request = http::Request::post("/acme.Widgets/Get")
        .header("content-type", "application/grpc")
        .body(Bytes::from_static(b"\0\0\0\0\0"))
        .unwrap();
    let response = service.call(request).await.unwrap();

    assert_eq!(response.headers()["grpc-status"], "0");
    let seen = grpc.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "replayed once");
    let (first, second) = (seen[0].as_deref().unwrap(), seen[1].as_deref().unwrap());
    assert!(first.starts_with("Bearer ") && second.starts_with("Bearer "));
    assert_ne!(first, second, "the replay carries a fresh token");
    assert_eq!(api.stats().refreshes, 2);
}

#[tokio::test]
async fn layer_replays_once_then_returns_the_second_401() {
    let api = MockApi::start().await;
    let client = api.client();
    Mock::given(wiremock::matchers::path("/locked"))
        .respond_with(ResponseTemplate::new(401))
        .mount(api.server())
        .await;
    let mut service = client.auth_layer().layer(hyper());

    let (status, _) = get(&mut service, &format!("{}/locked", api.base_url())).await;

    assert_eq!(status, 401, "the second refusal is returned as is");
    assert_eq!(common::received(api.server(), "/locked").await.len(), 2);
    assert_eq!(api.stats().refreshes, 2);
}

#[tokio::test(start_paused = true)]
async fn a_grpc_deadline_bounds_the_token_wait() {
    let api = MockApi::start().await;
    api.set_delay(
        authed::mock::Route::token_endpoint(),
        Duration::from_secs(3),
    );
    let client = api.client(); // no timeout of its own: only the deadline bounds the wait
    let mut service = client.auth_layer().layer(hyper());
    let started = tokio::time::Instant::now();
    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let request = http::Request::get(format!("{}/v1/me", api.base_url()))
        .header("grpc-timeout", "250m")
        .body(Full::default())
        .unwrap();

    let err = service.call(request).await.unwrap_err();

    let err = err
        .downcast_ref::<authed::Error>()
        .expect("an authed::Error");
    assert_eq!(err.kind(), authed::ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(250));
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
async fn without_a_deadline_the_clients_timeout_bounds_the_token_wait() {
    let api = MockApi::start().await;
    let client = authed::Client::builder()
        .base_url(api.base_url())
        .token_source(NeverAnswers)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut service = client.auth_layer().layer(hyper());
    let started = tokio::time::Instant::now();
    poll_fn(|cx| service.poll_ready(cx)).await.unwrap();
    let request = http::Request::get(format!("{}/v1/me", api.base_url()))
        .body(Full::default())
        .unwrap();

    let err = tokio::time::timeout(Duration::from_secs(60), service.call(request))
        .await
        .expect("the token wait is bounded")
        .unwrap_err();

    let err = err
        .downcast_ref::<authed::Error>()
        .expect("an authed::Error");
    assert_eq!(err.kind(), authed::ErrorKind::Timeout, "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}
