//! Pagination driven by the body: a cursor (`?cursor=...`) or a next URL.

use url::Url;

use super::{Marker, PageRequest, PageResponse, Strategy, decode::Scalar, set_query_param};
use crate::{Error, ErrorKind, Result};

/// Cursor pagination: `?{param}=<cursor>`, the cursor being read at a JSON pointer of the
/// previous body, as in Slack's Web API (`cursor`, `"/response_metadata/next_cursor"`) and
/// many GraphQL-inspired REST APIs.
///
/// The first request has no cursor. A missing or `null` cursor ends the listing, and so does
/// an empty one unless [`accept_empty`](Cursor::accept_empty) says the API uses `""` as a
/// cursor; a numeric cursor is used as its decimal text. An empty page that still has a
/// cursor does not end the listing (up to [`max_empty_pages`](super::Pagination::max_empty_pages)
/// in a row).
///
/// With [`size_param`](Cursor::size_param) and a [page size](super::Pagination::page_size),
/// each request asks for the page size, lowered on the last page to what a limit still needs.
/// **A page size without `size_param` is refused** ([`ErrorKind::Config`](crate::ErrorKind::Config)),
/// not silently dropped.
#[derive(Clone, Debug)]
pub struct Cursor {
    param: String,
    pointer: String,
    size_param: Option<String>,
    accept_empty: bool,
}

impl Cursor {
    /// Cursor pagination sending `param`, reading the next cursor at the JSON `pointer`.
    pub fn new(param: impl Into<String>, pointer: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            pointer: pointer.into(),
            size_param: None,
            accept_empty: false,
        }
    }

    /// The query parameter for the page size (Slack: `limit`).
    #[must_use]
    pub fn size_param(mut self, name: impl Into<String>) -> Self {
        self.size_param = Some(name.into());
        self
    }

    /// Whether an empty string is a cursor like any other, sent back as `?{param}=` (default
    /// `false`: an empty cursor ends the listing, as in Slack's API). When `true`, only a
    /// missing or `null` cursor ends it.
    #[must_use]
    pub fn accept_empty(mut self, accept: bool) -> Self {
        self.accept_empty = accept;
        self
    }
}

impl Strategy for Cursor {
    fn prepare(&self, request: &PageRequest, url: &mut Url) -> Result<()> {
        if let (Some(name), Some(size)) = (&self.size_param, request.size()) {
            set_query_param(url, name, &size.to_string());
        }
        if let Marker::Cursor(cursor) = request.marker() {
            set_query_param(url, &self.param, cursor);
        }
        Ok(())
    }

    fn next(&self, response: &PageResponse<'_>) -> Result<Option<Marker>> {
        let Some(raw) = response.pointer(&self.pointer) else {
            return Ok(None);
        };
        let cursor = match Scalar::of(raw) {
            Scalar::Null => return Ok(None),
            Scalar::Text(cursor) | Scalar::Number(cursor) => cursor,
            Scalar::Other => return Err(not_text("cursor", &self.pointer)),
        };
        Ok((self.accept_empty || !cursor.is_empty()).then_some(Marker::Cursor(cursor)))
    }

    fn sends_page_size(&self) -> bool {
        self.size_param.is_some()
    }

    fn pointers(&self) -> Vec<String> {
        vec![self.pointer.clone()]
    }
}

/// Next-URL pagination: follows the URL at a JSON pointer of each body, as in Django REST
/// Framework (`{"count": 1234, "next": "https://.../items/?page=2", "results": [...]}`, used
/// with `.items_at("/results").total_at("/count")`).
///
/// A missing, `null` or empty URL ends the listing. Relative URLs are resolved against the
/// page's URL. **A URL on another origin than the API is refused** with
/// [`ErrorKind::Pagination`] and never requested. The next URL is requested as written: it is
/// expected to carry the filters and the page size of the first request.
///
/// With [`size_param`](NextUrl::size_param) and a [page size](super::Pagination::page_size),
/// the first request asks for that page size. **A page size without `size_param` is
/// refused** ([`ErrorKind::Config`](crate::ErrorKind::Config)), not silently dropped.
#[derive(Clone, Debug)]
pub struct NextUrl {
    pointer: String,
    size_param: Option<String>,
}

impl NextUrl {
    /// Next-URL pagination reading the URL at the JSON `pointer`.
    pub fn new(pointer: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            size_param: None,
        }
    }

    /// The query parameter for the page size on the first request (DRF: `page_size`).
    #[must_use]
    pub fn size_param(mut self, name: impl Into<String>) -> Self {
        self.size_param = Some(name.into());
        self
    }
}

impl Strategy for NextUrl {
    fn prepare(&self, request: &PageRequest, url: &mut Url) -> Result<()> {
        follow(request, url, self.size_param.as_deref())
    }

    fn next(&self, response: &PageResponse<'_>) -> Result<Option<Marker>> {
        let Some(raw) = response.pointer(&self.pointer) else {
            return Ok(None);
        };
        let next = match Scalar::of(raw) {
            Scalar::Null => return Ok(None),
            Scalar::Text(next) if next.is_empty() => return Ok(None),
            Scalar::Text(next) => next,
            Scalar::Number(_) | Scalar::Other => return Err(not_text("next URL", &self.pointer)),
        };
        Ok(Some(Marker::Url(response.resolve(&next)?.into())))
    }

    fn sends_page_size(&self) -> bool {
        self.size_param.is_some()
    }

    fn pointers(&self) -> Vec<String> {
        vec![self.pointer.clone()]
    }
}

/// The request of a strategy that follows URLs: the first page as configured (with its page
/// size), the others at their URL.
pub(super) fn follow(request: &PageRequest, url: &mut Url, size_param: Option<&str>) -> Result<()> {
    match request.marker() {
        Marker::Url(next) => {
            *url = Url::parse(next).map_err(|e| {
                Error::new(ErrorKind::Pagination, "the next URL is not a valid URL").with_source(e)
            })?;
        }
        _ => {
            if let (Some(name), Some(size)) = (size_param, request.size()) {
                set_query_param(url, name, &size.to_string());
            }
        }
    }
    Ok(())
}

fn not_text(what: &str, pointer: &str) -> Error {
    Error::new(
        ErrorKind::Decode,
        format!("the {what} at {pointer:?} has an unexpected JSON type"),
    )
}
