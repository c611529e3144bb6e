//! Paginated list endpoints as async streams.
//!
//! [`Client::paginate`](crate::Client::paginate) (or [`RequestBuilder::paginate`], which keeps the request's headers,
//! timeout and retry policy on every page) turns a list endpoint into a [`Paginator`], which
//! becomes a [`Stream`] of items ([`Paginator::stream`]) or of whole pages
//! ([`Paginator::pages`]). Five strategies cover the common APIs, and [`Strategy`] lets you
//! write your own:
//!
//! | Strategy | Requests | Ends when |
//! |---|---|---|
//! | [`Pagination::offset`] | `?skip=0&take=100`, `?skip=100&take=100`, ... | a short or empty page |
//! | [`Pagination::page_number`] | `?page=1&per_page=100`, `?page=2&per_page=100`, ... | a short or empty page |
//! | [`Pagination::cursor`] | `?cursor=<value at a JSON pointer in the last body>` | no cursor |
//! | [`Pagination::next_url`] | the URL at a JSON pointer in the last body | no URL |
//! | [`Pagination::link_header`] | the `Link: <...>; rel="next"` URL of the last response | no such link |
//!
//! Every strategy also ends once a known total ([`Pagination::total_at`], an `X-Total-Count`
//! header or [`Pagination::total_header`]) is reached, without requesting a page past it.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//! use authed::Pagination;
//!
//! #[derive(serde::Deserialize)]
//! struct Item { id: u64 }
//!
//! # async fn run() -> authed::Result<()> {
//! let client = authed::Client::from_env()?;
//! let items: Vec<Item> = client
//!     .get("/items")
//!     .query(&[("color", "blue")])
//!     .header("Accept-Language", "en")
//!     .timeout(std::time::Duration::from_secs(10))
//!     .paginate::<Item>(Pagination::offset("skip", "take").page_size(100))
//!     .limit(1_000)
//!     .stream()
//!     .try_collect()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//!
//! - **Lazy**: no request is sent before the stream is first polled, and none after it is
//!   dropped or the [`limit`](Paginator::limit) is reached.
//! - **Every page goes through the client's send path**, as a copy of the request the listing
//!   was built from (its headers, timeout and retry policy): token refresh, the 401 replay and
//!   rate-limit handling apply in the middle of a stream exactly as for single requests.
//! - **Errors are yielded, never swallowed**, and end the stream. Each carries the [`Position`]
//!   to resume from ([`Position::from_error`], [`Paginator::resume_from`]); the errors of the
//!   listing itself are [`ErrorKind::Pagination`] and say why with a [`Reason`].
//! - **A listing never ends short in silence**: when the server announced a total and the
//!   strategy finds no next page before reaching it, the stream ends with
//!   [`Reason::EndedShort`] after the items it got.
//! - **Misconfigurations are refused before any request**: a page size of 0, or a page size
//!   for a strategy that has no parameter to send it in, is an [`ErrorKind::Config`] error.
//! - **Loop-safe**: a repeated cursor or next URL (also after several steps, A→B→A), a page
//!   whose body is the same as an earlier non-empty page (a server that ignores the page
//!   parameter), more than [`Pagination::max_empty_pages`] consecutive empty pages that still
//!   point to a next page, and more than [`Pagination::max_pages`] pages are
//!   [`ErrorKind::Pagination`] errors.
//! - **Next URLs never leave the API origin**: a next URL (from a body or a `Link` header) on
//!   another origin than the base URL is an [`ErrorKind::Pagination`] error, and no request is
//!   sent to it, so the access token cannot follow it.
//! - **Bounded memory**: at most `1 + prefetch` pages are held at once, whatever the total,
//!   and a page body larger than [`Pagination::max_page_bytes`] (16 MiB by default) is not
//!   read past the bound. A page is decoded straight from its bytes into the item type, with
//!   no intermediate JSON tree, so a page costs its bytes plus its items. Loop detection keeps
//!   two 8-byte hashes per page visited.
//!
//! See `docs/pagination.md` for which real APIs use which strategy, checkpoints and caveats.

mod cursor;
mod decode;
mod link;
mod offset;
mod page;
mod walk;

use std::{fmt, marker::PhantomData, sync::Arc, sync::OnceLock};

use futures_util::{Stream, StreamExt, TryStreamExt};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, value::RawValue};
use url::Url;

