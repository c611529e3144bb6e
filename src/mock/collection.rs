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
///
/// [`with_quirk`](Paging::with_quirk) adds the misbehaviours of real servers ([`Quirk`]).
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
    /// Another style with the misbehaviours of a real server; built by
    /// [`with_quirk`](Paging::with_quirk).
    Quirky {
        /// The style.
        paging: Box<Paging>,
        /// What the server does wrong.
        quirks: Vec<Quirk>,
    },
}

/// A misbehaviour of a real server, added to a [`Paging`] style with
/// [`Paging::with_quirk`], so that clients can be tested against it.
///
/// ```
/// use authed::mock::{Paging, Quirk};
///
/// // json-server: without `?page=` on the first request, no `Link` header at all.
/// let paging = Paging::link_header().with_quirk(Quirk::NoNextWithoutPageParam);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quirk {
    /// A request without the page parameter gets the first page, the total (`X-Total-Count`
    /// or `count`) and no next page: no `Link` header, a `null` `next` (as json-server does
    /// without `_page`). For [`Paging::LinkHeader`] and [`Paging::NextUrl`].
    NoNextWithoutPageParam,
    /// The pages wrap around after this many: the page after the last one is the first again,
    /// and the cursor or next link after it points back to the second. `WrapAfterPages(1)` is
    /// a server that ignores the page, offset or cursor parameter and answers the first page
    /// every time.
    WrapAfterPages(usize),
    /// The cursor of the second page is the empty string, and `?cursor=` (empty) asks for it.
    /// For [`Paging::Cursor`].
    EmptyCursorForSecondPage,
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

    /// The same style with a misbehaviour of real servers (see [`Quirk`]); quirks add up.
    #[must_use]
    pub fn with_quirk(self, quirk: Quirk) -> Self {
        match self {
            Self::Quirky { paging, mut quirks } => {
                quirks.push(quirk);
                Self::Quirky { paging, quirks }
            }
            paging => Self::Quirky {
                paging: Box::new(paging),
                quirks: vec![quirk],
            },
        }
    }

    /// The style without its quirks, and the quirks.
    fn parts(&self) -> (&Self, &[Quirk]) {
        match self {
            Self::Quirky { paging, quirks } => (paging.parts().0, quirks),
            paging => (paging, &[]),
        }
    }

    /// The position and size parameters, which are never filters.
    fn params(&self) -> [&str; 2] {
        match self {
            Self::Quirky { paging, .. } => paging.params(),
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
    let (paging, quirks) = paging.parts();
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
    let empty_cursor = quirks.contains(&Quirk::EmptyCursorForSecondPage);
    let (start, page) = match paging {
        Paging::Offset { .. } => match number(param(position_param), 0, 0) {
            Ok(skip) => (skip as usize, 0),
            Err(()) => return invalid_param(position_param, "a non-negative integer"),
        },
        Paging::Cursor { .. } => match param(position_param) {
            None => (0, 0),
            Some("") if empty_cursor => (size, 0),
            Some(cursor) => match decode_cursor(cursor) {
                Some(offset) => (offset, 0),
                None => return invalid_param(position_param, "a cursor this API returned"),
            },
        },
        _ => match number(param(position_param), 1, 1) {
            Ok(page) => ((page as usize - 1).saturating_mul(size), page),
            Err(()) => return invalid_param(position_param, "a page number starting at 1"),
        },
    };
    // A wrapping server answers the first pages again past its last one.
    let wrap = quirks.iter().find_map(|q| match q {
        Quirk::WrapAfterPages(n) => Some(n.saturating_mul(size).max(1)),
        _ => None,
    });
    let (start, page) = match wrap {
        Some(span) => (
            start % span,
            (page.max(1) - 1) % (span / size).max(1) as u64 + 1,
        ),
        None => (start, page.max(1)),
    };
    let end = start.saturating_add(size).min(total);
    let items: Vec<&Value> = matching.get(start..end).unwrap_or_default().to_vec();
    let more = end < total
        && !(quirks.contains(&Quirk::NoNextWithoutPageParam) && param(position_param).is_none());
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
            let next = more.then(|| {
                if empty_cursor && end == size {
                    String::new()
                } else {
                    URL_SAFE_NO_PAD.encode(format!("offset:{end}"))
                }
            });
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
            let reply = Reply::json(StatusCode::OK, &items);
            if quirks.contains(&Quirk::NoNextWithoutPageParam) {
                if param(position_param).is_none() {
                    return reply.header("x-total-count", total);
                }
                return reply
                    .header("x-total-count", total)
                    .header("link", links.join(", "));
            }
            reply.header("link", links.join(", "))
        }
        Paging::Quirky { .. } => Reply::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "nested quirky paging styles are flattened by `Paging::parts`",
        ),
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
