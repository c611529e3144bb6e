//! The mock API harness (`authed::mock`): its token semantics, bearer check, rate limits,
//! pagination styles, Widgets state, faults and counters.
//!
//! Server semantics are checked with plain reqwest; behaviour a user meets through
//! `api.client()`.
#![cfg(feature = "mock")]

use std::time::{Duration, SystemTime};

use authed::{
    ClientAuth, ErrorKind, ExposeSecret,
    mock::{Fault, MockApi, Paging, Route},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

// ===== helpers =====

/// A plain HTTP client that sets no timer, not even the idle-pool one: on paused tokio time,
/// tokio auto-advances to the next timer while a request waits for the server's thread.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

/// Sends the refresh grant as a public client `authed-mock` (the default).
async fn refresh(api: &MockApi, refresh_token: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "authed-mock"),
    ];
    http()
        .post(api.token_url())
        .form(&form)
        .send()
        .await
        .expect("token endpoint reachable")
}

/// A token response body, after checking the status.
async fn granted(api: &MockApi, refresh_token: &str) -> Value {
    let response = refresh(api, refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// A fresh access token for the grant's current refresh token.
async fn access_token(api: &MockApi) -> String {
    let body = granted(api, api.refresh_token().expose_secret()).await;
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(api: &MockApi, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", api.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("mock API reachable")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

// ===== token endpoint =====

#[tokio::test]
async fn the_client_gets_a_token_once_and_reads_widgets() {
    let api = MockApi::start().await;
    let client = api.client();

    let widget: Value = client.get("/v1/widgets/7").send().await.unwrap();
    let me: Value = client.get("/v1/me").send().await.unwrap();

    assert_eq!(
        widget,
        json!({"id": 7, "name": "Widget 7", "color": "blue", "weight_grams": 107, "tags": []})
    );
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["scopes"], json!(["widgets:read", "widgets:write"]));
    let stats = api.stats();
    assert_eq!(
        (stats.token_requests, stats.refreshes, stats.requests),
        (1, 1, 3)
    );
}

#[tokio::test]
async fn token_responses_carry_the_configured_lifetime_and_rotate_when_asked() {
    let api = MockApi::builder()
        .token_ttl(Duration::from_secs(300))
        .rotate_refresh_tokens(true)
        .start()
        .await;
    let first = api.refresh_token();

    let body = granted(&api, first.expose_secret()).await;

    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    let rotated = body["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, first.expose_secret());
    assert_eq!(api.refresh_token().expose_secret(), rotated);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_grant() {
    let api = MockApi::builder().rotate_refresh_tokens(true).start().await;
    let stolen = api.refresh_token();
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap(); // the client rotates `stolen` out

    // Someone replays the old refresh token: reuse detection.
    let reuse = refresh(&api, stolen.expose_secret()).await;
    assert_eq!(reuse.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reuse.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    // The client's live access token is revoked, and so is its newer refresh token.
    let err = client.get("/v1/me").send::<Value>().await.unwrap_err();
    assert!(err.is_reauth_required(), "{err:?}");
    let newest = refresh(&api, api.refresh_token().expose_secret()).await;
    assert_eq!(newest.status(), StatusCode::BAD_REQUEST);
    let stats = api.stats();
    assert_eq!(
        (stats.invalid_grants, stats.unauthorized),
        (3, 1),
        "{:#?}",
        api.journal()
    );
}

#[tokio::test]
async fn a_revoked_grant_requires_reauthentication() {
    let api = MockApi::start().await;
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap();

    api.revoke_grant();
    let err = client.get("/v1/me").send::<Value>().await.unwrap_err();

    assert!(err.is_reauth_required(), "{err:?}");
    assert_eq!(api.stats().invalid_grants, 1);
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_requests_with_oauth_errors() {
    let api = MockApi::start().await;
    let http = http();
    let cases = [
        (
            vec![("grant_type", "password"), ("client_id", "authed-mock")],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", "authed-mock"),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt-guess"),
                ("client_id", "authed-mock"),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "rt-guess"),
            ],
            401,
            "invalid_client",
        ),
    ];
    for (form, status, error) in cases {
        let response = http.post(api.token_url()).form(&form).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{form:?}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            error,
            "{form:?}"
        );
    }
    let rt = api.refresh_token();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.expose_secret()),
        ("client_id", "authed-mock"),
        ("scope", "admin"),
    ];
    let response = http.post(api.token_url()).form(&form).send().await.unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn jwt_access_tokens_carry_exp_and_sub() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let api = MockApi::builder()
        .jwt_access_tokens(true)
        .token_ttl(Duration::from_secs(600))
        .start()
        .await;

    let token = access_token(&api).await;

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "none");
    assert_eq!(claims["sub"], "user-1");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&exp),
        "exp {exp}, now {now}"
    );
    assert_eq!(get(&api, "/v1/me", &token).await.status(), StatusCode::OK);
}

