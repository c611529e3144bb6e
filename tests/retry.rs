//! Retries: `Retry-After` (seconds and HTTP-date), backoff with jitter, the idempotency rule,
//! token endpoint retries, the client-wide cooldown, the retry budget, rate-limit headers.
//!
//! Every test that waits runs on paused tokio time: waits are virtual and asserted exactly.
//! The wiremock server runs on its own thread in real time, so these clients have no request
//! timeout and no idle-pool timer: while a response is in flight, paused tokio time jumps to the
//! next pending timer, and those timers would move the virtual clock.
#![cfg(feature = "mock")]

mod common;

use std::time::{Duration, SystemTime};

use authed::{
    ErrorKind, StopReason,
    retry::{
        Budget, Jitter, Policy,
        classify::{Classifier, Failed, Retryable},
    },
};
use serde_json::{Value, json};
use tokio::time::Instant;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param},
};

const SEC: fn(u64) -> Duration = Duration::from_secs;

/// A client for paused-time tests (see the module docs). Installs the log capture first.
fn builder(server: &MockServer) -> authed::ClientBuilder {
    capture::logs();
    common::builder(server)
        .timeout(None)
        .pool_idle_timeout(None)
}

async fn setup_paused() -> (MockServer, authed::Client) {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    let client = builder(&server).build().unwrap();
    (server, client)
}

/// Mounts `first` for the first `times` requests to `route`, then `then` for the rest.
async fn mount_sequence(
    server: &MockServer,
    verb: &str,
    route: &str,
    first: ResponseTemplate,
    times: u64,
    then: ResponseTemplate,
) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(first)
        .up_to_n_times(times)
        .mount(server)
        .await;
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(then)
        .mount(server)
        .await;
}

/// How many requests `server` received on `route`.
async fn hits(server: &MockServer, route: &str) -> usize {
    let received = server.received_requests().await.unwrap();
    received.iter().filter(|r| r.url.path() == route).count()
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "ok": true }))
}

fn status_with_retry_after(status: u16, value: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("retry-after", value)
}

