//! Concurrent: 200 tasks share one client across token expiries, and the token endpoint sees
//! one request per expiry — not one per task.
//!
//! ```text
//! cargo run --example concurrent --features mock
//! ```
//!
//! A `Client` is cheap to clone (an `Arc` inside); every clone shares the token cache, which
//! lets a single refresh run while the other callers wait for its result. The embedded mock
//! API rotates refresh tokens with reuse detection, as strict real servers do: two concurrent
//! refreshes with the same refresh token would revoke the whole grant, and this example would
//! fail.
//!
//! Three rounds of 200 concurrent requests:
//! 1. first use: no token yet;
//! 2. after the access token expired on the client's clock (the 2 s lifetime passed);
//! 3. after the server expired it early, unknown to the client: the requests sent with the old
//!    token get `401`, and each is answered by the same single refresh and a replay.
//!
//! The counts are read from the mock API's counters, and the example fails if a round needed
//! more than one token request.
//!
//! Environment variables: none; it always runs against the embedded mock API.

use std::time::{Duration, Instant};

use authed::{Client, mock::MockApi};
use tokio::task::JoinSet;

const TASKS: u64 = 200;
const TOKEN_TTL: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let api = MockApi::builder()
        .token_ttl(TOKEN_TTL)
        .rotate_refresh_tokens(true)
        .widgets(TASKS)
        .start()
        .await;
    let client = api.client();
    println!("{TASKS} tasks share one client; access tokens live {TOKEN_TTL:?}\n");

    round(&api, &client, "1. first use (no token yet)").await?;

    println!("   ... waiting {TOKEN_TTL:?} for the access token to expire");
    tokio::time::sleep(TOKEN_TTL).await;
    round(&api, &client, "2. after the token expired").await?;

    api.expire_access_tokens();
    round(&api, &client, "3. after the server expired it early (401s)").await?;

    let stats = api.stats();
    println!(
        "\nTotal: {} API requests, {} token requests, {} access tokens issued, {} invalid_grant",
        stats.requests - stats.token_requests,
        stats.token_requests,
        stats.refreshes,
        stats.invalid_grants
    );
    Ok(())
}

/// Runs `TASKS` concurrent requests on clones of `client` and reports the token requests they
/// caused; fails unless there was exactly one.
async fn round(
    api: &MockApi,
    client: &Client,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = api.stats();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for id in 1..=TASKS {
        let client = client.clone();
        let path = format!("/v1/widgets/{id}");
        tasks.spawn(async move { client.get(&path).send::<serde_json::Value>().await });
    }
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        joined??;
        ok += 1;
    }
    let after = api.stats();
    let token_requests = after.token_requests - before.token_requests;
    println!(
        "{title}: {ok} requests succeeded in {} ms; {} got 401 and were replayed; token requests: {token_requests}",
        started.elapsed().as_millis(),
        after.unauthorized - before.unauthorized,
    );
    if token_requests != 1 {
        return Err(
            format!("{title}: expected exactly one token request, saw {token_requests}").into(),
        );
    }
    Ok(())
}
