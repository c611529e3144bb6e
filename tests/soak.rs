//! Soak: many workers on one client, for a bounded time, against the mock API with everything
//! that makes token handling hard at once — 2 s access tokens, refresh-token rotation with
//! reuse detection (a second use of a refresh token revokes the grant), 5% of the API's answers
//! `503`, and a rate limit answering `429` with `Retry-After`.
//!
//! It proves, on real time and real sockets, that the client makes about one token request
//! per token lifetime, never presents a used refresh token (`invalid_grant`: 0), and that
//! retries absorb the faults (failures ≤ 0.1%). It prints its figures.
//!
//! `#[ignore]`d so that `cargo test` stays fast; `.ci/run` runs it explicitly:
//!
//! ```sh
//! cargo test --all-features --test soak -- --ignored --nocapture
//! ```
//!
//! `AUTHED_SOAK_SECONDS` sets the duration (default 60, at most 110).
#![cfg(feature = "mock")]

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use authed::mock::MockApi;

const WORKERS: usize = 64;
const TOKEN_TTL: Duration = Duration::from_secs(2);
const FAULT_RATIO: f64 = 0.05;
/// Requests per access token per window: the workers exceed it for part of each window.
const RATE_LIMIT: (u32, Duration) = (60, Duration::from_secs(1));
/// Pause between two requests of one worker, so the machine is loaded, not saturated.
const THINK: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: Mutex<BTreeMap<String, u64>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of about a minute: run by .ci/run with --ignored"]
async fn soak_with_rotation_faults_and_rate_limits() {
    let seconds: u64 = std::env::var("AUTHED_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .clamp(5, 110);
    let duration = Duration::from_secs(seconds);
    let api = MockApi::builder()
        .token_ttl(TOKEN_TTL)
        .rotate_refresh_tokens(true)
        .rate_limit(RATE_LIMIT.0, RATE_LIMIT.1)
        // Only `Retry-After`: with rate-limit headers the client paces ahead of the limit and a
        // slow machine may never meet a 429, which this soak is meant to serve.
        .rate_limit_headers(false)
        .start()
        .await;
    // 503s on the API only: a token request that gets a 503 without `Retry-After` is not
    // retried (the refresh token may have been consumed), so every caller waiting for that
    // refresh fails. docs/reliability.md has the figures of that case.
    api.fail_ratio("/v1/me", FAULT_RATIO, 503);
    let client = api.client();
    let tally = Arc::new(Tally::default());

    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, tally) = (client.clone(), tally.clone());
            tokio::spawn(async move {
                while started.elapsed() < duration {
                    match client.get("/v1/me").send::<serde_json::Value>().await {
                        Ok(_) => {
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            let key = format!("{:?} {:?}", e.kind(), e.status());
                            *tally.failed.lock().unwrap().entry(key).or_default() += 1;
                        }
                    }
                    tokio::time::sleep(THINK).await;
                }
            })
        })
        .collect();
    // A worker stuck on a request would otherwise hang the run: the whole soak is bounded.
    tokio::time::timeout(duration + Duration::from_secs(10), async {
        for worker in workers {
            worker.await.expect("a worker panicked");
        }
    })
    .await
    .expect("every worker finished within 10 s of the end");
    let elapsed = started.elapsed();

    let stats = api.stats();
    let journal = api.journal();
    let injected = journal.iter().filter(|e| e.fault.is_some()).count();
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed_by_kind = tally.failed.lock().unwrap().clone();
    let failed: u64 = failed_by_kind.values().sum();
    let calls = ok + failed;
    let failure_ratio = failed as f64 / calls.max(1) as f64;
    // One token per lifetime, at most: a refresh early in the window shortens the cycle a bit.
    let lifetimes = elapsed.as_secs_f64() / TOKEN_TTL.as_secs_f64();
    let token_requests_per_refresh = stats.token_requests as f64 / stats.refreshes.max(1) as f64;

    println!(
        "soak: {WORKERS} workers for {:.1} s, 2 s tokens, rotation + reuse detection",
        elapsed.as_secs_f64()
    );
    println!(
        "  calls:            {calls} ({:.0}/s), {ok} ok, {failed} failed ({:.4}%)",
        calls as f64 / elapsed.as_secs_f64(),
        failure_ratio * 100.0
    );
    for (kind, n) in &failed_by_kind {
        println!("    failed {kind}: {n}");
    }
    println!("  HTTP requests:    {} (retries included)", stats.requests);
    println!("  injected 503s:    {injected}");
    println!("  429s served:      {}", stats.rate_limited);
    println!("  401s served:      {}", stats.unauthorized);
    println!(
        "  token requests:   {} for {} tokens issued ({token_requests_per_refresh:.3} per refresh)",
        stats.token_requests, stats.refreshes
    );
    println!(
        "  token lifetimes:  {lifetimes:.1} elapsed ({:.2} tokens issued per lifetime)",
        stats.refreshes as f64 / lifetimes
    );
    println!("  invalid_grant:    {}", stats.invalid_grants);

    assert_eq!(
        stats.invalid_grants, 0,
        "a used refresh token was presented"
    );
    assert!(
        failure_ratio <= 0.001,
        "{failed} of {calls} calls failed: {failed_by_kind:?}"
    );
    assert!(calls > 1000, "the soak made only {calls} calls");
    assert!(
        stats.rate_limited > 0,
        "the rate limit was never hit: raise the load"
    );
    assert!(
        token_requests_per_refresh <= 1.05,
        "{} token requests for {} tokens: more than one per token",
        stats.token_requests,
        stats.refreshes
    );
    assert!(
        (stats.refreshes as f64) <= 2.0 * lifetimes + 5.0,
        "{} tokens issued in {lifetimes:.1} lifetimes: a refresh storm",
        stats.refreshes
    );
}
