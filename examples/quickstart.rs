//! Quickstart: what `authed` does for you, in plain lines.
//!
//! It signs in, streams the widgets page by page, and keeps going while the short-lived access
//! token expires and is renewed, and while the API says `429 Too Many Requests`.
//!
//! ```text
//! cargo run --example quickstart --features mock
//! ```
//!
//! Environment variables:
//!
//! - `AUTHED_BASE_URL` unset (the default): starts the embedded mock API (`authed::mock`)
//!   with 2-second access tokens and a rate limit of 4 requests per second, and reads the
//!   mock's counters to show what happened on the wire. No setup, no network.
//! - `AUTHED_BASE_URL` set: runs the same calls against that API with
//!   `Client::from_env()`, which also reads `AUTHED_TOKEN_URL`, `AUTHED_REFRESH_TOKEN` and the
//!   optional `AUTHED_CLIENT_ID`, `AUTHED_CLIENT_SECRET`, `AUTHED_SCOPE`.
//! - `RUST_LOG=authed=debug` shows the client's own log lines (never a token).

use authed::widgets::WidgetsExt;
use std::{
    pin::pin,
    time::{Duration, Instant},
};

use authed::{Client, mock::MockApi};
use futures_util::TryStreamExt;

/// Lifetime of the demo's access tokens.
const TOKEN_TTL: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();

    if std::env::var_os("AUTHED_BASE_URL").is_some() {
        let client = Client::from_env()?;
        println!("Using the API at {}", client.base_url());
        return tour(&client, None).await;
    }

    let api = MockApi::builder()
        .token_ttl(TOKEN_TTL)
        .rate_limit(4, Duration::from_secs(1))
        .widgets(50)
        .start()
        .await;
    println!(
        "AUTHED_BASE_URL is not set: started the embedded mock API at {}",
        api.base_url()
    );
    println!("  (access tokens live {TOKEN_TTL:?}; at most 4 requests per second per token)");
    // By default a client that sees `RateLimit: r=0` waits for the window to reset before
    // sending more, so it never collects a 429 from this API. Turned off here so that the
    // demo shows the other line of defence: a 429 answered by waiting out its Retry-After.
    let client = api.client_builder().wait_for_quota_reset(false).build()?;
    tour(&client, Some(&api)).await
}

/// The same calls against either API; `api` is the mock whose counters explain them.
async fn tour(client: &Client, api: Option<&MockApi>) -> Result<(), Box<dyn std::error::Error>> {
    let mut wire = Wire::new(api);

    println!("\n1. Sign in");
    let me = client.me().await?;
    println!(
        "   GET /v1/me -> {} <{}>, scopes: {}",
        me.name,
        me.email,
        me.scopes.join(" ")
    );
    wire.report("on first use, before the request was sent");

    println!("\n2. Stream every widget, 10 per page");
    let mut pages = pin!(client.widgets().list().page_size(10).pages());
    let (mut count, started) = (0, Instant::now());
    loop {
        let asked = Instant::now();
        let Some(page) = pages.try_next().await? else {
            break;
        };
        let ids = page.items().iter().map(|w| w.id);
        let (first, last) = (ids.clone().min().unwrap_or(0), ids.max().unwrap_or(0));
        count += page.items().len();
        println!(
            "   page: widgets {first}..={last} ({} of {}) in {} ms",
            count,
            page.total().map_or("?".to_owned(), |t| t.to_string()),
            asked.elapsed().as_millis()
        );
        wire.report("in the background, as the previous one entered its refresh window");
    }
    println!(
        "   streamed {count} widgets in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if api.is_some() {
        println!("\n3. Let the {TOKEN_TTL:?} access token expire");
        let idle = TOKEN_TTL + Duration::from_millis(500);
        println!("   idle for {idle:?} ...");
        tokio::time::sleep(idle).await;
        let me = client.me().await?;
        println!("   GET /v1/me -> {}", me.name);
        wire.report("because the previous one had expired, before the request was sent");
    }

    if let Some(limit) = client.rate_limit() {
        println!(
            "\nRate limit reported by the API: {} of {} requests left in this window",
            limit.remaining.map_or("?".to_owned(), |r| r.to_string()),
            limit.limit.map_or("?".to_owned(), |l| l.to_string()),
        );
    }
    if let Some(api) = api {
        let stats = api.stats();
        println!(
            "\nOn the wire: {} requests, {} access tokens issued, {} answers 401, {} answers 429; \
             none of it reached this program as an error.",
            stats.requests, stats.refreshes, stats.unauthorized, stats.rate_limited
        );
    }
    Ok(())
}

/// Prints what the mock API saw since the last report: tokens issued, 401s, 429s.
struct Wire<'a> {
    api: Option<&'a MockApi>,
    tokens: usize,
    unauthorized: usize,
    rate_limited: usize,
}

impl<'a> Wire<'a> {
    fn new(api: Option<&'a MockApi>) -> Self {
        Self {
            api,
            tokens: 0,
            unauthorized: 0,
            rate_limited: 0,
        }
    }

    /// `why` says why a new access token would have been issued at this point.
    fn report(&mut self, why: &str) {
        let Some(api) = self.api else { return };
        let stats = api.stats();
        for n in self.tokens + 1..=stats.refreshes {
            println!("   [mock] token endpoint issued access token #{n} {why}");
        }
        if stats.unauthorized > self.unauthorized {
            let new = stats.unauthorized - self.unauthorized;
            println!("   [mock] answered 401 {new} time(s); the client refreshed and replayed");
        }
        if stats.rate_limited > self.rate_limited {
            let new = stats.rate_limited - self.rate_limited;
            println!(
                "   [mock] answered 429 Too Many Requests {new} time(s) with Retry-After; \
                 the client waited it out and retried"
            );
        }
        (self.tokens, self.unauthorized, self.rate_limited) =
            (stats.refreshes, stats.unauthorized, stats.rate_limited);
    }
}