// ===== Retry-After =====

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_waited_then_the_request_succeeds() {
    let (server, client) = setup_paused().await;
    mount_sequence(
        &server,
        "GET",
        "/v1/things",
        status_with_retry_after(429, "2"),
        1,
        ok(),
    )
    .await;

    let started = Instant::now();
    let body: Value = client.get("/v1/things").send().await.unwrap();

    assert_eq!(body, json!({ "ok": true }));
    assert_eq!(
        started.elapsed(),
        SEC(2),
        "waited exactly the 2 s asked for (virtual time)"
    );
    assert_eq!(hits(&server, "/v1/things").await, 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_is_waited() {
    let (server, client) = setup_paused().await;
    // HTTP dates have one-second resolution: the wait is in (2 s, 3 s].
    let date = httpdate::fmt_http_date(SystemTime::now() + SEC(3));
    mount_sequence(
        &server,
        "GET",
        "/v1/things",
        status_with_retry_after(503, &date),
        1,
        ok(),
    )
    .await;

    let started = Instant::now();
    client.get("/v1/things").send::<Value>().await.unwrap();

    let waited = started.elapsed();
    assert!(waited > SEC(2) && waited <= SEC(3), "waited {waited:?}");
    assert_eq!(hits(&server, "/v1/things").await, 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_cap_fails_fast_with_the_requested_wait() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/slow"))
        .respond_with(status_with_retry_after(429, "3600"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/down"))
        .respond_with(status_with_retry_after(503, "600"))
        .mount(&server)
        .await;

    // A 503 asking for more than the cap (a 503 starts no client-wide cooldown).
    let started = Instant::now();
    let err = client.get("/v1/down").send::<Value>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.retry_after(), Some(SEC(600)));

    let err = client.get("/v1/slow").send::<Value>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(SEC(3600)));
    assert_eq!(err.retries().unwrap().attempts, 1);
    assert!(err.to_string().contains("after 1 attempt in"), "{err}");
    assert!(err.to_string().contains("retry after 3600s"), "{err}");

    assert_eq!(started.elapsed(), Duration::ZERO, "nothing was slept");
    assert_eq!(hits(&server, "/v1/slow").await, 1);
    assert_eq!(hits(&server, "/v1/down").await, 1);
}

#[tokio::test(start_paused = true)]
async fn bad_retry_after_values_fall_back_to_backoff() {
    let (server, _) = setup_paused().await;
    // A future date with the wrong weekday: `httpdate` rejects it.
    let future = SystemTime::now() + SEC(30);
    let real = httpdate::fmt_http_date(future);
    let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let wrong = weekdays.iter().find(|d| !real.starts_with(**d)).unwrap();
    let bad_weekday = format!("{wrong}{}", &real[3..]);
    let past = httpdate::fmt_http_date(SystemTime::now() - SEC(3600));
    let bad = ["abc", "-5", "1e9", &past, &bad_weekday];
    // No jitter, 1 s base: a retry that used backoff waits exactly 1 s.
    let client = builder(&server)
        .retry_policy(Policy::default().base_delay(SEC(1)).jitter(Jitter::None))
        .build()
        .unwrap();

    for (i, value) in bad.iter().enumerate() {
        let route = format!("/v1/bad/{i}");
        mount_sequence(
            &server,
            "GET",
            &route,
            status_with_retry_after(429, value),
            1,
            ok(),
        )
        .await;

        let started = Instant::now();
        let result = client.get(&route).send::<Value>().await;

        assert!(result.is_ok(), "Retry-After {value:?}: {result:?}");
        assert_eq!(
            started.elapsed(),
            SEC(1),
            "Retry-After {value:?} ignored for backoff"
        );
        assert_eq!(hits(&server, &route).await, 2, "Retry-After {value:?}");
    }
}

// ===== Backoff =====

#[tokio::test(start_paused = true)]
async fn without_retry_after_backoff_is_exponential() {
    let (server, _) = setup_paused().await;
    let unavailable = ResponseTemplate::new(503);
    mount_sequence(&server, "GET", "/v1/exact", unavailable.clone(), 3, ok()).await;
    mount_sequence(&server, "GET", "/v1/jittered", unavailable, 3, ok()).await;
    let policy = Policy::default().max_attempts(4).base_delay(SEC(1));

    let exact = builder(&server)
        .retry_policy(policy.clone().jitter(Jitter::None))
        .build()
        .unwrap();
    let started = Instant::now();
    exact.get("/v1/exact").send::<Value>().await.unwrap();
    assert_eq!(started.elapsed(), SEC(1 + 2 + 4));

    // Full jitter (the default): each wait is random in [0, ceiling], the ceilings 1, 2, 4 s.
    let jittered = builder(&server).retry_policy(policy).build().unwrap();
    let started = Instant::now();
    jittered.get("/v1/jittered").send::<Value>().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited > Duration::ZERO && waited <= SEC(7),
        "waited {waited:?}"
    );
    assert_eq!(hits(&server, "/v1/jittered").await, 4);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_forever_stops_at_max_server_waits() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/busy"))
        .respond_with(status_with_retry_after(429, "1"))
        .mount(&server)
        .await;

    let started = Instant::now();
    let err = client
        .get("/v1/busy")
        .retry_policy(Policy::default().max_server_waits(3))
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(err.retry_after(), Some(SEC(1)));
    let summary = err.retries().unwrap();
    assert_eq!((summary.attempts, summary.elapsed), (4, SEC(3)));
    assert_eq!(summary.stopped, StopReason::MaxAttempts);
    assert!(
        err.to_string().contains(
            "after 4 attempts in 3.0s (stopped: the retry policy's attempts are used up)"
        ),
        "{err}"
    );
    assert_eq!(started.elapsed(), SEC(3));
    assert_eq!(hits(&server, "/v1/busy").await, 4);
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_retrying_before_a_wait_that_would_exceed_it() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/busy"))
        .respond_with(status_with_retry_after(429, "30"))
        .mount(&server)
        .await;

    let policy = Policy::default().max_attempts(10).max_elapsed(SEC(45));
    let err = client
        .get("/v1/busy")
        .retry_policy(policy)
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(
        err.retries().unwrap().attempts,
        2,
        "a third attempt would start at 60 s"
    );
    assert_eq!(err.retries().unwrap().elapsed, SEC(30));
}

#[tokio::test(start_paused = true)]
async fn service_unavailable_with_a_non_json_body_is_retried_and_reported() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/down"))
        .respond_with(
            ResponseTemplate::new(503).set_body_string("<html>Service Unavailable</html>"),
        )
        .mount(&server)
        .await;

    let err = client.get("/v1/down").send::<Value>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.retries().unwrap().attempts, 3);
    assert!(err.api_error().unwrap().raw.contains("Service Unavailable"));
    assert_eq!(hits(&server, "/v1/down").await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_429_mid_stream_is_waited_out_and_the_stream_goes_on() {
    use futures_util::TryStreamExt;
    let (server, client) = setup_paused().await;
    let page = |ids: &[u64]| {
        let items: Vec<Value> = ids.iter().map(|id| json!({ "id": id })).collect();
        ResponseTemplate::new(200).set_body_json(items)
    };
    Mock::given(path("/v1/items"))
        .and(query_param("skip", "0"))
        .respond_with(page(&[0, 1]))
        .mount(&server)
        .await;
    Mock::given(path("/v1/items"))
        .and(query_param("skip", "2"))
        .respond_with(status_with_retry_after(429, "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/items"))
        .and(query_param("skip", "2"))
        .respond_with(page(&[2]))
        .mount(&server)
        .await;

    let started = Instant::now();
    let pagination = authed::Pagination::offset("skip", "take").page_size(2);
    let items: Vec<Value> = client
        .paginate::<Value>("/v1/items", pagination)
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(
        items,
        [json!({ "id": 0 }), json!({ "id": 1 }), json!({ "id": 2 })]
    );
    assert_eq!(started.elapsed(), SEC(2));
    assert_eq!(hits(&server, "/v1/items").await, 3);
}

// ===== Idempotency =====

#[tokio::test(start_paused = true)]
async fn post_is_not_retried_on_502_without_an_idempotency_key() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/orders"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;

    let err = client
        .post("/v1/orders")
        .json(&json!({ "sku": "W-7" }))
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.status().map(|s| s.as_u16()), Some(502));
    assert!(
        err.retries().is_none(),
        "not a retryable failure for a POST"
    );
    assert_eq!(hits(&server, "/v1/orders").await, 1);
}