pub use cursor::{Cursor, NextUrl};
pub use link::LinkHeader;
pub use offset::Offset;
pub use page::PageNumber;

use crate::{Client, Error, ErrorKind, RequestBuilder, Result};
use decode::{Plan, Pointer};

/// How many consecutive empty pages that still point to a next page are followed before the
/// stream fails with [`ErrorKind::Pagination`]. Some cursor APIs return a few empty pages while
/// they scan (filtered searches); a server that never stops doing so would otherwise be an
/// endless loop of requests.
pub const MAX_EMPTY_PAGES: u32 = 10;

/// The default of [`Pagination::max_pages`]: how many pages one walk through a listing requests
/// at most before it fails with [`Reason::TooManyPages`].
pub const DEFAULT_MAX_PAGES: u64 = 100_000;

/// The default of [`Pagination::max_page_bytes`]: 16 MiB.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

// ===== Pagination =====

/// How a list endpoint pages: a [`Strategy`] plus where the items and the total are.
///
/// ```
/// use authed::{Pagination, pagination::PageNumber};
///
/// // `GET /items?skip=200&take=100` answering `[...]`
/// let offset = Pagination::offset("skip", "take").page_size(100);
/// // `GET /posts?page=0&per_page=50` answering `{"data": [...], "total": 1234}`
/// let pages = Pagination::new(PageNumber::new("page", "per_page").first_page(0))
///     .page_size(50)
///     .items_at("/data")
///     .total_at("/total");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Pagination {
    strategy: Arc<dyn Strategy>,
    page_size: Option<u64>,
    items_at: Option<String>,
    total_at: Option<String>,
    total_header: String,
    max_page_bytes: usize,
    max_pages: u64,
    max_empty_pages: u32,
    detect_repeated_pages: bool,
}

impl Pagination {
    /// Pages with any [`Strategy`], such as your own.
    pub fn new(strategy: impl Strategy) -> Self {
        Self {
            strategy: Arc::new(strategy),
            page_size: None,
            items_at: None,
            total_at: None,
            total_header: "x-total-count".to_owned(),
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_pages: DEFAULT_MAX_PAGES,
            max_empty_pages: MAX_EMPTY_PAGES,
            detect_repeated_pages: true,
        }
    }

    /// `?{skip}=0&{take}=n`, then `?{skip}=n&{take}=n`, ... (see [`Offset`]).
    pub fn offset(skip: impl Into<String>, take: impl Into<String>) -> Self {
        Self::new(Offset::new(skip, take))
    }

    /// `?{page}=1&{per_page}=n`, then `?{page}=2&{per_page}=n`, ... (see [`PageNumber`]; for a
    /// first page other than 1 use `Pagination::new(PageNumber::new(..).first_page(0))`).
    pub fn page_number(page: impl Into<String>, per_page: impl Into<String>) -> Self {
        Self::new(PageNumber::new(page, per_page))
    }

    /// `?{param}=<cursor>`, the cursor being the string (or number) at the JSON `pointer` of the
    /// previous body, such as `"/response_metadata/next_cursor"` (see [`Cursor`]).
    pub fn cursor(param: impl Into<String>, pointer: impl Into<String>) -> Self {
        Self::new(Cursor::new(param, pointer))
    }

    /// Follows the URL at the JSON `pointer` of each body, such as `"/next"` (see [`NextUrl`]).
    pub fn next_url(pointer: impl Into<String>) -> Self {
        Self::new(NextUrl::new(pointer))
    }

    /// Follows the RFC 8288 `Link: <...>; rel="next"` header (see [`LinkHeader`]).
    pub fn link_header() -> Self {
        Self::new(LinkHeader::new())
    }

    /// How many items to ask for per page. **Keep it at or below the API's maximum**: a page
    /// capped by the server looks short, and a short page ends offset and page-number listings
    /// that know no total.
    ///
    /// **Refused rather than ignored**: a size of 0, or a size for a strategy that has no
    /// parameter to send it in (a [`Cursor`], [`NextUrl`] or [`LinkHeader`] without
    /// `size_param`), makes the stream fail with [`ErrorKind::Config`] before any request.
    pub fn page_size(mut self, size: u64) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Where the items are in an envelope body, as a JSON pointer (`"/results"`, `"/data/items"`).
    /// By default the body itself must be the array. A `null` there is an empty page.
    pub fn items_at(mut self, pointer: impl Into<String>) -> Self {
        self.items_at = Some(pointer.into());
        self
    }

