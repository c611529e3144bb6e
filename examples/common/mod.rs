//! Shared by the `quickstart` and `export` examples: the paging style named on the command
//! line (`--paging`), as the client's [`Pagination`] and as the embedded mock API's [`Paging`],
//! and the listing the mock serves when an example is given a path of its own.

use std::{fmt, str::FromStr};

use authed::{
    Pagination,
    mock::{MockApi, Paging},
    pagination::{Cursor, LinkHeader, NextUrl, PageNumber},
};

/// The path the embedded mock API serves its Widgets API listing at.
pub const WIDGETS_PATH: &str = "/v1/widgets";

/// The syntax of `--paging`, for usage messages.
pub const PAGING_SYNTAX: &str = "offset[:SKIP,TAKE] | page[:PAGE,PER_PAGE] | \
     cursor[:PARAM,POINTER[,SIZE]] | next[:POINTER[,SIZE]] | link[:SIZE]";

/// How a listing pages, with the parameter names and JSON pointers the API uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Style {
    /// `?skip=20&take=10`.
    Offset { skip: String, take: String },
    /// `?page=3&per_page=10`, pages numbered from 1.
    Page { page: String, per_page: String },
    /// `?cursor=…&limit=10`, the next cursor at a JSON pointer in the body.
    Cursor {
        param: String,
        pointer: String,
        size: String,
    },
    /// The next page's URL at a JSON pointer in the body.
    Next { pointer: String, size: String },
    /// The `rel="next"` URL of the `Link` header.
    Link { size: String },
}

impl Default for Style {
    /// The Widgets API's style.
    fn default() -> Self {
        Self::Offset {
            skip: "skip".into(),
            take: "take".into(),
        }
    }
}

impl FromStr for Style {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, args) = text.split_once(':').unwrap_or((text, ""));
        let args: Vec<String> = if args.is_empty() {
            Vec::new()
        } else {
            args.split(',').map(|arg| arg.trim().to_owned()).collect()
        };
        if args.iter().any(String::is_empty) {
            return Err(format!("--paging {text:?}: an empty name"));
        }
        // The names given, then the defaults for the ones left out.
        let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
        let (style, max_args) = match kind {
            "offset" => (
                Self::Offset {
                    skip: arg(0, "skip"),
                    take: arg(1, "take"),
                },
                2,
            ),
            "page" => (
                Self::Page {
                    page: arg(0, "page"),
                    per_page: arg(1, "per_page"),
                },
                2,
            ),
            "cursor" => (
                Self::Cursor {
                    param: arg(0, "cursor"),
                    pointer: arg(1, "/next_cursor"),
                    size: arg(2, "limit"),
                },
                3,
            ),
            "next" => (
                Self::Next {
                    pointer: arg(0, "/next"),
                    size: arg(1, "page_size"),
                },
                2,
            ),
            "link" => (
                Self::Link {
                    size: arg(0, "per_page"),
                },
                1,
            ),
            other => {
                return Err(format!(
                    "--paging: unknown style {other:?}; use {PAGING_SYNTAX}"
                ));
            }
        };
        if args.len() > max_args {
            return Err(format!(
                "--paging {text:?}: {kind} takes at most {max_args} name(s)"
            ));
        }
        let pointers = match &style {
            Self::Cursor { pointer, .. } | Self::Next { pointer, .. } => Some(pointer),
            _ => None,
        };
        if let Some(pointer) = pointers.filter(|p| !p.starts_with('/')) {
            return Err(format!(
                "--paging {text:?}: {pointer:?} is not a JSON pointer (they start with /)"
            ));
        }
        Ok(style)
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Offset { skip, take } => write!(f, "offset:{skip},{take}"),
            Self::Page { page, per_page } => write!(f, "page:{page},{per_page}"),
            Self::Cursor {
                param,
                pointer,
                size,
            } => write!(f, "cursor:{param},{pointer},{size}"),
            Self::Next { pointer, size } => write!(f, "next:{pointer},{size}"),
            Self::Link { size } => write!(f, "link:{size}"),
        }
    }
}

impl Style {
    /// The client's strategy; `items_at` is the JSON pointer to the items in an envelope body.
    pub fn pagination(&self, items_at: Option<&str>, page_size: u64) -> Pagination {
        let pagination = match self {
            Self::Offset { skip, take } => Pagination::offset(skip, take),
            Self::Page { page, per_page } => Pagination::new(PageNumber::new(page, per_page)),
            Self::Cursor {
                param,
                pointer,
                size,
            } => Pagination::new(Cursor::new(param, pointer).size_param(size)),
            Self::Next { pointer, size } => Pagination::new(NextUrl::new(pointer).size_param(size)),
            Self::Link { size } => Pagination::new(LinkHeader::new().size_param(size)),
        };
        let pagination = pagination.page_size(page_size);
        match items_at {
            Some(pointer) => pagination.items_at(pointer),
            None => pagination,
        }
    }

    /// The embedded mock API's paging for the same style. The mock's bodies have fixed shapes:
    /// cursor pages are `{"items": [...], "next_cursor": ...}`, next-URL pages
    /// `{"results": [...], "next": ...}`, the others root arrays.
    pub fn mock_paging(&self) -> Paging {
        match self.clone() {
            Self::Offset { skip, take } => Paging::offset(skip, take),
            Self::Page { page, per_page } => Paging::page_number(page, per_page),
            Self::Cursor { param, size, .. } => Paging::Cursor {
                param,
                size_param: size,
            },
            Self::Next { size, .. } => Paging::NextUrl {
                page_param: "page".into(),
                size_param: size,
            },
            Self::Link { size } => Paging::LinkHeader {
                page_param: "page".into(),
                size_param: size,
            },
        }
    }
}

/// Serves `count` items (`{"id": n, "name": "Item n"}`) at `path` on the mock API in `style`,
/// unless `path` is the Widgets API listing, which the mock serves already.
pub async fn serve_listing(api: &MockApi, path: &str, style: &Style, count: u64) {
    if path == WIDGETS_PATH {
        return;
    }
    let items = (1..=count)
        .map(|id| serde_json::json!({ "id": id, "name": format!("Item {id}") }))
        .collect();
    api.collection(path, items, style.mock_paging()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_parses_with_defaults_and_with_names() {
        for (text, expected) in [
            ("offset", "offset:skip,take"),
            ("offset:_start,_limit", "offset:_start,_limit"),
            ("page", "page:page,per_page"),
            ("page:p,size", "page:p,size"),
            ("cursor", "cursor:cursor,/next_cursor,limit"),
            (
                "cursor:cursor,/response_metadata/next_cursor",
                "cursor:cursor,/response_metadata/next_cursor,limit",
            ),
            ("next", "next:/next,page_size"),
            ("next:/links/next,size", "next:/links/next,size"),
            ("link", "link:per_page"),
            ("link:page_size", "link:page_size"),
        ] {
            let style: Style = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(style.to_string(), expected);
        }
        assert_eq!("offset".parse::<Style>().unwrap(), Style::default());
    }

    #[test]
    fn mistakes_are_explained() {
        for (text, expected) in [
            ("seek", "unknown style \"seek\""),
            ("offset:skip,", "an empty name"),
            ("link:a,b", "link takes at most 1 name(s)"),
            ("cursor:cursor,next_cursor", "not a JSON pointer"),
            ("next:next", "not a JSON pointer"),
        ] {
            let err = text.parse::<Style>().unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