// ===== client authentication =====

#[tokio::test]
async fn basic_client_auth_accepts_a_secret_with_special_characters() {
    let api = MockApi::builder()
        .client_id("my app")
        .client_secret("a+b:c/d%e f")
        .client_auth(ClientAuth::Basic)
        .start()
        .await;

    let me: Value = api.client().get("/v1/me").send().await.unwrap();
    assert_eq!(me["id"], "user-1");

    let wrong = authed::Client::builder()
        .base_url(api.base_url())
        .token_url(api.token_url())
        .refresh_token(api.refresh_token())
        .client_id("my app")
        .client_secret("a+b:c/d%e")
        .build()
        .unwrap();
    let err = wrong.get("/v1/me").send::<Value>().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(api.journal().last().unwrap().error, Some("invalid_client"));
}

#[tokio::test]
async fn post_client_auth_wants_the_credentials_in_the_body() {
    let api = MockApi::builder()
        .client_secret("s3cret")
        .client_auth(ClientAuth::Post)
        .start()
        .await;

    let _: Value = api.client().get("/v1/me").send().await.unwrap();
    let basic = api
        .client_builder()
        .client_auth(ClientAuth::Basic)
        .build()
        .unwrap();
    let err = basic.get("/v1/me").send::<Value>().await.unwrap_err();

    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err:?}");
    assert_eq!(api.stats().refreshes, 1);
}

#[tokio::test]
async fn a_public_client_must_name_itself() {
    let api = MockApi::start().await;
    let anonymous = api
        .client_builder()
        .client_id("someone-else")
        .build()
        .unwrap();

    let err = anonymous.get("/v1/me").send::<Value>().await.unwrap_err();

    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err:?}");
    assert_eq!(api.journal()[0].error, Some("invalid_client"));
}

// ===== bearer check and expiry =====

#[tokio::test]
async fn resource_routes_refuse_missing_unknown_and_expired_tokens() {
    let api = MockApi::start().await;
    let token = access_token(&api).await;

    let missing = reqwest::get(format!("{}/v1/widgets", api.base_url()))
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&missing, "www-authenticate"),
        r#"Bearer realm="authed-mock""#
    );

    let unknown = get(&api, "/v1/widgets", "at-made-up").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&unknown, "www-authenticate").contains(r#"error="invalid_token""#));
    assert_eq!(header(&unknown, "content-type"), "application/problem+json");

    assert_eq!(
        get(&api, "/v1/widgets", &token).await.status(),
        StatusCode::OK
    );
    api.expire_access_tokens();
    let expired = get(&api, "/v1/widgets", &token).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&expired, "www-authenticate").contains("expired"));
    assert_eq!(
        expired.json::<Value>().await.unwrap()["detail"],
        "the access token expired"
    );
    assert_eq!(api.stats().unauthorized, 3);
}

#[tokio::test]
async fn the_client_recovers_from_a_server_side_expiry_with_one_refresh() {
    let api = MockApi::start().await;
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap();

    api.expire_access_tokens();
    let _: Value = client.get("/v1/me").send().await.unwrap();

    let stats = api.stats();
    assert_eq!((stats.refreshes, stats.unauthorized), (2, 1));
    assert_eq!(api.requests("GET /v1/me"), 3);
}

