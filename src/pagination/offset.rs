//! Offset pagination: `?skip=200&take=100`.

use url::Url;

use super::{Marker, PageRequest, PageResponse, Strategy, set_query_param};
use crate::Result;

/// Offset pagination: `?{skip}=<items before the page>&{take}=<page size>`, as in many REST
/// APIs (`offset`/`limit`, `skip`/`take`, json-server's `_start`/`_limit`).
///
/// The first request already carries `{skip}=0`. With a [page size](super::Pagination::page_size)
/// and a [limit](super::Paginator::limit), the last request asks for exactly the items still
/// needed. Without a page size `{take}` is not sent and the server's default applies.
///
/// The listing ends on an empty page, on a page shorter than the size asked for when no total
/// is known, or when the known total is reached. The next offset counts the items received,
/// so a server that caps the page size (asked 200, sent 100) loses nothing when it tells the
/// total (`X-Total-Count` or [`total_at`](super::Pagination::total_at)).
#[derive(Clone, Debug)]
pub struct Offset {
    skip: String,
    take: String,
}

impl Offset {
    /// Offset pagination with these parameter names.
    pub fn new(skip: impl Into<String>, take: impl Into<String>) -> Self {
        Self {
            skip: skip.into(),
            take: take.into(),
        }
    }
}

impl Strategy for Offset {
    fn prepare(&self, request: &PageRequest, url: &mut Url) -> Result<()> {
        let offset = match request.marker() {
            Marker::Offset(offset) => *offset,
            _ => 0,
        };
        set_query_param(url, &self.skip, &offset.to_string());
        if let Some(size) = request.size() {
            set_query_param(url, &self.take, &size.to_string());
        }
        Ok(())
    }

    fn next(&self, response: &PageResponse<'_>) -> Result<Option<Marker>> {
        let request = response.request();
        if response.is_last_by_size(request.size()) {
            return Ok(None);
        }
        let count = response.item_count() as u64;
        let offset = match request.marker() {
            Marker::Offset(offset) => *offset,
            _ => 0,
        };
        Ok(Some(Marker::Offset(offset.saturating_add(count))))
    }
}
