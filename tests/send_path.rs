//! The send path's own reading of a response: a body that arrives in several pieces is
//! decoded whole, an empty one as JSON `null`.

mod common;

use authed::retry::Policy;
use common::{
    ACCESS_TOKEN, TOKEN_PATH,
    hostile::{Behavior, HostileServer},
};

/// A server whose token endpoint answers normally and whose API writes `response` as given.
async fn api_writing(response: Vec<u8>) -> HostileServer {
    HostileServer::start(move |request| match request.path() {
        TOKEN_PATH => Behavior::token(ACCESS_TOKEN),
        _ => Behavior::Raw(response.clone()),
    })
    .await
}

fn client(server: &HostileServer) -> authed::Client {
    server
        .client_builder()
        .retry_policy(Policy::never())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_body_sent_in_several_chunks_is_decoded_whole() {
    // Three chunks of the chunked transfer coding: the client receives three pieces.
    let response = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
        transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
        3\r\n[1,\r\n2\r\n2,\r\n2\r\n3]\r\n0\r\n\r\n";
    let server = api_writing(response.to_vec()).await;

    let numbers: Vec<u64> = client(&server).get("/v1/numbers").send().await.unwrap();

    assert_eq!(numbers, [1, 2, 3]);
}

#[tokio::test]
async fn an_empty_body_decodes_as_null() {
    let response = Behavior::http(204, &[], b"");
    let server = api_writing(response).await;

    let nothing: Option<u64> = client(&server).get("/v1/nothing").send().await.unwrap();

    assert_eq!(nothing, None);
}