#[tokio::test(start_paused = true)]
async fn post_with_an_idempotency_key_is_retried_with_the_same_key() {
    let (server, client) = setup_paused().await;
    mount_sequence(
        &server,
        "POST",
        "/v1/orders",
        ResponseTemplate::new(502),
        2,
        ok(),
    )
    .await;
    let key = authed::retry::new_idempotency_key();

    client
        .post("/v1/orders")
        .json(&json!({ "sku": "W-7" }))
        .idempotency_key(&key)
        .send::<Value>()
        .await
        .unwrap();

    let received = server.received_requests().await.unwrap();
    let keys: Vec<_> = received
        .iter()
        .filter(|r| r.url.path() == "/v1/orders")
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(keys, vec![Some(key.clone()); 3]);
}

#[tokio::test(start_paused = true)]
async fn get_is_retried_on_502_and_504() {
    let (server, client) = setup_paused().await;
    let (bad_gateway, gateway_timeout) = (ResponseTemplate::new(502), ResponseTemplate::new(504));
    mount_sequence(&server, "GET", "/v1/flaky", bad_gateway, 1, gateway_timeout).await;

    // 502 once, then 504 forever: the GET is retried until the policy's 3 attempts.
    let err = client.get("/v1/flaky").send::<Value>().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(504));
    assert_eq!(hits(&server, "/v1/flaky").await, 3);
}

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_sent_once() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/upload"))
        .respond_with(status_with_retry_after(503, "1"))
        .mount(&server)
        .await;

    // Any `reqwest::Body` given to `body_stream` is treated as a one-shot stream.
    let body = reqwest::Body::from("chunk");
    let err = client
        .put("/v1/upload")
        .body_stream(body)
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert!(err.retries().is_none());
    assert_eq!(hits(&server, "/v1/upload").await, 1);
}

#[tokio::test(start_paused = true)]
async fn the_401_replay_is_not_a_retry() {
    let (server, client) = setup_paused().await;
    mount_sequence(&server, "GET", "/me", ResponseTemplate::new(401), 1, ok()).await;

    let body: Value = client
        .get("/me")
        .retry_policy(Policy::never())
        .send()
        .await
        .unwrap();

    assert_eq!(body, json!({ "ok": true }));
    assert_eq!(hits(&server, "/me").await, 2);
    assert_eq!(hits(&server, common::TOKEN_PATH).await, 2);
}

// ===== Token endpoint =====

#[tokio::test(start_paused = true)]
async fn token_endpoint_429_retry_after_is_honoured() {
    let server = MockServer::start().await;
    mount_sequence(
        &server,
        "POST",
        common::TOKEN_PATH,
        status_with_retry_after(429, "3"),
        1,
        ResponseTemplate::new(200).set_body_json(common::token_body(common::ACCESS_TOKEN, 3600)),
    )
    .await;
    Mock::given(path("/me"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let client = builder(&server).build().unwrap();

    let started = Instant::now();
    client.get("/me").send::<Value>().await.unwrap();

    assert_eq!(started.elapsed(), SEC(3));
    assert_eq!(hits(&server, common::TOKEN_PATH).await, 2);
    assert_eq!(hits(&server, "/me").await, 1);
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_invalid_grant_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": "invalid_grant" })))
        .mount(&server)
        .await;
    let client = builder(&server).build().unwrap();

    let err = client.get("/me").send::<Value>().await.unwrap_err();

    assert!(err.is_reauth_required(), "{err:?}");
    assert_eq!(hits(&server, common::TOKEN_PATH).await, 1);
    assert_eq!(hits(&server, "/me").await, 0);
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_unreachable_is_retried() {
    let server = MockServer::start().await;
    // Nothing listens on port 1: the connection is refused, so the token never left.
    let client = builder(&server)
        .token_url("http://127.0.0.1:1/oauth/token")
        .build()
        .unwrap();

    let err = client.get("/me").send::<Value>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transport);
    assert_eq!(err.retries().unwrap().attempts, 3);
    assert_eq!(hits(&server, "/me").await, 0);
}

#[tokio::test(start_paused = true)]
async fn token_endpoint_timeout_is_not_retried() {
    let server = MockServer::start().await;
    // The server got the refresh token and may have rotated it: presenting it again is unsafe.
    Mock::given(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_delay(SEC(5)))
        .mount(&server)
        .await;
    let client = builder(&server).timeout(SEC(1)).build().unwrap();

    let err = client.get("/me").send::<Value>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.retries().is_none(), "sent once: {err:?}");
}

// ===== Cooldown =====

#[tokio::test(start_paused = true)]
async fn a_429_holds_every_request_of_the_client_during_the_cooldown() {
    let (server, client) = setup_paused().await;
    mount_sequence(
        &server,
        "GET",
        "/v1/hot",
        status_with_retry_after(429, "5"),
        1,
        ok(),
    )
    .await;

    let started = Instant::now();
    let err = client
        .get("/v1/hot")
        .retry_policy(Policy::never())
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(SEC(5)));

    let requests: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client.get("/v1/hot").send::<Value>().await.unwrap();
                Instant::now()
            })
        })
        .collect();
    tokio::time::sleep(SEC(4)).await;
    assert_eq!(
        hits(&server, "/v1/hot").await,
        1,
        "no request during the cooldown"
    );

    for request in requests {
        let done = request.await.unwrap();
        assert!(
            done >= started + SEC(5),
            "a request finished {:?} in",
            done - started
        );
    }
    assert_eq!(hits(&server, "/v1/hot").await, 21);
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_beyond_the_cap_fails_other_requests_fast() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/hot"))
        .respond_with(status_with_retry_after(429, "120"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/other"))
        .respond_with(ok())
        .mount(&server)
        .await;

    let first = client.get("/v1/hot").send::<Value>().await.unwrap_err();
    assert_eq!(first.retry_after(), Some(SEC(120)));

    let err = client.get("/v1/other").send::<Value>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(SEC(120)));
    assert!(err.to_string().contains("was not sent"), "{err}");
    assert_eq!(
        err.retries().unwrap().stopped,
        StopReason::RetryAfterBeyondCap
    );
    assert!(err.is_retryable(), "later, it may be sent");
    assert_eq!(hits(&server, "/v1/other").await, 0);
}

