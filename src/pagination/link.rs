//! `Link` header pagination (RFC 8288): `Link: <https://api.example.com/items?page=2>; rel="next"`.

use url::Url;

use super::{Marker, PageRequest, PageResponse, Strategy, cursor::follow};
use crate::Result;

/// `Link` header pagination: follows the `rel="next"` link of each response (RFC 8288), as in
/// the GitHub REST API and json-server.
///
/// No `next` link ends the listing. Relative links are resolved against the page's URL.
/// **A link on another origin than the API is refused** with
/// [`ErrorKind::Pagination`](crate::ErrorKind::Pagination) and never requested.
///
/// With [`size_param`](LinkHeader::size_param) and a [page size](super::Pagination::page_size),
/// the first request asks for that page size (GitHub: `per_page`); the links carry it on.
/// **A page size without `size_param` is refused**
/// ([`ErrorKind::Config`](crate::ErrorKind::Config)), not silently dropped.
///
/// Some servers page only when the first request names a page: json-server answers a request
/// without `_page` with no `Link` header at all. Add that parameter to the first request
/// (`.query(&[("_page", "1")])`); with a total announced (`X-Total-Count`), a listing that
/// stops short of it fails with [`Reason::EndedShort`](super::Reason::EndedShort) instead of
/// ending in silence.
#[derive(Clone, Debug, Default)]
pub struct LinkHeader {
    size_param: Option<String>,
}

impl LinkHeader {
    /// `Link` header pagination.
    pub fn new() -> Self {
        Self::default()
    }

    /// The query parameter for the page size on the first request.
    #[must_use]
    pub fn size_param(mut self, name: impl Into<String>) -> Self {
        self.size_param = Some(name.into());
        self
    }
}

impl Strategy for LinkHeader {
    fn prepare(&self, request: &PageRequest, url: &mut Url) -> Result<()> {
        follow(request, url, self.size_param.as_deref())
    }

    fn next(&self, response: &PageResponse<'_>) -> Result<Option<Marker>> {
        let next = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| find_rel(value, "next"));
        match next {
            Some(target) => Ok(Some(Marker::Url(response.resolve(target)?.into()))),
            None => Ok(None),
        }
    }

    fn sends_page_size(&self) -> bool {
        self.size_param.is_some()
    }
}

/// The target of the first link in a `Link` header value whose `rel` includes `rel`.
///
/// Targets are between `<` and `>` and may contain commas; parameters are `; name=value` or
/// `; name="value"`, and `rel` may list several space-separated types.
fn find_rel<'a>(header: &'a str, rel: &str) -> Option<&'a str> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        rest = &rest[end + 1..];
        // The parameters run to the next link, that is to the next `<` outside quotes.
        let mut in_quotes = false;
        let params_end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == '<' && !in_quotes
            })
            .map_or(rest.len(), |(i, _)| i);
        let params = &rest[..params_end];
        rest = &rest[params_end..];
        let matches = params
            .split(';')
            .filter_map(|param| param.split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_end_matches(',')
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case(rel))
            });
        if matches {
            return Some(target.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::find_rel;

    #[test]
    fn finds_next_among_several_links() {
        let header = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            find_rel(header, "next"),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(
            find_rel(header, "last"),
            Some("https://api.github.com/repositories/1/issues?page=5")
        );
        assert_eq!(find_rel(header, "prev"), None);
    }

    #[test]
    fn handles_commas_in_targets_unquoted_and_multiple_rels() {
        let header = r#"</items?ids=1,2,3&page=1>; rel=prev, </items?ids=1,2,3&page=3>; title="a, <b>"; rel="next last""#;
        assert_eq!(find_rel(header, "next"), Some("/items?ids=1,2,3&page=3"));
        assert_eq!(find_rel(header, "prev"), Some("/items?ids=1,2,3&page=1"));
    }

    #[test]
    fn garbage_finds_nothing() {
        for header in [
            "",
            "<",
            "<unterminated; rel=next",
            "rel=next",
            ";;;,,,",
            "<>",
        ] {
            assert_eq!(find_rel(header, "next"), None, "{header:?}");
        }
        assert_eq!(find_rel("<>; rel=next", "next"), Some(""));
    }
}