    /// Where the total item count is in the body, as a JSON pointer (`"/count"`), as a number
    /// or a numeric string. Without it (or when the body has none there), the
    /// [total header](Pagination::total_header) is used when present. The stream ends once it
    /// has gone through that many items, **without requesting a page past the end** (some APIs
    /// answer an error there).
    pub fn total_at(mut self, pointer: impl Into<String>) -> Self {
        self.total_at = Some(pointer.into());
        self
    }

    /// The response header holding the total item count (default `X-Total-Count`;
    /// WordPress: `X-WP-Total`).
    pub fn total_header(mut self, name: impl Into<String>) -> Self {
        self.total_header = name.into();
        self
    }

    /// The largest page body read, in bytes (default [`DEFAULT_MAX_PAGE_BYTES`], 16 MiB). A
    /// larger page fails with [`Reason::PageTooLarge`]: refused on its `Content-Length` before
    /// the body is read, or as soon as the bytes received pass the bound.
    pub fn max_page_bytes(mut self, bytes: usize) -> Self {
        self.max_page_bytes = bytes;
        self
    }

    /// The most pages one walk through the listing requests (default [`DEFAULT_MAX_PAGES`]);
    /// the request for one more fails with [`Reason::TooManyPages`]. A bound for servers
    /// that keep pointing to a next page forever. Resuming starts a new count.
    pub fn max_pages(mut self, pages: u64) -> Self {
        self.max_pages = pages;
        self
    }

    /// How many consecutive empty pages that still point to a next page are followed (default
    /// [`MAX_EMPTY_PAGES`]); one more fails with [`Reason::TooManyEmptyPages`].
    pub fn max_empty_pages(mut self, pages: u32) -> Self {
        self.max_empty_pages = pages;
        self
    }

    /// Whether a non-empty page whose body is byte for byte the same as an earlier page of the
    /// walk fails with [`Reason::RepeatedPage`] (default `true`). That is what a server that
    /// ignores the page or offset parameter answers, forever. Turn it off only for data whose
    /// pages can legitimately repeat (items without identity, such as plain numbers).
    pub fn detect_repeated_pages(mut self, detect: bool) -> Self {
        self.detect_repeated_pages = detect;
        self
    }

    /// The first misconfiguration, checked before any request.
    fn check(&self) -> Result<()> {
        if self.page_size == Some(0) {
            return Err(Error::config(
                "the page size of a listing must be at least 1",
            ));
        }
        if self.page_size.is_some() && !self.strategy.sends_page_size() {
            return Err(Error::config(format!(
                "a page size is set, but the strategy {:?} has no parameter to send it in; \
                 give it one (e.g. `Cursor::new(..).size_param(\"limit\")`) or remove the page size",
                self.strategy
            )));
        }
        for (what, pointer) in [("items_at", &self.items_at), ("total_at", &self.total_at)] {
            if let Some(pointer) = pointer
                && Pointer::parse(pointer).is_none()
            {
                return Err(Error::config(format!(
                    "{what}({pointer:?}) is not a JSON pointer: it must be empty or start with `/`"
                )));
            }
        }
        Ok(())
    }
}

// ===== Strategy =====

