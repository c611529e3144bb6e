//! The walk through a listing: one page after another, with the limit, the total, loop and
//! origin checks; and the background prefetch.

use std::{
    collections::HashSet,
    hash::{BuildHasher, RandomState},
};

use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    MAX_EMPTY_PAGES, Marker, Page, PageRequest, PageResponse, Pagination, Paginator, Position,
};
use crate::{Client, Error, ErrorKind, Result, client::append_query};

/// The pages of a listing, fetched one at a time when polled.
pub(super) fn pages<T>(
    paginator: Paginator<T>,
) -> impl Stream<Item = Result<Page<T>>> + Send + 'static
where
    T: DeserializeOwned + Send + 'static,
{
    let mut walk = Walk {
        client: paginator.client,
        path: paginator.path,
        query: paginator.query,
        pagination: paginator.pagination,
        seen: HashSet::new(),
        hasher: RandomState::new(),
        empty_run: 0,
    };
    let (mut at, mut remaining) = (Some(paginator.start), paginator.limit);
    // One span per listing, one child per page with its index: logs tell pages apart. The
    // path only, as on the request span: a query or userinfo may hold a secret.
    let listing = tracing::info_span!(
        target: "authed::pagination",
        "listing",
        client = %walk.client.name(),
        path = walk.client.url(&walk.path).ok().as_ref().map(|url| url.path()),
    );
    let mut index = 0_u64;
    async_stream::stream! {
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
                    yield Ok(page);
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
    client: Client,
    path: String,
    query: Result<String>,
    pagination: Pagination,
    /// Hashes of the markers requested so far, to detect loops.
    seen: HashSet<u64>,
    hasher: RandomState,
    empty_run: u32,
}

impl Walk {
    /// Fetches the page at `at`, keeping at most `remaining` items.
    async fn page<T: DeserializeOwned>(
        &mut self,
        at: &Position,
        remaining: Option<u64>,
    ) -> Result<Page<T>> {
        let pagination = &self.pagination;
        if !self.seen.insert(self.hasher.hash_one(&at.marker)) {
            return Err(pagination_error(
                "the listing points back to a page it already returned (a repeated cursor or next \
                 URL); stopping to avoid a loop",
            ));
        }
        let request = PageRequest {
            marker: at.marker.clone(),
            page_size: pagination.page_size,
            wanted: remaining.map(|r| r.saturating_add(at.skip)),
        };
        let mut url = self.client.url(&self.path)?;
        append_query(&mut url, self.query.as_ref().map_err(Clone::clone)?);
        pagination.strategy.prepare(&request, &mut url)?;
        if at.marker != Marker::Start && !self.client.is_api_origin(&url) {
            return Err(pagination_error(format!(
                "the next page is on another origin ({}) than the API; not following it with the access token",
                url.origin().ascii_serialization()
            )));
        }

        let response = self.client.get(url.as_str()).send_raw().await?;
        let (url, headers) = (response.url().clone(), response.headers().clone());
        let what = format!("GET {}", url.path());
        let bytes = response.bytes().await.map_err(|e| {
            Error::transport(format!("{what}: could not read the response body"), e)
        })?;
        let mut body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::decode(format!("{what}: the page is not JSON"), e))?;

        let found = match &pagination.items_at {
            Some(pointer) => body.pointer(pointer),
            None => Some(&body),
        };
        let items: &[Value] = match found {
            Some(Value::Array(items)) => items,
            Some(Value::Null) => &[],
            _ => {
                let place = pagination
                    .items_at
                    .as_deref()
                    .map_or("the body".to_owned(), |p| format!("{p:?}"));
                return Err(Error::new(
                    ErrorKind::Decode,
                    format!("{what}: no array of items at {place}"),
                ));
            }
        };
        let total = (pagination.total_at.as_ref())
            .and_then(|pointer| as_count(body.pointer(pointer)?))
            .or_else(|| {
                headers
                    .get(pagination.total_header.as_str())?
                    .to_str()
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            });
        let next = pagination.strategy.next(&PageResponse {
            request: &request,
            url: &url,
            headers: &headers,
            body: &body,
            items,
            total,
        })?;

        let available = (items.len() as u64).saturating_sub(at.skip);
        let kept = remaining.map_or(available, |r| r.min(available));
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
        if items.is_empty() && next.is_some() {
            self.empty_run += 1;
            if self.empty_run > MAX_EMPTY_PAGES {
                return Err(pagination_error(format!(
                    "{what}: more than {MAX_EMPTY_PAGES} empty pages in a row; stopping to avoid a loop"
                )));
            }
        } else {
            self.empty_run = 0;
        }

        // Take the items out of the body rather than copying them.
        let items = match &pagination.items_at {
            Some(pointer) => body.pointer_mut(pointer).map(Value::take),
            None => Some(body),
        };
        let Some(Value::Array(items)) = items else {
            return Ok(Page {
                items: Vec::new(),
                position: at.clone(),
                next,
                total,
            });
        };
        let items = items
            .into_iter()
            .enumerate()
            .skip(usize::try_from(at.skip).unwrap_or(usize::MAX))
            .take(usize::try_from(kept).unwrap_or(usize::MAX))
            .map(|(i, item)| {
                serde_json::from_value(item).map_err(|e| {
                    Error::decode(
                        format!("{what}: item {i} of the page does not match the expected type"),
                        e,
                    )
                })
            })
            .collect::<Result<Vec<T>>>()?;
        Ok(Page {
            items,
            position: at.clone(),
            next,
            total,
        })
    }
}

fn pagination_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Pagination, message)
}

/// A count given as a JSON number or a numeric string.
fn as_count(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str()?.trim().parse().ok())
}
