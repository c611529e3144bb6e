//! What `authed` costs next to raw `reqwest`, and the guarantees that must hold under load.
//!
//! Run: `cargo bench --bench sdk` (full, a few minutes) or `cargo bench --bench sdk -- --quick`
//! (under a minute: checks that every scenario runs, not the numbers). A table goes to stdout
//! and the results to `target/bench/sdk.json`. See `docs/benchmarks.md` for a full run.
//!
//! The HTTP server is a separate process (this binary re-executed with `AUTHED_BENCH_ROLE=server`,
//! a small hyper server), so the CPU time and allocations measured here are the client's alone.
//! Contenders are interleaved round by round (the order alternates) and the table shows the
//! median of the per-round ratios with their min–max, so that load from other processes falls
//! on both sides; overhead medians also carry a 95 % bootstrap interval, and `--control` adds
//! a second raw client to every round, an A/A difference that shows what the run resolves
//! (`--floor` adds the feature floor instead: raw `reqwest` plus the SDK's per-request work,
//! by hand; `--full-floor` the full floor, which also configures its client, joins the path
//! and keeps the URL as `authed` does). `--levels 16,64,256` runs the overhead scenario at
//! those numbers in flight only.
//!
//! Scenarios:
//! - **overhead**: `GET` + JSON decode at 1, 16, 64 and 256 requests in flight, `authed` against
//!   raw `reqwest` with a static bearer header: throughput ratio, CPU per request (`getrusage`),
//!   allocations per request (a counting global allocator), and the size of one request's future;
//! - **token cache**: handing out a cached access token, from 1 task and 8 contending tasks;
//! - **refresh storm**: 1,000 requests at expiry, token endpoint 50 ms: exactly one token
//!   request, no `401`;
//! - **early refresh**: 2 s tokens, 200 ms token endpoint: no request waits for a refresh;
//! - **pagination**: 100,000 items in pages of 100 against a hand-written skip/take loop (CPU
//!   time and allocations per item), and prefetch with 2 ms per page on each side (speedup);
//! - **memory**: 1M against 100k items streamed, peak RSS and peak heap, in child processes;
//! - **rate limit**: a 200 r/s server limit answering `429` + `Retry-After: 1`, 64 workers for
//!   10 s, with the quota in a `RateLimit` header on every answer and with `Retry-After` alone:
//!   goodput, errors reaching callers (by why retrying stopped), share of `429`s. Run it alone
//!   with `cargo bench --bench sdk -- --only rate`.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::HashMap,
    convert::Infallible,
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::TryStreamExt;
use serde_json::{Value, json};

// ===== counting allocator =====

/// Counts allocations (calls) and tracks the live heap and its peak, for the whole process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if new_size >= layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed);
            PEAK.fetch_max(live + new_size - layout.size(), Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

// ===== measurement helpers =====

/// `CLOCK_MONOTONIC` in nanoseconds: the clock `perf record -k CLOCK_MONOTONIC` stamps samples with.
fn monotonic_ns() -> u128 {
    // SAFETY: clock_gettime writes into the zeroed struct we own.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
        ts
    };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// This process's CPU time in user space and in the kernel (`getrusage`).
fn user_and_system_time() -> (Duration, Duration) {
    cpu_of(&usage())
}

/// The user and kernel CPU time of a `getrusage` reading.
fn cpu_of(usage: &libc::rusage) -> (Duration, Duration) {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// This process's resource usage so far: CPU time, and context switches, voluntary (a worker
/// thread parking for lack of work; waking it again is the expensive part) and involuntary (a
/// thread preempted, by the server process or another thread woken on its CPU).
fn usage() -> libc::rusage {
    // SAFETY: getrusage writes into the zeroed struct we own.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// Peak resident set size of this process image, in KiB: `VmHWM` from `/proc/self/status`.
/// (`getrusage`'s `ru_maxrss` is not used: it carries the parent's peak across `exec`.)
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises the open-file limit to the hard limit: 1,000 requests in flight are 1,000 sockets.
fn raise_fd_limit() {
    // SAFETY: plain syscalls on a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// What one contender spent on one run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    ops: u64,
    wall: Duration,
    cpu: Duration,
    kernel: Duration,
    switches: u64,
    preempted: u64,
    allocations: u64,
}

impl Sample {
    fn per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn cpu_ns(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.ops as f64
    }
    fn kernel_ns(&self) -> f64 {
        self.kernel.as_nanos() as f64 / self.ops as f64
    }
    fn switches(&self) -> f64 {
        self.switches as f64 / self.ops as f64
    }
    fn preempted(&self) -> f64 {
        self.preempted as f64 / self.ops as f64
    }
    fn allocs(&self) -> f64 {
        self.allocations as f64 / self.ops as f64
    }
}

/// Measures `run`, which performs `ops` operations.
async fn measure<F: Future<Output = ()>>(ops: u64, run: F) -> Sample {
    let (before, allocations, wall) =
        (usage(), ALLOCATIONS.load(Ordering::Relaxed), Instant::now());
    run.await;
    let (wall, after) = (wall.elapsed(), usage());
    let ((user, kernel), (user_after, kernel_after)) = (cpu_of(&before), cpu_of(&after));
    Sample {
        ops,
        wall,
        cpu: user_after + kernel_after - user - kernel,
        kernel: kernel_after - kernel,
        switches: (after.ru_nvcsw - before.ru_nvcsw) as u64,
        preempted: (after.ru_nivcsw - before.ru_nivcsw) as u64,
        allocations: ALLOCATIONS.load(Ordering::Relaxed) - allocations,
    }
}

/// Median, min and max of per-round values.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
    /// 95 % interval of the median: a percentile bootstrap (2,000 resamples of the rounds,
    /// with a fixed seed so that a run's table can be recomputed from its `sdk.json`).
    ci95: (f64, f64),
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Spread {
    fn of(values: &[f64]) -> Self {
        let mut v = values.to_vec();
        let mid = median(&mut v);
        // xorshift64*: enough to resample with, and no dependency.
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = |n: usize| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        };
        let mut medians: Vec<f64> = (0..2000)
            .map(|_| median(&mut (0..v.len()).map(|_| v[next(v.len())]).collect::<Vec<_>>()))
            .collect();
        medians.sort_by(f64::total_cmp);
        Self {
            median: mid,
            min: v[0],
            max: v[v.len() - 1],
            ci95: (medians[50], medians[1949]),
        }
    }

    fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max,
                "median_ci95": [self.ci95.0, self.ci95.1] })
    }

    /// The median, its 95 % interval and the min–max: what a target can be judged by.
    fn show_ci(&self, decimals: usize) -> String {
        format!(
            "{:.d$} [{:.d$}, {:.d$}] ({:.d$}–{:.d$})",
            self.median,
            self.ci95.0,
            self.ci95.1,
            self.min,
            self.max,
            d = decimals
        )
    }

    fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

