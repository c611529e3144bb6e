//! Secrets stay secret: not in `Debug`, `Display`, errors or logs; the token goes only to the
//! API's origin and only in the `Authorization` header; client credentials are encoded as
//! RFC 6749 says; a hostile or buggy server cannot lead the client round in circles.
//! docs/security.md names the test behind each rule of the threat model.
#![cfg(feature = "mock")]

mod common;

use std::time::Duration;

use authed::{ClientAuth, ExposeSecret, Pagination, retry::Policy};
use base64::{Engine, engine::general_purpose::STANDARD};
use common::{ACCESS_TOKEN, Captured, REFRESH_TOKEN, builder, received};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{any, header, method, path},
};

const CLIENT_SECRET: &str = "cs-client-secret-0123456789";
const ROTATED: &str = "rt-rotated-0123456789";

fn assert_no_secret(what: &str, text: &str) {
    for secret in [REFRESH_TOKEN, ACCESS_TOKEN, CLIENT_SECRET, ROTATED] {
        assert!(!text.contains(secret), "{what} contains a secret:\n{text}");
    }
}

#[tokio::test]
async fn no_secret_reaches_debug_display_errors_or_logs() {
    let logs = Captured::install();

    let server = MockServer::start().await;
    // The token endpoint rotates the refresh token once, then echoes the secrets back in an
    // error body (servers do that); the API echoes the access token in a 403 body.
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": ROTATED,
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": format!("token {ROTATED} revoked; client secret {CLIENT_SECRET}"),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/forbidden"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"error": "forbidden", "message": format!("token {ACCESS_TOKEN} lacks scope")}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/stale"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client_builder = builder(&server).client_secret(CLIENT_SECRET);
    let mut seen = vec![format!("{client_builder:?}")];
    let client = client_builder.build().unwrap();

    client.get("/me").send::<Value>().await.unwrap();
    let token = client.access_token().await.unwrap();
    let forbidden = client.get("/forbidden").send::<Value>().await.unwrap_err();
    // A 401 invalidates the token; the refresh then fails with the echoing invalid_grant.
    let reauth = client.get("/stale").send::<Value>().await.unwrap_err();
    assert!(reauth.is_reauth_required());

    for err in [&forbidden, &reauth] {
        seen.push(format!("{err} {err:?} {:?}", err.api_error()));
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            seen.push(format!("{s} {s:?}"));
            source = s.source();
        }
    }
    seen.push(format!("{client:?} {token:?}"));
    seen.push(format!("{:?}", authed::RefreshToken::new(REFRESH_TOKEN)));
    seen.push(format!("{:?}", authed::ClientSecret::new(CLIENT_SECRET)));
    assert!(forbidden.api_error().unwrap().raw.contains("[redacted]"));
    assert_no_secret("Debug/Display output", &seen.join("\n"));

    let logs = logs.text();
    assert!(
        logs.contains("access token refreshed"),
        "the capture works:\n{logs}"
    );
    assert!(logs.contains("token refresh failed"), "{logs}");
    assert_no_secret("tracing output", &logs);
}

#[tokio::test]
async fn credentials_set_on_a_request_stay_out_of_its_debug_output() {
    let server = MockServer::start().await;
    let client = builder(&server).build().unwrap();
    let mut more = authed::header::HeaderMap::new();
    more.insert(
        "proxy-authorization",
        format!("Basic {CLIENT_SECRET}").parse().unwrap(),
    );
    more.insert("x-trace", "visible".parse().unwrap());

    let request = client
        .get("/me")
        .header("authorization", format!("Bearer {ACCESS_TOKEN}"))
        .header("cookie", format!("session={REFRESH_TOKEN}"))
        .headers(more);

    let debug = format!("{request:?}");
    assert!(debug.contains("visible"), "the capture works:\n{debug}");
    assert_no_secret("a request's Debug output", &debug);
}

#[tokio::test]
async fn client_secret_basic_form_urlencodes_id_and_secret_before_base64() {
    Captured::install();
    let server = MockServer::start().await;
    let expected = format!(
        "Basic {}",
        STANDARD.encode("my+client%3A1:a%2Bb%3Ac%2Fd%25e+f")
    );
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .and(header("authorization", expected.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(common::token_body("at", 60)))
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server)
        .client_id("my client:1")
        .client_secret("a+b:c/d%e f")
        .build()
        .unwrap();

    client.access_token().await.unwrap();
    let form = common::form(&received(&server, common::TOKEN_PATH).await[0]);
    assert!(!form.contains_key("client_secret") && !form.contains_key("client_id"));
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    Captured::install();
    let (server, _) = common::setup().await;
    let client = builder(&server)
        .client_secret("a+b:c/d%e f")
        .client_auth(ClientAuth::Post)
        .build()
        .unwrap();

    client.access_token().await.unwrap();
    let request = &received(&server, common::TOKEN_PATH).await[0];
    let form = common::form(request);
    assert_eq!(form["client_id"], "test-client");
    assert_eq!(form["client_secret"], "a+b:c/d%e f");
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn cross_origin_redirects_and_absolute_urls_do_not_carry_the_token() {
    Captured::install();
    let (api, client) = common::setup().await;
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&elsewhere)
        .await;
    Mock::given(method("GET"))
        .and(path("/leave"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/landing", elsewhere.uri())),
        )
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/hop"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/me"))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&api)
        .await;

    // A token in the cache: each request's first send is made at once and its redirect is
    // handed on to the redirect loop (as a cold start's would be made by the loop itself).
    client.access_token().await.unwrap();
    client.get("/leave").send::<Value>().await.unwrap();
    client
        .get(&format!("{}/direct", elsewhere.uri()))
        .send::<Value>()
        .await
        .unwrap();
    client.get("/hop").send::<Value>().await.unwrap();

    let foreign = elsewhere.received_requests().await.unwrap();
    assert_eq!(foreign.len(), 2);
    assert!(
        foreign
            .iter()
            .all(|r| r.headers.get("authorization").is_none())
    );
    let same_origin = &received(&api, "/me").await[0];
    assert_eq!(
        common::bearer(same_origin).unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
}

