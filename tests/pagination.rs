//! Paginated endpoints as streams: every strategy end to end, limits, laziness, loop safety,
//! origin checks, token refresh mid-stream, checkpoints and prefetch.
#![cfg(feature = "mock")]

mod common;

use std::{collections::HashMap, time::Duration};

use authed::{
    ErrorKind, Pagination,
    mock::{MockApi, Paging, Quirk},
    pagination::{
        Cursor, LinkHeader, Marker, PageNumber, PageRequest, PageResponse, Position, Reason,
        Strategy,
    },
    retry::Policy,
};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{any, header, method, path, query_param},
};

#[derive(Debug, Deserialize, PartialEq)]
struct Item {
    id: u64,
}

fn item(id: u64) -> Value {
    json!({ "id": id })
}

fn ids(items: &[Item]) -> Vec<u64> {
    items.iter().map(|i| i.id).collect()
}

fn params(request: &Request) -> HashMap<String, String> {
    request
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn number(params: &HashMap<String, String>, name: &str) -> Option<u64> {
    params.get(name)?.parse().ok()
}

/// The API requests the server received, as `path?query`, in order.
async fn api_requests(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.url.path() != common::TOKEN_PATH)
        .map(|r| format!("{}?{}", r.url.path(), r.url.query().unwrap_or("")))
        .collect()
}

async fn token_requests(server: &MockServer) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.url.path() == common::TOKEN_PATH)
        .count()
}

/// A readable failure for any request no mock expects (mounted last, lowest priority).
async fn mount_catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({ "error": "unexpected request" })),
        )
        .with_priority(u8::MAX)
        .named("catch-all: unexpected request")
        .mount(server)
        .await;
}

/// `GET /items?skip=&take=` over `total` items, answering 400 unless `color=blue` is sent.
async fn mount_offset_api(server: &MockServer, total: u64) {
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(move |request: &Request| {
            let p = params(request);
            if p.get("color").map(String::as_str) != Some("blue") {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({ "error": "the filter was lost" }));
            }
            let skip = number(&p, "skip").unwrap_or(0);
            let take = number(&p, "take").unwrap_or(100);
            let items: Vec<Value> = (skip..total.min(skip.saturating_add(take)))
                .map(item)
                .collect();
            ResponseTemplate::new(200).set_body_json(items)
        })
        .named("offset API")
        .mount(server)
        .await;
}

/// `GET /feed?cursor=` answering `{"items": [...], "next": ...}` from a script of pages: page
/// `n` is reached with cursor `c{n}` (page 0 without a cursor).
async fn mount_cursor_api(server: &MockServer, pages: Vec<(Vec<u64>, Option<&str>)>) {
    let pages: Vec<(Vec<u64>, Option<String>)> = pages
        .into_iter()
        .map(|(items, next)| (items, next.map(str::to_owned)))
        .collect();
    Mock::given(method("GET"))
        .and(path("/feed"))
        .respond_with(move |request: &Request| {
            let p = params(request);
            let index = match p.get("cursor") {
                None => 0,
                Some(c) => match c.strip_prefix('c').and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => n,
                    None => return ResponseTemplate::new(400),
                },
            };
            match pages.get(index) {
                Some((items, next)) => ResponseTemplate::new(200).set_body_json(json!({
                    "items": items.iter().copied().map(item).collect::<Vec<_>>(),
                    "meta": { "next_cursor": next },
                })),
                None => ResponseTemplate::new(404),
            }
        })
        .named("cursor API")
        .mount(server)
        .await;
}

// ===== each strategy end to end =====

#[tokio::test]
async fn offset_walks_every_page_keeping_the_filter() {
    let (server, client) = common::setup().await;
    mount_offset_api(&server, 7).await;
    mount_catch_all(&server).await;

    let items: Vec<Item> = client
        .paginate("/items", Pagination::offset("skip", "take").page_size(3))
        .query(&[("color", "blue")])
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), (0..7).collect::<Vec<_>>());
    assert_eq!(
        api_requests(&server).await,
        [
            "/items?color=blue&skip=0&take=3",
            "/items?color=blue&skip=3&take=3",
            "/items?color=blue&skip=6&take=3",
        ]
    );
}

#[tokio::test]
async fn page_number_walks_every_page_and_stops_at_the_total_in_the_body() {
    let (server, client) = common::setup().await;
    // 9 items in full pages of 3: only the total says page 3 is the last.
    Mock::given(method("GET"))
        .and(path("/posts"))
        .and(query_param("status", "publish"))
        .respond_with(|request: &Request| {
            let p = params(request);
            let (page, size) = (
                number(&p, "page").unwrap_or(0),
                number(&p, "per_page").unwrap_or(0),
            );
            if !(0..3).contains(&page) || size != 3 {
                return ResponseTemplate::new(400);
            }
            let data: Vec<Value> = (page * 3..page * 3 + 3).map(item).collect();
            ResponseTemplate::new(200).set_body_json(json!({ "data": data, "total": 9 }))
        })
        .named("page-number API, zero-based")
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let pagination = Pagination::new(PageNumber::new("page", "per_page").first_page(0))
        .page_size(3)
        .items_at("/data")
        .total_at("/total");
    let pages: Vec<_> = client
        .paginate::<Item>("/posts?status=publish", pagination)
        .pages()
        .try_collect()
        .await
        .unwrap();

    let items: Vec<Item> = pages
        .iter()
        .flat_map(|p| p.items())
        .map(|i| Item { id: i.id })
        .collect();
    assert_eq!(ids(&items), (0..9).collect::<Vec<_>>());
    assert_eq!(
        pages.iter().map(|p| p.total()).collect::<Vec<_>>(),
        [Some(9); 3]
    );
    assert!(pages[2].next().is_none(), "the total ends the listing");
    assert_eq!(
        pages[1].next().map(Position::marker),
        Some(&Marker::Page(2))
    );
    assert_eq!(
        api_requests(&server).await,
        [
            "/posts?status=publish&page=0&per_page=3",
            "/posts?status=publish&page=1&per_page=3",
            "/posts?status=publish&page=2&per_page=3",
        ]
    );
}

