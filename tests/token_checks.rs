//! What the client checks in a token before using it, and where it uses it: unusable tokens
//! are not cached, a token about to expire is not sent, default headers and the token stay on
//! the API origin, and answers from other origins never touch the token or the cooldown.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use authed::{AuthErrorKind, ErrorKind, ExposeSecret, header::HeaderMap};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestClock, TokenIssuer, bearer, received, token_body};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn token_answer(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn an_access_token_with_a_line_break_is_refused_and_not_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(token_answer(token_body("at-1\r\nX-Injected: yes", 3600)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    common::mount_token_endpoint(&server).await;
    let clock = TestClock::new();
    let client = common::builder(&server)
        .clock(clock.clone())
        .build()
        .unwrap();

    let err = client.access_token().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::InvalidResponse),
        "{err}"
    );
    // Not cached for an hour: after the backoff, the next call asks again and gets a good one.
    clock.advance(Duration::from_secs(2));
    let token = client.access_token().await.unwrap();
    assert_eq!(token.expose_secret(), common::ACCESS_TOKEN);
}

fn jwt_expiring_at(exp: u64) -> String {
    format!(
        "eyJhbGciOiJub25lIn0.{}.sig",
        URL_SAFE_NO_PAD.encode(json!({ "exp": exp }).to_string())
    )
}

#[tokio::test]
async fn a_jwt_already_expired_is_backed_off_not_asked_for_on_every_call() {
    let server = MockServer::start().await;
    let past = 1_000_000_000; // 2001
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(token_answer(
            json!({ "access_token": jwt_expiring_at(past), "token_type": "Bearer" }),
        ))
        .mount(&server)
        .await;
    let clock = TestClock::new();
    let client = common::builder(&server)
        .clock(clock.clone())
        .build()
        .unwrap();

    for _ in 0..20 {
        let err = client.access_token().await.unwrap_err();
        assert!(err.to_string().contains("already expired"), "{err}");
    }
    assert_eq!(
        received(&server, common::TOKEN_PATH).await.len(),
        1,
        "backed off"
    );
    clock.advance(Duration::from_secs(2));
    let _ = client.access_token().await;
    assert_eq!(
        received(&server, common::TOKEN_PATH).await.len(),
        2,
        "asked again after the backoff"
    );
}

#[tokio::test]
async fn a_token_inside_the_mandatory_window_is_not_sent() {
    // 100 s tokens: refresh window from 87.5-90 s, mandatory window the last 5 s.
    let server = MockServer::start().await;
    let issuer = TokenIssuer::new(100);
    issuer.mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let clock = TestClock::new();
    let client = common::builder(&server)
        .clock(clock.clone())
        .build()
        .unwrap();
    client.get("/me").send::<Value>().await.unwrap();

    clock.advance(Duration::from_secs(98)); // 2 s left: too close to send
    client.get("/me").send::<Value>().await.unwrap();

    let bearers: Vec<_> = received(&server, "/me")
        .await
        .iter()
        .filter_map(bearer)
        .collect();
    assert_eq!(
        bearers,
        ["Bearer at-1", "Bearer at-2"],
        "the caller waited for a new token"
    );
}