#[tokio::test]
async fn advancing_the_server_clock_expires_tokens_at_their_ttl() {
    let api = MockApi::builder()
        .token_ttl(Duration::from_secs(60))
        .start()
        .await;
    let token = access_token(&api).await;

    api.advance(Duration::from_secs(59));
    assert_eq!(get(&api, "/v1/me", &token).await.status(), StatusCode::OK);
    api.advance(Duration::from_secs(1));
    assert_eq!(
        get(&api, "/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// wiremock answers on its own thread and runtime; the harness reads the test's clock anyway.
#[tokio::test(start_paused = true)]
async fn paused_tokio_time_reaches_the_server() {
    let api = MockApi::builder()
        .token_ttl(Duration::from_secs(3600))
        .start()
        .await;
    let token = access_token(&api).await; // plain reqwest: no client timeout to auto-advance to

    tokio::time::advance(Duration::from_secs(1800)).await;
    assert_eq!(get(&api, "/v1/me", &token).await.status(), StatusCode::OK);
    tokio::time::advance(Duration::from_secs(1800)).await;
    assert_eq!(
        get(&api, "/v1/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// `api.client()` sets no timers of its own, so it works on paused time as it is (auto-advance
/// would otherwise fire a request timeout while the request waits for the server's thread).
#[tokio::test(start_paused = true)]
async fn paused_time_works_with_the_mock_client_as_it_is() {
    let api = MockApi::builder()
        .token_ttl(Duration::from_secs(3600))
        .start()
        .await;
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap();

    tokio::time::advance(Duration::from_secs(7200)).await;
    let _: Value = client.get("/v1/me").send().await.unwrap();

    let stats = api.stats();
    assert_eq!((stats.refreshes, stats.unauthorized), (2, 0), "{stats:?}");
}

#[tokio::test]
async fn write_routes_need_the_write_scope() {
    let api = MockApi::start().await;
    let reader = api.client_builder().scope("widgets:read").build().unwrap();

    let _: Value = reader.get("/v1/widgets/1").send().await.unwrap();
    let err = reader
        .delete("/v1/widgets/1")
        .send::<()>()
        .await
        .unwrap_err();

    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN), "{err:?}");
    assert_eq!(
        api.journal().last().unwrap().error,
        Some("insufficient_scope")
    );
    let me: Value = reader.get("/v1/me").send().await.unwrap();
    assert_eq!(me["scopes"], json!(["widgets:read"]));
}

// ===== rate limiting =====

// Paused time: on real time, a busy machine can take a second between the first request and
// the 429, which then says `Retry-After: 59`.
#[tokio::test(start_paused = true)]
async fn rate_limits_answer_429_with_retry_after_and_ratelimit_headers() {
    let api = MockApi::builder()
        .rate_limit(2, Duration::from_secs(60))
        .start()
        .await;
    let token = access_token(&api).await;

    let first = get(&api, "/v1/me", &token).await;
    assert_eq!(header(&first, "ratelimit-policy"), r#""default";q=2;w=60"#);
    assert_eq!(header(&first, "ratelimit"), r#""default";r=1;t=60"#);
    assert_eq!(header(&first, "x-ratelimit-remaining"), "1");
    assert_eq!(get(&api, "/v1/me", &token).await.status(), StatusCode::OK);
    let limited = get(&api, "/v1/me", &token).await;

    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    // Seconds until the window resets, rounded up: 60 unless a loaded machine took over a
    // second for the three requests.
    assert!(
        matches!(header(&limited, "retry-after"), "60" | "59"),
        "{:?}",
        header(&limited, "retry-after")
    );
    assert_eq!(header(&limited, "x-ratelimit-remaining"), "0");
    // Each token has its own window; the limited one recovers when its window resets.
    let other = access_token(&api).await;
    assert_eq!(get(&api, "/v1/me", &other).await.status(), StatusCode::OK);
    api.advance(Duration::from_secs(60));
    assert_eq!(get(&api, "/v1/me", &token).await.status(), StatusCode::OK);
    assert_eq!(api.stats().rate_limited, 1);
}

#[tokio::test]
async fn retry_after_can_be_an_http_date() {
    let api = MockApi::builder()
        .rate_limit(1, Duration::from_secs(30))
        .retry_after_http_date(true)
        .start()
        .await;
    let token = access_token(&api).await;
    get(&api, "/v1/me", &token).await;

    let limited = get(&api, "/v1/me", &token).await;

    let date = httpdate::parse_http_date(header(&limited, "retry-after")).unwrap();
    let wait = date.duration_since(SystemTime::now()).unwrap();
    assert!(
        (Duration::from_secs(28)..=Duration::from_secs(31)).contains(&wait),
        "{wait:?}"
    );
}

#[tokio::test]
async fn the_client_sees_a_rate_limited_error_with_retry_after() {
    let api = MockApi::builder()
        .rate_limit(1, Duration::from_secs(3600))
        .start()
        .await;
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap();

    // The first answer said the quota is used up for an hour: the client fails fast without
    // sending (an hour is past the retry policy's cap), and says how long to wait.
    let err = client.get("/v1/me").send::<Value>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600),
        "{wait:?}"
    );
    assert_eq!(
        api.requests("GET /v1/me"),
        1,
        "the second request was not sent"
    );
}

// ===== collections =====

/// 40 items, every other one blue: 20 blue items, in pages of 6 → 4 pages (6, 6, 6, 2).
fn items() -> Vec<Value> {
    (1..=40)
        .map(|id| json!({ "id": id, "color": if id % 2 == 0 { "blue" } else { "red" } }))
        .collect()
}

fn ids(items: &Value) -> Vec<u64> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}

fn blue_ids() -> Vec<u64> {
    (1..=40).filter(|id| id % 2 == 0).collect()
}

#[tokio::test]
async fn offset_paging_filters_and_counts() {
    let api = MockApi::start().await;
    api.collection("/items", items(), Paging::offset("skip", "take"))
        .await;
    let client = api.client();

    let mut seen: Vec<u64> = Vec::new();
    for skip in (0u64..).step_by(6) {
        let response = client
            .get(&format!("/items?color=blue&skip={skip}&take=6"))
            .send_raw()
            .await
            .unwrap();
        assert_eq!(header(&response, "x-total-count"), "20");
        let page = ids(&response.json().await.unwrap());
        seen.extend(&page);
        if page.len() < 6 {
            break;
        }
    }

    assert_eq!(seen, blue_ids());
    assert_eq!(api.requests("GET /items"), 4);
}

#[tokio::test]
async fn page_number_paging_is_one_based() {
    let api = MockApi::start().await;
    api.collection("/items", items(), Paging::page_number("page", "per_page"))
        .await;
    let client = api.client();

    let mut seen = Vec::new();
    for page in 1..=4 {
        let body: Value = client
            .get(&format!("/items?page={page}&per_page=6&color=blue"))
            .send()
            .await
            .unwrap();
        seen.extend(ids(&body));
    }

    assert_eq!(seen, blue_ids());
    let zero = client
        .get("/items?page=0")
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(zero.status(), Some(StatusCode::BAD_REQUEST));
}

#[tokio::test]
async fn cursor_paging_follows_opaque_cursors() {
    let api = MockApi::start().await;
    api.collection("/items", items(), Paging::cursor("cursor"))
        .await;
    let client = api.client();

    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut next: Option<String> = None;
    loop {
        let mut request = client
            .get("/items")
            .query(&[("color", "blue"), ("limit", "6")]);
        if let Some(cursor) = &next {
            request = request.query(&[("cursor", cursor)]);
        }
        let body: Value = request.send().await.unwrap();
        seen.extend(ids(&body["items"]));
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
    }

    assert_eq!((seen, pages), (blue_ids(), 4));
    let bad = client
        .get("/items?cursor=not-ours")
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(StatusCode::BAD_REQUEST));
}

#[tokio::test]
async fn next_url_paging_keeps_filters_and_extra_parameters() {
    let api = MockApi::start().await;
    api.collection("/items", items(), Paging::next_url()).await;
    let client = api.client();

    let (mut seen, mut urls) = (Vec::new(), Vec::new());
    let mut url = "/items?color=blue&page_size=6&sort=id".to_owned();
    loop {
        let body: Value = client.get(&url).send().await.unwrap();
        assert_eq!(body["count"], 20);
        seen.extend(ids(&body["results"]));
        match body["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
        urls.push(url.clone());
    }

    assert_eq!(seen, blue_ids());
    assert_eq!(urls.len(), 3);
    assert_eq!(
        urls[0],
        format!(
            "{}/items?color=blue&sort=id&page=2&page_size=6",
            api.base_url()
        )
    );
}

#[tokio::test]
async fn link_header_paging_sends_next_and_last() {
    let api = MockApi::start().await;
    api.collection("/items", items(), Paging::link_header())
        .await;
    let client = api.client();

    let mut seen = Vec::new();
    let mut url = "/items?per_page=6&color=blue".to_owned();
    let mut last_links = Vec::new();
    loop {
        let response = client.get(&url).send_raw().await.unwrap();
        let link = header(&response, "link").to_owned();
        seen.extend(ids(&response.json().await.unwrap()));
        last_links.push(link.clone());
        let next = link.split(", ").find(|l| l.ends_with(r#"rel="next""#));
        match next {
            Some(next) => url = next[1..next.find('>').unwrap()].to_owned(),
            None => break,
        }
    }

    assert_eq!(seen, blue_ids());
    assert_eq!(last_links.len(), 4);
    let last = format!(
        r#"<{}/items?color=blue&page=4&per_page=6>; rel="last""#,
        api.base_url()
    );
    assert_eq!(last_links[3], last);
}

#[tokio::test]
async fn page_sizes_are_capped_at_the_maximum() {
    let api = MockApi::builder()
        .widgets(30)
        .max_page_size(20)
        .start()
        .await;
    let client = api.client();

    let capped: Value = client.get("/v1/widgets?take=500").send().await.unwrap();
    let default: Value = client.get("/v1/widgets").send().await.unwrap();

    assert_eq!(capped.as_array().unwrap().len(), 20);
    assert_eq!(default.as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn collections_are_behind_the_bearer_check() {
    let api = MockApi::start().await;
    api.collection("/items", items(), Paging::offset("skip", "take"))
        .await;

    let response = reqwest::get(format!("{}/items", api.base_url()))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

// ===== Widgets API =====

#[tokio::test]
async fn widgets_crud_changes_what_later_reads_return() {
    let api = MockApi::builder().widgets(8).start().await;
    let client = api.client();

    let created = client
        .post("/v1/widgets")
        .json(&json!({"name": "Sprocket", "color": "blue", "weight_grams": 250}))
        .send_raw()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        header(&created, "location"),
        format!("{}/v1/widgets/9", api.base_url())
    );
    let created: Value = created.json().await.unwrap();
    assert_eq!(
        created,
        json!({"id": 9, "name": "Sprocket", "color": "blue", "weight_grams": 250, "tags": []})
    );

    let patched: Value = client
        .patch("/v1/widgets/9")
        .json(&json!({"tags": ["new"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (&patched["name"], &patched["tags"]),
        (&json!("Sprocket"), &json!(["new"]))
    );

    let blue = client
        .get("/v1/widgets?color=blue")
        .send_raw()
        .await
        .unwrap();
    assert_eq!(header(&blue, "x-total-count"), "3"); // 3, 7 and 9
    client.delete("/v1/widgets/3").send::<()>().await.unwrap();
    let blue: Value = client.get("/v1/widgets?color=blue").send().await.unwrap();
    assert_eq!(ids(&blue), [7, 9]);

    let err = client
        .get("/v1/widgets/3")
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(
        err.api_error().unwrap().detail.as_deref(),
        Some("widget 3 does not exist")
    );
}

#[tokio::test]
async fn widgets_answer_problem_json_for_missing_and_invalid_ones() {
    let api = MockApi::start().await;
    let token = access_token(&api).await;
    let http = http();
    let url = format!("{}/v1/widgets", api.base_url());

    let missing = get(&api, "/v1/widgets/777", &token).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&missing, "content-type"), "application/problem+json");
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "widget 777 does not exist"})
    );
    for body in [
        json!({"name": " ", "color": "blue", "weight_grams": 1}),
        json!({"name": "X", "color": "purple", "weight_grams": 1}),
        json!({"name": "X", "color": "red"}),
        json!({"name": "X", "color": "red", "weight_grams": -1}),
    ] {
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    let patch = http
        .patch(format!("{url}/1"))
        .bearer_auth(&token)
        .json(&json!({"color": "pink"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let put = http
        .put(format!("{url}/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (put.status(), header(&put, "allow")),
        (StatusCode::METHOD_NOT_ALLOWED, "GET, PATCH, DELETE")
    );
}

// ===== faults =====

#[tokio::test]
async fn fail_next_answers_the_status_then_recovers() {
    let api = MockApi::start().await;
    let token = access_token(&api).await;
    api.fail_next("GET /v1/widgets/1", 2, 503);

    let statuses = [
        get(&api, "/v1/widgets/1", &token).await.status(),
        get(&api, "/v1/widgets/2", &token).await.status(),
        get(&api, "/v1/widgets/1", &token).await.status(),
        get(&api, "/v1/widgets/1", &token).await.status(),
    ];

    assert_eq!(statuses.map(|s| s.as_u16()), [503, 200, 503, 200]);
    assert_eq!(
        api.journal()[1].fault,
        Some(Fault::Status(StatusCode::SERVICE_UNAVAILABLE))
    );
}

#[tokio::test]
async fn the_token_endpoint_can_fail_too() {
    let api = MockApi::start().await;
    api.fail_next(Route::token_endpoint(), 1, 500);

    let failed = refresh(&api, api.refresh_token().expose_secret()).await;
    let recovered = refresh(&api, api.refresh_token().expose_secret()).await;

    assert_eq!(
        (failed.status(), recovered.status()),
        (StatusCode::INTERNAL_SERVER_ERROR, StatusCode::OK)
    );
    let stats = api.stats();
    assert_eq!((stats.token_requests, stats.refreshes), (2, 1));
}

#[tokio::test]
async fn malformed_and_truncated_bodies_are_decode_errors() {
    let api = MockApi::start().await;
    let client = api.client();
    api.fault_next("GET /v1/widgets/1", 1, Fault::MalformedJson);
    api.fault_next("POST /v1/widgets", 1, Fault::TruncatedBody);

    let malformed = client
        .get("/v1/widgets/1")
        .send::<Value>()
        .await
        .unwrap_err();
    let truncated = client
        .post("/v1/widgets")
        .json(&json!({"name": "Half", "color": "red", "weight_grams": 5}))
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(malformed.kind(), ErrorKind::Decode, "{malformed:?}");
    assert_eq!(truncated.kind(), ErrorKind::Decode, "{truncated:?}");
    // The truncated answer still came from the API: the widget exists.
    let created: Value = client.get("/v1/widgets/26").send().await.unwrap();
    assert_eq!(created["name"], "Half");
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error() {
    let api = MockApi::start().await;
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap();
    api.fault_next("/v1/me", 1, Fault::Disconnect);

    let err = client
        .get("/v1/me")
        .retry_policy(authed::retry::Policy::never())
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(api.journal().last().unwrap().status, None);
    // With the default policy, an idempotent GET gets through a dropped connection.
    api.fault_next("/v1/me", 1, Fault::Disconnect);
    let _: Value = client.get("/v1/me").send().await.unwrap();
}

#[tokio::test]
async fn slow_routes_trip_client_timeouts() {
    let api = MockApi::start().await;
    let client = api
        .client_builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let _: Value = client.get("/v1/me").send().await.unwrap();
    api.set_delay("/v1/widgets/1", Duration::from_secs(30));

    // One attempt: with retries, a GET would try again after a (real-time) backoff.
    let err = client
        .get("/v1/widgets/1")
        .retry_policy(authed::retry::Policy::never())
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    api.set_delay("/v1/widgets/1", Duration::ZERO);
    let _: Value = client.get("/v1/widgets/1").send().await.unwrap();
}

// ===== spying and escape hatches =====

#[tokio::test]
async fn the_journal_counts_routes_and_holds_no_secrets() {
    let api = MockApi::builder()
        .client_secret("client-secret-value")
        .start()
        .await;
    let client = api.client();
    let refresh_token = api.refresh_token();
    for id in [1, 2, 1] {
        let _: Value = client
            .get(&format!("/v1/widgets/{id}"))
            .send()
            .await
            .unwrap();
    }
    let access = client.access_token().await.unwrap();

    assert_eq!(api.requests("GET /v1/widgets/1"), 2);
    assert_eq!(api.requests("/v1/widgets/2"), 1);
    assert_eq!(api.requests(Route::token_endpoint()), 1);
    let dump = format!("{:?} {:?}", api.journal(), api);
    for secret in [
        refresh_token.expose_secret(),
        access.expose_secret(),
        "client-secret-value",
    ] {
        assert!(!dump.contains(secret));
    }
}

#[tokio::test]
async fn unknown_routes_get_a_readable_404_and_custom_mocks_win() {
    use wiremock::{Mock, ResponseTemplate, matchers::path};
    let api = MockApi::start().await;
    Mock::given(path("/v1/widgets/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"custom": true})))
        .mount(api.server())
        .await;
    let client = api.client();

    let custom: Value = client.get("/v1/widgets/1").send().await.unwrap();
    let err = client.get("/v2/nothing").send::<Value>().await.unwrap_err();

    assert_eq!(custom, json!({"custom": true}));
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert!(
        err.to_string().contains("no route for GET /v2/nothing"),
        "{err}"
    );
}

// ===== your own routes behind the bearer check =====

/// Mounts `GET /v1/reports` of the user's own behind the mock's bearer check.
async fn mount_reports(api: &MockApi) {
    use authed::mock::wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path},
    };
    Mock::given(method("GET"))
        .and(path("/v1/reports"))
        .respond_with(api.protect(ResponseTemplate::new(200).set_body_json(json!(["q1", "q2"]))))
        .mount(api.server())
        .await;
}

#[tokio::test]
async fn protected_routes_of_your_own_answer_401_after_revocation() {
    let api = MockApi::start().await;
    mount_reports(&api).await;
    let client = api.client();
    let reports: Value = client.get("/v1/reports").send().await.unwrap();
    assert_eq!(reports, json!(["q1", "q2"]));

    api.revoke_grant();
    let err = client.get("/v1/reports").send::<Value>().await.unwrap_err();

    assert!(err.is_reauth_required(), "{err:?}");
    let journal = api.journal();
    let revoked = journal
        .iter()
        .find(|e| e.path == "/v1/reports" && e.status == Some(StatusCode::UNAUTHORIZED))
        .unwrap_or_else(|| panic!("no 401 on /v1/reports: {journal:#?}"));
    assert_eq!(revoked.error, Some("invalid_token"));
}

#[tokio::test]
async fn protected_routes_of_your_own_refuse_missing_and_expired_tokens() {
    let api = MockApi::start().await;
    mount_reports(&api).await;
    let client = api.client();
    let _: Value = client.get("/v1/reports").send().await.unwrap();

    let anonymous = reqwest::get(format!("{}/v1/reports", api.base_url()))
        .await
        .unwrap();
    api.expire_access_tokens();
    let replayed: Value = client.get("/v1/reports").send().await.unwrap();

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&anonymous, "www-authenticate"),
        "Bearer realm=\"authed-mock\""
    );
    assert_eq!(replayed, json!(["q1", "q2"]));
    let stats = api.stats();
    assert_eq!((stats.unauthorized, stats.refreshes), (2, 2));
    assert_eq!(api.requests("GET /v1/reports"), 4);
}

#[tokio::test]
async fn faults_and_rate_limits_apply_to_protected_routes_of_your_own() {
    let api = MockApi::builder()
        .rate_limit(2, Duration::from_secs(3600))
        .start()
        .await;
    mount_reports(&api).await;
    let token = access_token(&api).await;
    api.fail_next("GET /v1/reports", 1, 503);

    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&api, "/v1/reports", &token).await.status().as_u16());
    }

    // The injected 503 does not count against the quota of two.
    assert_eq!(statuses, [503, 200, 200, 429]);
}

#[tokio::test]
async fn the_journal_and_expectations_see_the_status_of_your_own_responses() {
    use authed::mock::wiremock::{
        Mock, ResponseTemplate,
        matchers::{method, path},
    };
    let api = MockApi::start().await;
    api.expect_requests("POST /v1/reports", 1);
    Mock::given(method("POST"))
        .and(path("/v1/reports"))
        .respond_with(api.protect(ResponseTemplate::new(201).set_body_json(json!({"id": 9}))))
        .mount(api.server())
        .await;

    let created: Value = api.client().post("/v1/reports").send().await.unwrap();

    assert_eq!(created, json!({"id": 9}));
    let last = api.journal().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("POST", "/v1/reports", Some(StatusCode::CREATED))
    );
}

#[tokio::test]
async fn wiremock_is_reexported_at_the_harness_version() {
    // Compiles only if `authed::mock::wiremock` is the crate `MockApi::server` returns.
    let api = MockApi::start().await;
    let server: &authed::mock::wiremock::MockServer = api.server();
    assert_eq!(server.uri(), api.base_url());
}

// ===== 429 and token endpoint faults =====

#[tokio::test]
async fn a_429_fault_carries_retry_after_as_configured() {
    let default = MockApi::start().await;
    let configured = MockApi::builder()
        .fault_retry_after(Some(Duration::from_millis(6500)))
        .start()
        .await;
    let none = MockApi::builder().fault_retry_after(None).start().await;
    let mut retry_afters = Vec::new();
    for api in [&default, &configured, &none] {
        let token = access_token(api).await;
        api.fail_next("/v1/me", 1, 429);
        let response = get(api, "/v1/me", &token).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        retry_afters.push(header(&response, "retry-after").to_owned());
    }
    let token = access_token(&none).await;
    none.fault_next(
        "/v1/me",
        1,
        Fault::RateLimited(Some(Duration::from_secs(30))),
    );
    let explicit = get(&none, "/v1/me", &token).await;

    assert_eq!(retry_afters, ["1", "7", ""]);
    assert_eq!(header(&explicit, "retry-after"), "30");
}

#[tokio::test]
async fn the_client_sees_the_retry_after_of_a_429_fault() {
    let api = MockApi::builder()
        .fault_retry_after(Some(Duration::from_secs(3600)))
        .start()
        .await;
    let client = api.client();
    api.fail_next("/v1/me", 1, 429);

    let err = client.get("/v1/me").send::<Value>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn an_invalid_grant_fault_fails_the_refresh_without_revoking_the_grant() {
    let api = MockApi::start().await;
    api.fault_next(
        Route::token_endpoint(),
        1,
        Fault::OAuthError("invalid_grant"),
    );

    let err = api
        .client()
        .get("/v1/me")
        .send::<Value>()
        .await
        .unwrap_err();
    let me: Value = api.client().get("/v1/me").send().await.unwrap();

    assert!(err.is_reauth_required(), "{err:?}");
    assert_eq!(me["id"], "user-1");
    assert_eq!(api.stats().invalid_grants, 1);
}

#[tokio::test]
async fn a_malformed_token_response_is_a_decode_error() {
    let api = MockApi::start().await;
    api.fault_next(Route::token_endpoint(), 1, Fault::MalformedJson);

    let err = api
        .client()
        .get("/v1/me")
        .send::<Value>()
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
}

// ===== expectations checked on drop =====

/// The panic message of a task, if it panicked.
async fn panic_message(task: impl std::future::Future<Output = ()> + Send + 'static) -> String {
    match tokio::spawn(task).await {
        Ok(()) => String::new(),
        Err(e) => {
            let payload = e.into_panic();
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        }
    }
}

#[tokio::test]
async fn met_expectations_pass_on_drop() {
    let message = panic_message(async {
        let api = MockApi::start().await;
        api.expect_refreshes(1);
        api.expect_token_requests(1);
        api.expect_requests("GET /v1/widgets/7", 2);
        let client = api.client();
        for _ in 0..2 {
            let _: Value = client.get("/v1/widgets/7").send().await.unwrap();
        }
    })
    .await;

    assert_eq!(message, "");
}

#[tokio::test]
async fn unmet_expectations_panic_on_drop_with_what_was_received() {
    let message = panic_message(async {
        let api = MockApi::builder()
            .client_secret("expect-secret")
            .start()
            .await;
        api.expect_refreshes(1);
        api.expect_requests("GET /v1/widgets/7", 1);
        api.expire_access_tokens();
        let client = api.client();
        let _: Value = client.get("/v1/me").send().await.unwrap();
        api.expire_access_tokens();
        let _: Value = client.get("/v1/me").send().await.unwrap();
    })
    .await;

    assert!(
        message.contains("MockApi expectations not met"),
        "{message}"
    );
    assert!(
        message.contains("access tokens issued (expect_refreshes): expected 1, received 2"),
        "{message}"
    );
    assert!(
        message.contains("requests to GET /v1/widgets/7 (expect_requests): expected 1, received 0"),
        "{message}"
    );
    assert!(
        message.contains("POST /oauth/token grant_type=refresh_token -> 200"),
        "{message}"
    );
    assert!(
        message.contains("GET /v1/me -> 401 invalid_token"),
        "{message}"
    );
    assert!(!message.contains("expect-secret"), "{message}");
}

#[tokio::test]
async fn verify_checks_expectations_before_the_drop() {
    let message = panic_message(async {
        let api = MockApi::start().await;
        api.expect_token_requests(0);
        let _: Value = api.client().get("/v1/me").send().await.unwrap();
        let verified = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| api.verify()));
        assert!(verified.is_err());
        std::mem::forget(api); // already reported
    })
    .await;

    assert_eq!(message, "");
}

// ===== client_credentials, rotation that revokes, latency =====

#[tokio::test]
async fn the_client_credentials_grant_needs_a_confidential_client_and_records_its_parameters() {
    let api = MockApi::builder()
        .client_secret("cc-secret")
        .client_auth(ClientAuth::Post)
        .start()
        .await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "authed-mock"),
        ("client_secret", "cc-secret"),
        ("scope", "widgets:read"),
        ("audience", "https://api.example.com"),
    ];

    let response = http()
        .post(api.token_url())
        .form(&form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "widgets:read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let me = get(&api, "/v1/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), StatusCode::OK);
    let exchange = &api.journal()[0];
    assert_eq!(exchange.param("grant_type"), Some("client_credentials"));
    assert_eq!(exchange.param("scope"), Some("widgets:read"));
    assert_eq!(exchange.param("audience"), Some("https://api.example.com"));
    assert_eq!(exchange.param("client_secret"), Some("[redacted]"));
    assert!(!format!("{:?}", api.journal()).contains("cc-secret"));

    let public = MockApi::start().await;
    let refused = http()
        .post(public.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "authed-mock"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
}

#[tokio::test]
async fn a_rotation_that_revokes_user_tokens_leaves_client_credentials_tokens_alone() {
    let api = MockApi::builder()
        .client_secret("cc-secret")
        .rotate_refresh_tokens(true)
        .revoke_previous_access_tokens(true)
        .start()
        .await;
    let token = |form: Vec<(&'static str, String)>| {
        let request = http()
            .post(api.token_url())
            .basic_auth("authed-mock", Some("cc-secret"))
            .form(&form);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let service = token(vec![("grant_type", "client_credentials".into())]).await;
    let user = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", api.refresh_token().expose_secret().into()),
    ])
    .await;
    // A rotating refresh, which revokes `user`'s access token.
    token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", api.refresh_token().expose_secret().into()),
    ])
    .await;

    let service_status = get(&api, "/v1/me", service["access_token"].as_str().unwrap())
        .await
        .status();
    let user_status = get(&api, "/v1/me", user["access_token"].as_str().unwrap())
        .await
        .status();

    assert_eq!(
        (service_status, user_status),
        (StatusCode::OK, StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn a_rotating_refresh_revokes_the_previous_access_token_when_asked() {
    for revoke in [false, true] {
        let api = MockApi::builder()
            .rotate_refresh_tokens(true)
            .revoke_previous_access_tokens(revoke)
            .start()
            .await;
        let first = granted(&api, api.refresh_token().expose_secret()).await;
        let second = granted(&api, api.refresh_token().expose_secret()).await;
        let old = first["access_token"].as_str().unwrap();
        let new = second["access_token"].as_str().unwrap();

        let old_status = get(&api, "/v1/me", old).await.status();
        let new_status = get(&api, "/v1/me", new).await.status();

        let expected_old = if revoke {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!((old_status, new_status), (expected_old, StatusCode::OK));
    }
}

#[tokio::test]
async fn latency_delays_every_answer_including_the_token_endpoint() {
    let api = MockApi::builder()
        .latency(Duration::from_millis(100))
        .start()
        .await;

    let started = std::time::Instant::now();
    let token = access_token(&api).await;
    let _ = get(&api, "/v1/me", &token).await;
    let elapsed = started.elapsed();

    // A lower bound only: two answers, each at least 100 ms late.
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
}
