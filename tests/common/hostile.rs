//! A hostile HTTP/1.1 server for tests: a raw `tokio::net::TcpListener` whose answers are
//! written byte by byte, so that it can do what no well-behaved server library does — bodies
//! that never end, a `Content-Length` of a terabyte, one byte per tick, a reset in the middle
//! of a body, no answer at all, malformed status lines and headers, and echoes of everything
//! the client sent (to catch secrets reflected into errors).
//!
//! ```ignore
//! use common::hostile::{Behavior, HostileServer};
//!
//! // The token endpoint answers normally; the API never ends its error body.
//! let server = HostileServer::start(|request| match request.path() {
//!     "/oauth/token" => Behavior::token(common::ACCESS_TOKEN),
//!     _ => Behavior::EndlessChunked { status: 500 },
//! })
//! .await;
//! let client = server.client_builder().build()?;
//! ```
//!
//! Every connection is answered by the behavior the routing function picks for its first
//! request, then closed (`Connection: close`): no keep-alive, so each request of the client is
//! a new connection and [`HostileServer::requests`] sees all of them. Nothing it does waits on
//! tokio's clock except [`Behavior::Drip`], so it works on paused time too (but see
//! [`Behavior::Drip`]). Dropping the server stops it and closes every connection.
#![allow(dead_code)] // each test binary uses a different subset

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

/// The most a request head and body may take; more is answered by closing the connection.
const MAX_REQUEST: usize = 1 << 20;

/// One request as the client sent it: the raw bytes of its head and body.
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// The request line and headers, up to and including the blank line.
    pub head: String,
    /// The body, as given by `Content-Length` (empty without one).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The method of the request line.
    pub fn method(&self) -> &str {
        self.head.split(' ').next().unwrap_or_default()
    }

    /// The path of the request line, without the query.
    pub fn path(&self) -> &str {
        let target = self.head.split(' ').nth(1).unwrap_or_default();
        target.split('?').next().unwrap_or_default()
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// The whole request as text, head and body.
    pub fn text(&self) -> String {
        format!("{}{}", self.head, String::from_utf8_lossy(&self.body))
    }
}

/// What the server does with a connection.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// Writes these bytes exactly (status line, headers, body: whatever they are), then closes
    /// the connection. For malformed status lines and headers.
    Raw(Vec<u8>),
    /// A well-formed response: this status, these headers, this body (`Content-Length` and
    /// `Connection: close` are added).
    Respond {
        /// The status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// This status with `Transfer-Encoding: chunked` and a body that never ends (1 KiB chunks
    /// of `x` until the client goes away).
    EndlessChunked {
        /// The status code.
        status: u16,
    },
    /// This status with `Content-Length: length`, then `x` bytes until the client goes away.
    HugeContentLength {
        /// The status code.
        status: u16,
        /// The length announced.
        length: u64,
    },
    /// `response` written one byte at a time, one byte every `every` (tokio time: on paused
    /// time the ticks pass as fast as the client waits for them).
    Drip {
        /// The bytes, a whole response.
        response: Vec<u8>,
        /// The pause between two bytes.
        every: Duration,
    },
    /// Nothing for `after` (tokio time), then `response` (a whole response) at once: a slow
    /// server.
    Late {
        /// The bytes, a whole response.
        response: Vec<u8>,
        /// How long the server keeps the client waiting.
        after: Duration,
    },
    /// This status with `Content-Length: 1000`, `sent` bytes of body, then a TCP reset
    /// (`SO_LINGER` 0).
    ResetMidBody {
        /// The status code.
        status: u16,
        /// Bytes of the body sent before the reset.
        sent: usize,
    },
    /// Reads the request and never answers (the connection stays open until the server is
    /// dropped).
    NeverAnswer,
    /// A response whose body (JSON, `{"message": <the request as text>}`) repeats what the
    /// client sent, head and body.
    Echo {
        /// The status code.
        status: u16,
        /// Also echo the `Authorization` header's value in `x-request-id` (servers echo
        /// correlation ids).
        request_id: bool,
    },
}

impl Behavior {
    /// A response with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A successful token response issuing `access_token` for an hour.
    pub fn token(access_token: &str) -> Self {
        Self::json(200, &super::token_body(access_token, 3600))
    }

