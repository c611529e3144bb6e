//! Against a hostile server (`common::hostile`): bodies that never end, absurd lengths, drip
//! feeds, resets, silence, malformed responses and echoes. The client answers each with a
//! typed error, in bounded time and memory, and never shows a secret it sent.

mod common;

use std::time::Duration;

use authed::{ClientAuth, ErrorKind, StatusCode, retry::Policy};
use common::{
    ACCESS_TOKEN, REFRESH_TOKEN, TOKEN_PATH,
    hostile::{Behavior, HostileServer},
};

const CLIENT_SECRET: &str = "cs-hostile-secret-0123456789";

/// The longest any of these tests may take: a client that waits forever fails the test
/// instead of hanging the suite.
const PATIENCE: Duration = Duration::from_secs(20);

/// A server whose token endpoint answers normally and whose API behaves as `api` says.
async fn hostile_api(api: Behavior) -> HostileServer {
    HostileServer::start(move |request| match request.path() {
        TOKEN_PATH => Behavior::token(ACCESS_TOKEN),
        _ => api.clone(),
    })
    .await
}

/// A client against `server` that does not retry: each test is about one answer, and
/// retries would only add backoff time.
fn client(server: &HostileServer) -> authed::Client {
    server
        .client_builder()
        .retry_policy(Policy::never())
        .build()
        .unwrap()
}

/// Sends `GET /v1/things` and returns its error; panics if it succeeds or takes too long.
async fn get_error(request: authed::RequestBuilder) -> authed::Error {
    tokio::time::timeout(PATIENCE, request.send::<serde_json::Value>())
        .await
        .expect("the client gave up in bounded time")
        .expect_err("a hostile answer is an error")
}

#[tokio::test]
async fn an_error_body_that_never_ends_is_read_only_up_to_a_bound() {
    let server = hostile_api(Behavior::EndlessChunked { status: 500 }).await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Api, "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let raw = &err.api_error().expect("the body's start is kept").raw;
    assert!(
        raw.len() <= authed::ApiError::RAW_LIMIT + 32,
        "{} bytes",
        raw.len()
    );
}

#[tokio::test]
async fn an_error_body_announcing_a_terabyte_is_read_only_up_to_a_bound() {
    let server = hostile_api(Behavior::HugeContentLength {
        status: 500,
        length: 1 << 40,
    })
    .await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Api, "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_request_timeout() {
    let server = hostile_api(Behavior::NeverAnswer).await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things").timeout(Duration::from_millis(200))).await;

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
}

#[tokio::test]
async fn a_drip_fed_body_is_cut_by_the_request_timeout() {
    // 200 bytes at one byte per 50 ms would take 10 s.
    let body = format!("[{}1]", "1,".repeat(98));
    let response = Behavior::http(
        200,
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    let server = hostile_api(Behavior::Drip {
        response,
        every: Duration::from_millis(50),
    })
    .await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things").timeout(Duration::from_millis(300))).await;

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
}

#[tokio::test]
async fn a_reset_in_the_middle_of_a_body_is_a_transport_error() {
    let server = hostile_api(Behavior::ResetMidBody {
        status: 200,
        sent: 10,
    })
    .await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
}

/// Responses no HTTP/1.1 server may send.
fn malformed_responses() -> Vec<&'static [u8]> {
    vec![
        b"HTTP/1.1 abc OK\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 99999 Big\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/9.9 200 OK\r\ncontent-length: 0\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\nx-bad: a\0b\r\ncontent-length: 2\r\n\r\n[]",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n[]\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n[]",
        b"",
    ]
}

#[tokio::test]
async fn malformed_api_responses_are_typed_errors() {
    for response in malformed_responses() {
        let server = hostile_api(Behavior::Raw(response.to_vec())).await;
        let client = client(&server);

        let err = get_error(client.get("/v1/things")).await;

        let shown = String::from_utf8_lossy(response);
        assert!(
            matches!(err.kind(), ErrorKind::Transport | ErrorKind::Decode),
            "{shown:?} gave {err:?}"
        );
    }
}

#[tokio::test]
async fn malformed_token_responses_are_typed_errors() {
    for response in malformed_responses() {
        let server = HostileServer::always(Behavior::Raw(response.to_vec())).await;
        let client = client(&server);

        let err = get_error(client.get("/v1/things")).await;

        let shown = String::from_utf8_lossy(response);
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Transport | ErrorKind::Decode | ErrorKind::Auth(_)
            ),
            "{shown:?} gave {err:?}"
        );
        assert!(
            server.requests().iter().all(|r| r.path() == TOKEN_PATH),
            "no API request without a token"
        );
    }
}

fn assert_shows_no_secret(err: &authed::Error, secrets: &[&str]) {
    let api = err.api_error().expect("the echoed body is kept");
    let shown = [
        format!("{err}"),
        format!("{err:?}"),
        format!("{api:?}"),
        api.message.clone().unwrap_or_default(),
        api.raw.clone(),
    ];
    for text in &shown {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret is shown:\n{text}");
        }
    }
}

