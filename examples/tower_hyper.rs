//! A hyper client authenticated by `authed`'s tower layer (feature `tower`).
//!
//! The example starts a tiny local server (hyper) that plays both roles: an OAuth token
//! endpoint (`POST /oauth/token`, a new access token per refresh) and an API
//! (`GET /v1/hello`, which accepts only the newest access token). Half-way, the server retires
//! the token the client holds, as a server that rotates its keys would: the layer sees the
//! `401`, refreshes, and replays the request.
//!
//! It reads no environment variable. Run it with
//! `cargo run --example tower_hyper --features tower`.

use std::{
    convert::Infallible,
    future::poll_fn,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Request, Response, StatusCode, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::{
    client::legacy::Client as HyperClient,
    rt::{TokioExecutor, TokioIo},
};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server's state: how many access tokens it issued; whether the newest is retired.
#[derive(Default)]
struct Server {
    issued: AtomicUsize,
    retired: AtomicBool,
}

impl Server {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, body: String| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response
        };
        match (request.method().as_str(), request.uri().path()) {
            ("POST", "/oauth/token") => {
                let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
                self.retired.store(false, Ordering::SeqCst);
                let mut response = reply(
                    StatusCode::OK,
                    format!(
                        r#"{{"access_token":"demo-access-{n}","token_type":"Bearer","expires_in":3600}}"#
                    ),
                );
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                response
            }
            ("GET", "/v1/hello") => {
                let newest = format!("Bearer demo-access-{}", self.issued.load(Ordering::SeqCst));
                let presented = request.headers().get("authorization");
                if self.retired.load(Ordering::SeqCst)
                    || presented.is_none_or(|value| value.as_bytes() != newest.as_bytes())
                {
                    return reply(StatusCode::UNAUTHORIZED, "invalid_token".to_owned());
                }
                reply(StatusCode::OK, "hello, authenticated caller".to_owned())
            }
            _ => reply(StatusCode::NOT_FOUND, "no such route".to_owned()),
        }
    }
}

/// Serves `server` on a loopback port until the process ends; returns its address.
async fn start(server: Arc<Server>) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = server.answer(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
                // A client that goes away mid-request is not the example's concern.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = Arc::new(Server::default());
    let addr = start(server.clone()).await?;

    // The authed client owns the token: it refreshes it, once, for every user of the layer.
    let client = authed::Client::builder()
        .name("hello-api")
        .base_url(format!("http://{addr}"))
        .token_url(format!("http://{addr}/oauth/token"))
        .refresh_token("demo-refresh-token")
        .client_id("demo")
        .build()?;
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut service = client.auth_layer().layer(hyper);

    for round in 1..=3 {
        if round == 3 {
            // The server retires the token the client holds: the next request gets a 401.
            server.retired.store(true, Ordering::SeqCst);
        }
        poll_fn(|cx| service.poll_ready(cx)).await?;
        let request = Request::get(format!("http://{addr}/v1/hello")).body(Full::default())?;
        let response = service.call(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "request {round}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        if status != StatusCode::OK {
            return Err(format!("request {round} failed with {status}").into());
        }
    }
    let issued = server.issued.load(Ordering::SeqCst);
    println!("access tokens issued: {issued} (one at first use, one after the 401)");
    if issued != 2 {
        return Err(format!("expected 2 access tokens, the server issued {issued}").into());
    }
    Ok(())
}
