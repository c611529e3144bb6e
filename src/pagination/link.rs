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

/// The target of the first link in a `Link` header value whose `rel` includes `rel`
/// (compared without case), per RFC 8288 §3.
///
/// Targets are between `<` and `>` and may contain commas and semicolons; parameters are
/// `; name`, `; name=token` or `; name="quoted string"` (with `\` escapes, and commas,
/// semicolons and angle brackets inside); `rel` may list several space-separated types, and
/// only the first `rel` of a link counts. Anything malformed ends the search (an unterminated
/// `<`) or is skipped, never a panic.
fn find_rel<'a>(header: &'a str, rel: &str) -> Option<&'a str> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        rest = &rest[end + 1..];
        let mut first_rel: Option<String> = None;
        // The parameters, up to the comma that ends this link.
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            match rest.as_bytes().first() {
                Some(b';') => rest = &rest[1..],
                // The end of the link (or of the header), or garbage: skip it.
                _ => break,
            }
            let (name, value, after) = param(rest);
            rest = after;
            if first_rel.is_none() && name.eq_ignore_ascii_case("rel") {
                first_rel = Some(value.unwrap_or_default());
            }
        }
        if first_rel.is_some_and(|types| {
            types
                .split_ascii_whitespace()
                .any(|t| t.eq_ignore_ascii_case(rel))
        }) {
            return Some(target.trim());
        }
    }
}

