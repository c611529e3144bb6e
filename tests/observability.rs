//! Observability: the client name and origin on the request span, page spans of a listing,
//! the refresh span, and the `metrics` counters labelled by client name (never a secret).
#![cfg(all(feature = "metrics", feature = "mock"))]

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex},
};

use authed::{ExposeSecret, Pagination, metrics, mock::MockApi, mock::Paging};
use futures_util::TryStreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;

/// Held by every test of this file for its whole run. `tracing` caches whether a callsite is
/// enabled when it is first hit, and a callsite first hit while another test creates its
/// subscriber can be cached as disabled for good (the subscriber's rebuild runs between
/// computing the callsite's interest and registering it): one test's events then go
/// missing from another's captured logs. Run one at a time, no test creates a subscriber
/// while another one's callsites register.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A paused-time, single-threaded runtime: the refresh task, the retries and the scoped
/// recorder and subscriber all live on the test's thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Counter values by (name, client label).
fn counters(recorder: &DebuggingRecorder) -> HashMap<(String, String), u64> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<_> = key.labels().collect();
            assert_eq!(labels.len(), 1, "one label only: {key:?}");
            assert_eq!(labels[0].key(), metrics::CLIENT_LABEL);
            let DebugValue::Counter(n) = value else {
                panic!("{key:?} is not a counter")
            };
            ((key.name().to_owned(), labels[0].value().to_owned()), n)
        })
        .collect()
}

#[test]
fn counters_are_labelled_by_client_and_count_what_happened() {
    let _serial = serial();
    let recorder = DebuggingRecorder::new();
    let snapshot = ::metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let api = MockApi::start().await;
            let alpha = api.client_builder().name("alpha").build().unwrap();
            let beta = api.client_builder().name("beta").build().unwrap();
            let me = |c: &authed::Client| c.get("/v1/me").send::<serde_json::Value>();

            me(&alpha).await.unwrap(); // request, refresh
            let access = alpha.access_token().await.unwrap();
            api.expire_access_tokens();
            me(&alpha).await.unwrap(); // request, 401 replay, refresh
            api.fail_next("GET /v1/me", 1, 429);
            me(&alpha).await.unwrap(); // request, 429, retry
            let refresh = api.refresh_token();
            api.revoke_grant();
            me(&beta).await.unwrap_err(); // request, refresh failure

            let secrets = [
                refresh.expose_secret().to_owned(),
                access.expose_secret().to_owned(),
            ];
            (counters(&recorder), secrets)
        })
    });
    let (counters, secrets) = snapshot;
    let count = |name: &str, client: &str| {
        counters
            .get(&(name.to_owned(), client.to_owned()))
            .copied()
            .unwrap_or(0)
    };

    assert_eq!(count(metrics::REQUESTS, "alpha"), 3);
    assert_eq!(count(metrics::REPLAYS_401, "alpha"), 1);
    assert_eq!(count(metrics::RATE_LIMITED, "alpha"), 1);
    assert_eq!(count(metrics::RETRIES, "alpha"), 1);
    assert_eq!(count(metrics::REFRESHES, "alpha"), 2);
    assert_eq!(count(metrics::REFRESH_FAILURES, "alpha"), 0);
    assert_eq!(count(metrics::REQUESTS, "beta"), 1);
    assert_eq!(count(metrics::REFRESHES, "beta"), 1);
    assert_eq!(count(metrics::REFRESH_FAILURES, "beta"), 1);
    for (name, client) in counters.keys() {
        for secret in &secrets {
            assert!(
                !client.contains(secret.as_str()),
                "{name} label holds a secret"
            );
        }
    }
}

#[test]
fn the_default_client_name_is_the_api_host() {
    let _serial = serial();
    let recorder = DebuggingRecorder::new();
    let counters = ::metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let api = MockApi::start().await;
            let client = api.client();
            assert_eq!(client.name(), "127.0.0.1");
            let _: serde_json::Value = client.get("/v1/me").send().await.unwrap();
            counters(&recorder)
        })
    });
    assert_eq!(
        counters.get(&(metrics::REQUESTS.to_owned(), "127.0.0.1".to_owned())),
        Some(&1)
    );
}

#[cfg(feature = "middleware")]
#[test]
fn middleware_counts_requests_and_replays_under_the_clients_name() {
    let _serial = serial();
    let recorder = DebuggingRecorder::new();
    let counters = ::metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let api = MockApi::start().await;
            let client = api.client_builder().name("gamma").build().unwrap();
            let http = reqwest_middleware::ClientBuilder::new(
                reqwest::Client::builder()
                    .pool_idle_timeout(None)
                    .build()
                    .unwrap(),
            )
            .with(client.retry_middleware())
            .with(client.auth_middleware())
            .build();
            let me = format!("{}/v1/me", api.base_url());
            http.get(&me).send().await.unwrap();
            api.expire_access_tokens();
            api.fail_next("GET /v1/me", 1, 429);
            http.get(&me).send().await.unwrap();
            counters(&recorder)
        })
    });
    let count = |name: &str| {
        counters
            .get(&(name.to_owned(), "gamma".to_owned()))
            .copied()
            .unwrap_or(0)
    };
    // Behind the retry middleware, the auth middleware sees each attempt.
    assert_eq!(count(metrics::REQUESTS), 3);
    assert_eq!(count(metrics::RATE_LIMITED), 1);
    assert_eq!(count(metrics::RETRIES), 1);
    assert_eq!(count(metrics::REPLAYS_401), 1);
    assert_eq!(count(metrics::REFRESHES), 2);
}

