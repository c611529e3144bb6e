//! Memory of a paginated stream: the heap it needs must not grow with the number of items.
//!
//! Run: `cargo bench --bench pagination_memory --features mock`
//!
//! A counting global allocator records the peak heap above the level reached once the client
//! holds its token. The stream is consumed item by item without keeping anything, for listings
//! of 10 000 and 100 000 items in pages of 100, with and without prefetch. The claim under test
//! (docs/pagination.md): memory is bounded by (1 + prefetch) pages, whatever the total, so the
//! peaks for both sizes should be about the same.
//!
//! The server is in the same process but on wiremock's own thread, whose allocations are not
//! counted (wiremock keeps every request a mock matched, which does grow with the listing).
//! Only the threads of the client's runtime are.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicUsize, Ordering},
};

use authed::Pagination;
use futures_util::TryStreamExt;
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path},
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted: the client runtime's threads only.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Memory freed here may have been allocated on an uncounted thread: saturate.
        if counted() {
            let _ = CURRENT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_sub(layout.size()))
            });
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(serde::Deserialize)]
#[allow(dead_code)] // decoded to cost what a real item costs
struct Item {
    id: u64,
    name: String,
    color: String,
}

/// Serves `total` items by offset, each page made up on the spot.
fn items_page(total: u64) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    move |request: &Request| {
        let param = |name: &str| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        let (skip, take) = (param("skip").unwrap_or(0), param("take").unwrap_or(10));
        let page: Vec<_> = (skip..total.min(skip + take))
            .map(
                |id| serde_json::json!({ "id": id, "name": format!("item {id}"), "color": "blue" }),
            )
            .collect();
        ResponseTemplate::new(200).set_body_json(page)
    }
}

async fn peak_while_streaming(total: u64, prefetch: usize) -> (u64, usize) {
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "bench", "token_type": "Bearer", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(items_page(total))
        .mount(&server)
        .await;
    let client = authed::Client::builder()
        .base_url(server.uri())
        .token_url(format!("{}/token", server.uri()))
        .refresh_token("bench-refresh")
        .build()
        .unwrap();
    client.access_token().await.unwrap();

    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let count = client
        .paginate::<Item>("/items", Pagination::offset("skip", "take").page_size(100))
        .prefetch(prefetch)
        .stream()
        .try_fold(0u64, |n, _item| async move { Ok(n + 1) })
        .await
        .unwrap();
    (count, PEAK.load(Ordering::Relaxed) - baseline)
}

fn main() {
    COUNTED.with(|c| c.set(true));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(|| COUNTED.with(|c| c.set(true)))
        .build()
        .unwrap();
    for prefetch in [0, 2] {
        for total in [10_000, 100_000] {
            let (count, peak) = runtime.block_on(peak_while_streaming(total, prefetch));
            assert_eq!(count, total);
            println!(
                "prefetch {prefetch}: {total:>7} items in pages of 100: peak heap above baseline {:>8.1} KiB",
                peak as f64 / 1024.0
            );
        }
    }
}