#[tokio::test]
async fn cursor_walks_every_page_keeping_the_filter() {
    let (server, client) = common::setup().await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1, 2], Some("c1")),
            (vec![3, 4], Some("c2")),
            (vec![5], None),
        ],
    )
    .await;
    mount_catch_all(&server).await;

    let items: Vec<Item> = client
        .paginate(
            "/feed",
            Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items"),
        )
        .query(&[("channel", "general")])
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [1, 2, 3, 4, 5]);
    assert_eq!(
        api_requests(&server).await,
        [
            "/feed?channel=general",
            "/feed?channel=general&cursor=c1",
            "/feed?channel=general&cursor=c2"
        ]
    );
}

#[tokio::test]
async fn next_url_follows_relative_and_absolute_urls_from_the_body() {
    let (server, client) = common::setup().await;
    let page = |results: Vec<u64>, next: Value| {
        let results: Vec<Value> = results.into_iter().map(item).collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({ "count": 5, "next": next, "results": results }))
    };
    let page2 = format!("{}/api/items/?color=blue&page=3", server.uri());
    for (page_param, response) in [
        // Relative to the page URL (`/api/items/`).
        (None, page(vec![1, 2], json!("?color=blue&page=2"))),
        (Some("2"), page(vec![3, 4], json!(page2))),
        (Some("3"), page(vec![5], Value::Null)),
    ] {
        let mock = Mock::given(method("GET"))
            .and(path("/api/items/"))
            .and(query_param("color", "blue"));
        let mock = match page_param {
            Some(n) => mock.and(query_param("page", n)),
            None => mock.and(|r: &Request| !params(r).contains_key("page")),
        };
        mock.respond_with(response).expect(1).mount(&server).await;
    }
    mount_catch_all(&server).await;

    let items: Vec<Item> = client
        .paginate(
            "/api/items/",
            Pagination::next_url("/next")
                .items_at("/results")
                .total_at("/count"),
        )
        .query(&[("color", "blue")])
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn link_header_follows_rel_next_until_there_is_none() {
    let (server, client) = common::setup().await;
    let uri = server.uri();
    let link = |page: u32| format!("<{uri}/repos/issues?state=open&page={page}>");
    for (page, items, links) in [
        (
            "1",
            vec![1, 2],
            format!(r#"{}; rel="next", {}; rel="last""#, link(2), link(3)),
        ),
        (
            "2",
            vec![3, 4],
            format!(r#"{}; rel="prev", {}; rel="next""#, link(1), link(3)),
        ),
        (
            "3",
            vec![5],
            format!(r#"{}; rel="prev", {}; rel="first""#, link(2), link(1)),
        ),
    ] {
        let mock = Mock::given(method("GET"))
            .and(path("/repos/issues"))
            .and(query_param("state", "open"));
        let mock = match page {
            "1" => mock.and(|r: &Request| !params(r).contains_key("page")),
            n => mock.and(query_param("page", n)),
        };
        let body: Vec<Value> = items.into_iter().map(item).collect();
        mock.respond_with(
            ResponseTemplate::new(200)
                .set_body_json(body)
                .insert_header("link", links.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    }
    mount_catch_all(&server).await;

    let items: Vec<Item> = client
        .paginate("/repos/issues?state=open", Pagination::link_header())
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [1, 2, 3, 4, 5]);
}

/// Stripe-style: `?starting_after=<id of the last item>` until `"has_more": false`.
#[derive(Debug)]
struct StartingAfter;

impl Strategy for StartingAfter {
    fn prepare(&self, request: &PageRequest, url: &mut url::Url) -> authed::Result<()> {
        if let Some(size) = request.size() {
            url.query_pairs_mut()
                .append_pair("limit", &size.to_string());
        }
        if let Marker::Cursor(id) = request.marker() {
            url.query_pairs_mut().append_pair("starting_after", id);
        }
        Ok(())
    }

    fn next(&self, response: &PageResponse<'_>) -> authed::Result<Option<Marker>> {
        let has_more = response.body()["has_more"].as_bool().unwrap_or(false);
        let last_id = response.items().last().and_then(|item| item["id"].as_u64());
        Ok(last_id
            .filter(|_| has_more)
            .map(|id| Marker::Cursor(id.to_string())))
    }
}

#[tokio::test]
async fn a_custom_strategy_gets_limits_and_checkpoints_for_free() {
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges"))
        .respond_with(|request: &Request| {
            let p = params(request);
            let from = number(&p, "starting_after").map_or(0, |id| id + 1);
            let to = (from + number(&p, "limit").unwrap_or(10)).min(10);
            let data: Vec<Value> = (from..to).map(item).collect();
            ResponseTemplate::new(200).set_body_json(json!({ "data": data, "has_more": to < 10 }))
        })
        .mount(&server)
        .await;
    let pagination = || {
        Pagination::new(StartingAfter)
            .items_at("/data")
            .page_size(3)
    };

    let first: Vec<_> = client
        .paginate::<Item>("/v1/charges", pagination())
        .limit(5)
        .pages()
        .try_collect()
        .await
        .unwrap();
    let checkpoint = first.last().and_then(|p| p.next()).cloned().unwrap();
    let rest: Vec<Item> = client
        .paginate("/v1/charges", pagination())
        .resume_from(checkpoint)
        .stream()
        .try_collect()
        .await
        .unwrap();

    let first: Vec<u64> = first.iter().flat_map(|p| p.items()).map(|i| i.id).collect();
    assert_eq!(first, [0, 1, 2, 3, 4]);
    assert_eq!(ids(&rest), [5, 6, 7, 8, 9]);
    assert_eq!(
        api_requests(&server).await,
        [
            "/v1/charges?limit=3",
            "/v1/charges?limit=2&starting_after=2",
            "/v1/charges?limit=3&starting_after=4",
            "/v1/charges?limit=3&starting_after=7",
        ]
    );
}

// ===== limits and laziness =====

#[tokio::test]
async fn limit_asks_offset_apis_for_exactly_the_items_needed() {
    let (server, client) = common::setup().await;
    mount_offset_api(&server, 100).await;

    let items: Vec<Item> = client
        .paginate("/items", Pagination::offset("skip", "take").page_size(4))
        .query(&[("color", "blue")])
        .limit(6)
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        api_requests(&server).await,
        [
            "/items?color=blue&skip=0&take=4",
            "/items?color=blue&skip=4&take=2"
        ]
    );
}

#[tokio::test]
async fn limit_on_page_numbers_keeps_the_size_and_checkpoints_inside_the_last_page() {
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/posts"))
        .respond_with(|request: &Request| {
            let p = params(request);
            let (page, size) = (
                number(&p, "page").unwrap_or(0),
                number(&p, "per_page").unwrap_or(0),
            );
            let items: Vec<Value> = ((page - 1) * size..(page * size).min(10))
                .map(item)
                .collect();
            ResponseTemplate::new(200).set_body_json(items)
        })
        .mount(&server)
        .await;
    let pagination = || Pagination::page_number("page", "per_page").page_size(4);

    let pages: Vec<_> = client
        .paginate::<Item>("/posts", pagination())
        .limit(6)
        .pages()
        .try_collect()
        .await
        .unwrap();
    let first: Vec<u64> = pages.iter().flat_map(|p| p.items()).map(|i| i.id).collect();
    assert_eq!(first, [0, 1, 2, 3, 4, 5]);
    assert_eq!(
        api_requests(&server).await,
        ["/posts?page=1&per_page=4", "/posts?page=2&per_page=4"]
    );

    // The checkpoint is inside page 2: resuming yields exactly the rest.
    let checkpoint = pages
        .last()
        .and_then(|p| p.next())
        .cloned()
        .expect("a checkpoint");
    let rest: Vec<Item> = client
        .paginate("/posts", pagination())
        .resume_from(checkpoint)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(&rest), [6, 7, 8, 9]);
}

#[tokio::test]
async fn no_request_before_the_first_poll_and_one_when_dropped_after_the_first_item() {
    let (server, client) = common::setup().await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1, 2], Some("c1")),
            (vec![3], Some("c2")),
            (vec![4], None),
        ],
    )
    .await;
    let pagination = Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items");

    let stream = client.paginate::<Item>("/feed", pagination).stream();
    tokio::task::yield_now().await;
    assert!(
        api_requests(&server).await.is_empty(),
        "no request before the first poll"
    );

    let mut stream = Box::pin(stream);
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.id, 1);
    drop(stream);
    assert_eq!(api_requests(&server).await, ["/feed?"]);
}

