//! A tonic gRPC client through the tower layer (`AuthLayer::buffered`) against a local tonic
//! server that checks the bearer token in the `authorization` metadata: the token goes out as
//! gRPC metadata, an expired token is refreshed before the call, and an `UNAUTHENTICATED`
//! answer (a trailers-only response, `grpc-status: 16` in the headers) is replayed once with a
//! fresh token and the same message.
//!
//! No protoc here: the messages are hand-written `prost::Message` structs, and both ends use
//! tonic's generic `Grpc` client and server with tonic-prost's codec.
#![cfg(feature = "tower")]

mod common;

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tonic::{
    Code, Status,
    body::Body,
    client::Grpc,
    transport::{Channel, Server},
};
use tonic_prost::ProstCodec;
use tower_layer::Layer;
use tower_service::Service;
use wiremock::MockServer;

use common::{TestClock, TokenIssuer};

#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

const SAY_HELLO: &str = "/test.Greeter/SayHello";

// ===== the server =====

/// What the gRPC server saw and which tokens it refuses.
#[derive(Clone, Default)]
struct Seen {
    /// The `authorization` metadata of every call, in order.
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
    /// Tokens the server answers `UNAUTHENTICATED` (revoked, or expired on its clock).
    refused: Arc<Mutex<HashSet<String>>>,
}

impl Seen {
    fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations.lock().unwrap().clone()
    }

    fn refuse(&self, token: &str) {
        self.refused.lock().unwrap().insert(token.to_owned());
    }
}

/// The `SayHello` handler: checks the bearer, answers `hello <name>`.
#[derive(Clone)]
struct SayHello(Seen);

impl Service<tonic::Request<HelloRequest>> for SayHello {
    type Response = tonic::Response<HelloReply>;
    type Error = Status;
    type Future = std::future::Ready<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<HelloRequest>) -> Self::Future {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.0
            .authorizations
            .lock()
            .unwrap()
            .push(authorization.clone());
        let token = authorization
            .as_deref()
            .and_then(|v| v.strip_prefix("Bearer "));
        let answer = match token {
            Some(token) if !self.0.refused.lock().unwrap().contains(token) => {
                Ok(tonic::Response::new(HelloReply {
                    message: format!("hello {}", request.get_ref().name),
                }))
            }
            // Before any message: tonic sends it as a trailers-only response.
            _ => Err(Status::unauthenticated("invalid bearer token")),
        };
        std::future::ready(answer)
    }
}

/// The whole server: one method, behind tonic's generic unary server.
#[derive(Clone)]
struct Greeter(Seen);

impl Service<http::Request<Body>> for Greeter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let seen = self.0.clone();
        Box::pin(async move {
            if request.uri().path() != SAY_HELLO {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
            Ok(grpc.unary(SayHello(seen), request).await)
        })
    }
}

/// Starts the gRPC server on a free loopback port; returns its URL.
async fn start_server(seen: Seen) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let incoming = futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    tokio::spawn(Server::builder().serve_with_incoming(Greeter(seen), incoming));
    url
}

// ===== the client =====

/// A tonic client whose channel goes through the client's auth layer.
type Greeters = Grpc<authed::tower::BufferedAuthService<Channel, fn(bytes::Bytes) -> Body>>;

fn full_body(bytes: bytes::Bytes) -> Body {
    Body::new(http_body_util::Full::new(bytes))
}

async fn greeter(client: &authed::Client, url: &str) -> Greeters {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let layer = client
        .auth_layer()
        .buffered(64 * 1024, full_body as fn(bytes::Bytes) -> Body);
    Grpc::new(layer.layer(channel))
}

async fn say_hello(grpc: &mut Greeters, name: &str) -> Result<String, Status> {
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    let request = tonic::Request::new(HelloRequest {
        name: name.to_owned(),
    });
    let codec = ProstCodec::<HelloRequest, HelloReply>::default();
    let reply = grpc
        .unary(request, PathAndQuery::from_static(SAY_HELLO), codec)
        .await?;
    Ok(reply.into_inner().message)
}

/// A client whose API is the gRPC server, with tokens `at-1`, `at-2`, ... from a token
/// endpoint on wiremock, living `expires_in` seconds on `clock`.
async fn client(
    api_url: &str,
    expires_in: u64,
    clock: &TestClock,
) -> (MockServer, TokenIssuer, authed::Client) {
    let tokens = MockServer::start().await;
    let issuer = TokenIssuer::new(expires_in);
    issuer.mount(&tokens).await;
    let client = authed::Client::builder()
        .base_url(api_url)
        .token_url(format!("{}{}", tokens.uri(), common::TOKEN_PATH))
        .refresh_token(common::REFRESH_TOKEN)
        .clock(clock.clone())
        .build()
        .unwrap();
    (tokens, issuer, client)
}

#[tokio::test]
async fn a_tonic_call_carries_the_bearer_and_an_expired_token_is_refreshed_first() {
    let seen = Seen::default();
    let url = start_server(seen.clone()).await;
    let clock = TestClock::new();
    let (_tokens, issuer, client) = client(&url, 3600, &clock).await;
    let mut grpc = greeter(&client, &url).await;

    let first = say_hello(&mut grpc, "ada").await;
    clock.advance(Duration::from_secs(3600));
    let second = say_hello(&mut grpc, "grace").await;

    assert_eq!(first.unwrap(), "hello ada");
    assert_eq!(second.unwrap(), "hello grace");
    assert_eq!(
        seen.authorizations(),
        [
            Some("Bearer at-1".to_owned()),
            Some("Bearer at-2".to_owned())
        ]
    );
    assert_eq!(issuer.issued(), 2);
}

#[tokio::test]
async fn an_unauthenticated_answer_is_replayed_once_with_a_fresh_token_and_the_same_message() {
    let seen = Seen::default();
    let url = start_server(seen.clone()).await;
    let clock = TestClock::new();
    let (_tokens, issuer, client) = client(&url, 3600, &clock).await;
    let mut grpc = greeter(&client, &url).await;
    assert_eq!(say_hello(&mut grpc, "ada").await.unwrap(), "hello ada");
    // The server stops accepting the token the client still believes valid.
    seen.refuse("at-1");

    let reply = say_hello(&mut grpc, "grace").await;

    assert_eq!(
        reply.unwrap(),
        "hello grace",
        "the replay carried the message"
    );
    assert_eq!(
        seen.authorizations(),
        [
            Some("Bearer at-1".to_owned()),
            Some("Bearer at-1".to_owned()),
            Some("Bearer at-2".to_owned()),
        ]
    );
    assert_eq!(issuer.issued(), 2);
}

#[tokio::test]
async fn a_second_unauthenticated_is_returned_as_the_calls_status() {
    let seen = Seen::default();
    let url = start_server(seen.clone()).await;
    let clock = TestClock::new();
    let (_tokens, _issuer, client) = client(&url, 3600, &clock).await;
    let mut grpc = greeter(&client, &url).await;
    seen.refuse("at-1");
    seen.refuse("at-2");

    let status = say_hello(&mut grpc, "ada").await.unwrap_err();

    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(seen.authorizations().len(), 2, "one replay, no more");
}