/// A pagination scheme: how to request a page, and where the next one starts.
///
/// Implement it for an API none of the built-in strategies fits, and use it with
/// [`Pagination::new`]. The trait is object-safe. Loop detection, empty-page limits, the total,
/// the limit, the origin check and resuming are handled for you.
///
/// For example Stripe-style lists, which answer `{"data": [...], "has_more": true}` and take
/// the id of the last item as `starting_after`:
///
/// ```
/// use authed::pagination::{Marker, PageRequest, PageResponse, Strategy};
/// use url::Url;
///
/// #[derive(Debug)]
/// struct StartingAfter;
///
/// impl Strategy for StartingAfter {
///     fn prepare(&self, request: &PageRequest, url: &mut Url) -> authed::Result<()> {
///         if let Some(size) = request.size() {
///             url.query_pairs_mut().append_pair("limit", &size.to_string());
///         }
///         if let Marker::Cursor(id) = request.marker() {
///             url.query_pairs_mut().append_pair("starting_after", id);
///         }
///         Ok(())
///     }
///
///     fn next(&self, response: &PageResponse<'_>) -> authed::Result<Option<Marker>> {
///         let has_more = response.get::<bool>("/has_more")?.unwrap_or(false);
///         let Some(last) = response.item_count().checked_sub(1) else {
///             return Ok(None);
///         };
///         let last_id = response.get::<String>(&format!("/data/{last}/id"))?;
///         Ok(last_id.filter(|_| has_more).map(Marker::Cursor))
///     }
///
///     fn pointers(&self) -> Vec<String> {
///         vec!["/has_more".into()]
///     }
/// }
///
/// let pagination = authed::Pagination::new(StartingAfter).items_at("/data").page_size(100);
/// ```
pub trait Strategy: fmt::Debug + Send + Sync + 'static {
    /// Turns `url` (the listing's path with the caller's query parameters) into the request
    /// for the page at `request.marker()`, by adding query parameters or replacing it.
    fn prepare(&self, request: &PageRequest, url: &mut Url) -> Result<()>;

    /// Where the page after `response` starts, or `None` when it was the last one.
    fn next(&self, response: &PageResponse<'_>) -> Result<Option<Marker>>;

    /// Whether [`prepare`](Strategy::prepare) sends the [page size](PageRequest::size) (default
    /// `true`). When `false`, a [`Pagination::page_size`] is refused with
    /// [`ErrorKind::Config`] instead of being silently ignored.
    fn sends_page_size(&self) -> bool {
        true
    }

    /// The JSON pointers [`next`](Strategy::next) reads with [`PageResponse::pointer`] or
    /// [`PageResponse::get`] (default none). They are then read in the same pass over the body
    /// as the items; any other pointer costs one more pass.
    fn pointers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where a page starts, as far as a [`Strategy`] is concerned.
///
/// A custom strategy keeps its state in whichever variant fits (any text fits in `Cursor`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Marker {
    /// The first page: the listing's path and query, as given.
    Start,
    /// An item offset.
    Offset(u64),
    /// A page number.
    Page(u64),
    /// An opaque cursor.
    Cursor(String),
    /// An absolute URL.
    Url(String),
}

/// A request for one page, as given to [`Strategy::prepare`].
#[derive(Clone, Debug)]
pub struct PageRequest {
    marker: Marker,
    page_size: Option<u64>,
    wanted: Option<u64>,
}

impl PageRequest {
    /// Where the page starts.
    pub fn marker(&self) -> &Marker {
        &self.marker
    }

    /// The configured [`Pagination::page_size`].
    pub fn page_size(&self) -> Option<u64> {
        self.page_size
    }

    /// How many items of this page the stream still needs, when a limit is set.
    pub fn wanted(&self) -> Option<u64> {
        self.wanted
    }

    /// How many items to ask for when the API lets pages differ in size: the page size,
    /// lowered to what the limit still needs. `None` without a page size: a guessed size could
    /// exceed the server's maximum, and a capped page would look like the last.
    pub fn size(&self) -> Option<u64> {
        self.page_size
            .map(|size| self.wanted.map_or(size, |wanted| size.min(wanted)))
    }
}

/// A successful page response, as given to [`Strategy::next`].
///
/// The body is kept as bytes: values are read at JSON pointers ([`pointer`](Self::pointer),
/// [`get`](Self::get)) without building a JSON tree. [`body`](Self::body) and
/// [`items`](Self::items) build one on first use, for strategies that need the whole body.
pub struct PageResponse<'a> {
    request: &'a PageRequest,
    url: &'a Url,
    headers: &'a HeaderMap,
    bytes: &'a [u8],
    /// The values read in the pass over the body, by pointer.
    raws: &'a [(&'a str, Option<&'a RawValue>)],
    items_at: Option<&'a str>,
    item_count: usize,
    total: Option<u64>,
    body: OnceLock<Value>,
}