// ===== end of data and loop safety =====

#[tokio::test]
async fn known_total_stops_without_requesting_past_the_end() {
    let (server, client) = common::setup().await;
    // Full pages of 3 and a 404 past the end: only X-Total-Count tells where the end is.
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(|r: &Request| number(&params(r), "skip").is_some_and(|skip| skip < 6))
        .respond_with(|request: &Request| {
            let skip = number(&params(request), "skip").unwrap_or(0);
            let items: Vec<Value> = (skip..skip + 3).map(item).collect();
            ResponseTemplate::new(200)
                .set_body_json(items)
                .insert_header("x-total-count", "6")
        })
        .mount(&server)
        .await;
    mount_catch_all(&server).await;

    let items: Vec<Item> = client
        .paginate("/items", Pagination::offset("skip", "take").page_size(3))
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [0, 1, 2, 3, 4, 5]);
    assert_eq!(api_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_custom_total_header_stops_page_numbers_before_the_page_past_the_end() {
    let (server, client) = common::setup().await;
    // WordPress answers 400 `rest_post_invalid_page_number` past the last page.
    Mock::given(method("GET"))
        .and(path("/wp/v2/posts"))
        .respond_with(|request: &Request| {
            let page = number(&params(request), "page").unwrap_or(0);
            if !(1..=2).contains(&page) {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({ "code": "rest_post_invalid_page_number" }));
            }
            let items: Vec<Value> = (page * 2 - 2..page * 2).map(item).collect();
            ResponseTemplate::new(200)
                .set_body_json(items)
                .insert_header("X-WP-Total", "4")
        })
        .mount(&server)
        .await;

    let pagination = Pagination::page_number("page", "per_page")
        .page_size(2)
        .total_header("X-WP-Total");
    let items: Vec<Item> = client
        .paginate("/wp/v2/posts", pagination)
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [0, 1, 2, 3]);
    assert_eq!(api_requests(&server).await.len(), 2);
}

