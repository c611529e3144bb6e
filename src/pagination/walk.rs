//! The walk through a listing: one page after another, with the limit, the total, loop and
//! origin checks; and the background prefetch.

use std::{
    collections::HashSet,
    hash::{BuildHasher, RandomState},
    sync::OnceLock,
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::{
    Marker, Page, PageRequest, PageResponse, Pagination, Paginator, Position, Reason,
    decode::{Failure, Plan, Pointer, Scalar},
};
use crate::{Error, ErrorKind, RequestBuilder, Result, body};

/// The pages of a listing, fetched one at a time when polled.
pub(super) fn pages<T>(
    paginator: Paginator<T>,
) -> impl Stream<Item = Result<Page<T>>> + Send + 'static
where
    T: DeserializeOwned + Send + 'static,
{
    let checked = paginator.pagination.check();
    let mut walk = Walk::new(paginator.request, paginator.pagination);
    let (mut at, mut remaining) = (Some(paginator.start), paginator.limit);
    if let Err(err) = checked {
        at = None;
        walk.refused = Some(err);
    }
    // One span per listing, one child per page with its index: logs tell pages apart. The
    // path only, as on the request span: a query or userinfo may hold a secret.
    let listing = tracing::info_span!(
        target: "authed::pagination",
        "listing",
        client = %walk.request.client().name(),
        path = walk.request.url().ok().map(|url| url.path()),
    );
    let mut index = 0_u64;
    async_stream::stream! {
        if let Some(err) = walk.refused.take() {
            yield Err(err);
        }
        while let Some(position) = at.take() {
            if remaining == Some(0) {
                break;
            }
            let span = tracing::info_span!(target: "authed::pagination", parent: &listing, "page", index);
            index += 1;
            match tracing::Instrument::instrument(walk.page::<T>(&position, remaining), span).await {
                Ok(page) => {
                    remaining = remaining.map(|r| r.saturating_sub(page.items.len() as u64));
                    at = page.next.clone();
                    let short = if at.is_none() && remaining != Some(0) {
                        walk.ended_short(&page)
                    } else {
                        None
                    };
                    yield Ok(page);
                    if let Some(err) = short {
                        yield Err(err);
                        break;
                    }
                }
                Err(err) => {
                    yield Err(err.with_position(position.to_value()));
                    break;
                }
            }
        }
    }
}

/// Drives `pages` in a background task, `depth` pages ahead of the consumer.
pub(super) fn prefetched<P: Send + 'static>(
    pages: impl Stream<Item = P> + Send + 'static,
    depth: usize,
) -> impl Stream<Item = P> + Send + 'static {
    async_stream::stream! {
        let (tx, mut rx) = tokio::sync::mpsc::channel(depth);
        // Dropping the set (with the stream) aborts the task and the request in flight.
        let mut producer = tokio::task::JoinSet::new();
        producer.spawn(async move {
            let mut pages = std::pin::pin!(pages);
            // The slot is reserved before the fetch, so buffered plus in-flight pages never
            // exceed `depth`.
            while let Ok(slot) = tx.reserve().await {
                match pages.next().await {
                    Some(page) => slot.send(page),
                    None => break,
                }
            }
        });
        while let Some(page) = rx.recv().await {
            yield page;
        }
        // A panic while fetching (in a `Deserialize` impl, say) is the consumer's, not lost.
        if let Some(Err(err)) = producer.join_next().await
            && err.is_panic()
        {
            std::panic::resume_unwind(err.into_panic());
        }
    }
}

/// The state of one walk through a listing.
struct Walk {
    /// The request of the first page, copied for every page.
    request: RequestBuilder,
    pagination: Pagination,
    /// What one pass over a page reads: the items, then the values at `pointers`.
    plan: Plan,
    /// The total's pointer (if any) then the strategy's, in the order the plan reads them.
    pointers: Vec<String>,
    /// A misconfiguration found before the first request.
    refused: Option<Error>,
    /// Hashes of the markers requested so far, to detect loops.
    seen: HashSet<u64>,
    /// Hashes of the non-empty page bodies received so far, to detect a server that ignores
    /// the page parameter.
    seen_bodies: HashSet<u64>,
    hasher: RandomState,
    /// The key of the page hashes, random per walk.
    seed: u64,
    empty_run: u32,
    /// Pages requested by this walk.
    requested: u64,
    /// The last total the server announced.
    total: Option<u64>,
    /// Items kept from the last page: the capacity to reserve for the next.
    capacity: usize,
}

