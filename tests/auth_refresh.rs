//! The token lifecycle as a user sees it: first use, renewal, early refresh, single flight,
//! rotation, 401 replay and terminal failures.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use authed::{AuthErrorKind, ErrorKind, ExposeSecret, FileStore, RefreshTokenStore};
use common::{TestClock, TokenIssuer, bearer, builder, form, received};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path},
};

async fn mount_api(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "user-1"})))
        .mount(server)
        .await;
}

/// A server with an API route and a token endpoint issuing `at-1`, `at-2`, ... that live
/// `expires_in` seconds, and a client on an injected clock.
async fn setup(issuer: TokenIssuer) -> (MockServer, authed::Client, TestClock) {
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    mount_api(&server).await;
    let clock = TestClock::new();
    let client = builder(&server).clock(clock.clone()).build().unwrap();
    (server, client, clock)
}

/// Mounts a token endpoint giving these answers in turn, the last one from then on.
async fn mount_token_answers<const N: usize>(server: &MockServer, answers: [ResponseTemplate; N]) {
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = Mock::given(method("POST"))
            .and(path(common::TOKEN_PATH))
            .respond_with(answer);
        let mock = if i + 1 < N {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(server).await;
    }
}

async fn me(client: &authed::Client) -> authed::Result<Value> {
    client.get("/me").send().await
}

async fn api_bearers(server: &MockServer) -> Vec<String> {
    received(server, "/me")
        .await
        .iter()
        .filter_map(bearer)
        .collect()
}

#[tokio::test]
async fn first_use_fetches_one_token_and_reuses_it() {
    let issuer = TokenIssuer::new(3600);
    let (server, client, _) = setup(issuer.clone()).await;

    assert_eq!(issuer.issued(), 0, "building a client sends nothing");
    me(&client).await.unwrap();
    me(&client).await.unwrap();

    assert_eq!(issuer.issued(), 1);
    assert_eq!(api_bearers(&server).await, ["Bearer at-1", "Bearer at-1"]);
    let token_request = &received(&server, common::TOKEN_PATH).await[0];
    let form = form(token_request);
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], common::REFRESH_TOKEN);
    assert_eq!(
        form["client_id"], "test-client",
        "a public client sends its id in the body"
    );
    assert!(token_request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn an_expired_token_is_renewed_before_the_request() {
    let issuer = TokenIssuer::new(60);
    let (server, client, clock) = setup(issuer.clone()).await;

    me(&client).await.unwrap();
    clock.advance(Duration::from_secs(61));
    me(&client).await.unwrap();

    assert_eq!(issuer.issued(), 2);
    assert_eq!(api_bearers(&server).await, ["Bearer at-1", "Bearer at-2"]);
}

#[tokio::test]
async fn early_refresh_runs_in_the_background_while_the_old_token_keeps_working() {
    // Lifetime 100 s: the refresh window opens 10-12.5 s before expiry.
    let issuer = TokenIssuer::new(100);
    let (server, client, clock) = setup(issuer.clone()).await;
    me(&client).await.unwrap();

    clock.advance(Duration::from_secs(80));
    me(&client).await.unwrap();
    assert_eq!(issuer.issued(), 1, "before the window nothing is refreshed");

    // 93 s: in the refresh window (from 87.5-90 s), before the mandatory one (the last 5 s).
    clock.advance(Duration::from_secs(13));
    me(&client).await.unwrap();
    // The request did not wait: it went out with the still-valid token.
    assert_eq!(api_bearers(&server).await.last().unwrap(), "Bearer at-1");

    // The background refresh lands; later requests use the new token.
    wait_until_async(|| async { client.access_token().await.unwrap().expose_secret() == "at-2" })
        .await;
    me(&client).await.unwrap();
    assert_eq!(api_bearers(&server).await.last().unwrap(), "Bearer at-2");
    assert_eq!(issuer.issued(), 2, "one early refresh, not one per request");
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_serving_the_valid_token_and_retries_later() {
    let server = MockServer::start().await;
    mount_api(&server).await;
    // First token works; the next refresh fails with a 500, then works.
    mount_token_answers(
        &server,
        [
            ResponseTemplate::new(200).set_body_json(common::token_body("at-1", 100)),
            ResponseTemplate::new(500),
            ResponseTemplate::new(200).set_body_json(common::token_body("at-2", 100)),
        ],
    )
    .await;
    let clock = TestClock::new();
    // Without retries inside the refresh, so that the 500 fails this refresh.
    let client = builder(&server)
        .clock(clock.clone())
        .retry_policy(authed::retry::Policy::never())
        .build()
        .unwrap();
    me(&client).await.unwrap();

    clock.advance(Duration::from_secs(92));
    me(&client).await.unwrap(); // triggers the early refresh, which fails
    let token_requests = || async { received(&server, common::TOKEN_PATH).await.len() };
    wait_until_async(|| async { token_requests().await >= 2 }).await;
    me(&client).await.unwrap(); // within the retry gap: no new attempt
    assert_eq!(
        token_requests().await,
        2,
        "failed refreshes are not retried on every request"
    );
    assert_eq!(api_bearers(&server).await.last().unwrap(), "Bearer at-1");

    // The pause after a failure is half the remaining lifetime here (4 s).
    clock.advance(Duration::from_secs(5)); // 97 s: pause over, still valid
    me(&client).await.unwrap();
    wait_until_async(|| async { client.access_token().await.unwrap().expose_secret() == "at-2" })
        .await;
    assert_eq!(token_requests().await, 3);
    me(&client).await.unwrap();
    assert_eq!(api_bearers(&server).await.last().unwrap(), "Bearer at-2");
}

#[tokio::test]
async fn a_hundred_concurrent_requests_at_expiry_cause_one_token_request() {
    let issuer = TokenIssuer::new(60);
    let (server, client, clock) = setup(issuer.clone()).await;
    me(&client).await.unwrap();
    clock.advance(Duration::from_secs(120));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { me(&client).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    assert_eq!(
        issuer.issued(),
        2,
        "one for the first request, one for all 100 at expiry"
    );
    let bearers = api_bearers(&server).await;
    assert_eq!(bearers.len(), 101);
    assert!(bearers[1..].iter().all(|b| b == "Bearer at-2"));
}

#[tokio::test]
async fn a_cancelled_caller_does_not_lose_a_rotated_refresh_token() {
    let server = MockServer::start().await;
    mount_api(&server).await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "at-1", "token_type": "bearer", "expires_in": 60, "refresh_token": "rt-rotated"}))
                .set_delay(Duration::from_millis(100)),
        )
        .mount(&server)
        .await;
    let clock = TestClock::new();
    let client = builder(&server).clock(clock.clone()).build().unwrap();

    // The caller gives up while the refresh is in flight...
    let cancelled = tokio::time::timeout(Duration::from_millis(10), me(&client)).await;
    assert!(cancelled.is_err());
    // ...but the refresh finishes on its own, so the next refresh presents the rotated token.
    wait_until_async(|| async { client.access_token().await.is_ok() }).await;
    clock.advance(Duration::from_secs(61));
    me(&client).await.unwrap();
    let presented: Vec<_> = received(&server, common::TOKEN_PATH)
        .await
        .iter()
        .map(|r| form(r)["refresh_token"].clone())
        .collect();
    assert_eq!(presented, [common::REFRESH_TOKEN, "rt-rotated"]);
}