#[tokio::test]
async fn empty_pages_with_a_cursor_do_not_end_the_listing() {
    let (server, client) = common::setup().await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1], Some("c1")),
            (vec![], Some("c2")),
            (vec![], Some("c3")),
            (vec![2], None),
        ],
    )
    .await;

    let items: Vec<Item> = client
        .paginate(
            "/feed",
            Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items"),
        )
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [1, 2]);
}

#[tokio::test]
async fn too_many_empty_pages_in_a_row_is_an_error() {
    let (server, client) = common::setup().await;
    let mut script = vec![(vec![1], Some("c1"))];
    let cursors = [
        "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14",
    ];
    script.extend(cursors.into_iter().map(|c| (vec![], Some(c))));
    mount_cursor_api(&server, script).await;

    let results: Vec<_> = client
        .paginate::<Item>(
            "/feed",
            Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items"),
        )
        .stream()
        .collect()
        .await;

    assert_eq!(results.len(), 2, "one item, then the error ends the stream");
    assert_eq!(results[0].as_ref().unwrap().id, 1);
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Pagination);
    assert!(err.to_string().contains("empty pages"), "{err}");
    // The first page and MAX_EMPTY_PAGES + 1 empty ones.
    assert_eq!(
        api_requests(&server).await.len(),
        1 + authed::pagination::MAX_EMPTY_PAGES as usize + 1
    );
}

#[tokio::test]
async fn a_repeated_cursor_is_an_error_not_a_loop() {
    let (server, client) = common::setup().await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1], Some("c1")),
            (vec![2], Some("c2")),
            (vec![3], Some("c1")),
        ],
    )
    .await;

    let results: Vec<_> = client
        .paginate::<Item>(
            "/feed",
            Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items"),
        )
        .stream()
        .collect()
        .await;

    let ok: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|i| i.id)
        .collect();
    assert_eq!(ok, [1, 2, 3]);
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Pagination);
    assert_eq!(
        Position::from_error(err).map(|p| p.marker().clone()),
        Some(Marker::Cursor("c1".into()))
    );
    assert_eq!(
        api_requests(&server).await.len(),
        3,
        "the repeated cursor is not requested"
    );
}

#[tokio::test]
async fn next_urls_on_another_origin_are_refused_and_not_requested() {
    let (server, client) = common::setup().await;
    // `localhost` and `127.0.0.1` are the same server but different origins.
    let elsewhere = server.uri().replace("127.0.0.1", "localhost");
    assert_ne!(elsewhere, server.uri());
    Mock::given(method("GET"))
        .and(path("/api/items/"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "results": [item(1)], "next": format!("{elsewhere}/api/items/?page=2") }))
                .insert_header("link", format!(r#"<{elsewhere}/api/items/?page=2>; rel="next""#).as_str()),
        )
        .mount(&server)
        .await;

    for pagination in [Pagination::next_url("/next"), Pagination::link_header()] {
        let results: Vec<_> = client
            .paginate::<Item>("/api/items/", pagination.items_at("/results"))
            .stream()
            .collect()
            .await;
        assert_eq!(results.len(), 2);
        let err = results[1].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Pagination);
        assert!(err.to_string().contains("another origin"), "{err}");
    }
    assert_eq!(
        api_requests(&server).await,
        ["/api/items/?", "/api/items/?"],
        "nothing sent to the other origin"
    );
}

// ===== the send path mid-stream =====

#[tokio::test]
async fn a_token_rejected_mid_stream_is_refreshed_and_the_stream_goes_on() {
    let (server, client) = common::setup().await;
    // The token expires on the server between page 1 and page 2: one 401, then accepted again.
    Mock::given(method("GET"))
        .and(path("/feed"))
        .and(query_param("cursor", "c1"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1], Some("c1")),
            (vec![2], Some("c2")),
            (vec![3], None),
        ],
    )
    .await;

    let items: Vec<Item> = client
        .paginate(
            "/feed",
            Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items"),
        )
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(ids(&items), [1, 2, 3]);
    assert_eq!(
        token_requests(&server).await,
        2,
        "one refresh after the 401"
    );
    assert_eq!(
        api_requests(&server).await,
        [
            "/feed?",
            "/feed?cursor=c1",
            "/feed?cursor=c1",
            "/feed?cursor=c2"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_expiring_mid_stream_is_refreshed_before_the_next_page() {
    let server = MockServer::start().await;
    let (short_lived, long_lived) = ("at-short-lived-0123456789", "at-long-lived-0123456789");
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(common::token_body(short_lived, 60)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(common::token_body(long_lived, 3600)),
        )
        .mount(&server)
        .await;
    // After a minute the server no longer accepts the short-lived token.
    Mock::given(method("GET"))
        .and(header(
            "authorization",
            format!("Bearer {short_lived}").as_str(),
        ))
        .and(|r: &Request| params(r).contains_key("cursor"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1], Some("c1")),
            (vec![2], Some("c2")),
            (vec![3], None),
        ],
    )
    .await;
    // No request timeout: paused time jumps ahead while the runtime waits for the socket.
    let client = common::builder(&server).timeout(None).build().unwrap();

    let pagination = Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items");
    let mut stream = Box::pin(client.paginate::<Item>("/feed", pagination).stream());
    assert_eq!(stream.next().await.unwrap().unwrap().id, 1);
    tokio::time::advance(Duration::from_secs(120)).await;
    let rest: Vec<Item> = stream.try_collect().await.unwrap();

    assert_eq!(ids(&rest), [2, 3]);
    assert_eq!(token_requests(&server).await, 2);
    assert_eq!(
        api_requests(&server).await,
        ["/feed?", "/feed?cursor=c1", "/feed?cursor=c2"],
        "refreshed before the request, not after a 401"
    );
}

