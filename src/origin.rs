//! URL rules: **plain `http://` only to loopback hosts**, no credentials in URLs, and request
//! paths that stay on the API origin.

use std::net::IpAddr;

use url::{Host, Url};

use crate::{Error, Result};

/// Parses and checks a URL: `https`, or `http` to a loopback host; a host; no credentials.
pub(crate) fn parse_url(input: &str, what: &str) -> Result<Url> {
    let url = Url::parse(input.trim())
        .map_err(|e| Error::config(format!("{what} is not a valid URL")).with_source(e))?;
    check_url(url, what)
}

fn check_url(url: Url, what: &str) -> Result<Url> {
    // `Url` lowercases the scheme, so `HTTP://` is checked like `http://`.
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::config(format!(
                "{what} uses plain http:// to a non-loopback host ({}); tokens must only travel over https",
                url.host_str().unwrap_or("")
            )));
        }
        other => {
            return Err(Error::config(format!(
                "{what} must be an https:// URL, not {other}:"
            )));
        }
    }
    if url.host().is_none() {
        return Err(Error::config(format!("{what} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Credentials in a URL end up in logs and error messages.
        return Err(Error::config(format!(
            "{what} must not contain credentials"
        )));
    }
    Ok(url)
}

/// Resolves a request path against the API base URL, and says whether it was joined to it
/// (and so is on the API origin, checked here).
///
/// An absolute URL (any scheme spelling) is checked by the URL rules; anything else is a path
/// **that must stay on the API origin**: `//host/x`, `\\host\x` and the like, which a URL
/// parser would resolve to another host, are refused.
pub(crate) fn resolve(base: &Url, path: &str) -> Result<(Url, bool)> {
    // A path that starts with `/` is never an absolute URL (a scheme comes first): not parsed
    // as one, which costs an allocation to fail.
    if !path.starts_with('/')
        && let Ok(absolute) = Url::parse(path)
    {
        return check_url(absolute, "request URL").map(|url| (url, false));
    }
    let invalid = || Error::config(format!("{path:?} is not a valid request path"));
    let joined = base
        .join(path.trim_start_matches('/'))
        .map_err(|e| invalid().with_source(e))?;
    if !same_origin(&joined, base) {
        return Err(Error::config(format!(
            "the request path {path:?} leaves the API origin; pass an absolute https:// URL to call another host"
        )));
    }
    Ok((joined, true))
}

/// Whether two URLs have the same origin (scheme, host, port), without allocating.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether the URL's host is `localhost`, in `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Shows the origin of a URL (`scheme://host[:port]`) without allocating: for log fields,
/// formatted only when a subscriber records them.
pub(crate) struct Origin<'a>(pub(crate) &'a Url);

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}",
            self.0.scheme(),
            self.0.host_str().unwrap_or_default()
        )?;
        match self.0.port() {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://api.example.com",
            "http://127.0.0.1:8080/v1/",
            "http://127.3.4.5",
            "http://[::1]:9000",
            "http://localhost:1234",
            "http://LOCALHOST",
        ] {
            parse_url(ok, "base URL").unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn plain_http_to_public_hosts_and_odd_schemes_are_refused() {
        for (bad, expect) in [
            ("http://api.example.com", "plain http://"),
            ("HTTP://api.example.com", "plain http://"),
            ("http://10.0.0.1", "plain http://"),
            ("http://localhost.evil.com", "plain http://"),
            ("ftp://example.com", "must be an https:// URL"),
            ("not a url", "not a valid URL"),
            (
                "https://user:pw@example.com",
                "must not contain credentials",
            ),
        ] {
            let err = parse_url(bad, "base URL").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config);
            assert!(err.to_string().contains(expect), "{bad}: {err}");
        }
    }

    #[test]
    fn relative_paths_stay_on_the_api_origin() {
        let base = Url::parse("http://127.0.0.1:9000/v1/").unwrap();
        assert_eq!(
            resolve(&base, "/widgets?x=1").unwrap().0.as_str(),
            "http://127.0.0.1:9000/v1/widgets?x=1"
        );
        // Never another host: refused, or joined under the base URL.
        for escape in [
            "\\\\127.0.0.2:9000/x",
            "//127.0.0.2:9000/x",
            "/\\127.0.0.2/x",
            "\\/127.0.0.2/x",
            "\\\\127.0.0.2\\x",
            "/https://127.0.0.2/x",
            "///127.0.0.2/x",
        ] {
            match resolve(&base, escape) {
                Ok((url, _)) => assert!(same_origin(&url, &base), "{escape}: {url}"),
                Err(err) => assert!(
                    err.to_string().contains("leaves the API origin"),
                    "{escape}: {err}"
                ),
            }
        }
        assert!(resolve(&base, "\\\\127.0.0.2:9000/x").is_err());
        // Absolute URLs follow the URL rules, whatever the scheme's case.
        let err = resolve(&base, "HTTP://example.com/y").unwrap_err();
        assert!(err.to_string().contains("plain http://"), "{err}");
        assert!(resolve(&base, "https://other.example.com/y").is_ok());
        // Joined paths are known to be on the API origin; absolute URLs are checked later.
        assert!(resolve(&base, "/widgets").unwrap().1);
        assert!(!resolve(&base, "http://127.0.0.1:9000/v1/x").unwrap().1);
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("https://a.example/x"),
            &u("https://a.example:443/y")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("http://a.example/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("https://a.example:8443/")
        ));
        assert!(!same_origin(
            &u("https://a.example/"),
            &u("https://b.example/")
        ));
    }
}