impl Walk {
    fn new(request: RequestBuilder, pagination: Pagination) -> Self {
        let mut pointers: Vec<String> = pagination.total_at.iter().cloned().collect();
        pointers.extend(pagination.strategy.pointers());
        let parsed: Vec<Pointer> = pointers.iter().filter_map(|p| Pointer::parse(p)).collect();
        // Pointers that do not parse are left out of the plan (and read as absent).
        pointers.retain(|p| Pointer::parse(p).is_some());
        let items = pagination.items_at.as_deref().and_then(Pointer::parse);
        let plan = Plan::new(items.as_ref(), &parsed.iter().collect::<Vec<_>>());
        Self {
            request,
            pagination,
            plan,
            pointers,
            refused: None,
            seen: HashSet::new(),
            seen_bodies: HashSet::new(),
            hasher: RandomState::new(),
            seed: RandomState::new().hash_one(0u8),
            empty_run: 0,
            requested: 0,
            total: None,
            capacity: 0,
        }
    }

    /// The error ending a listing the strategy ended before the total the server announced,
    /// after `page`.
    fn ended_short<T>(&self, page: &Page<T>) -> Option<Error> {
        let kept = page.items.len() as u64;
        let received = page.position.index.saturating_add(kept);
        let total = page.total.or(self.total)?;
        if received >= total {
            return None;
        }
        let after = Position {
            marker: page.position.marker.clone(),
            skip: page.position.skip.saturating_add(kept),
            index: received,
        };
        let error = Reason::EndedShort { received, total }.into_error(format!(
            "the listing ended after {received} of the {total} items the server announced: the \
             last page pointed to no next page; check the strategy and the parameters of the \
             first request"
        ));
        Some(error.with_position(after.to_value()))
    }