// ===== the server process =====

const ROLE: &str = "AUTHED_BENCH_ROLE";
const PORT: &str = "AUTHED_BENCH_PORT";

/// One item of the API, as served by `/item` and in pages of `/items`.
#[derive(serde::Deserialize)]
#[allow(dead_code)] // decoded to cost what a real item costs
struct Item {
    id: u64,
    name: String,
    color: String,
    price_cents: u64,
    tags: Vec<String>,
}

const ITEM: &str =
    r#"{"id":7,"name":"widget 7","color":"blue","price_cents":1250,"tags":["new","sale"]}"#;

/// Server-side state: issued tokens and counters the bench reads through `/stats`.
#[derive(Default)]
struct ServerState {
    /// Expiry of each token issued, by number (`t<n>`); `t0`, issued at start for a year, is the
    /// raw contender's static token, checked the same way as `authed`'s.
    tokens: Mutex<Vec<Instant>>,
    token_requests: AtomicU64,
    unauthorized: AtomicU64,
    limited_ok: AtomicU64,
    limited_429: AtomicU64,
    /// The rate limit's window (whole seconds since start) and the requests counted in it.
    window: Mutex<(u64, u32)>,
    started: Option<Instant>,
}

type Body = http_body_util::Full<bytes::Bytes>;

/// Requests per second `/limited` serves before it answers `429`.
const LIMIT: u32 = 200;

fn respond(status: u16, body: impl Into<bytes::Bytes>) -> hyper::Response<Body> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::new(body.into()))
        .expect("valid response")
}

fn query(uri: &hyper::Uri, name: &str) -> Option<u64> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.parse().ok()).flatten()
    })
}

