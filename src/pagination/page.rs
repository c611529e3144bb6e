//! Page-number pagination: `?page=3&per_page=100`.

use url::Url;

use super::{Marker, PageRequest, PageResponse, Strategy, set_query_param};
use crate::Result;

/// Page-number pagination: `?{page}=<n>&{per_page}=<page size>`, as in the WordPress REST API
/// (`page`/`per_page`) and Shopify's legacy REST API (`page`/`limit`).
///
/// Pages are numbered from 1 unless [`first_page`](PageNumber::first_page) says otherwise.
/// **A limit never changes the page size**: page `n` holds the items
/// `(n - first) * size ..`, so asking for fewer items on the last page would move its start.
/// The last page is fetched whole and cut, and its [`Page::next`](super::Page::next) points
/// inside it. Without a [page size](super::Pagination::page_size) `{per_page}` is not sent.
///
/// The listing ends on an empty page, when the known total is reached, or, when no total is
/// known, on a page shorter than the page size.
#[derive(Clone, Debug)]
pub struct PageNumber {
    page: String,
    per_page: String,
    first: u64,
}

impl PageNumber {
    /// Page-number pagination with these parameter names, from page 1.
    pub fn new(page: impl Into<String>, per_page: impl Into<String>) -> Self {
        Self {
            page: page.into(),
            per_page: per_page.into(),
            first: 1,
        }
    }

    /// The number of the first page (0 for zero-based APIs).
    #[must_use]
    pub fn first_page(mut self, first: u64) -> Self {
        self.first = first;
        self
    }

    fn number(&self, marker: &Marker) -> u64 {
        match marker {
            Marker::Page(page) => *page,
            _ => self.first,
        }
    }
}

impl Strategy for PageNumber {
    fn prepare(&self, request: &PageRequest, url: &mut Url) -> Result<()> {
        set_query_param(url, &self.page, &self.number(request.marker()).to_string());
        if let Some(size) = request.page_size() {
            set_query_param(url, &self.per_page, &size.to_string());
        }
        Ok(())
    }

    fn next(&self, response: &PageResponse<'_>) -> Result<Option<Marker>> {
        let request = response.request();
        if response.is_last_by_size(request.page_size()) {
            return Ok(None);
        }
        Ok(Some(Marker::Page(
            self.number(request.marker()).saturating_add(1),
        )))
    }
}