#[tokio::test]
async fn default_headers_and_the_token_are_sent_only_to_the_api_origin() {
    let api = MockServer::start().await;
    let other = MockServer::start().await;
    common::mount_token_endpoint(&api).await;
    Mock::given(method("GET"))
        .and(path("/moved"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/landing", other.uri())),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&other)
        .await;
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", "key-0123456789".parse().unwrap());
    let client = common::builder(&api)
        .default_headers(headers)
        .build()
        .unwrap();

    client.get("/moved").send::<Value>().await.unwrap();
    client
        .get(&format!("{}/absolute", other.uri()))
        .send::<Value>()
        .await
        .unwrap();

    let moved = &received(&api, "/moved").await[0];
    assert!(
        moved.headers.get("x-api-key").is_some(),
        "the API gets its key"
    );
    for request in other.received_requests().await.unwrap() {
        assert!(
            request.headers.get("x-api-key").is_none(),
            "{}",
            request.url
        );
        assert!(
            request.headers.get("authorization").is_none(),
            "{}",
            request.url
        );
    }
    assert_eq!(other.received_requests().await.unwrap().len(), 2);
}

/// An API with a token endpoint that answers every `GET` with `200 {}`.
async fn api_answering_ok() -> MockServer {
    let api = MockServer::start().await;
    common::mount_token_endpoint(&api).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&api)
        .await;
    api
}

#[tokio::test]
async fn a_requests_own_header_replaces_the_default_of_its_name() {
    let api = api_answering_ok().await;
    let mut defaults = HeaderMap::new();
    defaults.insert("x-tenant", "default".parse().unwrap());
    defaults.insert("x-api-key", "key-0123456789".parse().unwrap());
    let client = common::builder(&api)
        .default_headers(defaults)
        .build()
        .unwrap();

    client
        .get("/own")
        .header("x-tenant", "mine")
        .header("x-trace", "a")
        .header("x-trace", "b")
        .send::<Value>()
        .await
        .unwrap();

    let sent = &received(&api, "/own").await[0];
    let values = |name: &str| {
        sent.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(values("x-tenant"), ["mine"], "the request's own value only");
    assert_eq!(values("x-api-key"), ["key-0123456789"]);
    assert_eq!(values("x-trace"), ["a", "b"]);
    assert_eq!(values("authorization").len(), 1);
}

#[tokio::test]
async fn the_user_agent_names_authed_unless_set() {
    let api = api_answering_ok().await;
    let agent = |sent: Vec<wiremock::Request>| sent[0].headers["user-agent"].clone();

    let client = common::builder(&api).build().unwrap();
    client.get("/default").send::<Value>().await.unwrap();
    let named = common::builder(&api)
        .user_agent("acme-billing/3.1")
        .build()
        .unwrap();
    named.get("/named").send::<Value>().await.unwrap();

    assert_eq!(
        agent(received(&api, "/default").await),
        concat!("authed/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(agent(received(&api, "/named").await), "acme-billing/3.1");
    let err = common::builder(&api)
        .user_agent("bad\nagent")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn a_401_from_another_origin_does_not_burn_a_refresh() {
    let api = MockServer::start().await;
    let other = MockServer::start().await;
    let issuer = TokenIssuer::new(3600);
    issuer.mount(&api).await;
    Mock::given(method("GET"))
        .and(path("/moved"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("{}/x", other.uri())),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&other)
        .await;
    let client = common::builder(&api).build().unwrap();

    let err = client.get("/moved").send::<Value>().await.unwrap_err();

    assert_eq!(err.status(), Some(authed::StatusCode::UNAUTHORIZED));
    assert_eq!(issuer.issued(), 1, "no refresh for another origin's 401");
    assert_eq!(
        other.received_requests().await.unwrap().len(),
        1,
        "not replayed"
    );
}

/// A token source whose answer takes `latency` on the injected clock.
#[derive(Debug)]
struct Slow {
    clock: TestClock,
    latency: Duration,
    issued: std::sync::atomic::AtomicUsize,
}

impl authed::auth::TokenSource for Slow {
    fn fetch<'a>(
        &'a self,
        _replacing: Option<&'a authed::auth::AccessToken>,
    ) -> authed::auth::TokenFuture<'a> {
        Box::pin(async move {
            self.clock.advance(self.latency);
            let n = self
                .issued
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            Ok(authed::auth::Token::new(
                format!("at-{n}"),
                Some(Duration::from_secs(100)),
            ))
        })
    }
    fn grant(&self) -> &str {
        "slow"
    }
}

#[tokio::test]
async fn a_token_lifetime_counts_from_when_it_was_asked_for() {
    // The answer takes 30 s: a 100 s token asked for at 0 dies at 100, not 130. At 96 it is in
    // its mandatory window (the last 5 s), so the request waits for a new token.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let clock = TestClock::new();
    let client = authed::Client::builder()
        .base_url(server.uri())
        .clock(clock.clone())
        .token_source(Slow {
            clock: clock.clone(),
            latency: Duration::from_secs(30),
            issued: Default::default(),
        })
        .build()
        .unwrap();
    client.get("/me").send::<Value>().await.unwrap(); // asked at 0, arrived at 30

    clock.advance(Duration::from_secs(66)); // 96 s after it was asked for
    client.get("/me").send::<Value>().await.unwrap();

    let bearers: Vec<_> = received(&server, "/me")
        .await
        .iter()
        .filter_map(bearer)
        .collect();
    assert_eq!(bearers, ["Bearer at-1", "Bearer at-2"]);
}