// A 429 in the middle of a stream (retried after Retry-After, then the stream goes on) belongs
// here once the transport retries rate-limited requests.

#[tokio::test]
async fn an_error_mid_stream_carries_the_position_and_resuming_yields_exactly_the_rest() {
    let (server, client) = common::setup().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("skip", "3"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({ "error": "database unavailable" })),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_offset_api(&server, 8).await;
    let paginator = || {
        client
            .paginate::<Item>("/items", Pagination::offset("skip", "take").page_size(3))
            .query(&[("color", "blue")])
    };

    let results: Vec<_> = paginator().stream().collect().await;
    let ok: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|i| i.id)
        .collect();
    assert_eq!(ok, [0, 1, 2]);
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));

    // The position survives a round trip through storage.
    let saved = serde_json::to_string(err.position().expect("a position")).unwrap();
    let position: Position = serde_json::from_str(&saved).unwrap();
    assert_eq!(position.marker(), &Marker::Offset(3));
    let rest: Vec<Item> = paginator()
        .resume_from(position)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(&rest), [3, 4, 5, 6, 7]);
}

// ===== prefetch and Send + 'static =====

#[tokio::test]
async fn prefetch_yields_the_same_items_in_the_same_order() {
    let (server, client) = common::setup().await;
    mount_offset_api(&server, 23).await;
    let paginator = |prefetch| {
        client
            .paginate::<Item>("/items", Pagination::offset("skip", "take").page_size(4))
            .query(&[("color", "blue")])
            .prefetch(prefetch)
    };

    let plain: Vec<Item> = paginator(0).stream().try_collect().await.unwrap();
    let prefetched: Vec<Item> = paginator(2).stream().try_collect().await.unwrap();

    assert_eq!(ids(&plain), (0..23).collect::<Vec<_>>());
    assert_eq!(prefetched, plain);
    let limited: Vec<Item> = paginator(3).limit(5).stream().try_collect().await.unwrap();
    assert_eq!(ids(&limited), [0, 1, 2, 3, 4]);
    assert_eq!(
        api_requests(&server).await.len(),
        6 + 6 + 2,
        "prefetch stops at the limit"
    );
}

#[tokio::test]
async fn prefetch_runs_at_most_the_given_number_of_pages_ahead_and_stops_when_dropped() {
    let (server, client) = common::setup().await;
    // An endless feed: page n points to page n + 1.
    let cursors: Vec<String> = (1..=50).map(|n| format!("c{n}")).collect();
    let script = (0..50)
        .zip(&cursors)
        .map(|(n, next)| (vec![n], Some(next.as_str())))
        .collect();
    mount_cursor_api(&server, script).await;
    Mock::given(path("/ping"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let feed_requests = || async {
        api_requests(&server)
            .await
            .iter()
            .filter(|r| r.starts_with("/feed"))
            .count()
    };

    let pagination = Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items");
    let mut stream = Box::pin(
        client
            .paginate::<Item>("/feed", pagination)
            .prefetch(1)
            .stream(),
    );
    assert_eq!(stream.next().await.unwrap().unwrap().id, 0);
    // The consumer holds page 1; the producer fetches page 2, then waits for room.
    while feed_requests().await < 2 {
        tokio::task::yield_now().await;
    }
    let () = client.get("/ping").send().await.unwrap();
    assert_eq!(feed_requests().await, 2, "one page ahead, no more");

    drop(stream);
    let () = client.get("/ping").send().await.unwrap();
    assert_eq!(
        feed_requests().await,
        2,
        "nothing after the stream is dropped"
    );
}

#[tokio::test]
async fn streams_are_send_and_static_so_they_can_be_spawned() {
    let (server, client) = common::setup().await;
    mount_offset_api(&server, 5).await;
    let paginator = client
        .paginate::<Item>("/items", Pagination::offset("skip", "take"))
        .query(&[("color", "blue")]);
    let stream = paginator.prefetch(1).stream();
    drop(client);

    let items = tokio::spawn(async move { stream.try_collect::<Vec<_>>().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&items), [0, 1, 2, 3, 4]);

    let pages = common::builder(&server)
        .build()
        .unwrap()
        .paginate::<Item>("/x", Pagination::link_header())
        .pages();
    fn assert_send_static<S: Send + 'static>(_: &S) {}
    assert_send_static(&pages);
}

#[tokio::test]
async fn a_server_that_caps_the_page_size_loses_nothing_when_it_tells_the_total() {
    let (server, client) = common::setup().await;
    // Asked for 10, the server sends at most 4, and says there are 9.
    Mock::given(method("GET"))
        .and(path("/capped"))
        .respond_with(|request: &wiremock::Request| {
            let skip: u64 = params(request)["skip"].parse().unwrap();
            let items: Vec<u64> = (skip..9).take(4).collect();
            ResponseTemplate::new(200)
                .insert_header("x-total-count", "9")
                .set_body_json(items)
        })
        .mount(&server)
        .await;

    let items: Vec<u64> = client
        .paginate::<u64>("/capped", Pagination::offset("skip", "take").page_size(10))
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(items, (0..9).collect::<Vec<_>>());
}

// ===== listings that would end short or loop (issue 10 #14, #15; issue 11 part 4) =====

/// `n` items `{"id": 0}` .. `{"id": n - 1}`.
fn items(n: u64) -> Vec<Value> {
    (0..n).map(item).collect()
}

/// Drains a stream into the items it yielded and the error that ended it, if any.
async fn drain<T>(
    stream: impl futures_util::Stream<Item = authed::Result<T>>,
) -> (Vec<T>, Option<authed::Error>) {
    let mut stream = std::pin::pin!(stream);
    let mut got = Vec::new();
    while let Some(next) = stream.next().await {
        match next {
            Ok(item) => got.push(item),
            Err(err) => return (got, Some(err)),
        }
    }
    (got, None)
}

#[tokio::test]
async fn a_page_size_a_strategy_cannot_send_is_refused_before_any_request() {
    // Arrange
    let api = MockApi::start().await;
    api.collection("/items", items(30), Paging::cursor("cursor"))
        .await;
    let client = api.client();
    let refused = [
        Pagination::cursor("cursor", "/next_cursor").items_at("/items"),
        Pagination::next_url("/next").items_at("/results"),
        Pagination::link_header(),
    ];
    for pagination in refused {
        // Act
        let (got, err) = drain(
            client
                .paginate::<Item>("/items", pagination.page_size(5))
                .stream(),
        )
        .await;
        // Assert
        let err = err.expect("a page size that would be dropped is refused");
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("size_param"), "{err}");
        assert!(got.is_empty());
    }
    assert_eq!(api.requests("GET /items"), 0);

    // With the parameter named, the size is sent.
    let pagination = Pagination::new(Cursor::new("cursor", "/next_cursor").size_param("limit"))
        .items_at("/items")
        .page_size(5);
    let all: Vec<Item> = client
        .paginate("/items", pagination)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 30);
    assert_eq!(api.requests("GET /items"), 6);
}

