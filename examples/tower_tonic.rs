//! A tonic gRPC client authenticated by `authed`'s tower layer (feature `tower`).
//!
//! The example starts the embedded mock API (the OAuth token endpoint and `GET /v1/me`) and a
//! local tonic server with one method, `test.Greeter/SayHello`, that checks the caller's bearer
//! token by asking the mock API whose it is (as a server would introspect it). The client's
//! channel is wrapped in `AuthLayer::buffered`: tonic's request body is not `Clone`, so the layer
//! keeps the encoded message to send it again. Half-way, the mock API expires the token the
//! client holds: the server answers `UNAUTHENTICATED` (a trailers-only response), the layer
//! refreshes and replays the call with the same message.
//!
//! The messages are hand-written `prost::Message` structs and both ends use tonic's generic
//! `Grpc` client and server, so no `protoc` is needed.
//!
//! It reads no environment variable. Run it with
//! `cargo run --example tower_tonic --features tower,mock`.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use authed::mock::MockApi;
use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tonic::{
    Status,
    body::Body,
    client::Grpc,
    transport::{Channel, Server},
};
use tonic_prost::ProstCodec;
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// `SayHello`: the bearer must be one the API accepts; the answer greets by the API's name.
#[derive(Clone)]
struct SayHello {
    me_url: String,
}

impl Service<tonic::Request<HelloRequest>> for SayHello {
    type Response = tonic::Response<HelloReply>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<HelloRequest>) -> Self::Future {
        let me_url = self.me_url.clone();
        Box::pin(async move {
            let Some(authorization) = request.metadata().get("authorization").cloned() else {
                return Err(Status::unauthenticated("no bearer token"));
            };
            let me = reqwest::Client::new()
                .get(me_url)
                .header("authorization", authorization.as_bytes())
                .send()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            if me.status() == 401 {
                // Before any message: tonic sends it as a trailers-only response.
                return Err(Status::unauthenticated("invalid bearer token"));
            }
            let me: serde_json::Value = me
                .json()
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(tonic::Response::new(HelloReply {
                message: format!("hello {}, from {}", request.get_ref().name, me["name"]),
            }))
        })
    }
}

/// The whole server: one method, behind tonic's generic unary server.
#[derive(Clone)]
struct Greeter(SayHello);

impl Service<http::Request<Body>> for Greeter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = self.0.clone();
        Box::pin(async move {
            if request.uri().path() != SAY_HELLO {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

// ===== the client =====

fn full_body(bytes: bytes::Bytes) -> Body {
    Body::new(http_body_util::Full::new(bytes))
}

type Greeters = Grpc<authed::tower::BufferedAuthService<Channel, fn(bytes::Bytes) -> Body>>;

async fn say_hello(grpc: &mut Greeters, name: &str) -> Result<String, BoxError> {
    grpc.ready().await?;
    let request = tonic::Request::new(HelloRequest {
        name: name.to_owned(),
    });
    let codec = ProstCodec::<HelloRequest, HelloReply>::default();
    let reply = grpc
        .unary(request, PathAndQuery::from_static(SAY_HELLO), codec)
        .await?;
    Ok(reply.into_inner().message)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let api = MockApi::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let grpc_url = format!("http://{}", listener.local_addr()?);
    let incoming = futures_util::stream::unfold(listener, |listener| async move {
        Some((listener.accept().await.map(|(s, _)| s), listener))
    });
    let greeter = Greeter(SayHello {
        me_url: format!("{}/v1/me", api.base_url()),
    });
    tokio::spawn(Server::builder().serve_with_incoming(greeter, incoming));
    println!("gRPC server on {grpc_url}; tokens from {}", api.token_url());

    // The client's API is the gRPC server: the token goes to its origin only.
    let client = api.client_builder().base_url(grpc_url.as_str()).build()?;
    let channel = Channel::from_shared(grpc_url)?.connect().await?;
    let layer = client
        .auth_layer()
        .buffered(4 << 20, full_body as fn(bytes::Bytes) -> Body);
    let mut grpc = Grpc::new(layer.layer(channel));

    println!("{}", say_hello(&mut grpc, "ada").await?);
    api.expire_access_tokens();
    println!("(the API expired the client's token)");
    println!("{}", say_hello(&mut grpc, "grace").await?);

    let stats = api.stats();
    println!(
        "token requests: {}; the second call was refused once and replayed",
        stats.token_requests
    );
    assert_eq!(stats.refreshes, 2, "one refresh after the expiry");
    Ok(())
}
