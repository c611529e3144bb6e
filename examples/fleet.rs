//! Fleet mode: several worker processes share one rotating grant through Redis, and the
//! fleet's token requests are printed (about one per token lifetime, not one per worker).
//!
//! Runs against the embedded mock API (rotation with reuse detection, 1 s tokens) and a
//! `redis-server` it starts on a loopback port (`AUTHED_TOKEN_STORE=redis://…` to use yours).
//! Reads `AUTHED_TOKEN_STORE` (optional); the workers are this program re-executed with
//! `AUTHED_*` variables, as a deployment would configure them.
//!
//! `cargo run --features redis,mock --example fleet`

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const WORKERS: usize = 4;
const RUN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("FLEET_EXAMPLE_WORKER").is_some() {
        return worker().await;
    }
    let api = authed::mock::MockApi::builder()
        .rotate_refresh_tokens(true)
        .token_ttl(Duration::from_secs(1))
        .start()
        .await;
    let mut own_redis = None;
    let store = match std::env::var("AUTHED_TOKEN_STORE") {
        Ok(url) => url,
        Err(_) => {
            let (child, url) = start_redis()?;
            own_redis = Some(child);
            url
        }
    };
    println!("{WORKERS} workers share one grant for {RUN:?} (tokens live 1 s)");
    let workers = (0..WORKERS)
        .map(|_| {
            Command::new(std::env::current_exe()?)
                .env("FLEET_EXAMPLE_WORKER", "1")
                .env("AUTHED_BASE_URL", api.base_url())
                .env("AUTHED_TOKEN_URL", api.token_url())
                .env(
                    "AUTHED_REFRESH_TOKEN",
                    authed::ExposeSecret::expose_secret(&api.refresh_token()),
                )
                .env("AUTHED_CLIENT_ID", "authed-mock")
                .env("AUTHED_TOKEN_STORE", &store)
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut failed = false;
    for mut worker in workers {
        failed |= !worker.wait()?.success();
    }
    if let Some(mut redis) = own_redis {
        redis.kill()?;
        redis.wait()?;
    }
    let stats = api.stats();
    println!(
        "fleet: {} API requests, {} token requests ({} per second), {} invalid_grant",
        stats.requests - stats.token_requests,
        stats.token_requests,
        stats.token_requests as f64 / RUN.as_secs_f64(),
        stats.invalid_grants
    );
    if failed || stats.invalid_grants > 0 {
        return Err("a worker failed".into());
    }
    Ok(())
}

/// One worker: configured from the environment only, as a deployed replica would be.
async fn worker() -> Result<(), Box<dyn std::error::Error>> {
    let client = authed::Client::from_env()?;
    let until = Instant::now() + RUN;
    let mut sent = 0;
    while Instant::now() < until {
        let _: serde_json::Value = client.get("/v1/me").send().await?;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("worker {}: {sent} requests", std::process::id());
    Ok(())
}

/// A throwaway `redis-server` on a free loopback port, without persistence.
fn start_redis() -> Result<(std::process::Child, String), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start redis-server (apt-get install redis-server): {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, format!("redis://127.0.0.1:{port}/0")))
}
