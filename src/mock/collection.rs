//! Collections: JSON items served in pages, filtered by query parameters.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::Request;

use super::server::{Cx, Handler, Reply, Shared};

/// Items per page when the request does not say.
pub(super) const DEFAULT_PAGE_SIZE: usize = 10;

/// How a collection pages, with the query parameter names it reads.
///
/// Every style takes a page size parameter (default 10 items, capped at
/// [`max_page_size`](super::MockApiBuilder::max_page_size)), filters by any top-level field
/// given as a query parameter, and keeps every other query parameter in the links it returns.
///
/// | style | request | body | next page |
/// |---|---|---|---|
/// | [`Offset`](Paging::Offset) | `?skip=20&take=10` | `[...]` | the client adds `take` to `skip`; `X-Total-Count` |
/// | [`PageNumber`](Paging::PageNumber) | `?page=3&per_page=10` (1-based) | `[...]` | the client asks for the next page; `X-Total-Count` |
/// | [`Cursor`](Paging::Cursor) | `?cursor=…&limit=10` | `{"items": [...], "next_cursor": "…" \| null}` | the opaque cursor |
/// | [`NextUrl`](Paging::NextUrl) | `?page=3&page_size=10` | `{"results": [...], "next": "http://…" \| null, "count": N}` | the absolute `next` URL |
/// | [`LinkHeader`](Paging::LinkHeader) | `?page=3&per_page=10` | `[...]` | `Link: <http://…>; rel="next"` (RFC 8288) |
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Paging {
    /// Offset and count; the body is the page as a root array.
    Offset {
        /// How many items to skip (default 0).
        skip_param: String,
        /// How many items to return.
        take_param: String,
    },
    /// 1-based page numbers; the body is the page as a root array.
    PageNumber {
        /// The page number (default 1).
        page_param: String,
        /// Items per page.
        size_param: String,
    },
    /// An opaque cursor from the previous body's `next_cursor`.
    Cursor {
        /// The cursor (absent on the first request).
        param: String,
        /// Items per page.
        size_param: String,
    },
    /// The previous body's `next`, an absolute URL (Django REST framework style).
    NextUrl {
        /// The page number in the URLs the server builds (default 1).
        page_param: String,
        /// Items per page.
        size_param: String,
    },
    /// The `rel="next"` URL of the `Link` header (GitHub style); `rel="last"` is sent too.
    LinkHeader {
        /// The page number in the URLs the server builds (default 1).
        page_param: String,
        /// Items per page.
        size_param: String,
    },
}

impl Paging {
    /// `?{skip}=20&{take}=10`, answering a root array with `X-Total-Count`.
    pub fn offset(skip: impl Into<String>, take: impl Into<String>) -> Self {
        Self::Offset {
            skip_param: skip.into(),
            take_param: take.into(),
        }
    }

    /// `?{page}=3&{size}=10` (1-based), answering a root array with `X-Total-Count`.
    pub fn page_number(page: impl Into<String>, size: impl Into<String>) -> Self {
        Self::PageNumber {
            page_param: page.into(),
            size_param: size.into(),
        }
    }

    /// `?{param}=<cursor>&limit=10`, answering `{"items": [...], "next_cursor": ...}`.
    pub fn cursor(param: impl Into<String>) -> Self {
        Self::Cursor {
            param: param.into(),
            size_param: "limit".into(),
        }
    }

    /// `?page=3&page_size=10`, answering `{"results": [...], "next": <url>, "count": N}`.
    pub fn next_url() -> Self {
        Self::NextUrl {
            page_param: "page".into(),
            size_param: "page_size".into(),
        }
    }

    /// `?page=3&per_page=10`, answering a root array with a `Link` header.
    pub fn link_header() -> Self {
        Self::LinkHeader {
            page_param: "page".into(),
            size_param: "per_page".into(),
        }
    }

    /// The position and size parameters, which are never filters.
    fn params(&self) -> [&str; 2] {
        match self {
            Self::Offset {
                skip_param,
                take_param,
            } => [skip_param, take_param],
            Self::Cursor { param, size_param } => [param, size_param],
            Self::PageNumber {
                page_param,
                size_param,
            }
            | Self::NextUrl {
                page_param,
                size_param,
            }
            | Self::LinkHeader {
                page_param,
                size_param,
            } => [page_param, size_param],
        }
    }
}

/// A collection registered with [`MockApi::collection`](super::MockApi::collection).
pub(super) struct Collection {
    pub(super) items: Vec<Value>,
    pub(super) paging: Paging,
}

impl Handler for Collection {
    const PROTECTED: bool = true;

