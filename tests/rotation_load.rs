//! A server that revokes the previous access token when it rotates the refresh token (as
//! django-oauth-toolkit does), with latency on every answer, under concurrent load: no call
//! fails. Two things make that hold: lifetimes count from when the token was asked for, and a
//! 401 to a token that was superseded while the request was on its way is replayed.
#![cfg(feature = "mock")]

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

/// The rule alone, without timing: a request whose replay token is superseded while the
/// replay is on its way (an early refresh by another request, which made the server revoke
/// it) is replayed again with the current token, instead of failing after one replay.
mod replay_while_superseded {
    use std::{convert::Infallible, sync::Mutex};

    use authed::auth::{AccessToken, Token, TokenFuture, TokenSource};
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
    use hyper_util::rt::TokioIo;
    use tokio::sync::watch;

    use super::*;

    /// Issues `t1`, `t2`, `t3`, … and announces how many it has issued.
    #[derive(Debug)]
    struct Numbered(watch::Sender<usize>);

    impl TokenSource for Numbered {
        fn fetch<'a>(&'a self, _replacing: Option<&'a AccessToken>) -> TokenFuture<'a> {
            Box::pin(async move {
                let mut n = 0;
                self.0.send_modify(|issued| {
                    *issued += 1;
                    n = *issued;
                });
                Ok(Token::new(format!("t{n}"), Some(Duration::from_secs(3600))))
            })
        }
        fn grant(&self) -> &str {
            "numbered"
        }
    }

    /// Accepts only `t3`. Request `a`'s `t2` is answered (401) only once `t3` exists, so the
    /// token it was replayed with has been superseded by the time its answer arrives.
    async fn serve(
        request: Request<Incoming>,
        issued: watch::Receiver<usize>,
        seen: Arc<Mutex<Vec<String>>>,
        a_waits: watch::Sender<bool>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim_start_matches("Bearer ")
            .to_owned();
        let caller = request.headers().get("x-caller").map_or("b", |_| "a");
        seen.lock().unwrap().push(format!("{caller}:{token}"));
        if caller == "a" && token == "t2" {
            a_waits.send_replace(true);
            let _ = issued.clone().wait_for(|n| *n >= 3).await;
        }
        let status = if token == "t3" { 200 } else { 401 };
        let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
        *response.status_mut() = status.try_into().unwrap();
        Ok(response)
    }

    #[tokio::test]
    async fn a_401_on_a_replay_token_superseded_meanwhile_is_replayed_again() {
        let (issued_tx, issued) = watch::channel(0usize);
        let (a_waits_tx, mut a_waits) = watch::channel(false);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server_seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (issued, seen, a_waits) =
                    (issued.clone(), server_seen.clone(), a_waits_tx.clone());
                tokio::spawn(http1::Builder::new().serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |r| serve(r, issued.clone(), seen.clone(), a_waits.clone())),
                ));
            }
        });
        let client = authed::Client::builder()
            .base_url(format!("http://{addr}"))
            .token_source(Numbered(issued_tx))
            .retry_policy(authed::retry::Policy::never())
            .build()
            .unwrap();

        // a: t1 is refused, a refresh gives t2, and a's replay with t2 is held at the server.
        let a = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .get("/me")
                    .header("x-caller", "a")
                    .send::<Value>()
                    .await
            }
        });
        a_waits.wait_for(|waits| *waits).await.unwrap();
        // b: t2 is refused too (the server revoked it), b's refresh gives t3, b succeeds; and
        // a's t2 is answered 401 now, after it was superseded.
        let b = client.get("/me").send::<Value>().await;
        let a = a.await.unwrap();

        assert!(b.is_ok(), "{b:?}");
        assert!(a.is_ok(), "a's second 401 was on a superseded token: {a:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, ["a:t1", "a:t2", "b:t2", "b:t3", "a:t3"]);
    }
}