impl fmt::Debug for PageResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageResponse")
            .field("url", &self.url.path())
            .field("item_count", &self.item_count)
            .field("total", &self.total)
            .field("body_bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl<'a> PageResponse<'a> {
    /// The total item count, when the response tells it (see [`Pagination::total_at`]).
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Whether this page ends the listing by its size alone: it is empty, or shorter than
    /// `asked` while no total is known. With a known total, a short page is not the end:
    /// servers cap page sizes (asked 200, got 100), and the total decides.
    pub fn is_last_by_size(&self, asked: Option<u64>) -> bool {
        let count = self.item_count as u64;
        count == 0 || (self.total.is_none() && asked.is_some_and(|size| count < size))
    }

    /// The request this responds to.
    pub fn request(&self) -> &PageRequest {
        self.request
    }

    /// The URL the page came from (after redirects).
    pub fn url(&self) -> &Url {
        self.url
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// How many items the page holds (all of them, also those a resumed position skips).
    pub fn item_count(&self) -> usize {
        self.item_count
    }

    /// The body as it came.
    pub fn raw_body(&self) -> &'a [u8] {
        self.bytes
    }

    /// The JSON at a pointer of the body (`"/meta/next"`), as raw JSON text; `None` when the
    /// body has nothing there or `pointer` is not a JSON pointer. Cheap for the pointers listed
    /// by [`Strategy::pointers`]; any other is found by one more pass over the body.
    pub fn pointer(&self, pointer: &str) -> Option<&'a RawValue> {
        if let Some((_, raw)) = self.raws.iter().find(|(p, _)| *p == pointer) {
            return *raw;
        }
        let plan = Plan::raw(&Pointer::parse(pointer)?);
        let found = plan
            .run::<serde::de::IgnoredAny>(self.bytes, 0, 0, 0)
            .ok()?;
        found.raw(0)
    }

    /// The value at a pointer of the body, decoded as `V`; `Ok(None)` when the body has
    /// nothing there, an [`ErrorKind::Decode`] error when it is not a `V`.
    pub fn get<V: DeserializeOwned>(&self, pointer: &str) -> Result<Option<V>> {
        let Some(raw) = self.pointer(pointer) else {
            return Ok(None);
        };
        serde_json::from_str(raw.get()).map(Some).map_err(|e| {
            Error::decode(
                format!("the value at {pointer:?} of the page has an unexpected JSON type"),
                e,
            )
        })
    }

    /// The whole JSON body, parsed on first use (`null` if it cannot be).
    pub fn body(&self) -> &Value {
        self.body
            .get_or_init(|| serde_json::from_slice(self.bytes).unwrap_or_default())
    }

    /// The items of the page, as JSON; parses the whole body on first use.
    pub fn items(&self) -> &[Value] {
        let found = match self.items_at {
            Some(pointer) => self.body().pointer(pointer),
            None => Some(self.body()),
        };
        match found {
            Some(Value::Array(items)) => items,
            _ => &[],
        }
    }

    /// Resolves a (possibly relative) URL reference against the page's URL.
    pub fn resolve(&self, reference: &str) -> Result<Url> {
        self.url.join(reference).map_err(|e| {
            Error::new(
                ErrorKind::Pagination,
                format!("the next URL {reference:?} is not a valid URL"),
            )
            .with_source(e)
        })
    }
}

// ===== Reason =====

/// Why a listing failed with [`ErrorKind::Pagination`]: `Reason::of(&error)`.
///
/// ```no_run
/// # async fn run(client: authed::Client) -> authed::Result<()> {
/// use futures_util::TryStreamExt;
/// use authed::pagination::{Position, Reason};
///
/// let listing = client.paginate::<u64>("/ids", authed::Pagination::link_header());
/// if let Err(error) = listing.stream().try_collect::<Vec<_>>().await {
///     if let Some(Reason::EndedShort { received, total }) = Reason::of(&error) {
///         eprintln!("got {received} of {total} items; resume from {:?}", Position::from_error(&error));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The strategy found no next page before the total the server announced: `received` of
    /// `total` items were yielded. The error's position is just after the last item received.
    #[error("the listing ended after {received} of the {total} items the server announced")]
    EndedShort {
        /// Items of the listing received (counting those before a resumed position).
        received: u64,
        /// The total the server announced.
        total: u64,
    },
    /// A cursor or next URL pointed back to a page already requested.
    #[error("a cursor or next URL points back to a page already requested")]
    RepeatedMarker,
    /// A non-empty page had the same body as an earlier one.
    #[error("a page has the same body as an earlier page")]
    RepeatedPage,
    /// More empty pages in a row than [`Pagination::max_empty_pages`].
    #[error("more than {limit} empty pages in a row")]
    TooManyEmptyPages {
        /// The bound.
        limit: u32,
    },
    /// More pages than [`Pagination::max_pages`].
    #[error("more than {limit} pages")]
    TooManyPages {
        /// The bound.
        limit: u64,
    },
    /// A page body larger than [`Pagination::max_page_bytes`].
    #[error("a page body is larger than {limit} bytes")]
    PageTooLarge {
        /// The bound.
        limit: usize,
    },
    /// A next URL on another origin than the API.
    #[error("a next page is on another origin than the API")]
    OtherOrigin,
}

