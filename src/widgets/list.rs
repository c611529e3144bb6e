//! `GET /v1/widgets` as a builder: filters, then a stream of widgets or of pages.

use futures_util::Stream;
use serde::Serialize;

use super::{Color, MAX_PAGE_SIZE, Widget};
use crate::{
    Client, Pagination, Result,
    pagination::{Page, Paginator},
};

/// A widget listing being configured, from [`WidgetsHandler::list`](super::WidgetsHandler::list).
///
/// It holds what is specific to the Widgets API — the filters, serialized into the query
/// string (`?color=blue`), and the page size the server accepts — and turns into the core
/// [`Paginator`] for everything else (limit, prefetch, resume): see [`paginator`](Self::paginator).
/// The stream owns a clone of the client, so it outlives the builder and can be spawned or stored.
///
/// ```no_run
/// use futures_util::TryStreamExt;
/// use authed::widgets::WidgetsExt;
/// # async fn run(client: authed::Client) -> authed::Result<()> {
/// let mut pages = std::pin::pin!(client.widgets().list().color("green").page_size(25).pages());
/// while let Some(page) = pages.try_next().await? {
///     println!("{} widgets; resume from {:?}", page.items().len(), page.next());
/// }
/// // The first 200 blue widgets, fetching one page ahead:
/// let blue: Vec<_> = client.widgets().list().color("blue").paginator().limit(200).prefetch(1)
///     .stream().try_collect().await?;
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
}

impl<'c> ListWidgets<'c> {
    pub(super) fn new(client: &'c Client) -> Self {
        Self {
            client,
            color: None,
            page_size: MAX_PAGE_SIZE,
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

    /// The widgets, one by one. Errors end the stream and carry the position to resume from.
    pub fn stream(self) -> impl Stream<Item = Result<Widget>> + Send + 'static {
        self.paginator().stream()
    }

    /// The widgets page by page, each with its checkpoint ([`Page::next`]) and the total
    /// count the server announced (`X-Total-Count`).
    pub fn pages(self) -> impl Stream<Item = Result<Page<Widget>>> + Send + 'static {
        self.paginator().pages()
    }

    /// The core [`Paginator`] for this listing, for its other settings: `limit`, `prefetch`,
    /// `resume_from` (use the same filters as when a checkpoint was taken).
    pub fn paginator(self) -> Paginator<Widget> {
        let pagination = Pagination::offset("skip", "take").page_size(self.page_size);
        self.client
            .paginate::<Widget>("/v1/widgets", pagination)
            .query(&self)
    }
}

impl From<ListWidgets<'_>> for Paginator<Widget> {
    fn from(list: ListWidgets<'_>) -> Self {
        list.paginator()
    }
}