// ===== Budget =====

#[tokio::test(start_paused = true)]
async fn the_retry_budget_bounds_retries_when_the_server_is_down() {
    let (server, client) = setup_paused().await;
    Mock::given(path("/v1/down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let n = 30;
    let mut last = None;
    for _ in 0..n {
        last = Some(client.get("/v1/down").send::<Value>().await.unwrap_err());
    }

    // The documented bound: reserve + ratio × requests retries (10 + 0.2 × 30), instead of
    // the 2 retries per request the policy alone would allow (90 requests in all).
    let total = hits(&server, "/v1/down").await;
    assert!(total <= n + 10 + 6, "{total} requests");
    assert!(total >= n + 10, "the reserve is used: {total} requests");
    assert_eq!(
        last.unwrap().retries().unwrap().attempts,
        1,
        "budget empty: no retry"
    );
}

/// Every request credits the budget once, the ones that succeed at the first send too (the
/// send path's first send takes the credit with its turn, the retry loop does not add it).
#[tokio::test(start_paused = true)]
async fn each_request_credits_the_retry_budget_once() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    Mock::given(path("/v1/down"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path("/v1/ok"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let client = builder(&server)
        .retry_budget(Budget::default().reserve(2).ratio(0.5))
        .build()
        .unwrap();
    let patient = Policy::default().max_attempts(10);
    let down = async || {
        client
            .get("/v1/down")
            .retry_policy(patient.clone())
            .send::<Value>()
            .await
            .unwrap_err()
            .retries()
            .unwrap()
            .attempts
    };

    assert_eq!(down().await, 3, "the reserve of 2 retries is used up");
    for _ in 0..2 {
        client.get("/v1/ok").send::<Value>().await.unwrap();
    }
    // 0.5 + 0.5 from the two successes and 0.5 from this request: one retry.
    assert_eq!(down().await, 2);
}

/// The time the first attempt took counts against `max_elapsed`: a first answer that comes
/// 30 s late leaves no room for a retry within 25 s.
#[tokio::test(start_paused = true)]
async fn max_elapsed_counts_the_first_attempt() {
    struct Late(common::TestClock);
    impl wiremock::Respond for Late {
        fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
            self.0.advance(SEC(30));
            ResponseTemplate::new(503)
        }
    }
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    let clock = common::TestClock::new();
    Mock::given(path("/v1/slow"))
        .respond_with(Late(clock.clone()))
        .mount(&server)
        .await;
    Mock::given(path("/v1/ok"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let client = builder(&server).clock(clock).build().unwrap();
    // With a token in the cache, the first send is made at once (no wait for a token).
    client.get("/v1/ok").send::<Value>().await.unwrap();

    let err = client
        .get("/v1/slow")
        .retry_policy(Policy::default().max_elapsed(SEC(25)))
        .send::<Value>()
        .await
        .unwrap_err();

    let retries = err.retries().unwrap();
    assert_eq!(
        (retries.attempts, retries.stopped),
        (1, StopReason::Deadline)
    );
    assert_eq!(retries.elapsed, SEC(30));
    assert_eq!(hits(&server, "/v1/slow").await, 1);
}

// ===== Rate-limit headers =====

#[tokio::test(start_paused = true)]
async fn rate_limit_headers_are_exposed_and_an_empty_quota_holds_requests() {
    let (server, client) = setup_paused().await;
    let exhausted = ok()
        .insert_header("x-ratelimit-limit", "10")
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", "4");
    let refilled = ok().insert_header("ratelimit", r#""default";r=9;t=60"#);
    mount_sequence(&server, "GET", "/v1/quota", exhausted, 1, refilled).await;

    assert_eq!(client.rate_limit(), None);
    client.get("/v1/quota").send::<Value>().await.unwrap();
    let seen = client.rate_limit().unwrap();
    assert_eq!(
        (seen.limit, seen.remaining, seen.reset),
        (Some(10), Some(0), Some(SEC(4)))
    );

    let started = Instant::now();
    client.get("/v1/quota").send::<Value>().await.unwrap();
    assert_eq!(started.elapsed(), SEC(4), "held until the window reset");
    assert_eq!(client.rate_limit().unwrap().remaining, Some(9));
}

/// A success answered to a request's first send (a token in the cache, nothing held back)
/// updates the quota as any other answer does.
#[tokio::test(start_paused = true)]
async fn every_success_updates_the_quota() {
    let (server, client) = setup_paused().await;
    let quota = |remaining: u32| {
        ok().insert_header(
            "ratelimit",
            format!("limit=10, remaining={remaining}, reset=30"),
        )
    };
    mount_sequence(&server, "GET", "/v1/quota", quota(5), 1, quota(3)).await;

    client.get("/v1/quota").send::<Value>().await.unwrap();
    assert_eq!(client.rate_limit().unwrap().remaining, Some(5));
    client.get("/v1/quota").send::<Value>().await.unwrap();
    assert_eq!(client.rate_limit().unwrap().remaining, Some(3));
}

#[tokio::test(start_paused = true)]
async fn holding_for_the_quota_reset_can_be_turned_off() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    let exhausted = ok().insert_header("ratelimit", "limit=10, remaining=0, reset=30");
    Mock::given(path("/v1/quota"))
        .respond_with(exhausted)
        .mount(&server)
        .await;
    let client = builder(&server)
        .wait_for_quota_reset(false)
        .build()
        .unwrap();

    client.get("/v1/quota").send::<Value>().await.unwrap();
    let started = Instant::now();
    client.get("/v1/quota").send::<Value>().await.unwrap();

    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(client.rate_limit().unwrap().remaining, Some(0));
}

// ===== The server's schedule is not a failure =====

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_is_waited_out_without_the_budget_or_max_attempts() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    mount_sequence(
        &server,
        "GET",
        "/v1/busy",
        status_with_retry_after(429, "1"),
        5,
        ok(),
    )
    .await;
    // No budget at all, and no retry on backoff: only the server's schedule is left.
    let client = builder(&server)
        .retry_budget(Budget::default().reserve(0).ratio(0.0))
        .retry_policy(Policy::default().max_attempts(1))
        .build()
        .unwrap();

    let started = Instant::now();
    let result = client.get("/v1/busy").send::<Value>().await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        started.elapsed(),
        SEC(5),
        "five 1 s waits the server asked for"
    );
    assert_eq!(hits(&server, "/v1/busy").await, 6);

    // The same budget and policy still stop a failure without server guidance at once.
    mount_sequence(
        &server,
        "GET",
        "/v1/down",
        ResponseTemplate::new(503),
        1,
        ok(),
    )
    .await;
    let err = client.get("/v1/down").send::<Value>().await.unwrap_err();
    assert_eq!(err.retries().unwrap().stopped, StopReason::MaxAttempts);
}

#[tokio::test(start_paused = true)]
async fn absurd_retry_after_fails_fast_and_the_error_carries_the_servers_value() {
    let (server, client) = setup_paused().await;
    let days_ahead = SystemTime::now() + SEC(3 * 86_400);
    let date = httpdate::fmt_http_date(days_ahead);
    for (i, value) in ["999999999", date.as_str(), "99999999999999999999"]
        .into_iter()
        .enumerate()
    {
        let route = format!("/v1/absurd/{i}");
        mount_sequence(
            &server,
            "GET",
            &route,
            status_with_retry_after(503, value),
            1,
            ok(),
        )
        .await;

        let started = Instant::now();
        let err = client.get(&route).send::<Value>().await.unwrap_err();

        assert_eq!(err.kind(), ErrorKind::RateLimited, "{value}: {err:?}");
        let asked = err.retry_after().unwrap();
        assert!(asked > SEC(2 * 86_400), "{value}: {asked:?}");
        let summary = err.retries().unwrap();
        assert_eq!(summary.stopped, StopReason::RetryAfterBeyondCap, "{value}");
        assert!(
            err.to_string()
                .contains("longer than the retry policy's max_retry_after"),
            "{err}"
        );
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "{value}: no backoff, no sleep"
        );
        assert_eq!(hits(&server, &route).await, 1, "{value}");
    }
    let err = client.get("/v1/absurd/0").send::<Value>().await;
    assert!(err.is_ok(), "a 503 starts no cooldown: {err:?}");
}

#[tokio::test(start_paused = true)]
async fn an_error_that_stops_retrying_says_why() {
    let (server, _) = setup_paused().await;
    let down = || ResponseTemplate::new(503);
    Mock::given(path("/v1/down"))
        .respond_with(down())
        .mount(&server)
        .await;
    mount_sequence(
        &server,
        "GET",
        "/v1/gone",
        down(),
        1,
        ResponseTemplate::new(404),
    )
    .await;
    Mock::given(path("/v1/slow"))
        .respond_with(status_with_retry_after(429, "30"))
        .mount(&server)
        .await;
    let fast = Policy::default().base_delay(SEC(1)).jitter(Jitter::None);
    let client = builder(&server).retry_policy(fast.clone()).build().unwrap();
    let broke = builder(&server)
        .retry_policy(fast.clone())
        .retry_budget(Budget::default().reserve(0).ratio(0.0))
        .build()
        .unwrap();

    let stopped = |err: &authed::Error| {
        let summary = err
            .retries()
            .unwrap_or_else(|| panic!("no summary: {err:?}"));
        (summary.attempts, summary.stopped)
    };
    let err = client.get("/v1/down").send::<Value>().await.unwrap_err();
    assert_eq!(stopped(&err), (3, StopReason::MaxAttempts));
    assert!(err.to_string().contains("attempts are used up"), "{err}");

    let err = broke.get("/v1/down").send::<Value>().await.unwrap_err();
    assert_eq!(stopped(&err), (1, StopReason::BudgetExhausted));
    assert!(err.to_string().contains("retry budget is used up"), "{err}");

    let err = client.get("/v1/gone").send::<Value>().await.unwrap_err();
    assert_eq!(stopped(&err), (2, StopReason::NotRetryable));
    assert!(err.to_string().contains("not retryable"), "{err}");

    let err = client
        .get("/v1/slow")
        .retry_policy(fast.clone().max_elapsed(SEC(40)))
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(stopped(&err), (2, StopReason::Deadline));
    assert!(err.to_string().contains("max_elapsed"), "{err}");

    // A client that is not cooling down already.
    let err = broke
        .get("/v1/slow")
        .retry_policy(fast.max_retry_after(SEC(10)))
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(stopped(&err), (1, StopReason::RetryAfterBeyondCap));
}

// ===== One classifier =====

#[tokio::test(start_paused = true)]
async fn is_retryable_and_the_retry_loop_follow_one_classifier() {
    let (server, client) = setup_paused().await;
    mount_sequence(
        &server,
        "GET",
        "/v1/flaky",
        ResponseTemplate::new(500),
        1,
        ok(),
    )
    .await;

    // By default a 500 is neither retried nor said to be retryable.
    let err = client.get("/v1/flaky").send::<Value>().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(hits(&server, "/v1/flaky").await, 1);

    // A rule of the user's makes it both.
    fn server_error(failed: &Failed<'_>) -> Option<Retryable> {
        (failed.status()?.as_u16() == 500).then_some(Retryable::Idempotent)
    }
    let policy = Policy::default().classifier(Classifier::default().with(server_error));
    Mock::given(path("/v1/always-500"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let err = client
        .get("/v1/always-500")
        .retry_policy(policy.clone())
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(hits(&server, "/v1/always-500").await, 3);
    let err = client
        .post("/v1/always-500")
        .retry_policy(policy)
        .send::<Value>()
        .await
        .unwrap_err();
    assert!(
        err.is_retryable(),
        "a POST may be retried by the caller who knows it is safe"
    );
    assert_eq!(
        hits(&server, "/v1/always-500").await,
        4,
        "but not by authed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_held_back_beyond_the_cap_is_classified_by_the_policys_classifier() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    Mock::given(path("/v1/hot"))
        .respond_with(status_with_retry_after(429, "30"))
        .mount(&server)
        .await;
    // A classifier of the user's that retries nothing, and a cap below the server's wait.
    let policy = Policy::default()
        .classifier(Classifier::none())
        .max_retry_after(SEC(5));
    let client = builder(&server).retry_policy(policy).build().unwrap();
    let answered = client.get("/v1/hot").send::<Value>().await.unwrap_err();

    // The next request is held by the 30 s cooldown, beyond the cap: it fails unsent.
    let held = client.get("/v1/hot").send::<Value>().await.unwrap_err();

    assert_eq!(hits(&server, "/v1/hot").await, 1);
    assert_eq!(held.kind(), ErrorKind::RateLimited);
    assert!(!answered.is_retryable(), "{answered:?}");
    assert!(
        !held.is_retryable(),
        "the same classifier speaks for both: {held:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn github_preset_waits_out_secondary_rate_limits() {
    let (server, _) = setup_paused().await;
    let secondary = ResponseTemplate::new(403).insert_header("retry-after", "2");
    mount_sequence(&server, "GET", "/repos/a", secondary.clone(), 1, ok()).await;
    let primary = ResponseTemplate::new(403)
        .insert_header("x-ratelimit-remaining", "0")
        .insert_header("x-ratelimit-reset", "3");
    mount_sequence(&server, "GET", "/repos/b", primary, 1, ok()).await;
    mount_sequence(&server, "GET", "/repos/c", secondary, 1, ok()).await;
    let github = builder(&server)
        .retry_policy(Policy::default().classifier(Classifier::github()))
        .retry_budget(Budget::default().reserve(0).ratio(0.0))
        .build()
        .unwrap();

    let started = Instant::now();
    github.get("/repos/a").send::<Value>().await.unwrap();
    assert_eq!(started.elapsed(), SEC(2), "the Retry-After of the 403");

    let started = Instant::now();
    github.get("/repos/b").send::<Value>().await.unwrap();
    assert_eq!(started.elapsed(), SEC(3), "held until X-RateLimit-Reset");

    // Without the preset a 403 is final.
    let plain = builder(&server).build().unwrap();
    let err = plain.get("/repos/c").send::<Value>().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert!(!err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn stripe_preset_follows_stripe_should_retry() {
    let (server, _) = setup_paused().await;
    let conflict = ResponseTemplate::new(409).insert_header("stripe-should-retry", "true");
    mount_sequence(&server, "POST", "/v1/charges", conflict, 1, ok()).await;
    let refused = ResponseTemplate::new(503).insert_header("stripe-should-retry", "false");
    Mock::given(path("/v1/refunds"))
        .respond_with(refused)
        .mount(&server)
        .await;
    let stripe = builder(&server)
        .retry_policy(Policy::default().classifier(Classifier::stripe()))
        .build()
        .unwrap();

    stripe.post("/v1/charges").send::<Value>().await.unwrap();
    assert_eq!(hits(&server, "/v1/charges").await, 2);

    let err = stripe.get("/v1/refunds").send::<Value>().await.unwrap_err();
    assert!(!err.is_retryable());
    assert_eq!(hits(&server, "/v1/refunds").await, 1);
}

// ===== Whose answers hold the client =====

#[tokio::test(start_paused = true)]
async fn a_429_from_another_origin_after_a_redirect_does_not_hold_the_client() {
    let (server, client) = setup_paused().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/busy"))
        .respond_with(
            status_with_retry_after(429, "30")
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "30"),
        )
        .mount(&elsewhere)
        .await;
    Mock::given(path("/v1/away"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/busy", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v1/ok"))
        .respond_with(ok())
        .mount(&server)
        .await;

    let err = client
        .get("/v1/away")
        .retry_policy(Policy::never())
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));

    let started = Instant::now();
    client.get("/v1/ok").send::<Value>().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no cooldown, no quota hold"
    );
}

#[tokio::test(start_paused = true)]
async fn the_cooldown_is_measured_on_the_injected_clock() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    mount_sequence(
        &server,
        "GET",
        "/v1/hot",
        status_with_retry_after(429, "5"),
        1,
        ok(),
    )
    .await;
    let clock = common::TestClock::new();
    let client = builder(&server).clock(clock.clone()).build().unwrap();

    let err = client
        .get("/v1/hot")
        .retry_policy(Policy::never())
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(SEC(5)));

    // Five seconds pass on the client's clock, none on tokio's: the cooldown is over.
    clock.advance(SEC(5));
    let started = Instant::now();
    client.get("/v1/hot").send::<Value>().await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_time_to_the_quota_reset_is_read_on_the_injected_clock() {
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    let quota = ok()
        .insert_header("x-ratelimit-limit", "10")
        .insert_header("x-ratelimit-remaining", "5")
        .insert_header("x-ratelimit-reset", "30");
    mount_sequence(&server, "GET", "/v1/quota", quota, 1, ok()).await;
    let clock = common::TestClock::new();
    let client = builder(&server).clock(clock.clone()).build().unwrap();
    client.get("/v1/quota").send::<Value>().await.unwrap();

    // Ten seconds pass on the client's clock, none on tokio's.
    clock.advance(SEC(10));

    assert_eq!(client.rate_limit().unwrap().resets_in(), Some(SEC(20)));
}

// ===== Pacing ahead of the limit =====

/// With `remaining` known, requests in flight are counted against it: a burst never goes
/// beyond what the server said is left.
#[cfg(feature = "mock")]
#[tokio::test(start_paused = true)]
async fn a_burst_is_held_to_the_quota_left_instead_of_provoking_429s() {
    let api = authed::mock::MockApi::builder()
        .rate_limit(5, SEC(10))
        .start()
        .await;
    let client = api.client();
    client.get("/v1/widgets/1").send::<Value>().await.unwrap();
    assert_eq!(client.rate_limit().unwrap().remaining, Some(4));

    let burst: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/v1/widgets/1").send::<Value>().await })
        })
        .collect();
    // Let the requests go out and the server answer while paused time stands still: a task
    // that is always ready keeps tokio from jumping to the next timer, so nothing held is
    // released before the window resets.
    for _ in 0..200 {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = api.stats();
    for request in burst {
        request.abort();
    }

    assert_eq!(stats.rate_limited, 0, "no 429 was provoked");
    assert_eq!(
        stats.requests,
        2 + 4,
        "token, first request, then the 4 left"
    );
}

/// The load of issue 11 in a few virtual seconds: 64 workers against 200 requests per second
/// that answers `429` with `Retry-After: 1`. Run on paused time, so the figures do not depend
/// on the machine; the goodput in real time is measured by the benchmark harness.
#[cfg(feature = "mock")]
mod sustained_rate_limit {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    struct Run {
        ok: usize,
        errors: usize,
        rate_limited: usize,
        requests: usize,
        elapsed: Duration,
    }

    async fn run(headers: bool, seconds: u64) -> Run {
        run_with(headers, seconds, true).await
    }

    async fn run_with(headers: bool, seconds: u64, adaptive: bool) -> Run {
        let api = authed::mock::MockApi::builder()
            .rate_limit(200, SEC(1))
            .rate_limit_headers(headers)
            .start()
            .await;
        let client = api
            .client_builder()
            .adaptive_rate_limit(adaptive)
            .build()
            .unwrap();
        // The token first, so that the load measures the API alone.
        client.get("/v1/widgets/1").send::<Value>().await.unwrap();
        let before = api.stats();
        let started = Instant::now();
        let end = started + SEC(seconds);
        let ok = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..64)
            .map(|_| {
                let (client, ok, errors) = (client.clone(), ok.clone(), errors.clone());
                tokio::spawn(async move {
                    while Instant::now() < end {
                        match client.get("/v1/widgets/1").send::<Value>().await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                eprintln!("{e}");
                                errors.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
        let after = api.stats();
        eprintln!(
            "{} ok, {} errors, {} of {} answers 429, in {:?}",
            ok.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            after.rate_limited - before.rate_limited,
            after.requests - before.requests,
            started.elapsed()
        );
        Run {
            ok: ok.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            rate_limited: after.rate_limited - before.rate_limited,
            requests: after.requests - before.requests,
            elapsed: started.elapsed(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn with_rate_limit_headers_no_call_fails_and_few_429s_are_provoked() {
        let run = run(true, 5).await;

        assert_eq!(run.errors, 0);
        let share = run.rate_limited as f64 / run.requests as f64;
        assert!(
            share <= 0.05,
            "{} of {} answers were 429",
            run.rate_limited,
            run.requests
        );
        // Goodput is a speed figure: the bench measures it (`cargo bench --bench sdk -- --only
        // rate`). Here the mock answers in real time under paused time, so it moves with the
        // machine's load; it is printed, not asserted.
        let goodput = run.ok as f64 / run.elapsed.as_secs_f64();
        eprintln!("{goodput:.0} requests/s in {:?}", run.elapsed);
    }

    #[tokio::test(start_paused = true)]
    async fn with_only_retry_after_no_call_fails() {
        let run = run(false, 5).await;

        assert_eq!(run.errors, 0);
        assert!(run.ok > 0);
    }

    /// Without quota headers the client learns the limit from the first window's `429`s and
    /// paces against it; without that, every window ends with up to 64 `429`s.
    #[tokio::test(start_paused = true)]
    async fn with_only_retry_after_the_learned_limit_keeps_429s_under_5_percent() {
        let run = run(false, 10).await;

        assert_eq!(run.errors, 0);
        let share = run.rate_limited as f64 / run.requests as f64;
        assert!(
            share <= 0.05,
            "{} of {} answers were 429",
            run.rate_limited,
            run.requests
        );
        // Goodput is a speed figure: the bench measures it (`cargo bench --bench sdk -- --only
        // rate`). Here the mock answers in real time under paused time, so it moves with the
        // machine's load; it is printed, not asserted.
        let goodput = run.ok as f64 / run.elapsed.as_secs_f64();
        eprintln!("{goodput:.0} requests/s in {:?}", run.elapsed);
    }

    #[tokio::test(start_paused = true)]
    async fn with_only_retry_after_and_no_learned_limit_each_window_ends_in_429s() {
        let run = run_with(false, 3, false).await;

        assert_eq!(run.errors, 0);
        let share = run.rate_limited as f64 / run.requests as f64;
        assert!(
            share > 0.05,
            "{} of {} answers were 429",
            run.rate_limited,
            run.requests
        );
    }
}

// ===== Tracing =====

#[tokio::test(start_paused = true)]
async fn each_retry_is_traced_without_secrets() {
    let (server, client) = setup_paused().await;
    let unavailable = status_with_retry_after(503, "1");
    mount_sequence(&server, "GET", "/v1/traced", unavailable, 1, ok()).await;

    client.get("/v1/traced").send::<Value>().await.unwrap();

    // The capture holds the events of every test of this file: none may show a secret.
    let text = capture::logs().text();
    let retry = text
        .lines()
        .find(|l| l.contains("GET /v1/traced: retrying"))
        .expect("a retry event");
    for field in ["attempt=1", "wait_ms=1000", "status=503"] {
        assert!(retry.contains(field), "{field} missing from {retry}");
    }
    assert!(!text.contains(common::REFRESH_TOKEN) && !text.contains(common::ACCESS_TOKEN));
}

/// Every event of this test binary, in memory. Installed as the global subscriber before any
/// test sends a request, so that no `tracing` callsite is cached as disabled first.
mod capture {
    use std::sync::{Arc, Mutex, OnceLock};

    #[derive(Clone, Default)]
    pub struct Capture(Arc<Mutex<Vec<u8>>>);

    pub fn logs() -> &'static Capture {
        static LOGS: OnceLock<Capture> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Capture::default();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(logs.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
            logs
        })
    }

    impl Capture {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
}