#[tokio::test]
async fn an_api_echoing_the_request_does_not_put_the_access_token_in_the_error() {
    let server = hostile_api(Behavior::Echo {
        status: 400,
        request_id: false,
    })
    .await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things")).await;

    // The server did receive the token, so the echo does carry it.
    let echoed = server.requests().last().unwrap().text();
    assert!(echoed.contains(ACCESS_TOKEN), "{echoed}");
    assert_eq!(err.kind(), ErrorKind::Api, "{err:?}");
    assert_shows_no_secret(&err, &[ACCESS_TOKEN]);
}

#[tokio::test]
async fn a_token_endpoint_echoing_the_request_does_not_put_secrets_in_the_error() {
    let server = HostileServer::always(Behavior::Echo {
        status: 400,
        request_id: false,
    })
    .await;
    let client = server
        .client_builder()
        .client_secret(CLIENT_SECRET)
        .client_auth(ClientAuth::Post)
        .retry_policy(Policy::never())
        .build()
        .unwrap();

    let err = get_error(client.get("/v1/things")).await;

    let echoed = server.requests().last().unwrap().text();
    assert!(
        echoed.contains(REFRESH_TOKEN) && echoed.contains(CLIENT_SECRET),
        "{echoed}"
    );
    assert!(matches!(err.kind(), ErrorKind::Auth(_)), "{err:?}");
    assert_shows_no_secret(&err, &[REFRESH_TOKEN, CLIENT_SECRET]);
}

// ===== token endpoint and secrets (issue 10: each failed on 0.1) =====

/// The token endpoint's body is read up to a bound (issue 10, item 1).
#[tokio::test]
async fn a_token_response_that_never_ends_is_a_bounded_error() {
    let server = HostileServer::start(|r| match r.path() {
        TOKEN_PATH => Behavior::EndlessChunked { status: 200 },
        _ => Behavior::json(200, &serde_json::json!([])),
    })
    .await;
    let client = client(&server);

    let result = tokio::time::timeout(
        Duration::from_secs(5),
        client.get("/v1/things").send::<serde_json::Value>(),
    )
    .await;

    let err = result
        .expect("fails in bounded time")
        .expect_err("no token");
    assert!(
        matches!(err.kind(), ErrorKind::Auth(_) | ErrorKind::Decode),
        "{err:?}"
    );
}

/// A request's timeout covers waiting for its token (issue 10, item 3).
#[tokio::test]
async fn the_request_timeout_covers_the_token_request() {
    let server = HostileServer::start(|r| match r.path() {
        TOKEN_PATH => Behavior::NeverAnswer,
        _ => Behavior::json(200, &serde_json::json!([])),
    })
    .await;
    let client = client(&server);

    let result = tokio::time::timeout(
        Duration::from_secs(5),
        client
            .get("/v1/things")
            .timeout(Duration::from_millis(300))
            .send::<serde_json::Value>(),
    )
    .await;

    let err = result
        .expect("the 300 ms budget holds")
        .expect_err("timed out");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
}

/// A `200` whose body never ends fails once it passes the bound, not when memory runs out.
#[tokio::test]
async fn a_success_body_that_never_ends_is_read_only_up_to_a_bound() {
    let server = hostile_api(Behavior::EndlessChunked { status: 200 }).await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things").max_body_bytes(64 * 1024)).await;

    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
}

/// A `200` announcing a terabyte fails before anything is read (default bound, 16 MiB).
#[tokio::test]
async fn a_success_body_announcing_a_terabyte_fails_before_it_is_read() {
    let server = hostile_api(Behavior::HugeContentLength {
        status: 200,
        length: 1 << 40,
    })
    .await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "larger than {} bytes",
            authed::DEFAULT_MAX_BODY_BYTES
        )),
        "{err}"
    );
}

/// The bound is the caller's: a body of exactly the bound is decoded, one byte more fails.
#[tokio::test]
async fn the_body_bound_is_the_callers() {
    let items = vec![1_u32; 201];
    let body = serde_json::to_string(&items).unwrap();
    let server = hostile_api(Behavior::json(200, &serde_json::json!(items))).await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things").max_body_bytes(body.len() - 1)).await;
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    let items: Vec<u32> = client
        .get("/v1/things")
        .max_body_bytes(body.len())
        .send()
        .await
        .unwrap();
    assert_eq!(items.len(), 201);
}

/// A JSON answer after `after`.
fn late(status: u16, headers: &[(&str, &str)], after: Duration) -> Behavior {
    let mut headers = headers.to_vec();
    headers.push(("content-type", "application/json"));
    let response = Behavior::http(status, &headers, b"[]");
    Behavior::Late { response, after }
}