    /// `response` as a well-formed HTTP/1.1 response, for [`Behavior::Drip`],
    /// [`Behavior::Late`] and [`Behavior::Raw`].
    pub fn http(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ));
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }
}

type Route = dyn Fn(&RawRequest) -> Behavior + Send + Sync;

/// A hostile server on `127.0.0.1`, answering each connection as its routing function says.
pub struct HostileServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept.abort();
    }
}

impl HostileServer {
    /// Starts a server whose every connection gets `route(first request)`.
    pub async fn start(route: impl Fn(&RawRequest) -> Behavior + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let route: Arc<Route> = Arc::new(route);
        let seen = requests.clone();
        let accept = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (route, seen) = (route.clone(), seen.clone());
                connections.spawn(async move {
                    // A client that hangs up is not an error of the server: ignore I/O errors.
                    let _ = serve(stream, &*route, &seen).await;
                });
                // Reap finished connections so that a long test does not accumulate them.
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            requests,
            accept,
        }
    }

    /// Starts a server that answers every connection with `behavior`.
    pub async fn always(behavior: Behavior) -> Self {
        Self::start(move |_| behavior.clone()).await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// A client builder against this server: API at its root, token endpoint at
    /// [`TOKEN_PATH`](super::TOKEN_PATH), the test refresh token and client id.
    pub fn client_builder(&self) -> authed::ClientBuilder {
        authed::Client::builder()
            .base_url(self.uri())
            .token_url(format!("{}{}", self.uri(), super::TOKEN_PATH))
            .refresh_token(super::REFRESH_TOKEN)
            .client_id("test-client")
    }
}

/// Reads one request, records it, and behaves as `route` says.
async fn serve(
    mut stream: TcpStream,
    route: &Route,
    seen: &Mutex<Vec<RawRequest>>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let behavior = route(&request);
    seen.lock().unwrap().push(request.clone());
    match behavior {
        Behavior::Raw(bytes) => stream.write_all(&bytes).await?,
        Behavior::Respond {
            status,
            headers,
            body,
        } => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            stream
                .write_all(&Behavior::http(status, &headers, &body))
                .await?;
        }
        Behavior::EndlessChunked { status } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\n\
                 transfer-encoding: chunked\r\n\r\n",
                reason(status)
            );
            stream.write_all(head.as_bytes()).await?;
            let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
            loop {
                stream.write_all(chunk.as_bytes()).await?;
            }
        }
        Behavior::HugeContentLength { status, length } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\n\
                 content-length: {length}\r\n\r\n",
                reason(status)
            );
            stream.write_all(head.as_bytes()).await?;
            let block = [b'x'; 0x400];
            loop {
                stream.write_all(&block).await?;
            }
        }
        Behavior::Drip { response, every } => {
            for byte in response {
                stream.write_all(&[byte]).await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
        }
        Behavior::Late { response, after } => {
            tokio::time::sleep(after).await;
            stream.write_all(&response).await?;
        }
        Behavior::ResetMidBody { status, sent } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\n\
                 content-length: 1000\r\n\r\n",
                reason(status)
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&vec![b'x'; sent.min(999)]).await?;
            stream.flush().await?;
            // Linger 0: closing sends RST instead of FIN. (Deprecated because a non-zero linger
            // blocks the thread on drop; a zero one does not.)
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO))?;
            drop(stream);
            return Ok(());
        }
        Behavior::NeverAnswer => std::future::pending::<()>().await,
        Behavior::Echo { status, request_id } => {
            let request = seen.lock().unwrap().last().cloned().expect("just recorded");
            let body = serde_json::json!({ "message": request.text() }).to_string();
            let echoed_auth = request.header("authorization").unwrap_or("none").to_owned();
            let mut headers = vec![("content-type", "application/json")];
            if request_id {
                headers.push(("x-request-id", echoed_auth.as_str()));
            }
            stream
                .write_all(&Behavior::http(status, &headers, body.as_bytes()))
                .await?;
        }
    }
    stream.shutdown().await
}

/// Reads a request head and its `Content-Length` body; `None` if the client went away first.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<RawRequest>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request = RawRequest {
        head,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    request.body = body;
    Ok(Some(request))
}

fn reason(status: u16) -> &'static str {
    authed::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Whatever")
}
