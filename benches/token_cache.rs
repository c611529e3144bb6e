//! Throughput of the hot path: handing out a cached access token, and a whole authenticated
//! request against a local server.
//!
//! Run: `cargo bench --bench token_cache` (prints one line per measurement).
//!
//! A plain `main` rather than a benchmark framework: the numbers that matter here are orders
//! of magnitude (a cached token must cost well under a microsecond, so that the auth layer is
//! invisible next to a network round trip), and the single-flight guarantee is checked as a
//! side effect (one token request for everything).

use std::time::{Duration, Instant};

use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn report(what: &str, ops: u64, elapsed: Duration) {
    let per_op = elapsed.as_nanos() as f64 / ops as f64;
    let per_sec = ops as f64 / elapsed.as_secs_f64();
    println!("{what:<48} {per_op:>10.0} ns/op {per_sec:>14.0} ops/s");
}

async fn setup() -> (MockServer, authed::Client) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600
        })))
        .expect(1) // single flight: one token request for the whole benchmark
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/ping"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
        .mount(&server)
        .await;
    let client = authed::Client::builder()
        .base_url(server.uri())
        .token_url(format!("{}/oauth/token", server.uri()))
        .refresh_token("bench-refresh")
        .build()
        .expect("client builds");
    (server, client)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_server, client) = setup().await;
        client.access_token().await.unwrap(); // warm: the one refresh

        let n = 1_000_000;
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(client.access_token().await.unwrap());
        }
        report("cached token, 1 task", n, start.elapsed());

        let tasks = 8;
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..n / tasks {
                        std::hint::black_box(client.access_token().await.unwrap());
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        report("cached token, 8 tasks contending", n, start.elapsed());

        let requests = 2_000;
        let start = Instant::now();
        for _ in 0..requests {
            let _: serde_json::Value = client.get("/ping").send().await.unwrap();
        }
        report(
            "GET + bearer + JSON decode, local server",
            requests,
            start.elapsed(),
        );
    });
}