impl Reason {
    /// The reason of an [`ErrorKind::Pagination`] error from a listing.
    pub fn of(error: &Error) -> Option<&Self> {
        std::error::Error::source(error)?.downcast_ref()
    }

    fn into_error(self, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Pagination, message).with_source(self)
    }
}

// ===== Position =====

/// A checkpoint in a listing: where to resume with [`Paginator::resume_from`].
///
/// Serializable, so a long export can save it (with [`Page::next`]) and restart after a crash.
/// Errors from a stream carry the position of the page that failed ([`Position::from_error`]).
///
/// ```
/// use authed::pagination::{Marker, Position};
///
/// let position = Position::new(Marker::Cursor("c2".into()));
/// let saved = serde_json::to_string(&position).unwrap();
/// assert_eq!(saved, r#"{"marker":{"cursor":"c2"},"skip":0,"index":0}"#);
/// assert_eq!(serde_json::from_str::<Position>(&saved).unwrap(), position);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    marker: Marker,
    /// Items of the page at `marker` already gone through (a page cut short by a limit).
    skip: u64,
    /// Items of the listing before this position, compared with the total.
    index: u64,
}

impl Position {
    /// The first item of the page at `marker`, counted as the start of the listing.
    pub fn new(marker: Marker) -> Self {
        Self {
            marker,
            skip: 0,
            index: 0,
        }
    }

    /// The position carried by an error from a paginated stream.
    pub fn from_error(error: &Error) -> Option<Self> {
        serde_json::from_value(error.position()?.clone()).ok()
    }

    /// Where the page starts.
    pub fn marker(&self) -> &Marker {
        &self.marker
    }

    /// How many items of the listing come before this position.
    pub fn index(&self) -> u64 {
        self.index
    }

    fn to_value(&self) -> Value {
        // Cannot fail: strings and integers only.
        serde_json::to_value(self).unwrap_or_default()
    }
}

// ===== Page =====

/// One page of a listing, from [`Paginator::pages`].
#[derive(Clone, Debug)]
pub struct Page<T> {
    items: Vec<T>,
    position: Position,
    next: Option<Position>,
    total: Option<u64>,
}

impl<T> Page<T> {
    /// The items (without those before a resumed position or past the limit).
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The items, owned.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }

    /// Where this page started.
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// Where the rest of the listing starts: a checkpoint to save once this page is processed.
    /// `None` at the end of the data. After a page cut short by a limit, the position is inside
    /// this page, so that resuming yields exactly the items not yet seen.
    pub fn next(&self) -> Option<&Position> {
        self.next.as_ref()
    }

    /// The total item count the server announced, if any.
    pub fn total(&self) -> Option<u64> {
        self.total
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

// ===== Paginator =====

/// A paginated listing, ready to become a stream: built by [`Client::paginate`](crate::Client::paginate) or
/// [`RequestBuilder::paginate`].
///
/// It owns a [`Client`] clone, so it and its streams are `Send + 'static`: spawn them, store
/// them in structs.
#[must_use = "a paginator does nothing until it is turned into a stream and polled"]
pub struct Paginator<T> {
    /// The request of the first page; each page is sent as a copy of it.
    request: RequestBuilder,
    pagination: Pagination,
    limit: Option<u64>,
    prefetch: usize,
    start: Position,
    item: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Paginator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paginator")
            .field("path", &self.request.url().map(Url::path).ok())
            .field("pagination", &self.pagination)
            .field("limit", &self.limit)
            .field("prefetch", &self.prefetch)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned + Send + 'static> Paginator<T> {
    pub(crate) fn new(request: RequestBuilder, pagination: Pagination) -> Self {
        Self {
            request,
            pagination,
            limit: None,
            prefetch: 0,
            start: Position::new(Marker::Start),
            item: PhantomData,
        }
    }

    /// Adds query parameters (filters, sorting) to every page request, serialized like
    /// [`RequestBuilder::query`]. Pages reached through a next URL use that URL as the server
    /// wrote it.
    pub fn query<Q: Serialize + ?Sized>(mut self, query: &Q) -> Self {
        self.request = self.request.query(query);
        self
    }

    /// Stops after `n` items. Offset and cursor strategies with a page size ask for no more than
    /// the items still needed; page-number strategies keep their page size (a different size
    /// would move the page boundaries) and drop the extra items.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Fetches up to `pages` pages ahead in a background task while the consumer works
    /// (default 0: fetch on demand). Memory stays bounded by `1 + pages` pages. Dropping the
    /// stream aborts the fetch in flight; **no request starts after the stream is dropped**.
    pub fn prefetch(mut self, pages: usize) -> Self {
        self.prefetch = pages;
        self
    }

    /// Starts from a checkpoint ([`Page::next`] or [`Position::from_error`]) instead of the
    /// first page. The caller's query parameters and strategy must be the same as when the
    /// checkpoint was taken.
    pub fn resume_from(mut self, position: Position) -> Self {
        self.start = position;
        self
    }

    /// The items, one by one.
    pub fn stream(self) -> impl Stream<Item = Result<T>> + Send + 'static {
        // Each page's items are handed on by iterating its `Vec`, not yielded one by one from a
        // generator (which passes every item through a thread-local slot): per item, that was
        // the largest cost next to a loop over the page. The page stream ends after its first
        // error, so the error is the last item here too.
        self.pages()
            .map_ok(|page| futures_util::stream::iter(page.into_iter().map(Ok)))
            .try_flatten()
    }

    /// The pages, with their checkpoints ([`Page::next`]) and total.
    pub fn pages(self) -> impl Stream<Item = Result<Page<T>>> + Send + 'static {
        let depth = self.prefetch;
        let pages = walk::pages(self);
        if depth == 0 {
            return pages.left_stream();
        }
        walk::prefetched(pages, depth).right_stream()
    }
}