/// One `name[=value]` link parameter at the start of `input`: its name, its value (unquoted)
/// and what follows it.
fn param(input: &str) -> (&str, Option<String>, &str) {
    let input = input.trim_start_matches([' ', '\t']);
    let name_end = input
        .find(|c: char| matches!(c, '=' | ';' | ',' | '<') || c.is_ascii_whitespace())
        .unwrap_or(input.len());
    let name = &input[..name_end];
    let rest = input[name_end..].trim_start_matches([' ', '\t']);
    let Some(rest) = rest.strip_prefix('=') else {
        return (name, None, rest);
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (name, Some(value), &quoted[i + 1..]),
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                c => value.push(c),
            }
        }
        // An unterminated quoted string runs to the end of the header.
        return (name, Some(value), "");
    }
    let end = rest
        .find(|c: char| matches!(c, ';' | ',' | '<') || c.is_ascii_whitespace())
        .unwrap_or(rest.len());
    (name, Some(rest[..end].to_owned()), &rest[end..])
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
    fn rfc_8288_examples() {
        // RFC 8288 §3.5.
        let h =
            r#"<http://example.com/TheBook/chapter2>; rel="previous"; title="previous chapter""#;
        assert_eq!(
            find_rel(h, "previous"),
            Some("http://example.com/TheBook/chapter2")
        );
        assert_eq!(find_rel(h, "next"), None);
        assert_eq!(
            find_rel(
                r#"</>; rel="http://example.net/foo""#,
                "http://example.net/foo"
            ),
            Some("/")
        );
        assert_eq!(
            find_rel(r##"</terms>; rel="copyright"; anchor="#foo""##, "copyright"),
            Some("/terms")
        );
        let h = "</TheBook/chapter2>; rel=\"previous\"; title*=UTF-8'de'letztes%20Kapitel, \
                 </TheBook/chapter4>; rel=\"next\"; title*=UTF-8'de'n%c3%a4chstes%20Kapitel";
        assert_eq!(find_rel(h, "next"), Some("/TheBook/chapter4"));
        assert_eq!(find_rel(h, "previous"), Some("/TheBook/chapter2"));
        let h = r#"<http://example.org/>; rel="start http://example.net/relation/other""#;
        assert_eq!(find_rel(h, "start"), Some("http://example.org/"));
        let h = r#"<https://example.org/>; rel="start", <https://example.org/index>; rel="index""#;
        assert_eq!(find_rel(h, "index"), Some("https://example.org/index"));
        assert_eq!(
            find_rel(r#"<https://example.org/>; rel="start index""#, "index"),
            Some("https://example.org/")
        );
    }

    #[test]
    fn quoted_parameters_hide_separators_and_only_the_first_rel_counts() {
        let h =
            r#"</a>; title="x; rel=next, <b>"; rel=prev, </c>; crossorigin; rel="NEXT"; rel=last"#;
        assert_eq!(find_rel(h, "next"), Some("/c"));
        assert_eq!(find_rel(h, "prev"), Some("/a"));
        assert_eq!(find_rel(h, "last"), None);
        assert_eq!(
            find_rel(r#"</a>; title="say \"hi\"; rel=next""#, "next"),
            None
        );
        assert_eq!(find_rel("</a>; rel = next", "next"), Some("/a"));
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

    mod properties {
        use proptest::prelude::*;
        use url::Url;

        use super::find_rel;

        /// A link: target, relation types, whether `rel` is quoted, extra parameters.
        fn link() -> impl Strategy<Value = (String, Vec<String>, bool, Vec<String>)> {
            let target = prop_oneof![
                "https://api\\.example\\.com/[a-z0-9/?=&,;._%-]{0,24}",
                "/[a-z0-9/?=&,;._%-]{0,24}",
                "[a-z0-9?=&,;._%-]{0,12}",
            ];
            let rels = prop::collection::vec(
                prop_oneof![
                    Just("next".to_owned()),
                    Just("NEXT".to_owned()),
                    Just("last".to_owned()),
                    Just("prev".to_owned()),
                    Just("http://example.net/next".to_owned()),
                ],
                0..3,
            );
            let params = prop::collection::vec(
                prop_oneof![
                    Just("crossorigin".to_owned()),
                    Just("hreflang=en".to_owned()),
                    Just("title*=UTF-8'de'n%c3%a4chstes%20Kapitel".to_owned()),
                    // Separators and a fake `rel` inside a quoted string.
                    Just(r#"title="; rel=next""#.to_owned()),
                    Just(r#"title="a, </evil>; rel=\"next\"""#.to_owned()),
                    r#"[ -!#-\[\]-~]{0,16}"#.prop_map(|t| format!("title=\"{t}\"")),
                    r#"[a-z ,;<>=]{0,12}"#.prop_map(|t| format!(
                        "title=\"{}\"",
                        t.replace('\\', "\\\\").replace('"', "\\\"")
                    )),
                ],
                0..3,
            );
            (target, rels, any::<bool>(), params)
        }

        proptest! {
            #[test]
            fn never_panics(header in any::<String>(), rel in "[a-z]{0,6}") {
                let _ = find_rel(&header, &rel);
            }

            #[test]
            fn never_panics_on_link_like_input(header in r#"[<>;,=" a-z\\/]{0,64}"#) {
                let _ = find_rel(&header, "next");
            }

            #[test]
            fn finds_the_first_link_with_the_rel(links in prop::collection::vec(link(), 0..4)) {
                let header = links
                    .iter()
                    .map(|(target, rels, quoted, params)| {
                        let mut value = format!("<{target}>");
                        let mut rel_at = 0;
                        for (i, p) in params.iter().enumerate() {
                            value.push_str(&format!("; {p}"));
                            rel_at = i % 2;
                        }
                        let rel = if *quoted || rels.len() != 1 {
                            format!("; rel=\"{}\"", rels.join(" "))
                        } else {
                            format!("; rel={}", rels[0])
                        };
                        if rels.is_empty() && rel_at == 0 {
                            value // no rel at all
                        } else {
                            value + &rel
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let expected = links
                    .iter()
                    .find(|(_, rels, _, _)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
                    .map(|(target, ..)| target.as_str());
                prop_assert_eq!(find_rel(&header, "next"), expected, "{}", header);

                // Relative or absolute, the target resolves against the page (a network-path
                // reference such as `//?` may name no host, and is then an error of the walk).
                if let Some(target) = find_rel(&header, "next").filter(|t| !t.starts_with("//")) {
                    let page = Url::parse("https://api.example.com/items?page=1").unwrap();
                    prop_assert!(page.join(target).is_ok());
                }
            }
        }
    }
}
