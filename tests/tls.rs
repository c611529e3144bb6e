//! Against a local TLS server with a certificate from a CA generated for the run: the HTTP-stack
//! hook (`ClientBuilder::configure_http`) is how a private root is trusted, and a redirect from
//! https down to plain http is refused.

use std::sync::Arc;

use authed::{Client, ErrorKind};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, pki_types::PrivateKeyDer},
};

/// A TLS server on `localhost` answering the token endpoint, `/me`, and `/down` (a redirect to
/// plain http on another host). Returns its port and the CA certificate (DER).
async fn tls_server() -> (u16, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "authed test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // a client that does not trust the CA hangs up here
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = tls.read_exact(&mut body).await;
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, extra, body) = match path.as_str() {
                    "/oauth/token" => (
                        "200 OK",
                        "",
                        r#"{"access_token":"at-tls","token_type":"Bearer","expires_in":600}"#,
                    ),
                    "/me" if head.contains("Bearer at-tls") => ("200 OK", "", r#"{"id":"u"}"#),
                    "/down" => (
                        "302 Found",
                        "Location: http://example.invalid/elsewhere\r\n",
                        "",
                    ),
                    _ => ("401 Unauthorized", "", ""),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca.der().to_vec())
}

fn builder(port: u16) -> authed::ClientBuilder {
    Client::builder()
        .base_url(format!("https://localhost:{port}"))
        .token_url(format!("https://localhost:{port}/oauth/token"))
        .refresh_token("rt-tls")
        .retry_policy(authed::retry::Policy::never())
}

#[tokio::test]
async fn a_private_root_is_trusted_through_the_http_stack_hook_and_only_then() {
    let (port, ca) = tls_server().await;

    let untrusting = builder(port).build().unwrap();
    let err = untrusting.get("/me").send::<Value>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");

    let client = builder(port)
        .configure_http(move |http| {
            http.add_root_certificate(reqwest::Certificate::from_der(&ca).unwrap())
        })
        .build()
        .unwrap();
    let me: Value = client.get("/me").send().await.unwrap();
    assert_eq!(
        me["id"], "u",
        "the token request and the API call both went over TLS"
    );
}

#[tokio::test]
async fn a_redirect_from_https_to_plain_http_is_refused() {
    let (port, ca) = tls_server().await;
    let client = builder(port)
        .configure_http(move |http| {
            // The hook cannot turn authed's redirect rules off: they are applied on top.
            http.add_root_certificate(reqwest::Certificate::from_der(&ca).unwrap())
                .redirect(reqwest::redirect::Policy::limited(10))
        })
        .build()
        .unwrap();

    let err = client.get("/down").send::<Value>().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(
        err.to_string()
            .contains("refusing a redirect from https to plain http"),
        "{err}"
    );
}