#[tokio::test]
async fn token_requests_never_follow_redirects() {
    Captured::install();
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/steal", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    let client = builder(&server).build().unwrap();

    let err = client.access_token().await.unwrap_err();

    assert_eq!(err.status(), Some(authed::StatusCode::TEMPORARY_REDIRECT));
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the refresh token stayed home"
    );
}

#[test]
fn secrets_are_exposed_only_on_purpose() {
    let token = authed::RefreshToken::new("rt-visible-only-here");
    assert_eq!(format!("{token:?}"), "RefreshToken([redacted])");
    assert_eq!(token.expose_secret(), "rt-visible-only-here");
}

#[tokio::test]
async fn tokens_travel_only_in_the_authorization_header_and_the_token_request_body() {
    // RFC 6750 §2.3 and §5.3: a token in a URL ends up in server logs, proxies, caches and
    // Referer headers. The access token goes in `Authorization: Bearer`, the refresh token in
    // the POST body of the token request, and neither anywhere else.
    Captured::install();
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;

    client
        .get("/items")
        .query(&[("color", "blue")])
        .send::<Value>()
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "one token request, one API request");
    for request in &requests {
        let url = request.url.as_str();
        for (name, value) in &request.headers {
            if name != "authorization" {
                assert_no_secret(
                    &format!("header {name} to {url}"),
                    &String::from_utf8_lossy(value.as_bytes()),
                );
            }
        }
        assert_no_secret("a request URL", url);
    }
    let token_request = &received(&server, common::TOKEN_PATH).await[0];
    assert_eq!(token_request.method, wiremock::http::Method::POST);
    assert_eq!(common::form(token_request)["refresh_token"], REFRESH_TOKEN);
    assert!(token_request.headers.get("authorization").is_none());
    let api_request = &received(&server, "/items").await[0];
    assert_eq!(
        common::bearer(api_request).unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
    assert_no_secret(
        "the API request body",
        &String::from_utf8_lossy(&api_request.body),
    );
}

#[tokio::test]
async fn an_endless_redirect_chain_is_cut_after_ten_redirects() {
    Captured::install();
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/loop"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/loop"))
        .mount(&server)
        .await;

    // One attempt, so that the count below is one chain; a bound on the test, not on the
    // client: without the cut the chain never ends.
    let sent = client
        .get("/loop")
        .retry_policy(Policy::never())
        .send::<Value>();
    let err = tokio::time::timeout(Duration::from_secs(30), sent)
        .await
        .expect("the redirect chain ends")
        .unwrap_err();

    // The request and ten redirects, then the chain is cut.
    assert_eq!(received(&server, "/loop").await.len(), 11);
    let chain = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(chain.contains("too many redirects"), "{chain}");
}

#[tokio::test]
async fn a_limited_listing_of_an_endless_api_stops_at_the_limit() {
    // An API that always has another page of personal data: a listing with a limit takes
    // what it asked for and stops, however much the token could read.
    Captured::install();
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/people"))
        .respond_with(|request: &Request| {
            let from: u64 = request
                .url
                .query_pairs()
                .find(|(name, _)| name == "cursor")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            let people: Vec<Value> = (from..from + 10)
                .map(|id| json!({ "id": id, "email": format!("person{id}@example.com") }))
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({ "people": people, "next": (from + 10).to_string() }))
        })
        .mount(&server)
        .await;

    let listing = client
        .paginate::<Value>(
            "/people",
            Pagination::cursor("cursor", "/next").items_at("/people"),
        )
        .limit(25)
        .stream()
        .try_collect::<Vec<Value>>();
    let people = tokio::time::timeout(Duration::from_secs(30), listing)
        .await
        .expect("the listing ends at its limit")
        .unwrap();

    assert_eq!(people.len(), 25);
    assert_eq!(people[24]["id"], 24);
    assert_eq!(
        received(&server, "/people").await.len(),
        3,
        "pages of 10: 10 + 10 + 5"
    );
}