/// Sets the query parameter `name` to `value`, replacing any value it had.
pub(crate) fn set_query_param(url: &mut Url, name: &str, value: &str) {
    // The common case, a parameter not there yet, appends without rebuilding the query.
    if !url.query_pairs().any(|(key, _)| key == name) {
        url.query_pairs_mut().append_pair(name, value);
        return;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
}

// ===== Client and RequestBuilder: listings =====
//
// Here rather than in client.rs, so that the client does not depend on pagination: pagination
// builds on the client's requests, not the other way round.

impl Client {
    /// Lists a paginated endpoint as a stream of items or pages; see [`crate::pagination`].
    ///
    /// ```no_run
    /// # async fn run(client: authed::Client) -> authed::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let pagination = authed::Pagination::cursor("cursor", "/next_cursor").items_at("/ids");
    /// let ids: Vec<u64> = client.paginate::<u64>("/ids", pagination).stream().try_collect().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The same as `client.get(path).paginate(pagination)`; build the listing from
    /// [`RequestBuilder::paginate`] to send headers, a timeout or a retry policy with every page.
    pub fn paginate<T>(&self, path: &str, pagination: Pagination) -> Paginator<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.get(path).paginate(pagination)
    }
}

impl RequestBuilder {
    /// Lists a paginated endpoint starting from this request: **every page is sent as a copy
    /// of it**, with its headers, timeout and retry policy (its query parameters too, except on
    /// pages reached through a next URL, which is requested as the server wrote it). See
    /// [`crate::pagination`].
    ///
    /// ```no_run
    /// # async fn run(client: authed::Client) -> authed::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let ids: Vec<u64> = client
    ///     .get("/ids")
    ///     .header("X-Tenant", "acme")
    ///     .timeout(std::time::Duration::from_secs(5))
    ///     .paginate::<u64>(authed::Pagination::link_header())
    ///     .stream()
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn paginate<T>(self, pagination: Pagination) -> Paginator<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        Paginator::new(self, pagination)
    }
}

/// A strategy's reading of one page response, for the fuzz targets (`src/fuzz.rs`): the
/// response parts are built here because only this module can build a [`PageResponse`].
#[cfg(fuzzing)]
pub(crate) fn fuzz_next(
    strategy: &dyn Strategy,
    url: &Url,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Option<Marker>> {
    let request = PageRequest {
        marker: Marker::Start,
        page_size: Some(100),
        wanted: None,
    };
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    strategy.next(&PageResponse {
        request: &request,
        url,
        headers,
        bytes: &bytes,
        raws: &[],
        items_at: None,
        item_count: body.as_array().map_or(0, Vec::len),
        total: None,
        body: OnceLock::from(body.clone()),
    })
}