    fn handle(&self, request: &Request, cx: &mut Cx<'_>) -> Reply {
        if request.method != Method::GET {
            return Reply::method_not_allowed(request, "GET");
        }
        page(&self.items, &self.paging, request, cx)
    }
}

/// Answers one page of `items` as `paging` says, after the filters of the query.
pub(super) fn page(items: &[Value], paging: &Paging, request: &Request, cx: &Cx<'_>) -> Reply {
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let [position_param, size_param] = paging.params();

    let filters: Vec<&(String, String)> = query
        .iter()
        .filter(|(k, _)| !paging.params().contains(&k.as_str()))
        .filter(|(k, _)| items.iter().any(|item| item.get(k).is_some()))
        .collect();
    let matching: Vec<&Value> = items
        .iter()
        .filter(|item| {
            filters
                .iter()
                .all(|(k, v)| item.get(k).is_some_and(|field| field_matches(field, v)))
        })
        .collect();
    let total = matching.len();

    let size = match number(param(size_param), DEFAULT_PAGE_SIZE as u64, 1) {
        Ok(size) => (size as usize).min(cx.api.config.max_page_size),
        Err(()) => return invalid_param(size_param, "a positive integer"),
    };
    let (start, page) = match paging {
        Paging::Offset { .. } => match number(param(position_param), 0, 0) {
            Ok(skip) => (skip as usize, 0),
            Err(()) => return invalid_param(position_param, "a non-negative integer"),
        },
        Paging::Cursor { .. } => match param(position_param).map(decode_cursor) {
            None => (0, 0),
            Some(Some(offset)) => (offset, 0),
            Some(None) => return invalid_param(position_param, "a cursor this API returned"),
        },
        _ => match number(param(position_param), 1, 1) {
            Ok(page) => ((page as usize - 1).saturating_mul(size), page),
            Err(()) => return invalid_param(position_param, "a page number starting at 1"),
        },
    };
    let end = start.saturating_add(size).min(total);
    let items: Vec<&Value> = matching.get(start..end).unwrap_or_default().to_vec();
    let more = end < total;
    let link = |page: u64| {
        link(
            cx.api,
            request,
            &query,
            [position_param, size_param],
            page,
            size,
        )
    };

    match paging {
        Paging::Offset { .. } | Paging::PageNumber { .. } => {
            Reply::json(StatusCode::OK, &items).header("x-total-count", total)
        }
        Paging::Cursor { .. } => {
            let next = more.then(|| URL_SAFE_NO_PAD.encode(format!("offset:{end}")));
            Reply::json(
                StatusCode::OK,
                &json!({ "items": items, "next_cursor": next }),
            )
        }
        Paging::NextUrl { .. } => {
            let next = more.then(|| link(page + 1));
            Reply::json(
                StatusCode::OK,
                &json!({ "results": items, "next": next, "count": total }),
            )
        }
        Paging::LinkHeader { .. } => {
            let last = total.div_ceil(size).max(1) as u64;
            let mut links = vec![format!("<{}>; rel=\"last\"", link(last))];
            if more {
                links.insert(0, format!("<{}>; rel=\"next\"", link(page + 1)));
            }
            Reply::json(StatusCode::OK, &items).header("link", links.join(", "))
        }
    }
}

/// Whether a top-level field equals a query value: strings as they are, numbers and booleans
/// as they print, arrays when an element matches.
fn field_matches(field: &Value, wanted: &str) -> bool {
    match field {
        Value::String(s) => s == wanted,
        Value::Number(_) | Value::Bool(_) => {
            serde_json::from_str::<Value>(wanted).is_ok_and(|w| w == *field)
        }
        Value::Array(elements) => elements.iter().any(|e| field_matches(e, wanted)),
        _ => false,
    }
}

/// A query number, `default` when absent, an error when not an integer of at least `min`.
fn number(value: Option<&str>, default: u64, min: u64) -> Result<u64, ()> {
    match value {
        None => Ok(default),
        Some(v) => v.parse::<u64>().ok().filter(|n| *n >= min).ok_or(()),
    }
}

fn invalid_param(name: &str, expected: &str) -> Reply {
    Reply::problem(
        StatusCode::BAD_REQUEST,
        format!("the query parameter {name} must be {expected}"),
    )
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

/// The absolute URL of `page`, keeping every other query parameter of the request.
fn link(
    api: &Shared,
    request: &Request,
    query: &[(String, String)],
    [page_param, size_param]: [&str; 2],
    page: u64,
    size: usize,
) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            query
                .iter()
                .filter(|(k, _)| k != page_param && k != size_param),
        )
        .append_pair(page_param, &page.to_string())
        .append_pair(size_param, &size.to_string())
        .finish();
    format!("{}{}?{query}", api.base_url, request.url.path())
}