#[tokio::test]
async fn rotation_is_persisted_to_the_file_store_and_an_omitted_token_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path_ = dir.path().join("refresh-token");
    let server = MockServer::start().await;
    mount_api(&server).await;
    // First refresh rotates to rt-2; the later ones omit refresh_token.
    mount_token_answers(
        &server,
        [
            ResponseTemplate::new(200).set_body_json(
                json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 60, "refresh_token": "rt-2"}),
            ),
            ResponseTemplate::new(200).set_body_json(common::token_body("at-n", 60)),
        ],
    )
    .await;
    let clock = TestClock::new();
    let client = builder(&server)
        .clock(clock.clone())
        .refresh_token_store(FileStore::new(&path_))
        .build()
        .unwrap();

    me(&client).await.unwrap();
    let stored = |path| async move {
        let record = FileStore::new(path).load().await.unwrap().unwrap();
        record.refresh_token.expose_secret().to_owned()
    };
    assert_eq!(stored(&path_).await, "rt-2", "saved before use");
    for _ in 0..2 {
        clock.advance(Duration::from_secs(61));
        me(&client).await.unwrap();
    }
    let presented: Vec<_> = received(&server, common::TOKEN_PATH)
        .await
        .iter()
        .map(|r| form(r)["refresh_token"].clone())
        .collect();
    assert_eq!(presented, [common::REFRESH_TOKEN, "rt-2", "rt-2"]);
    assert!(client.store_error().is_none());

    // A new client (a restart) picks up the stored token over the configured one.
    let restarted = builder(&server)
        .refresh_token_store(FileStore::new(&path_))
        .build()
        .unwrap();
    restarted.access_token().await.unwrap();
    let last = received(&server, common::TOKEN_PATH).await.pop().unwrap();
    assert_eq!(form(&last)["refresh_token"], "rt-2");
    assert_eq!(stored(&path_).await, "rt-2");
}