#[tokio::test]
async fn page_size_zero_is_refused_before_any_request() {
    let api = MockApi::start().await;
    api.collection("/items", items(30), Paging::offset("skip", "take"))
        .await;

    let (got, err) = drain(
        api.client()
            .paginate::<Item>("/items", Pagination::offset("skip", "take").page_size(0))
            .stream(),
    )
    .await;

    let err = err.expect("page_size(0) is refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(got.is_empty());
    assert_eq!(api.requests("GET /items"), 0);
}

#[tokio::test]
async fn a_link_listing_that_stops_before_the_announced_total_fails_with_the_position() {
    // Arrange: json-server pages only when the first request names a page.
    let api = MockApi::start().await;
    let paging = Paging::link_header().with_quirk(Quirk::NoNextWithoutPageParam);
    api.collection("/items", items(237), paging).await;
    let pagination = || Pagination::new(LinkHeader::new().size_param("per_page")).page_size(50);

    // Act
    let (got, err) = drain(
        api.client()
            .paginate::<Item>("/items", pagination())
            .stream(),
    )
    .await;

    // Assert: the 50 items, then an error saying where it stopped, not a silent end.
    assert_eq!(ids(&got), (0..50).collect::<Vec<_>>());
    let err = err.expect("a listing short of its total is an error");
    assert_eq!(err.kind(), ErrorKind::Pagination);
    assert_eq!(
        Reason::of(&err),
        Some(&Reason::EndedShort {
            received: 50,
            total: 237
        })
    );
    assert!(err.to_string().contains("50 of the 237"), "{err}");
    assert_eq!(Position::from_error(&err).map(|p| p.index()), Some(50));

    // Naming the page on the first request gets everything.
    let all: Vec<Item> = api
        .client()
        .paginate("/items", pagination())
        .query(&[("page", "1")])
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(&all), (0..237).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_offset_listing_ending_on_an_empty_page_before_the_total_fails() {
    // Arrange: the server announces 50 items but has 20 (an empty page at offset 20).
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(|request: &Request| {
            let skip = number(&params(request), "skip").unwrap_or(0);
            let page: Vec<Value> = (skip..20.min(skip + 10)).map(item).collect();
            ResponseTemplate::new(200)
                .insert_header("x-total-count", "50")
                .set_body_json(page)
        })
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let client = common::builder(&server).build().unwrap();

    // Act
    let pagination = Pagination::offset("skip", "take").page_size(10);
    let (got, err) = drain(client.paginate::<Item>("/items", pagination).stream()).await;

    // Assert
    assert_eq!(got.len(), 20);
    let err = err.expect("an empty page before the total is not a silent end");
    assert_eq!(
        Reason::of(&err),
        Some(&Reason::EndedShort {
            received: 20,
            total: 50
        })
    );
}

#[tokio::test]
async fn a_server_that_ignores_the_offset_fails_on_the_second_page_instead_of_repeating_it() {
    // Arrange: every request gets the first page (and the true total, 237).
    let api = MockApi::start().await;
    let paging = Paging::offset("skip", "take").with_quirk(Quirk::WrapAfterPages(1));
    api.collection("/items", items(237), paging).await;

    // Act
    let pagination = Pagination::offset("skip", "take").page_size(10);
    let (got, err) = drain(api.client().paginate::<Item>("/items", pagination).stream()).await;

    // Assert: one page of items, not 237 items made of the same ten.
    assert_eq!(ids(&got), (0..10).collect::<Vec<_>>());
    let err = err.expect("a repeated page is an error");
    assert_eq!(Reason::of(&err), Some(&Reason::RepeatedPage));
    assert_eq!(api.requests("GET /items"), 2);
}

#[tokio::test]
async fn pages_that_cycle_over_two_steps_are_caught_for_page_numbers_and_cursors() {
    let api = MockApi::start().await;
    let wrap = Quirk::WrapAfterPages(2);
    api.collection(
        "/numbered",
        items(95),
        Paging::page_number("page", "per_page").with_quirk(wrap.clone()),
    )
    .await;
    api.collection(
        "/cursored",
        items(95),
        Paging::cursor("cursor").with_quirk(wrap),
    )
    .await;
    let client = api.client();

    // Page numbers: pages 1, 2, then 1 again (A→B→A) while the total says 95.
    let numbered = Pagination::page_number("page", "per_page").page_size(10);
    let (got, err) = drain(client.paginate::<Item>("/numbered", numbered).stream()).await;
    assert_eq!(got.len(), 20);
    assert_eq!(Reason::of(&err.unwrap()), Some(&Reason::RepeatedPage));
    assert_eq!(api.requests("GET /numbered"), 3);

    // Cursors: the cursor after page 2 leads back to page 1, whose cursor leads to page 2.
    let cursored = Pagination::new(Cursor::new("cursor", "/next_cursor").size_param("limit"))
        .items_at("/items")
        .page_size(10)
        .detect_repeated_pages(false);
    let (got, err) = drain(client.paginate::<Item>("/cursored", cursored).stream()).await;
    assert_eq!(got.len(), 30);
    assert_eq!(Reason::of(&err.unwrap()), Some(&Reason::RepeatedMarker));
    assert_eq!(api.requests("GET /cursored"), 3);
}

#[tokio::test]
async fn an_empty_string_is_a_cursor_where_the_api_says_so() {
    let api = MockApi::start().await;
    let paging = Paging::cursor("cursor").with_quirk(Quirk::EmptyCursorForSecondPage);
    api.collection("/items", items(25), paging).await;
    let client = api.client();
    let cursor = || Cursor::new("cursor", "/next_cursor").size_param("limit");

    // By default an empty cursor ends the listing (Slack's convention).
    let default = Pagination::new(cursor()).items_at("/items").page_size(10);
    let first: Vec<Item> = client
        .paginate("/items", default)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(first.len(), 10);

    // Told so, the empty cursor is sent back and the listing goes on to the end.
    let accepting = Pagination::new(cursor().accept_empty(true))
        .items_at("/items")
        .page_size(10);
    let all: Vec<Item> = client
        .paginate("/items", accepting)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(&all), (0..25).collect::<Vec<_>>());
    let second = api
        .journal()
        .into_iter()
        .filter(|e| e.path == "/items")
        .filter_map(|e| e.query)
        .any(|q| q.contains("cursor=&") || q.ends_with("cursor="));
    assert!(second, "the empty cursor was sent back");
}

#[tokio::test]
async fn max_pages_bounds_a_listing() {
    let api = MockApi::start().await;
    api.collection("/items", items(237), Paging::offset("skip", "take"))
        .await;

    let pagination = Pagination::offset("skip", "take")
        .page_size(10)
        .max_pages(3);
    let (got, err) = drain(api.client().paginate::<Item>("/items", pagination).stream()).await;

    assert_eq!(got.len(), 30);
    let err = err.expect("the fourth page is refused");
    assert_eq!(Reason::of(&err), Some(&Reason::TooManyPages { limit: 3 }));
    assert_eq!(Position::from_error(&err).map(|p| p.index()), Some(30));
    assert_eq!(api.requests("GET /items"), 3);
}

#[tokio::test]
async fn max_empty_pages_is_configurable() {
    let (server, client) = common::setup().await;
    mount_cursor_api(
        &server,
        vec![
            (vec![1], Some("c1")),
            (vec![], Some("c2")),
            (vec![], Some("c3")),
            (vec![], Some("c4")),
            (vec![2], None),
        ],
    )
    .await;
    let pagination = || Pagination::cursor("cursor", "/meta/next_cursor").items_at("/items");

    let (got, err) = drain(
        client
            .paginate::<Item>("/feed", pagination().max_empty_pages(2))
            .stream(),
    )
    .await;
    assert_eq!(ids(&got), [1]);
    assert_eq!(
        Reason::of(&err.unwrap()),
        Some(&Reason::TooManyEmptyPages { limit: 2 })
    );

    let all: Vec<Item> = client
        .paginate("/feed", pagination().max_empty_pages(3))
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(&all), [1, 2]);
}