/// The client's timeout (not only a request's own) bounds a send that waited for nothing
/// (`reqwest`'s own timeout, set on the HTTP client, ends it).
#[tokio::test]
async fn the_clients_timeout_ends_a_request_the_server_never_answers() {
    let server = hostile_api(Behavior::NeverAnswer).await;
    let client = server
        .client_builder()
        .retry_policy(Policy::never())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    // The token is at hand: the request waits for nothing before it is sent.
    client.access_token().await.unwrap();

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
}

/// The client's timeout covers the token wait: an answer that alone would arrive within it
/// is cut when the token took part of it.
#[tokio::test]
async fn the_clients_timeout_covers_the_token_wait_before_the_send() {
    let token = common::token_body(ACCESS_TOKEN, 3600).to_string();
    let token = Behavior::http(
        200,
        &[("content-type", "application/json")],
        token.as_bytes(),
    );
    let server = HostileServer::start(move |r| match r.path() {
        TOKEN_PATH => Behavior::Late {
            response: token.clone(),
            after: Duration::from_millis(400),
        },
        _ => late(200, &[], Duration::from_millis(700)),
    })
    .await;
    let client = server
        .client_builder()
        .retry_policy(Policy::never())
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(
        !err.to_string().contains("waiting for an access token"),
        "the token arrived in time; the API's answer is what was cut: {err}"
    );
    assert_eq!(
        server.requests().len(),
        2,
        "one token request, one API request"
    );
}

/// The client's timeout covers a redirect's hops together, not each hop anew.
#[tokio::test]
async fn the_clients_timeout_covers_every_hop_of_a_redirect() {
    let server = HostileServer::start(|r| match r.path() {
        TOKEN_PATH => Behavior::token(ACCESS_TOKEN),
        "/v1/moved" => late(200, &[], Duration::from_millis(700)),
        _ => late(
            307,
            &[("location", "/v1/moved")],
            Duration::from_millis(400),
        ),
    })
    .await;
    let client = server
        .client_builder()
        .retry_policy(Policy::never())
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();

    // The token is at hand: the request waits for nothing before its first hop.
    client.access_token().await.unwrap();

    let err = get_error(client.get("/v1/things")).await;

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert!(
        paths.iter().any(|p| p == "/v1/moved"),
        "the redirect was followed: {paths:?}"
    );
}

/// A request id echoing the bearer token is scrubbed (issue 10, item 6).
#[tokio::test]
async fn a_request_id_echoing_the_bearer_token_is_not_shown() {
    let server = HostileServer::start(|r| match r.path() {
        TOKEN_PATH => Behavior::token(ACCESS_TOKEN),
        _ => Behavior::Echo {
            status: 400,
            request_id: true,
        },
    })
    .await;
    let client = client(&server);

    let err = client
        .get("/v1/things")
        .send::<serde_json::Value>()
        .await
        .unwrap_err();

    for text in [
        format!("{err}"),
        format!("{err:?}"),
        err.request_id().unwrap_or("").to_owned(),
    ] {
        assert!(
            !text.contains(ACCESS_TOKEN),
            "the access token is shown:\n{text}"
        );
    }
}

/// An echoed `Basic base64(id:secret)` is scrubbed (issue 10, item 6).
#[tokio::test]
async fn a_token_endpoint_echoing_basic_credentials_does_not_show_them() {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let server = HostileServer::always(Behavior::Echo {
        status: 400,
        request_id: false,
    })
    .await;
    let client = server
        .client_builder()
        .client_secret(CLIENT_SECRET)
        .retry_policy(Policy::never())
        .build()
        .unwrap();

    let err = client
        .get("/v1/things")
        .send::<serde_json::Value>()
        .await
        .unwrap_err();

    let basic = STANDARD.encode(format!("test-client:{CLIENT_SECRET}"));
    let echoed = server.requests()[0].text();
    assert!(echoed.contains(&basic), "{echoed}");
    for text in [format!("{err}"), format!("{err:?}")] {
        assert!(
            !text.contains(&basic),
            "the Basic credentials are shown:\n{text}"
        );
    }
}

/// A malformed 200 token response puts no snippet of itself, so neither new token, into the
/// error (issue 10, item 5).
#[tokio::test]
async fn a_malformed_token_response_does_not_show_the_new_tokens() {
    const NEW_AT: &str = "at-new-access-0123456789";
    const NEW_RT: &str = "rt-new-refresh-0123456789";
    let truncated =
        format!(r#"{{"access_token":"{NEW_AT}","refresh_token":"{NEW_RT}","expires_in":36"#);
    let server = HostileServer::start(move |r| match r.path() {
        TOKEN_PATH => Behavior::Respond {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: truncated.clone().into_bytes(),
        },
        _ => Behavior::json(200, &serde_json::json!([])),
    })
    .await;
    let client = client(&server);

    let err = get_error(client.get("/v1/things")).await;

    for text in [format!("{err}"), format!("{err:?}")] {
        for secret in [NEW_AT, NEW_RT, REFRESH_TOKEN] {
            assert!(!text.contains(secret), "a token is shown:\n{text}");
        }
    }
}
