//! A server that revokes the previous access token when it rotates the refresh token (as
//! django-oauth-toolkit does), with latency on every answer, under concurrent load: no call
//! fails. Two things make that hold: lifetimes count from when the token was asked for, and a
//! 401 to a token that was superseded while the request was on its way is replayed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use authed::mock::MockApi;
use serde_json::Value;

/// 32 tasks for `run_for` against 1 s tokens, 20 ms of latency on every answer.
async fn load(run_for: Duration) -> (usize, Vec<String>, authed::mock::Stats) {
    let api = MockApi::builder()
        .rotate_refresh_tokens(true)
        .revoke_previous_access_tokens(true)
        .token_ttl(Duration::from_secs(1))
        .latency(Duration::from_millis(20))
        .start()
        .await;
    let client = api
        .client_builder()
        .retry_policy(authed::retry::Policy::never())
        .build()
        .unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + run_for;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, ok) = (client.clone(), ok.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while Instant::now() < until {
                    match client.get("/v1/me").send::<Value>().await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => failures.push(err.to_string()),
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await.unwrap());
    }
    (ok.load(Ordering::Relaxed), failures, api.stats())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_fails_when_the_server_revokes_the_previous_access_token_on_rotation() {
    let (ok, failures, stats) = load(Duration::from_secs(5)).await;

    println!(
        "{ok} calls, {} failed, {} token requests, {} answered 401",
        failures.len(),
        stats.refreshes,
        stats.unauthorized
    );
    assert!(ok > 100, "the load ran: {ok} calls");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(stats.refreshes >= 5, "tokens were rotated during the run");
}