// ===== logs =====

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `test` with a subscriber scoped to this thread that records every span and event,
/// and returns the text it wrote.
fn capture_logs(test: impl AsyncFnOnce()) -> String {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || runtime().block_on(test()));
    String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned()
}

#[test]
fn two_clients_logs_are_told_apart_by_name_and_origin() {
    let _serial = serial();
    let mut origin = String::new();
    let logs = capture_logs(async || {
        let api = MockApi::start().await;
        origin = api.base_url().to_owned();
        let billing = api.client_builder().name("billing").build().unwrap();
        let search = api.client_builder().name("search").build().unwrap();
        api.fail_next("GET /v1/me", 1, 503);
        let _: serde_json::Value = billing.get("/v1/me").send().await.unwrap();
        let _: serde_json::Value = search.get("/v1/widgets").send().await.unwrap();
    });

    let lines: Vec<&str> = logs.lines().collect();
    let retry = lines
        .iter()
        .find(|l| l.contains("retrying"))
        .expect("the retry is logged");
    assert!(
        retry.contains(r#"client="billing""#) || retry.contains("client=billing"),
        "{retry}"
    );
    assert!(retry.contains(&format!("origin={origin}")), "{retry}");
    let refreshes: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("access token refreshed"))
        .collect();
    assert_eq!(refreshes.len(), 2, "{logs}");
    assert!(
        refreshes.iter().any(|l| l.contains("client=billing")),
        "{logs}"
    );
    assert!(
        refreshes.iter().any(|l| l.contains("client=search")),
        "{logs}"
    );
    for line in &refreshes {
        assert!(line.contains(r#"grant="refresh_token""#), "{line}");
        assert!(line.contains("reason="), "{line}");
    }
    // The clock is read for it, and the status recorded on the request's span, only when
    // they are on: they are on here.
    let done = lines
        .iter()
        .find(|l| l.contains("request succeeded"))
        .expect("a success is logged");
    assert!(done.contains("elapsed_ms="), "{done}");
    assert!(done.contains("status=200"), "{done}");
}

#[test]
fn a_listing_logs_each_page_with_its_index() {
    let _serial = serial();
    let logs = capture_logs(async || {
        let api = MockApi::start().await;
        let items = (1..=5).map(|i| json!({ "id": i })).collect();
        api.collection("/items", items, Paging::offset("skip", "take"))
            .await;
        let client = api.client_builder().name("lister").build().unwrap();
        let all: Vec<serde_json::Value> = client
            .paginate("/items", Pagination::offset("skip", "take").page_size(2))
            .stream()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
    });

    for index in 0..3 {
        assert!(
            logs.lines().any(|l| l.contains("listing{")
                && l.contains("client=lister")
                && l.contains(&format!("page{{index={index}}}"))),
            "page {index} is not in the logs:\n{logs}"
        );
    }
}

#[cfg(all(feature = "middleware", feature = "tower"))]
#[test]
fn middleware_and_layer_requests_are_logged_under_the_clients_name() {
    let _serial = serial();
    use tower_layer::Layer;
    use tower_service::Service;

    let mut origin = String::new();
    let logs = capture_logs(async || {
        let api = MockApi::start().await;
        origin = api.base_url().to_owned();
        let client = api.client_builder().name("gateway").build().unwrap();
        let me = format!("{}/v1/me", api.base_url());
        let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(client.auth_middleware())
            .build();
        http.get(&me).send().await.unwrap();
        api.expire_access_tokens();
        http.get(&me).send().await.unwrap();
        api.expire_access_tokens();
        let hyper =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let mut service = client.auth_layer().layer(hyper);
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .unwrap();
        let request = http::Request::get(&me).body(Default::default()).unwrap();
        assert_eq!(service.call(request).await.unwrap().status(), 200);
    });

    let replays: Vec<_> = logs
        .lines()
        .filter(|l| l.contains("replaying with a fresh token"))
        .collect();
    assert_eq!(replays.len(), 2, "{logs}");
    for line in replays {
        assert!(
            line.contains(&format!(
                "request{{client=gateway origin={origin} method=GET"
            )),
            "{line}"
        );
    }
    let refreshes = logs
        .lines()
        .filter(|l| l.contains("token_refresh{client=gateway"))
        .count();
    assert!(refreshes >= 3, "{logs}");
}