#[tokio::test]
async fn a_failing_store_is_reported_and_the_client_keeps_working() {
    let issuer = TokenIssuer::new(60).rotating();
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    mount_api(&server).await;
    let clock = TestClock::new();
    let client = builder(&server)
        .clock(clock.clone())
        .refresh_token_store(authed::FnStore::new(|_: &authed::RefreshToken| {
            Err(std::io::Error::other("keychain locked"))
        }))
        .build()
        .unwrap();

    me(&client).await.unwrap();
    let err = client.store_error().expect("the store failure is reported");
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(format!("{err:?}").contains("keychain locked"));

    clock.advance(Duration::from_secs(61));
    me(&client).await.unwrap();
    let last = received(&server, common::TOKEN_PATH).await.pop().unwrap();
    assert_eq!(
        form(&last)["refresh_token"],
        "rt-1",
        "the rotated token lives on in memory"
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_replays_the_request_once() {
    let issuer = TokenIssuer::new(3600);
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/v1/widgets"))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/widgets"))
        .and(header("authorization", "Bearer at-2"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let client = builder(&server).build().unwrap();

    let created: Value = client
        .post("/v1/widgets")
        .json(&json!({"name": "a"}))
        .send()
        .await
        .unwrap();

    assert_eq!(created["id"], 1);
    assert_eq!(issuer.issued(), 2);
    let replays = received(&server, "/v1/widgets").await;
    assert_eq!(replays.len(), 2);
    assert_eq!(replays[1].body, br#"{"name":"a"}"#, "the body is replayed");
}

#[tokio::test]
async fn a_second_401_is_an_unauthorized_error() {
    let issuer = TokenIssuer::new(3600);
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(401).insert_header("x-request-id", "req-42"))
        .mount(&server)
        .await;
    let client = builder(&server).build().unwrap();

    let err = me(&client).await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert_eq!(err.status(), Some(authed::StatusCode::UNAUTHORIZED));
    assert_eq!(err.request_id(), Some("req-42"));
    assert_eq!(issuer.issued(), 2);
    assert_eq!(
        received(&server, "/me").await.len(),
        2,
        "replayed once, not more"
    );
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_and_its_401_returned() {
    let issuer = TokenIssuer::new(3600);
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    Mock::given(method("PUT"))
        .and(path("/upload"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client = builder(&server).build().unwrap();

    let err = client
        .put("/upload")
        .body_stream(reqwest::Body::from("one-shot chunk"))
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let uploads = received(&server, "/upload").await;
    assert_eq!(uploads.len(), 1, "a stream cannot be replayed");
    assert_eq!(uploads[0].body, b"one-shot chunk");
    assert_eq!(
        issuer.issued(),
        1,
        "no refresh for a replay that cannot happen"
    );
}

#[tokio::test]
async fn a_late_401_for_an_old_token_does_not_discard_a_newer_one() {
    let issuer = TokenIssuer::new(60);
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    // The slow route answers 401 to at-1 only after the client has moved on to at-2.
    Mock::given(method("GET"))
        .and(path("/slow"))
        .and(header("authorization", "Bearer at-1"))
        .respond_with(ResponseTemplate::new(401).set_delay(Duration::from_millis(200)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(1)))
        .mount(&server)
        .await;
    mount_api(&server).await;
    let clock = TestClock::new();
    let client = builder(&server).clock(clock.clone()).build().unwrap();
    client.access_token().await.unwrap();

    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.get("/slow").send::<Value>().await }
    });
    wait_until_async(|| async { !received(&server, "/slow").await.is_empty() }).await;
    clock.advance(Duration::from_secs(61));
    me(&client).await.unwrap(); // refreshes to at-2
    slow.await.unwrap().unwrap(); // its 401 must not throw at-2 away

    assert_eq!(
        issuer.issued(),
        2,
        "the 401 on at-1 did not cause a third token"
    );
    assert_eq!(received(&server, "/slow").await.len(), 2);
}

#[tokio::test]
async fn invalid_grant_is_terminal_and_says_reauthentication_is_required() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "refresh token revoked"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    mount_api(&server).await;
    let client = builder(&server).build().unwrap();

    let first = me(&client).await.unwrap_err();
    let second = me(&client).await.unwrap_err();

    for err in [&first, &second] {
        assert_eq!(err.kind(), ErrorKind::Auth(AuthErrorKind::InvalidGrant));
        assert!(err.is_reauth_required());
        assert!(!err.is_retryable());
        assert!(
            err.to_string().contains("re-authentication required"),
            "{err}"
        );
        assert!(err.to_string().contains("refresh token revoked"), "{err}");
    }
    assert!(received(&server, "/me").await.is_empty());
    // `.expect(1)`: the dead refresh token was presented once, not once per request.
}

/// Polls a condition that depends on a background task and the mock server's thread.
async fn wait_until_async<F: std::future::Future<Output = bool>>(mut done: impl FnMut() -> F) {
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached within 2.5 s");
}

/// The whole point of single flight, against a server with rotation and reuse detection: if two
/// refreshes ever presented the same refresh token, the server would revoke the grant and
/// every request would fail with `invalid_grant`.
#[cfg(feature = "mock")]
#[tokio::test]
async fn concurrent_401s_against_a_reuse_detecting_server_cause_one_rotation() {
    use authed::mock::MockApi;
    let api = MockApi::builder().rotate_refresh_tokens(true).start().await;
    let client = api.client();
    client.get("/v1/me").send::<Value>().await.unwrap();

    for round in 1..=3 {
        api.expire_access_tokens(); // the server forgets the tokens: every request gets a 401
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.get("/v1/me").send::<Value>().await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stats = api.stats();
        assert_eq!(stats.refreshes, 1 + round, "one rotation per round");
        assert_eq!(
            stats.invalid_grants, 0,
            "no refresh token was ever presented twice"
        );
    }
}