#[tokio::test]
async fn a_page_larger_than_max_page_bytes_is_refused() {
    let api = MockApi::start().await;
    api.collection("/items", items(100), Paging::offset("skip", "take"))
        .await;
    let pagination = || Pagination::offset("skip", "take").page_size(20);

    // 20 items of `{"id":NN}` are about 200 bytes.
    let (got, err) = drain(
        api.client()
            .paginate::<Item>("/items", pagination().max_page_bytes(100))
            .stream(),
    )
    .await;
    assert!(got.is_empty());
    let err = err.expect("an oversized page is an error");
    assert_eq!(err.kind(), ErrorKind::Pagination);
    assert_eq!(Reason::of(&err), Some(&Reason::PageTooLarge { limit: 100 }));
    assert_eq!(
        Position::from_error(&err),
        Some(Position::new(Marker::Start))
    );

    let all: Vec<Item> = api
        .client()
        .paginate("/items", pagination().max_page_bytes(4096))
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
}

/// A raw HTTP server answering every request with `200` and an endless chunked JSON array;
/// returns its base URL and a counter of the body bytes it managed to write.
async fn endless_page_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{Arc, atomic::AtomicUsize, atomic::Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = r#"{"id":1},"#.repeat(6000);
                let frame = format!("1\r\n[\r\n{:x}\r\n{chunk}\r\n", chunk.len());
                let _ = socket.write_all(&frame.as_bytes()[..8]).await;
                let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                while socket.write_all(frame.as_bytes()).await.is_ok() {
                    counter.fetch_add(chunk.len(), Ordering::Relaxed);
                }
            });
        }
    });
    (url, written)
}

