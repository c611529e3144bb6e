//! `GET /v1/widgets` as a builder: filters, then a stream of widgets or of pages.

use futures_util::Stream;
use serde::Serialize;

use super::{Color, MAX_PAGE_SIZE, Widget};
use crate::{
    Client, Pagination, Result,
    pagination::{Page, Paginator, Position},
};

/// A widget listing being configured, from [`WidgetsHandler::list`](super::WidgetsHandler::list).
///
/// The filters are the fields this struct serializes into the query string
/// (`?color=blue`); paging (`skip`/`take`) is added per request. The stream owns a clone of
/// the client, so it outlives the builder and can be spawned or stored.
///
/// ```no_run
/// use futures_util::TryStreamExt;
/// # async fn run(client: authed::Client) -> authed::Result<()> {
/// let mut pages = std::pin::pin!(client.widgets().list().color("green").page_size(25).pages());
/// while let Some(page) = pages.try_next().await? {
///     println!("{} widgets; resume from {:?}", page.items().len(), page.next());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Serialize)]
#[must_use = "a listing does nothing until it is turned into a stream and polled"]
pub struct ListWidgets<'c> {
    #[serde(skip)]
    client: &'c Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<Color>,
    #[serde(skip)]
    page_size: u64,
    #[serde(skip)]
    limit: Option<u64>,
    #[serde(skip)]
    prefetch: usize,
    #[serde(skip)]
    resume_from: Option<Position>,
}

impl<'c> ListWidgets<'c> {
    pub(super) fn new(client: &'c Client) -> Self {
        Self {
            client,
            color: None,
            page_size: MAX_PAGE_SIZE,
            limit: None,
            prefetch: 0,
            resume_from: None,
        }
    }

    /// Only widgets of this color (`"blue"` or [`Color::Blue`]).
    pub fn color(mut self, color: impl Into<Color>) -> Self {
        self.color = Some(color.into());
        self
    }

    /// Widgets per request, 1 to [`MAX_PAGE_SIZE`] (the default, for the fewest requests);
    /// other values are clamped into that range, because the server caps bigger pages and a
    /// capped page would look like the last one.
    pub fn page_size(mut self, size: u64) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// Stops after `n` widgets; the last request asks only for the widgets still needed.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Fetches up to `pages` pages ahead while the consumer works (default 0).
    /// See [`Paginator::prefetch`].
    pub fn prefetch(mut self, pages: usize) -> Self {
        self.prefetch = pages;
        self
    }

    /// Continues a listing from a checkpoint: a [`Page::next`] saved earlier, or the
    /// [`Position::from_error`] of a failed stream. Use the same filters as when it was taken.
    pub fn resume_from(mut self, position: Position) -> Self {
        self.resume_from = Some(position);
        self
    }

    /// The widgets, one by one. Errors end the stream and carry the position to resume from.
    pub fn stream(self) -> impl Stream<Item = Result<Widget>> + Send + 'static {
        self.paginator().stream()
    }

    /// The widgets page by page, each with its checkpoint ([`Page::next`]) and the total
    /// count the server announced (`X-Total-Count`).
    pub fn pages(self) -> impl Stream<Item = Result<Page<Widget>>> + Send + 'static {
        self.paginator().pages()
    }

    fn paginator(self) -> Paginator<Widget> {
        let pagination = Pagination::offset("skip", "take").page_size(self.page_size);
        let mut paginator = self
            .client
            .paginate::<Widget>("/v1/widgets", pagination)
            .query(&self)
            .prefetch(self.prefetch);
        if let Some(n) = self.limit {
            paginator = paginator.limit(n);
        }
        if let Some(position) = self.resume_from {
            paginator = paginator.resume_from(position);
        }
        paginator
    }
}