    /// Fetches the page at `at`, keeping at most `remaining` items.
    async fn page<T: DeserializeOwned>(
        &mut self,
        at: &Position,
        remaining: Option<u64>,
    ) -> Result<Page<T>> {
        let pagination = &self.pagination;
        if self.requested >= pagination.max_pages {
            let limit = pagination.max_pages;
            return Err(Reason::TooManyPages { limit }.into_error(format!(
                "the listing has more than {limit} pages (`Pagination::max_pages`); stopping"
            )));
        }
        if !self.seen.insert(self.hasher.hash_one(&at.marker)) {
            return Err(Reason::RepeatedMarker.into_error(
                "the listing points back to a page it already returned (a repeated cursor or next \
                 URL); stopping to avoid a loop",
            ));
        }
        let request = PageRequest {
            marker: at.marker.clone(),
            page_size: pagination.page_size,
            wanted: remaining.map(|r| r.saturating_add(at.skip)),
        };
        let first = self.request.url()?;
        let mut url = first.clone();
        pagination.strategy.prepare(&request, &mut url)?;
        let allowed = if at.marker == Marker::Start {
            url.origin() == first.origin()
        } else {
            self.request.client().is_api_origin(&url)
        };
        if !allowed {
            return Err(Reason::OtherOrigin.into_error(format!(
                "the next page is on another origin ({}) than the API; not following it with the access token",
                url.origin().ascii_serialization()
            )));
        }

        self.requested += 1;
        let mut response = self.request.to_url(url)?.send_raw().await?;
        let (url, headers) = (
            response.url().clone(),
            std::mem::take(response.headers_mut()),
        );
        let what = What(&url);
        let bytes = read_body(response, pagination.max_page_bytes, what).await?;

        let skip = usize::try_from(at.skip).unwrap_or(usize::MAX);
        let take = remaining.map_or(usize::MAX, |r| usize::try_from(r).unwrap_or(usize::MAX));
        let place = || {
            pagination
                .items_at
                .as_deref()
                .map_or("the body".to_owned(), |p| format!("{p:?}"))
        };
        let no_array = || {
            Error::new(
                ErrorKind::Decode,
                format!("{what}: no array of items at {}", place()),
            )
        };
        let mut found = self
            .plan
            .run::<T>(&bytes, skip, take, self.capacity)
            .map_err(|failure| match failure {
                Failure::Json(e) => Error::decode(format!("{what}: the page is not JSON"), e),
                Failure::NotArray => no_array(),
                Failure::Item { index, error } => Error::decode(
                    format!("{what}: item {index} of the page does not match the expected type"),
                    error,
                ),
            })?;
        let Some(items) = found.take_items() else {
            return Err(no_array());
        };
        let raws: Vec<(&str, Option<&RawValue>)> = self
            .pointers
            .iter()
            .map(String::as_str)
            .zip(found.raws().iter().copied())
            .collect();

        if pagination.detect_repeated_pages
            && items.count > 0
            && !self.seen_bodies.insert(page_hash(self.seed, &bytes))
        {
            return Err(Reason::RepeatedPage.into_error(format!(
                "{what}: the page is the same as an earlier page of the listing (a server that \
                 ignores the page parameter?); stopping to avoid a loop"
            )));
        }

        let total = match (&pagination.total_at, raws.first()) {
            (Some(_), Some((_, Some(raw)))) => Scalar::count(raw),
            _ => None,
        }
        .or_else(|| {
            headers
                .get(pagination.total_header.as_str())?
                .to_str()
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        if total.is_some() {
            self.total = total;
        }
        let next = pagination.strategy.next(&PageResponse {
            request: &request,
            url: &url,
            headers: &headers,
            bytes: &bytes,
            raws: &raws,
            items_at: pagination.items_at.as_deref(),
            item_count: items.count,
            total,
            body: OnceLock::new(),
        })?;

        let available = (items.count as u64).saturating_sub(at.skip);
        let kept = items.kept.len() as u64;
        let index = at.index.saturating_add(kept);
        let next = if kept < available {
            Some(Position {
                marker: at.marker.clone(),
                skip: at.skip.saturating_add(kept),
                index,
            })
        } else if total.is_some_and(|total| index >= total) {
            None
        } else {
            next.map(|marker| Position {
                marker,
                skip: 0,
                index,
            })
        };
        if items.count == 0 && next.is_some() {
            self.empty_run += 1;
            let limit = pagination.max_empty_pages;
            if self.empty_run > limit {
                return Err(Reason::TooManyEmptyPages { limit }.into_error(format!(
                    "{what}: more than {limit} empty pages in a row; stopping to avoid a loop"
                )));
            }
        } else {
            self.empty_run = 0;
        }
        self.capacity = items.kept.len();
        Ok(Page {
            items: items.kept,
            position: at.clone(),
            next,
            total,
        })
    }
}

/// `GET /path` of a page, for error messages; formatted only when one is made.
#[derive(Clone, Copy)]
struct What<'a>(&'a url::Url);

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GET {}", self.0.path())
    }
}

/// Reads a page body up to `limit` bytes ([`body::read_bounded`]).
async fn read_body(mut response: reqwest::Response, limit: usize, what: What<'_>) -> Result<Bytes> {
    match body::read_bounded(&mut response, limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(body::TooLarge)) => Err(Reason::PageTooLarge { limit }.into_error(format!(
            "{what}: the page body is larger than {limit} bytes (`Pagination::max_page_bytes`)"
        ))),
        Err(e) => Err(Error::transport(
            format!("{what}: could not read the response body"),
            e,
        )),
    }
}

/// A keyed hash of a page body, to recognise a page seen before: 8 bytes at a time, so that
/// it costs little next to decoding the page. A collision could only end a listing with a
/// false [`Reason::RepeatedPage`], and the key is random per walk.
fn page_hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    let mut h = mix(seed, bytes.len() as u64);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(word));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    // A final avalanche, so that the last words reach every bit.
    let h = mix(h, u64::from_le_bytes(tail));
    (h ^ (h >> 29)).wrapping_mul(K) ^ (h >> 32)
}