impl ServerState {
    /// Whether the bearer token is one this server accepts now: an issued token that has not
    /// expired (the raw contender's `t0` included, so that both cost the server the same).
    fn authorized(&self, request: &hyper::Request<hyper::body::Incoming>) -> bool {
        let Some(token) = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let Some(n) = token
            .strip_prefix('t')
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return false;
        };
        let tokens = self.tokens.lock().unwrap();
        tokens.get(n).is_some_and(|exp| Instant::now() < *exp)
    }

    async fn handle(
        self: Arc<Self>,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<Body>, Infallible> {
        use http_body_util::BodyExt;
        let path = request.uri().path().to_owned();
        // `/token/<delay ms>/<expires_in s>`: mints `t<n>`.
        if let Some(rest) = path.strip_prefix("/token/") {
            let mut parts = rest.split('/').map(|p| p.parse::<u64>().unwrap_or(0));
            let (delay, lifetime) = (parts.next().unwrap_or(0), parts.next().unwrap_or(3600));
            let _ = request.into_body().collect().await;
            self.token_requests.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let n = {
                let mut tokens = self.tokens.lock().unwrap();
                tokens.push(Instant::now() + Duration::from_secs(lifetime));
                tokens.len() - 1
            };
            let body = json!({
                "access_token": format!("t{n}"), "token_type": "Bearer", "expires_in": lifetime
            });
            return Ok(respond(200, body.to_string()));
        }
        if path == "/stats" {
            let body = json!({
                "token_requests": self.token_requests.load(Ordering::Relaxed),
                "unauthorized": self.unauthorized.load(Ordering::Relaxed),
                "limited_ok": self.limited_ok.load(Ordering::Relaxed),
                "limited_429": self.limited_429.load(Ordering::Relaxed),
            });
            return Ok(respond(200, body.to_string()));
        }
        if !self.authorized(&request) {
            self.unauthorized.fetch_add(1, Ordering::Relaxed);
            return Ok(respond(401, r#"{"error":"invalid_token"}"#));
        }
        match path.as_str() {
            "/item" => Ok(respond(200, ITEM)),
            // `?skip&take&total[&delay_ms]`: a page of the listing, made up on the spot.
            "/items" => {
                let uri = request.uri();
                let skip = query(uri, "skip").unwrap_or(0);
                let take = query(uri, "take").unwrap_or(100);
                let total = query(uri, "total").unwrap_or(0);
                if let Some(delay) = query(uri, "delay_ms") {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let mut body = String::with_capacity(100 * take as usize + 2);
                body.push('[');
                for id in skip..total.min(skip + take) {
                    if id > skip {
                        body.push(',');
                    }
                    body.push_str(&format!(
                        r#"{{"id":{id},"name":"item {id}","color":"blue","price_cents":{},"tags":["new"]}}"#,
                        id % 1000
                    ));
                }
                body.push(']');
                Ok(respond(200, body))
            }
            // 200 requests per second, then 429 + Retry-After: 1 until the next second. With
            // `?quota=1`, every answer also carries the quota as a real rate-limited API sends
            // it: `RateLimit: limit=200, remaining=N, reset=S` (IETF httpapi draft, the
            // dictionary form), the reset in whole seconds rounded up.
            "/limited" => {
                let elapsed = self.started.expect("set at start").elapsed();
                let second = elapsed.as_secs();
                let (allowed, remaining) = {
                    let mut window = self.window.lock().unwrap();
                    if window.0 != second {
                        *window = (second, 0);
                    }
                    window.1 += 1;
                    (window.1 <= LIMIT, LIMIT.saturating_sub(window.1))
                };
                let mut response = if allowed {
                    self.limited_ok.fetch_add(1, Ordering::Relaxed);
                    respond(200, ITEM)
                } else {
                    self.limited_429.fetch_add(1, Ordering::Relaxed);
                    let mut response = respond(429, r#"{"error":"rate_limited"}"#);
                    response
                        .headers_mut()
                        .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
                    response
                };
                if query(request.uri(), "quota") == Some(1) {
                    let left = Duration::from_secs(second + 1) - elapsed;
                    let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    let value = format!("limit={LIMIT}, remaining={remaining}, reset={reset}");
                    response.headers_mut().insert(
                        "ratelimit",
                        hyper::header::HeaderValue::from_str(&value).expect("ASCII"),
                    );
                }
                Ok(response)
            }
            _ => Ok(respond(404, r#"{"error":"not_found"}"#)),
        }
    }
}

/// The server process: prints its port, then serves until stdin closes (the parent exited).
fn run_server() {
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("server runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let state = Arc::new(ServerState {
            started: Some(Instant::now()),
            tokens: Mutex::new(vec![Instant::now() + Duration::from_secs(365 * 86_400)]),
            ..ServerState::default()
        });
        tokio::spawn(async {
            // Exit with the parent: stdin reaches EOF when it goes.
            let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
                .await;
            std::process::exit(0);
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request| state.clone().handle(request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Starts the server process and returns it with its port.
fn spawn_server() -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, "server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().expect("server prints its port"))
}

// ===== clients =====

#[derive(Clone)]
struct Env {
    port: u16,
    raw: reqwest::Client,
    bearer: reqwest::header::HeaderValue,
}

impl Env {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An `authed` client whose token endpoint answers after `delay_ms` with tokens living
    /// `lifetime_s`.
    fn authed(&self, delay_ms: u64, lifetime_s: u64) -> authed::Client {
        authed::Client::builder()
            .base_url(self.base())
            .token_url(format!("{}/token/{delay_ms}/{lifetime_s}", self.base()))
            .refresh_token("bench-refresh")
            .build()
            .expect("client builds")
    }

    async fn stats(&self) -> Value {
        self.raw
            .get(format!("{}/stats", self.base()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The raw contender's client: the settings `authed` gives its own client, so that a fair
/// baseline also times out.
fn raw_client() -> reqwest::Client {
    raw_builder().build().unwrap()
}

/// The raw contender's client settings, before it is built (the full floor adds to them).
fn raw_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
}

/// The raw contender's header, built once as a user builds it from a token read at run time
/// (not `from_static`, which only a token known at compile time allows): its clones then
/// share one buffer and count references to it, as `authed`'s cached header's do.
fn bearer() -> reqwest::header::HeaderValue {
    let token = String::from("t0");
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    value.set_sensitive(true);
    value
}

/// One request the way a careful `reqwest` user writes it: a bearer header built once.
async fn raw_get(raw: &reqwest::Client, url: &str, bearer: &reqwest::header::HeaderValue) -> Item {
    raw.get(url)
        .header(reqwest::header::AUTHORIZATION, bearer.clone())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The feature floor (`--floor`): raw `reqwest` plus, written by hand in one `async fn` and
/// with none of the SDK's structure, the work `authed` does on a request's success path: the
/// cached token read without a lock and checked against its refresh time, the turn (the
/// in-flight count and the success count on one cache line both workers write), a span, the
/// scan of the answer for rate-limit headers, the status check and the body's bound. Against
/// raw `reqwest` it shows what those features cost at their cheapest; against `authed`, what
/// the SDK's structure costs beyond them (docs/benchmarks.md).
///
/// The full floor (`--full-floor`) also does, by hand, what `authed` does around the request
/// on every request: its client configured as `authed`'s (a `User-Agent`, no redirects), the
/// path joined to the base URL and checked to stay on its origin, and that URL kept for a
/// replay while `reqwest` sends a copy of it.
struct Floor {
    raw: reqwest::Client,
    url: Arc<str>,
    /// The full floor's base URL (ending in `/`): the path is joined to it.
    base: Option<url::Url>,
    token: arc_swap::ArcSwapOption<FloorToken>,
    hot: FloorHot,
}

struct FloorToken {
    header: reqwest::header::HeaderValue,
    refresh_at: Instant,
}

#[repr(align(64))]
#[derive(Default)]
struct FloorHot {
    calm: std::sync::atomic::AtomicBool,
    in_flight: std::sync::atomic::AtomicU32,
    epoch: AtomicU64,
    ok: [AtomicU64; 2],
}

impl Floor {
    /// `base`: the base URL of the full floor, whose client is then configured like `authed`'s.
    fn new(url: Arc<str>, header: reqwest::header::HeaderValue, base: Option<&str>) -> Self {
        let base = base.map(|base| url::Url::parse(&format!("{base}/")).unwrap());
        let raw = match base {
            None => raw_client(),
            Some(_) => raw_builder()
                .user_agent(reqwest::header::HeaderValue::from_static(concat!(
                    "authed/",
                    env!("CARGO_PKG_VERSION")
                )))
                .pool_idle_timeout(Duration::from_secs(90))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let token = FloorToken {
            header,
            refresh_at: Instant::now() + Duration::from_secs(3600),
        };
        let hot = FloorHot::default();
        hot.calm.store(true, Ordering::Relaxed);
        Self {
            raw,
            url,
            base,
            token: arc_swap::ArcSwapOption::from_pointee(token),
            hot,
        }
    }
}

async fn floor_get(floor: &Floor) -> Item {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "request",
        method = "GET",
        path = "/item",
        status = tracing::field::Empty
    );
    async {
        let now = Instant::now();
        let header = {
            let token = floor.token.load();
            let token = token
                .as_ref()
                .filter(|t| now < t.refresh_at)
                .expect("a fresh token");
            token.header.clone()
        };
        let hot = &floor.hot;
        assert!(
            hot.calm.load(Ordering::Acquire),
            "nothing holds requests back"
        );
        hot.in_flight.fetch_add(1, Ordering::Relaxed);
        let epoch = hot.epoch.load(Ordering::Relaxed);
        let response = match &floor.base {
            None => {
                floor
                    .raw
                    .get(&*floor.url)
                    .header(reqwest::header::AUTHORIZATION, header)
                    .send()
                    .await
            }
            Some(base) => {
                let kept = base.join("item").unwrap();
                assert!(
                    kept.scheme() == base.scheme()
                        && kept.host() == base.host()
                        && kept.port_or_known_default() == base.port_or_known_default(),
                    "the path stays on the base URL's origin"
                );
                let mut request = reqwest::Request::new(reqwest::Method::GET, kept.clone());
                request
                    .headers_mut()
                    .insert(reqwest::header::AUTHORIZATION, header);
                let response = floor.raw.execute(request).await;
                // Kept until the answer, as for a replay.
                std::hint::black_box(&kept);
                response
            }
        };
        hot.in_flight.fetch_sub(1, Ordering::Relaxed);
        let response = response.unwrap();
        assert!(response.status().is_success());
        let quota = response.headers().keys().any(|name| {
            let name = name.as_str().as_bytes();
            name.starts_with(b"ratelimit") || name.starts_with(b"x-ratelimit")
        });
        assert!(!quota, "the server sends no quota");
        hot.ok[(epoch % 2) as usize].fetch_add(1, Ordering::Relaxed);
        assert!(response.content_length().is_none_or(|n| n <= 10 << 20));
        let bytes = response.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
    .instrument(span)
    .await
}

/// The overhead scenario's third contender: the A/A control (`--control`) or the feature
/// floor (`--floor` or `--full-floor`, which win if both are given).
enum Third {
    Control(reqwest::Client),
    Floor(Arc<Floor>),
}

impl Third {
    /// Its name in `sdk.json` and in the windows file.
    fn name(&self) -> &'static str {
        match self {
            Third::Control(_) => "control",
            Third::Floor(_) => "floor",
        }
    }

    /// Its row in the table.
    fn what(&self) -> &'static str {
        match self {
            Third::Control(_) => "A/A control, a second raw client",
            Third::Floor(floor) if floor.base.is_some() => {
                "full floor (the feature floor + `authed`'s client, join and kept URL)"
            }
            Third::Floor(_) => "feature floor (raw `reqwest` + the features, by hand)",
        }
    }
}

/// Runs `total` calls of `op` with `in_flight` tasks pulling from one counter.
async fn drive<F, Fut>(in_flight: usize, total: u64, op: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    op().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

// ===== scenarios =====

struct Plan {
    quick: bool,
    rounds: usize,
    requests: u64,
    /// `--control`: the overhead scenario also runs a second raw `reqwest` client in every
    /// round (an A/A control), to show what difference the machine resolves that day.
    control: bool,
    /// `--floor` (`Some(false)`): the third contender of every round is the feature floor
    /// ([`Floor`]) instead; `--full-floor` (`Some(true)`): the full floor.
    floor: Option<bool>,
    /// `--levels 16,64,256`: the overhead scenario at these numbers in flight only.
    levels: Vec<usize>,
}

struct Report {
    json: serde_json::Map<String, Value>,
    table: Vec<[String; 4]>,
}

impl Report {
    fn row(&mut self, what: impl Into<String>, authed: String, baseline: String, ratio: String) {
        self.table.push([what.into(), authed, baseline, ratio]);
    }
}

async fn overhead(env: &Env, plan: &Plan, report: &mut Report) {
    let client = env.authed(0, 3600);
    client.access_token().await.unwrap();
    let url: Arc<str> = format!("{}/item", env.base()).into();

    let authed_future = client.get("/item").send::<Item>();
    let authed_size = std::mem::size_of_val(&authed_future);
    drop(authed_future);
    let raw_future = raw_get(&env.raw, &url, &env.bearer);
    let raw_size = std::mem::size_of_val(&raw_future);
    drop(raw_future);
    report.row(
        "size of one request's future (send + decode)",
        format!("{authed_size} B"),
        format!("{raw_size} B"),
        format!("{:.2}×", authed_size as f64 / raw_size as f64),
    );

    // `AUTHED_BENCH_WINDOWS=FILE`: when each contender ran (CLOCK_MONOTONIC ns), to split a
    // `perf record -k CLOCK_MONOTONIC` profile of the run by contender (docs/benchmarks.md).
    let mut windows = std::env::var_os("AUTHED_BENCH_WINDOWS")
        .map(|path| std::fs::File::create(path).expect("the windows file can be written"));
    // The third contender, if any; each is built like `env.raw`, with a pool of its own.
    let third = match (plan.floor, plan.control) {
        (Some(full), _) => Some(Third::Floor(Arc::new(Floor::new(
            url.clone(),
            env.bearer.clone(),
            full.then(|| env.base()).as_deref(),
        )))),
        (None, true) => Some(Third::Control(raw_client())),
        (None, false) => None,
    };
    let third_name = third.as_ref().map_or("control", Third::name);
    let mut levels = Vec::new();
    for &in_flight in &plan.levels {
        let authed_run = |n: u64| {
            let client = client.clone();
            drive(in_flight, n, move || {
                let client = client.clone();
                async move {
                    let _item: Item = client.get("/item").send().await.unwrap();
                }
            })
        };
        let raw_run = |raw: &reqwest::Client, n: u64| {
            let (raw, bearer, url) = (raw.clone(), env.bearer.clone(), url.clone());
            drive(in_flight, n, move || {
                let (raw, bearer, url) = (raw.clone(), bearer.clone(), url.clone());
                async move {
                    raw_get(&raw, &url, &bearer).await;
                }
            })
        };
        // Warm: open the connections every pool needs at this concurrency.
        let warm = (in_flight * 4) as u64;
        raw_run(&env.raw, warm).await;
        authed_run(warm).await;
        let third_run = |third: &Third, n: u64| {
            let run: std::pin::Pin<Box<dyn Future<Output = ()>>> = match third {
                Third::Control(control) => Box::pin(raw_run(control, n)),
                Third::Floor(floor) => {
                    let floor = floor.clone();
                    Box::pin(drive(in_flight, n, move || {
                        let floor = floor.clone();
                        async move {
                            floor_get(&floor).await;
                        }
                    }))
                }
            };
            run
        };
        if let Some(third) = &third {
            third_run(third, warm).await;
        }

        let (mut ratio, mut cpu_added, mut allocs, mut raw_allocs, mut cpu, mut raw_cpu) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut control_ratio, mut control_cpu_added) = (vec![], vec![]);
        let (mut kernel_added, mut switches_added, mut preempted_added) = (vec![], vec![], vec![]);
        // Every round as measured, for a look at what a median hides (order, drift).
        let mut each = vec![];
        for round in 0..plan.rounds {
            let n = plan.requests;
            // Every order in turn, so that no contender keeps a place (0 raw, 1 authed,
            // 2 the control).
            let order = match &third {
                None => [[0, 1].as_slice(), &[1, 0]][round % 2],
                Some(_) => [
                    [0, 1, 2],
                    [1, 2, 0],
                    [2, 0, 1],
                    [0, 2, 1],
                    [2, 1, 0],
                    [1, 0, 2],
                ][round % 6]
                    .as_slice(),
            };
            let mut samples: [Option<Sample>; 3] = [None, None, None];
            for &who in order {
                let from = monotonic_ns();
                samples[who] = Some(match (who, &third) {
                    (0, _) => measure(n, raw_run(&env.raw, n)).await,
                    (1, _) => measure(n, authed_run(n)).await,
                    (_, Some(third)) => measure(n, third_run(third, n)).await,
                    (_, None) => unreachable!("no third contender without --control or --floor"),
                });
                if let Some(windows) = &mut windows {
                    let name = ["raw", "authed", third_name][who];
                    writeln!(windows, "{name} {in_flight} {n} {from} {}", monotonic_ns()).unwrap();
                }
            }
            let [Some(r), Some(a), c] = samples else {
                unreachable!("raw and authed run every round")
            };
            let mut round = json!({
                "authed_first": order.iter().position(|&who| who == 1)
                    < order.iter().position(|&who| who == 0),
                "per_sec": { "authed": a.per_sec(), "raw": r.per_sec() },
                "cpu_us": { "authed": a.cpu_ns() / 1000.0, "raw": r.cpu_ns() / 1000.0 },
                "kernel_us": { "authed": a.kernel_ns() / 1000.0, "raw": r.kernel_ns() / 1000.0 },
                "switches": { "authed": a.switches(), "raw": r.switches() },
                "preempted": { "authed": a.preempted(), "raw": r.preempted() },
            });
            if let Some(c) = c {
                round["order"] = json!(
                    order
                        .iter()
                        .map(|&who| ["raw", "authed", third_name][who])
                        .collect::<Vec<_>>()
                );
                round["per_sec"][third_name] = json!(c.per_sec());
                round["cpu_us"][third_name] = json!(c.cpu_ns() / 1000.0);
                control_ratio.push(c.per_sec() / r.per_sec());
                control_cpu_added.push((c.cpu_ns() - r.cpu_ns()) / 1000.0);
            }
            each.push(round);
            ratio.push(a.per_sec() / r.per_sec());
            cpu_added.push((a.cpu_ns() - r.cpu_ns()) / 1000.0);
            kernel_added.push((a.kernel_ns() - r.kernel_ns()) / 1000.0);
            switches_added.push(a.switches() - r.switches());
            preempted_added.push(a.preempted() - r.preempted());
            cpu.push(a.cpu_ns() / 1000.0);
            raw_cpu.push(r.cpu_ns() / 1000.0);
            allocs.push(a.allocs());
            raw_allocs.push(r.allocs());
        }
        let (ratio, cpu_added) = (Spread::of(&ratio), Spread::of(&cpu_added));
        let (cpu, raw_cpu) = (Spread::of(&cpu), Spread::of(&raw_cpu));
        let (allocs, raw_allocs) = (Spread::of(&allocs), Spread::of(&raw_allocs));
        report.row(
            format!("GET + JSON, {in_flight} in flight: throughput"),
            String::new(),
            String::new(),
            format!("{}×", ratio.show_ci(3)),
        );
        report.row(
            format!("  CPU per request (µs), added {} µs", cpu_added.show_ci(2)),
            cpu.show(2),
            raw_cpu.show(2),
            format!("{:+.2} µs", cpu_added.median),
        );
        let (kernel_added, switches_added) =
            (Spread::of(&kernel_added), Spread::of(&switches_added));
        let preempted_added = Spread::of(&preempted_added);
        report.row(
            "  of which in the kernel (µs); context switches, voluntary and not",
            String::new(),
            String::new(),
            format!(
                "{:+.2} µs; {:+.3}, {:+.3}",
                kernel_added.median, switches_added.median, preempted_added.median
            ),
        );
        report.row(
            "  allocations per request",
            format!("{:.1}", allocs.median),
            format!("{:.1}", raw_allocs.median),
            format!("{:+.1}", allocs.median - raw_allocs.median),
        );
        let mut level = json!({
            "in_flight": in_flight,
            "requests_per_round": plan.requests,
            "throughput_ratio": ratio.json(),
            "cpu_us_per_request": { "authed": cpu.json(), "raw": raw_cpu.json() },
            "cpu_us_added": cpu_added.json(),
            "kernel_us_added": kernel_added.json(),
            "voluntary_switches_added": switches_added.json(),
            "involuntary_switches_added": preempted_added.json(),
            "allocations_per_request": { "authed": allocs.json(), "raw": raw_allocs.json() },
            "rounds": each,
        });
        if let Some(third) = &third {
            let (ratio, cpu_added) = (Spread::of(&control_ratio), Spread::of(&control_cpu_added));
            report.row(
                format!("  {}: throughput", third.what()),
                String::new(),
                String::new(),
                format!("{}×", ratio.show_ci(3)),
            );
            report.row(
                format!("  {third_name}: CPU added {} µs", cpu_added.show_ci(2)),
                String::new(),
                String::new(),
                format!("{:+.2} µs", cpu_added.median),
            );
            level[third_name] =
                json!({ "throughput_ratio": ratio.json(), "cpu_us_added": cpu_added.json() });
        }
        levels.push(level);
    }
    report.json.insert(
        "overhead".into(),
        json!({
            "rounds": plan.rounds,
            "future_bytes": { "authed": authed_size, "raw": raw_size },
            "levels": levels,
        }),
    );
}

async fn token_cache(env: &Env, plan: &Plan, report: &mut Report) {
    let client = env.authed(0, 3600);
    client.access_token().await.unwrap();
    let n: u64 = if plan.quick { 100_000 } else { 1_000_000 };
    let one = measure(n, async {
        for _ in 0..n {
            std::hint::black_box(client.access_token().await.unwrap());
        }
    })
    .await;
    let tasks = 8;
    let contended = measure(n, async {
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..n / tasks {
                        std::hint::black_box(client.access_token().await.unwrap());
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    })
    .await;
    let ns = |s: &Sample| s.wall.as_nanos() as f64 / s.ops as f64;
    report.row(
        "cached token, 1 task / 8 tasks (ns per call)",
        format!("{:.0} / {:.0}", ns(&one), ns(&contended)),
        String::new(),
        String::new(),
    );
    report.json.insert(
        "token_cache".into(),
        json!({ "ns_per_call_1_task": ns(&one), "ns_per_call_8_tasks": ns(&contended),
                "allocations_per_call": one.allocs() }),
    );
}

async fn refresh_storm(env: &Env, report: &mut Report) {
    let lifetime = 2;
    let client = env.authed(50, lifetime);
    client.access_token().await.unwrap();
    // No request meanwhile: nothing refreshes early, so all 1,000 arrive at expiry.
    tokio::time::sleep(Duration::from_secs(lifetime) + Duration::from_millis(100)).await;
    let before = env.stats().await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/item").send::<Item>().await.is_ok() })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        ok += u64::from(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    let after = env.stats().await;
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    let (token_requests, unauthorized) = (delta("token_requests"), delta("unauthorized"));
    report.row(
        "refresh storm: 1,000 at expiry (token requests, 401s, ok)",
        format!("{token_requests}, {unauthorized}, {ok}"),
        "must be 1, 0, 1000".into(),
        format!("{:.0} ms", elapsed.as_secs_f64() * 1e3),
    );
    report.json.insert(
        "refresh_storm".into(),
        json!({ "requests": 1000, "succeeded": ok, "token_requests": token_requests,
                "unauthorized": unauthorized, "elapsed_ms": elapsed.as_secs_f64() * 1e3 }),
    );
}

async fn early_refresh(env: &Env, plan: &Plan, report: &mut Report) {
    let client = env.authed(200, 2);
    client.access_token().await.unwrap();
    let before = env.stats().await;
    let duration = Duration::from_secs(if plan.quick { 3 } else { 8 });
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let until = Instant::now() + duration;
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, latencies) = (client.clone(), latencies.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < until {
                    let started = Instant::now();
                    let ok = client.get("/item").send::<Item>().await.is_ok();
                    mine.push((started.elapsed(), ok));
                    // A steady load rather than a flood: the refresh is what is observed.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let after = env.stats().await;
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    let latencies = latencies.lock().unwrap();
    // The token endpoint takes 200 ms: a request that waited for it takes over 100 ms.
    let waited = latencies
        .iter()
        .filter(|(l, _)| *l > Duration::from_millis(100))
        .count();
    let failed = latencies.iter().filter(|(_, ok)| !ok).count();
    let max = latencies.iter().map(|(l, _)| *l).max().unwrap_or_default();
    report.row(
        "early refresh: 2 s tokens, 200 ms endpoint (waited >100 ms, failed)",
        format!("{waited} of {}, {failed}", latencies.len()),
        "must be 0, 0".into(),
        format!(
            "{} refreshes, max {:.0} ms",
            delta("token_requests"),
            max.as_secs_f64() * 1e3
        ),
    );
    report.json.insert(
        "early_refresh".into(),
        json!({ "requests": latencies.len(), "waited_over_100ms": waited, "failed": failed,
                "max_latency_ms": max.as_secs_f64() * 1e3,
                "token_requests": delta("token_requests"), "unauthorized": delta("unauthorized"),
                "seconds": duration.as_secs() }),
    );
}

/// The hand-written loop `authed`'s pagination is measured against.
async fn hand_loop(env: &Env, path: &str, consumer: Option<Duration>) -> u64 {
    let mut count = 0;
    let mut skip = 0;
    loop {
        let url = format!("{}{path}&skip={skip}&take=100", env.base());
        let page: Vec<Item> = env
            .raw
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, env.bearer.clone())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in &page {
            std::hint::black_box(item);
            count += 1;
        }
        if let Some(pause) = consumer {
            tokio::time::sleep(pause).await;
        }
        if page.len() < 100 {
            return count;
        }
        skip += 100;
    }
}

async fn authed_items(
    client: &authed::Client,
    path: &str,
    prefetch: usize,
    consumer: Option<Duration>,
) -> u64 {
    let items = client
        .paginate::<Item>(
            path,
            authed::Pagination::offset("skip", "take").page_size(100),
        )
        .prefetch(prefetch)
        .stream();
    // A plain loop, the shape of the hand loop's: `try_fold` with an `async` block per item
    // would add a future per item that the hand loop does not have.
    let mut items = std::pin::pin!(items);
    let mut count = 0;
    while let Some(item) = items.try_next().await.unwrap() {
        std::hint::black_box(&item);
        count += 1;
        if let Some(pause) = consumer.filter(|_| count % 100 == 0) {
            tokio::time::sleep(pause).await;
        }
    }
    count
}

async fn pagination(env: &Env, plan: &Plan, report: &mut Report) {
    let client = env.authed(0, 3600);
    client.access_token().await.unwrap();
    let total: u64 = if plan.quick { 20_000 } else { 100_000 };
    let path = format!("/items?total={total}");
    let (mut time, mut cpu, mut allocs) = (vec![], vec![], vec![]);
    let (mut a_cpu, mut r_cpu, mut a_allocs, mut r_allocs) = (vec![], vec![], vec![], vec![]);
    for round in 0..plan.rounds.max(3) {
        let authed_run =
            || async { assert_eq!(authed_items(&client, &path, 0, None).await, total) };
        let raw_run = || async { assert_eq!(hand_loop(env, &path, None).await, total) };
        let (a, r) = if round % 2 == 0 {
            let r = measure(total, raw_run()).await;
            (measure(total, authed_run()).await, r)
        } else {
            let a = measure(total, authed_run()).await;
            (a, measure(total, raw_run()).await)
        };
        time.push(r.wall.as_secs_f64() / a.wall.as_secs_f64());
        cpu.push(r.cpu_ns() / a.cpu_ns());
        allocs.push(a.allocs() / r.allocs());
        a_cpu.push(a.cpu_ns());
        r_cpu.push(r.cpu_ns());
        a_allocs.push(a.allocs());
        r_allocs.push(r.allocs());
    }
    let (time, cpu, allocs) = (Spread::of(&time), Spread::of(&cpu), Spread::of(&allocs));
    let (a_cpu, r_cpu) = (Spread::of(&a_cpu), Spread::of(&r_cpu));
    let (a_allocs, r_allocs) = (Spread::of(&a_allocs), Spread::of(&r_allocs));
    report.row(
        format!(
            "pagination, {total} items / 100: speed (wall; CPU {}×)",
            cpu.show(2)
        ),
        format!("{:.0} ns CPU/item", a_cpu.median),
        format!("{:.0} ns CPU/item", r_cpu.median),
        format!("{}×", time.show(2)),
    );
    report.row(
        "  allocations per item",
        format!("{:.2}", a_allocs.median),
        format!("{:.2}", r_allocs.median),
        format!("{}×", allocs.show(2)),
    );

    // Prefetch: the server takes 2 ms per page and so does the consumer.
    let pages = if plan.quick { 25 } else { 100 };
    let slow = format!("/items?total={}&delay_ms=2", pages * 100);
    let pause = Some(Duration::from_millis(2));
    let mut speedup = vec![];
    for _ in 0..plan.rounds.min(3) {
        let started = Instant::now();
        authed_items(&client, &slow, 0, pause).await;
        let sequential = started.elapsed();
        let started = Instant::now();
        authed_items(&client, &slow, 1, pause).await;
        speedup.push(sequential.as_secs_f64() / started.elapsed().as_secs_f64());
    }
    let speedup = Spread::of(&speedup);
    report.row(
        format!("  prefetch 1, {pages} pages, 2 ms server + 2 ms consumer"),
        String::new(),
        "prefetch 0".into(),
        format!("{}× faster", speedup.show(2)),
    );
    report.json.insert(
        "pagination".into(),
        json!({
            "items": total, "page_size": 100,
            "speed_ratio_wall": time.json(), "speed_ratio_cpu": cpu.json(),
            "cpu_ns_per_item": { "authed": a_cpu.json(), "hand_loop": r_cpu.json() },
            "allocations_per_item": { "authed": a_allocs.json(), "hand_loop": r_allocs.json(),
                                      "ratio": allocs.json() },
            "prefetch_speedup": speedup.json(), "prefetch_pages": pages,
        }),
    );
}

/// The memory child: streams `AUTHED_BENCH_ITEMS` items and prints its peak RSS and heap.
fn run_memory_child() {
    let port: u16 = std::env::var(PORT).unwrap().parse().unwrap();
    let total: u64 = std::env::var("AUTHED_BENCH_ITEMS")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let env = Env {
        port,
        raw: reqwest::Client::new(),
        bearer: bearer(),
    };
    let (count, heap) = runtime.block_on(async {
        let client = env.authed(0, 3600);
        client.access_token().await.unwrap();
        let baseline = LIVE.load(Ordering::Relaxed);
        PEAK.store(baseline, Ordering::Relaxed);
        let count = authed_items(&client, &format!("/items?total={total}"), 2, None).await;
        (count, PEAK.load(Ordering::Relaxed) - baseline)
    });
    println!(
        "{}",
        json!({ "items": count, "max_rss_kib": peak_rss_kib(), "peak_heap": heap })
    );
}

fn memory(env: &Env, plan: &Plan, report: &mut Report) {
    let child = |items: u64| -> Value {
        let out = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "memory")
            .env(PORT, env.port.to_string())
            .env("AUTHED_BENCH_ITEMS", items.to_string())
            .output()
            .expect("memory child runs");
        assert!(out.status.success(), "memory child failed");
        serde_json::from_slice(&out.stdout).expect("memory child prints JSON")
    };
    let (small, large) = if plan.quick {
        (10_000, 100_000)
    } else {
        (100_000, 1_000_000)
    };
    let (s, l) = (child(small), child(large));
    assert_eq!(l["items"], large);
    let rss = |v: &Value| v["max_rss_kib"].as_f64().unwrap();
    let heap = |v: &Value| v["peak_heap"].as_f64().unwrap() / 1024.0;
    report.row(
        format!("memory: {large} vs {small} items, prefetch 2 (peak RSS)"),
        format!("{:.0} KiB", rss(&l)),
        format!("{:.0} KiB", rss(&s)),
        format!("{:.2}×", rss(&l) / rss(&s)),
    );
    report.row(
        "  peak heap above baseline",
        format!("{:.0} KiB", heap(&l)),
        format!("{:.0} KiB", heap(&s)),
        format!("{:.2}×", heap(&l) / heap(&s)),
    );
    report.json.insert(
        "memory".into(),
        json!({ "small": { "items": small, "result": s }, "large": { "items": large, "result": l },
                "rss_ratio": rss(&l) / rss(&s), "heap_ratio": heap(&l) / heap(&s) }),
    );
}

/// 64 workers against `/limited` (200 r/s, then `429` + `Retry-After: 1`), with the quota in
/// a `RateLimit` header on every answer (`quota`) or with `Retry-After` alone.
async fn rate_limit(env: &Env, plan: &Plan, report: &mut Report, quota: bool) {
    let client = env.authed(0, 3600);
    client.access_token().await.unwrap();
    let route = if quota {
        "/limited?quota=1"
    } else {
        "/limited"
    };
    let before = env.stats().await;
    let duration = Duration::from_secs(if plan.quick { 3 } else { 10 });
    let until = Instant::now() + duration;
    // Successes, and the errors that reached callers by why their retries stopped.
    let outcomes = Arc::new(Mutex::new((0_u64, HashMap::<String, u64>::new())));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (client, outcomes) = (client.clone(), outcomes.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0, HashMap::<String, u64>::new());
                while Instant::now() < until {
                    match client.get(route).send::<Item>().await {
                        Ok(_) => ok += 1,
                        Err(e) => {
                            let why = e.retries().map_or_else(
                                || format!("{:?} after 1 attempt", e.kind()),
                                |r| format!("{:?}: {}", e.kind(), r.stopped),
                            );
                            *failed.entry(why).or_default() += 1;
                        }
                    }
                }
                let mut outcomes = outcomes.lock().unwrap();
                outcomes.0 += ok;
                for (why, n) in failed {
                    *outcomes.1.entry(why).or_default() += n;
                }
            })
        })
        .collect();
    let started = Instant::now();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let after = env.stats().await;
    let delta = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    let (ok, errors) = &*outcomes.lock().unwrap();
    let failed: u64 = errors.values().sum();
    let (served, refused) = (delta("limited_ok"), delta("limited_429"));
    let goodput = *ok as f64 / elapsed.as_secs_f64();
    let share = refused as f64 / (served + refused).max(1) as f64;
    let limit = f64::from(LIMIT);
    let variant = if quota {
        "RateLimit header + Retry-After"
    } else {
        "Retry-After only"
    };
    report.row(
        format!("rate limit {LIMIT} r/s, 64 workers, {variant}: goodput, errors, 429 share"),
        format!("{goodput:.0} r/s, {failed}, {:.1} %", share * 100.0),
        format!("limit {LIMIT} r/s"),
        format!("{:.3}× of limit", goodput / limit),
    );
    if !errors.is_empty() {
        eprintln!("rate limit, {variant}: errors reaching callers: {errors:?}");
    }
    report.json.insert(
        format!("rate_limit{}", if quota { "_quota" } else { "" }),
        json!({ "seconds": elapsed.as_secs_f64(), "workers": 64, "succeeded": ok,
                "errors_to_callers": failed, "errors_by_reason": errors,
                "goodput_per_s": goodput, "goodput_ratio": goodput / limit,
                "server_ok": served, "server_429": refused, "share_429": share }),
    );
}

/// `--profile authed|raw|floor|full-floor [n]`: `n` (default 20,000) sequential `GET`s on a
/// current-thread runtime and nothing else; `--profile pages|hand [n]`: a listing of `n` items in pages of 100, through `authed` or
/// the hand-written loop, to run under a profiler (`valgrind --tool=callgrind`, which follows no child, so the
/// server process is not profiled).
fn profile(contender: &str, n: u64, in_flight: Option<usize>) {
    let (mut server, port) = spawn_server();
    // With `--in-flight K` (`authed` and `raw` only): K at a time on the multi-threaded
    // runtime the overhead scenario uses, for what only concurrency shows (wake-ups, locks).
    let runtime = match in_flight {
        Some(_) => tokio::runtime::Builder::new_multi_thread(),
        None => tokio::runtime::Builder::new_current_thread(),
    }
    .enable_all()
    .build()
    .unwrap();
    let env = Env {
        port,
        raw: raw_client(),
        bearer: bearer(),
    };
    runtime.block_on(async {
        let client = env.authed(0, 3600);
        let url = format!("{}/item", env.base());
        client.access_token().await.unwrap();
        let items = format!("/items?total={n}");
        let full = (contender == "full-floor").then(|| env.base());
        let floor = || Floor::new(url.as_str().into(), env.bearer.clone(), full.as_deref());
        let (user, system) = user_and_system_time();
        let sample = match (contender, in_flight) {
            ("raw", Some(k)) => {
                let (raw, bearer, url) = (env.raw.clone(), env.bearer.clone(), Arc::<str>::from(url.as_str()));
                measure(n, drive(k, n, move || {
                    let (raw, bearer, url) = (raw.clone(), bearer.clone(), url.clone());
                    async move {
                        raw_get(&raw, &url, &bearer).await;
                    }
                }))
                .await
            }
            ("floor" | "full-floor", Some(k)) => {
                let floor = Arc::new(floor());
                measure(n, drive(k, n, move || {
                    let floor = floor.clone();
                    async move {
                        floor_get(&floor).await;
                    }
                }))
                .await
            }
            (_, Some(k)) => {
                let client = client.clone();
                measure(n, drive(k, n, move || {
                    let client = client.clone();
                    async move {
                        let _item: Item = client.get("/item").send().await.unwrap();
                    }
                }))
                .await
            }
            ("pages", None) => measure(n, async { assert_eq!(authed_items(&client, &items, 0, None).await, n) }).await,
            ("hand", None) => measure(n, async { assert_eq!(hand_loop(&env, &items, None).await, n) }).await,
            ("raw", None) => {
                measure(n, async {
                    for _ in 0..n {
                        raw_get(&env.raw, &url, &env.bearer).await;
                    }
                })
                .await
            }
            ("floor" | "full-floor", None) => {
                let floor = floor();
                measure(n, async {
                    for _ in 0..n {
                        floor_get(&floor).await;
                    }
                })
                .await
            }
            _ => {
                measure(n, async {
                    for _ in 0..n {
                        let _item: Item = client.get("/item").send().await.unwrap();
                    }
                })
                .await
            }
        };
        let (user_after, system_after) = user_and_system_time();
        let per = |d: Duration| d.as_nanos() as f64 / n as f64 / 1000.0;
        println!(
            "{contender}: {n} requests (items for `pages` and `hand`), {:.1} µs CPU ({:.1} user, {:.1} kernel) and {:.1} allocations per request (item), {:.0} per second",
            sample.cpu_ns() / 1000.0,
            per(user_after - user),
            per(system_after - system),
            sample.allocs(),
            sample.per_sec(),
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}

// ===== main =====

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => return run_server(),
        Ok("memory") => return run_memory_child(),
        _ => {}
    }
    raise_fd_limit();
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--profile") {
        let n = args
            .get(at + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(20_000);
        let in_flight = args
            .iter()
            .position(|a| a == "--in-flight")
            .and_then(|at| args.get(at + 1)?.parse().ok());
        return profile(
            args.get(at + 1).map_or("authed", String::as_str),
            n,
            in_flight,
        );
    }
    let quick = args.iter().any(|a| a == "--quick");
    // `--only rate`: the rate-limit scenarios alone (both variants); `--only overhead`: the
    // per-request overhead against raw `reqwest` alone; `--only tokens`, `--only pages`: the
    // cached token read, the pagination scenario alone.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|at| args.get(at + 1))
        .map(String::as_str);
    let all = only.is_none();
    // `--rounds N --requests M`: rounds of the interleaved scenarios (overhead, pagination)
    // and requests per overhead round; more rounds give tighter medians.
    let number = |flag: &str| {
        let at = args.iter().position(|a| a == flag)?;
        args.get(at + 1)?.parse().ok()
    };
    let plan = Plan {
        quick,
        rounds: number("--rounds").unwrap_or(if quick { 2 } else { 7 }) as usize,
        requests: number("--requests").unwrap_or(if quick { 1_000 } else { 10_000 }),
        control: args.iter().any(|a| a == "--control"),
        floor: args.iter().find_map(|a| match a.as_str() {
            "--floor" => Some(false),
            "--full-floor" => Some(true),
            _ => None,
        }),
        levels: args
            .iter()
            .position(|a| a == "--levels")
            .and_then(|at| args.get(at + 1))
            .map_or(vec![1, 16, 64, 256], |levels| {
                levels
                    .split(',')
                    .map(|n| n.parse().expect("--levels 16,64,256"))
                    .collect()
            }),
    };
    let (mut server, port) = spawn_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let env = Env {
        port,
        raw: raw_client(),
        bearer: bearer(),
    };
    let mut report = Report {
        json: serde_json::Map::new(),
        table: vec![],
    };
    let started = Instant::now();
    if all || only == Some("overhead") {
        runtime.block_on(overhead(&env, &plan, &mut report));
    }
    if only == Some("tokens") {
        runtime.block_on(token_cache(&env, &plan, &mut report));
    }
    if only == Some("pages") {
        runtime.block_on(pagination(&env, &plan, &mut report));
    }
    if all {
        runtime.block_on(async {
            token_cache(&env, &plan, &mut report).await;
            refresh_storm(&env, &mut report).await;
            early_refresh(&env, &plan, &mut report).await;
            pagination(&env, &plan, &mut report).await;
        });
        memory(&env, &plan, &mut report);
    }
    if all || only == Some("rate") {
        runtime.block_on(async {
            rate_limit(&env, &plan, &mut report, true).await;
            // The next second, so the two variants do not share a window.
            tokio::time::sleep(Duration::from_secs(1)).await;
            rate_limit(&env, &plan, &mut report, false).await;
        });
    }
    let _ = server.kill();
    let _ = server.wait();

    report.json.insert(
        "run".into(),
        json!({ "quick": quick, "rounds": plan.rounds, "seconds": started.elapsed().as_secs_f64(),
                "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()) }),
    );
    print_table(&report.table);
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into())
        .join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    // A partial run does not overwrite the figures of a full one.
    let file = dir.join(only.map_or("sdk.json".into(), |only| format!("sdk-{only}.json")));
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&Value::Object(report.json)).unwrap(),
    )
    .unwrap();
    println!(
        "\n{} run in {:.1} s; results in {}",
        if quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        file.display()
    );
}

fn print_table(rows: &[[String; 4]]) {
    let header = [
        "what".to_owned(),
        "authed".to_owned(),
        "raw reqwest / hand loop".to_owned(),
        "ratio (median, min–max)".to_owned(),
    ];
    let mut widths = [0; 4];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        println!("| {} |", cells.join(" | "));
        if std::ptr::eq(row, &header) {
            let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            println!("|-{}-|", rules.join("-|-"));
        }
    }
}
