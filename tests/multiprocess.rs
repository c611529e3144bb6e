//! Several processes on one host share one `FileStore` against a server that rotates refresh
//! tokens and revokes the grant on reuse: none ever presents a retired token, and together
//! they make about as many token requests as one client alone.
//!
//! The children are this test binary run again (`multiprocess_child`, ignored in normal runs),
//! configured through environment variables.
#![cfg(feature = "mock")]

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use authed::{ErrorKind, ExposeSecret, FileStore, RefreshTokenStore, mock::MockApi};
use serde_json::Value;

const CHILDREN: usize = 4;
const RUN_FOR: Duration = Duration::from_secs(10);
const TTL: Duration = Duration::from_secs(1);
const CLIENT_ID: &str = "multiprocess";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_file_store_against_a_rotating_reuse_detecting_server() {
    let api = MockApi::builder()
        .rotate_refresh_tokens(true)
        .token_ttl(TTL)
        .client_id(CLIENT_ID)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("token.json");
    let exe = std::env::current_exe().unwrap();

    let started = Instant::now();
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            let mut child = Command::new(&exe);
            child
                .args(["--exact", "multiprocess_child", "--ignored", "--nocapture"])
                .env("MP_BASE_URL", api.base_url())
                .env("MP_TOKEN_URL", api.token_url())
                .env("MP_REFRESH_TOKEN", api.refresh_token().expose_secret())
                .env("MP_STORE", &store)
                .env("MP_SECONDS", RUN_FOR.as_secs().to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            child.spawn().expect("the test binary runs as a child")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let elapsed = started.elapsed();

    let mut calls = 0;
    for output in &outputs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "a child failed:\n{stdout}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("MP "))
            .unwrap_or_else(|| panic!("no report from a child:\n{stdout}"));
        calls += line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ok="))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap();
    }
    // One client alone refreshes a 1 s token at half its life (the refresh window of a short
    // token is half of it): about two token requests a second.
    let alone = elapsed.as_secs_f64() / (TTL.as_secs_f64() / 2.0);
    let refreshes = api.stats().refreshes as f64;
    println!(
        "{CHILDREN} processes, {elapsed:.1?}: {calls} calls, {refreshes} token requests \
         (one client alone: about {alone:.0})"
    );
    assert!(calls > 0);
    assert!(
        refreshes <= 1.5 * alone,
        "{refreshes} token requests, more than 1.5 x {alone:.0}"
    );
    // The grant is alive: the stored token still refreshes.
    let record = FileStore::new(&store)
        .load()
        .await
        .unwrap()
        .expect("the store holds the grant");
    assert_eq!(
        record.refresh_token.expose_secret(),
        api.refresh_token().expose_secret(),
        "the store holds the grant's current refresh token"
    );
}

/// One child: calls the API through a client on the shared store for `MP_SECONDS`, prints
/// `MP ok=N errors=N invalid_grant=N`, and fails if the grant was ever revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by four_processes_share_one_file_store_against_a_rotating_reuse_detecting_server"]
async fn multiprocess_child() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let client = authed::Client::builder()
        .base_url(var("MP_BASE_URL"))
        .token_url(var("MP_TOKEN_URL"))
        .refresh_token(var("MP_REFRESH_TOKEN"))
        .client_id(CLIENT_ID)
        .token_store(FileStore::new(var("MP_STORE")))
        .retry_policy(authed::retry::Policy::never())
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(var("MP_SECONDS").parse().unwrap());
    let (mut ok, mut errors, mut invalid_grant) = (0, 0, 0);
    while Instant::now() < until {
        match client.get("/v1/me").send::<Value>().await {
            Ok(_) => ok += 1,
            Err(err) => {
                errors += 1;
                if err.kind() == ErrorKind::Auth(authed::AuthErrorKind::InvalidGrant) {
                    invalid_grant += 1;
                }
                eprintln!("child error: {err}");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("MP ok={ok} errors={errors} invalid_grant={invalid_grant}");
    assert_eq!(invalid_grant, 0, "the grant was revoked");
    assert_eq!(errors, 0, "every call succeeded");
}