#[tokio::test]
async fn an_endless_page_body_is_read_only_up_to_the_bound() {
    // Arrange: the token from a mock, the pages from a server that never ends its body.
    let api = MockApi::start().await;
    let (url, written) = endless_page_server().await;
    let client = api.client_builder().base_url(url).build().unwrap();
    let bound = 1024 * 1024;

    // Act: a guard against the old behaviour (reading forever), not a speed target.
    let listing = client
        .paginate::<Item>(
            "/items",
            Pagination::offset("skip", "take").max_page_bytes(bound),
        )
        .stream();
    let (got, err) = tokio::time::timeout(Duration::from_secs(60), drain(listing))
        .await
        .expect("the read stops at the bound");

    // Assert
    assert!(got.is_empty());
    assert_eq!(
        Reason::of(&err.expect("an error")),
        Some(&Reason::PageTooLarge { limit: bound })
    );
    // What the server could write is the bound plus what the socket buffers hold.
    let written = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        written < bound + 32 * 1024 * 1024,
        "{written} bytes written"
    );
}

#[tokio::test]
async fn a_listing_built_from_a_request_sends_its_headers_with_every_page() {
    // Arrange: pages only for requests carrying the tenant header.
    let api = MockApi::start().await;
    api.collection("/items", items(25), Paging::offset("skip", "take"))
        .await;
    let server = MockServer::start().await;
    common::mount_token_endpoint(&server).await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(header("x-tenant", "acme"))
        .respond_with(|request: &Request| {
            let skip = number(&params(request), "skip").unwrap_or(0);
            let page: Vec<Value> = (skip..25.min(skip + 10)).map(item).collect();
            ResponseTemplate::new(200).set_body_json(page)
        })
        .named("items for tenant acme")
        .mount(&server)
        .await;
    mount_catch_all(&server).await;
    let client = common::builder(&server).build().unwrap();

    // Act
    let all: Vec<Item> = client
        .get("/items")
        .header("x-tenant", "acme")
        .query(&[("color", "blue")])
        .paginate(Pagination::offset("skip", "take").page_size(10))
        .stream()
        .try_collect()
        .await
        .unwrap();

    // Assert
    assert_eq!(ids(&all), (0..25).collect::<Vec<_>>());
    let pages = api_requests(&server).await;
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|p| p.contains("color=blue")), "{pages:?}");
}

#[tokio::test]
async fn a_listing_built_from_a_request_keeps_its_timeout_and_retry_policy() {
    // Arrange: the second page is slow once, the third answers 503 once; the client itself
    // has no timeout.
    let (server, _) = common::setup().await;
    let client = common::builder(&server).timeout(None).build().unwrap();
    let page = |from: u64| {
        ResponseTemplate::new(200).set_body_json((from..from + 10).map(item).collect::<Vec<_>>())
    };
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("skip", "10"))
        .respond_with(page(10).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("skip", "20"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(move |request: &Request| {
            let skip = number(&params(request), "skip").unwrap_or(0);
            if skip >= 30 {
                page(0).set_body_json(json!([]))
            } else {
                page(skip)
            }
        })
        .with_priority(5)
        .mount(&server)
        .await;
    let pagination = || Pagination::offset("skip", "take").page_size(10);

    // Act 1: the request's timeout applies to the slow page (and its policy: no retry). The
    // guard only keeps a failure from waiting for the slow response.
    let listing = client
        .get("/items")
        .timeout(Duration::from_millis(100))
        .retry_policy(Policy::never())
        .paginate::<Item>(pagination())
        .stream();
    let (got, err) = tokio::time::timeout(Duration::from_secs(10), drain(listing))
        .await
        .expect("the request's timeout ends the slow page");
    assert_eq!(got.len(), 10);
    let err = err.expect("the slow page times out");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    // Act 2: the request's retry policy (no retries) applies to the 503 page; the slow page
    // answered its one slow response already.
    let (got, err) = drain(
        client
            .get("/items")
            .retry_policy(Policy::never())
            .paginate::<Item>(pagination())
            .stream(),
    )
    .await;
    assert_eq!(got.len(), 20);
    let err = err.expect("the 503 is not retried");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.retries().map(|r| r.attempts), Some(1));
}

#[tokio::test]
async fn client_paginate_still_works_and_streams_stay_send_and_static() {
    fn is_send_static<S: Send + 'static>(_: &S) {}
    let api = MockApi::start().await;
    api.collection("/items", items(25), Paging::offset("skip", "take"))
        .await;

    let stream = api
        .client()
        .paginate::<Item>("/items", Pagination::offset("skip", "take").page_size(10))
        .stream();
    is_send_static(&stream);
    let all: Vec<Item> = tokio::spawn(stream.try_collect()).await.unwrap().unwrap();

    assert_eq!(ids(&all), (0..25).collect::<Vec<_>>());
}
