//! Quickstart: what `authed` does for you, in plain lines.
//!
//! It signs in, reads one resource, streams a listing page by page, and keeps going while the
//! short-lived access token expires and is renewed, and while the API says
//! `429 Too Many Requests`.
//!
//! ```text
//! cargo run --example quickstart --features mock -- [--get PATH] [--list PATH] [--paging STYLE]
//!     [--items-at POINTER] [--page-size N] [--limit N]
//! ```
//!
//! With no arguments it reads the Widgets API of the embedded mock. Pointed at a real API,
//! say what to read there:
//!
//! - `--get PATH`: one JSON resource to read first (default `/v1/me`), e.g. `/user`.
//! - `--list PATH`: a paginated listing (default `/v1/widgets`), e.g. `/user/repos`.
//! - `--paging STYLE`: how the listing pages (default `offset:skip,take`):
//!   `offset[:SKIP,TAKE]`, `page[:PAGE,PER_PAGE]` (numbered from 1),
//!   `cursor[:PARAM,POINTER[,SIZE]]` (the next cursor at a JSON pointer in the body),
//!   `next[:POINTER[,SIZE]]` (the next page's URL in the body) or `link[:SIZE]` (the
//!   `Link: rel="next"` header). Names left out take the defaults `skip,take`, `page,per_page`,
//!   `cursor,/next_cursor,limit`, `/next,page_size` and `per_page`.
//! - `--items-at POINTER`: where the items are in an envelope body, e.g. `/results`
//!   (default: the body is the array).
//! - `--page-size N`: items per request (default 10).
//! - `--limit N`: stop after N items (default 100), so that a demo never walks a whole dataset.
//!
//! For example, an API that pages like GitHub's:
//! `--get /user --list /user/repos --paging link`; a Django REST Framework API:
//! `--list /api/items/ --paging next --items-at /results`. Given a `--list` path other than
//! `/v1/widgets`, the embedded mock serves 50 items there in the chosen style (its cursor pages
//! keep the items at `/items`, its next-URL pages at `/results`).
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

mod common;

use std::{
    pin::pin,
    time::{Duration, Instant},
};

use authed::{Client, mock::MockApi};
use common::Style;
use futures_util::TryStreamExt;
use serde_json::Value;

/// Lifetime of the demo's access tokens.
const TOKEN_TTL: Duration = Duration::from_secs(2);
/// Items the mock API holds: its widgets, or the items of a listing given with `--list`.
const MOCK_ITEMS: u64 = 50;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();

    if std::env::var_os("AUTHED_BASE_URL").is_some() {
        let client = Client::from_env()?;
        println!("Using the API at {}", client.base_url());
        return tour(&client, &args, None).await;
    }

    let api = MockApi::builder()
        .token_ttl(TOKEN_TTL)
        .rate_limit(4, Duration::from_secs(1))
        .widgets(MOCK_ITEMS)
        .start()
        .await;
    common::serve_listing(&api, &args.list, &args.paging, MOCK_ITEMS).await;
    println!(
        "AUTHED_BASE_URL is not set: started the embedded mock API at {}",
        api.base_url()
    );
    println!("  (access tokens live {TOKEN_TTL:?}; at most 4 requests per second per token)");
    // By default a client that sees `RateLimit: r=0` waits for the window to reset before
    // sending more, so it never collects a 429 from this API. Turned off here so that the
    // demo shows the other line of defence: a 429 answered by waiting out its Retry-After.
    let client = api.client_builder().wait_for_quota_reset(false).build()?;
    tour(&client, &args, Some(&api)).await
}

/// The same calls against either API; `api` is the mock whose counters explain them.
async fn tour(
    client: &Client,
    args: &Args,
    api: Option<&MockApi>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut wire = Wire::new(api);

    println!("\n1. Sign in and read one resource");
    let resource: Value = client.get(&args.get).send().await?;
    println!("   GET {} -> {}", args.get, abbreviated(&resource));
    wire.report("on first use, before the request was sent");

    println!(
        "\n2. Stream {}, {} per page, paging {}, at most {}",
        args.list, args.page_size, args.paging, args.limit
    );
    let pagination = args
        .paging
        .pagination(args.items_at.as_deref(), args.page_size);
    let listing = client
        .paginate::<Value>(&args.list, pagination)
        .limit(args.limit);
    let mut pages = pin!(listing.pages());
    let (mut count, started) = (0, Instant::now());
    loop {
        let asked = Instant::now();
        let Some(page) = pages.try_next().await? else {
            break;
        };
        count += page.items().len();
        let ids: Vec<&Value> = page
            .items()
            .iter()
            .filter_map(|item| item.get("id"))
            .collect();
        let span = match (ids.first(), ids.last()) {
            (Some(first), Some(last)) => format!("ids {first}..={last}, "),
            _ => String::new(),
        };
        println!(
            "   page: {} items ({span}{count} of {}) in {} ms",
            page.items().len(),
            page.total().map_or("?".to_owned(), |t| t.to_string()),
            asked.elapsed().as_millis()
        );
        wire.report("in the background, as the previous one entered its refresh window");
    }
    println!(
        "   streamed {count} items in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    if api.is_some() {
        println!("\n3. Let the {TOKEN_TTL:?} access token expire");
        let idle = TOKEN_TTL + Duration::from_millis(500);
        println!("   idle for {idle:?} ...");
        tokio::time::sleep(idle).await;
        let resource: Value = client.get(&args.get).send().await?;
        println!("   GET {} -> {}", args.get, abbreviated(&resource));
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

/// A JSON value on one line, cut to a readable length.
fn abbreviated(value: &Value) -> String {
    const MAX: usize = 100;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
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

// ===== Args =====

const USAGE: &str = "usage: quickstart [--get PATH] [--list PATH] [--paging STYLE] \
                     [--items-at POINTER] [--page-size N] [--limit N]";

struct Args {
    get: String,
    list: String,
    paging: Style,
    items_at: Option<String>,
    page_size: u64,
    limit: u64,
}

impl Args {
    /// The command line; prints the usage and exits on `--help` or a mistake.
    fn parse() -> Self {
        Self::try_parse().unwrap_or_else(|mistake| {
            eprintln!("{mistake}\n{USAGE}\n  STYLE: {}", common::PAGING_SYNTAX);
            std::process::exit(2);
        })
    }

    fn try_parse() -> Result<Self, String> {
        let mut args = Self {
            get: "/v1/me".into(),
            list: common::WIDGETS_PATH.into(),
            paging: Style::default(),
            items_at: None,
            page_size: 10,
            limit: 100,
        };
        let mut argv = std::env::args().skip(1);
        while let Some(arg) = argv.next() {
            let mut value = || argv.next().ok_or(format!("{arg} needs a value"));
            let number = |v: String| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("{arg} needs a positive number, not {v:?}"))
            };
            match arg.as_str() {
                "--get" => args.get = value()?,
                "--list" => args.list = value()?,
                "--paging" => args.paging = value()?.parse()?,
                "--items-at" => args.items_at = Some(value()?),
                "--page-size" => args.page_size = number(value()?)?,
                "--limit" => args.limit = number(value()?)?,
                "-h" | "--help" => {
                    println!("{USAGE}\n  STYLE: {}", common::PAGING_SYNTAX);
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(args)
    }
}
