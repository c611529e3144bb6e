//! What servers say about waiting: `Retry-After` and the rate-limit headers.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

/// Longest rate-limit reset taken seriously (a day); a longer one is ignored. Also the longest
/// client-wide hold a single answer can set: a `Retry-After` of years fails the requests it
/// holds (it is beyond any sane `max_retry_after`) for a day at most.
pub(crate) const MAX_SANE_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The wait a response's `Retry-After` header asks for (RFC 9110 §10.2.3), as delta-seconds
/// or an HTTP-date measured against `now`.
///
/// A long wait is kept as the server sent it — `999999999`, a date days ahead — so that the
/// policy's `max_retry_after` applies (the request fails fast) and the error tells the
/// caller what the server asked; more digits than fit in 64 bits saturate.
///
/// `None` — fall back to backoff — for anything else: no header, garbage (`abc`, `1e9`, `2.5`),
/// a negative number, a date in the past, and a date whose weekday does not match its day (the
/// `httpdate` parser rejects it, and a server that gets the weekday wrong cannot be trusted on
/// the rest).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: the one way `parse` fails is overflow.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(value)
        .ok()?
        .duration_since(now)
        .ok()
}

/// The rate-limit state a server last reported, from the `RateLimit` / `RateLimit-Policy`
/// headers (IETF httpapi draft) or the common `X-RateLimit-Limit` / `-Remaining` / `-Reset`.
///
/// Read it with [`Client::rate_limit`](crate::Client::rate_limit), e.g. to show the quota left.
/// A field is `None` when the server did not send it (or sent something unparseable).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window (`limit`, `q` in `RateLimit-Policy`, `X-RateLimit-Limit`).
    pub limit: Option<u64>,
    /// Requests left in the current window (`remaining`, `r`, `X-RateLimit-Remaining`).
    pub remaining: Option<u64>,
    /// Time until the window resets, as of when the response arrived (`reset`, `t`,
    /// `X-RateLimit-Reset` as seconds or as a Unix timestamp).
    pub reset: Option<Duration>,
    observed_at: Instant,
}

impl RateLimit {
    /// Time left until the window resets, from now; `Some(0)` once it has.
    ///
    /// The time that passed since the answer is read on the client's
    /// [`Clock`](crate::Clock) up to the call of
    /// [`Client::rate_limit`](crate::Client::rate_limit) that returned this value, and on
    /// tokio's clock after it (the same clock unless [`ClientBuilder::clock`](crate::ClientBuilder::clock)
    /// set another).
    pub fn resets_in(&self) -> Option<Duration> {
        let at = self.reset_at()?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// The same values as of `now` on the client's clock: the time since the answer is moved
    /// onto tokio's timeline, which [`resets_in`](Self::resets_in) reads.
    pub(crate) fn rebased(mut self, now: Instant) -> Self {
        let age = now.saturating_duration_since(self.observed_at);
        let tokio_now = Instant::now();
        self.observed_at = tokio_now.checked_sub(age).unwrap_or(tokio_now);
        self
    }

    pub(crate) fn reset_at(&self) -> Option<Instant> {
        self.reset.map(|reset| self.observed_at + reset)
    }

    /// The rate-limit headers of a response, if it has any. `now_utc` reads Unix-timestamp
    /// resets; `now` stamps the observation.
    pub(crate) fn from_headers(
        headers: &HeaderMap,
        now_utc: SystemTime,
        now: Instant,
    ) -> Option<Self> {
        // Most answers have no rate-limit header: one pass over the names, no lookup.
        if !has_rate_limit_headers(headers) {
            return None;
        }
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let mut found = text("ratelimit").map(parse_structured).unwrap_or_default();
        if let Some(policy) = text("ratelimit-policy").map(parse_structured) {
            found.limit = found.limit.or(policy.quota);
        }
        for [limit, remaining, reset_name] in SEPARATE_FIELDS {
            found.limit = found.limit.or_else(|| text(limit).and_then(integer));
            found.remaining = found
                .remaining
                .or_else(|| text(remaining).and_then(integer));
            found.reset = found
                .reset
                .or_else(|| text(reset_name).and_then(|v| reset(v, now_utc)));
        }
        let Fields {
            limit,
            remaining,
            reset,
            ..
        } = found;
        (limit.is_some() || remaining.is_some() || reset.is_some()).then_some(Self {
            limit,
            remaining,
            reset,
            observed_at: now,
        })
    }
}

/// The separate-header forms: `RateLimit-Limit` … (draft 00–02) and `X-RateLimit-*`.
const SEPARATE_FIELDS: [[&str; 3]; 2] = [
    ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
    [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ],
];

/// Whether any header name is one of the rate-limit headers (all start with `ratelimit` or
/// `x-ratelimit`; names are stored lowercase).
pub(crate) fn has_rate_limit_headers(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str().as_bytes();
        name.starts_with(b"ratelimit") || name.starts_with(b"x-ratelimit")
    })
}

#[derive(Default, Debug, PartialEq)]
struct Fields {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
    /// `q` of a `RateLimit-Policy` item.
    quota: Option<u64>,
}

/// Parses the structured-field forms of the IETF draft, tolerantly:
/// - the dictionary of drafts 03–06: `limit=100, remaining=0, reset=30`;
/// - the list of drafts 07+: `"default";r=0;t=30` (`RateLimit`), `"default";q=100;w=60`
///   (`RateLimit-Policy`). With several items, the one with the fewest remaining wins.
///
/// Members or parameters that do not parse are skipped.
fn parse_structured(value: &str) -> Fields {
    let mut dict = Fields::default();
    let mut best: Option<Fields> = None;
    for member in split_outside_quotes(value, ',') {
        let mut parts = split_outside_quotes(member, ';');
        let head = parts.next().unwrap_or_default().trim();
        if let Some((key, value)) = head.split_once('=') {
            match key.trim() {
                "limit" => dict.limit = integer(value),
                "remaining" => dict.remaining = integer(value),
                "reset" => dict.reset = seconds(value),
                _ => {}
            }
            continue;
        }
        let mut item = Fields::default();
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            match key.trim() {
                "r" => item.remaining = integer(value),
                "t" => item.reset = seconds(value),
                "q" => item.quota = integer(value),
                _ => {}
            }
        }
        let fewer = |b: &Fields| {
            item.remaining
                .is_some_and(|r| b.remaining.is_none_or(|br| r < br))
        };
        if best.as_ref().is_none_or(fewer) {
            best = Some(item);
        }
    }
    let best = best.unwrap_or_default();
    Fields {
        limit: dict.limit,
        remaining: dict.remaining.or(best.remaining),
        reset: dict.reset.or(best.reset),
        quota: best.quota,
    }
}

/// Splits on `separator`, except inside double-quoted strings (where `\"` escapes a quote).
fn split_outside_quotes(value: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut parts = Vec::new();
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter()
}

/// A non-negative integer (structured fields allow up to 15 digits; `u64` is plenty).
fn integer(value: &str) -> Option<u64> {
    let value = value.trim();
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse().ok())
        .flatten()
}

/// Delta-seconds no longer than [`MAX_SANE_WAIT`].
fn seconds(value: &str) -> Option<Duration> {
    integer(value)
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX_SANE_WAIT)
}

/// An `X-RateLimit-Reset` value. Servers disagree on its meaning: GitHub sends a Unix
/// timestamp, most others seconds from now. A delta above a billion seconds (31 years) makes no
/// sense, so values from 10⁹ on are read as a Unix timestamp in seconds, and from 10¹² on
/// (GitHub-style timestamps sent in milliseconds) in milliseconds. Fractions are accepted; a
/// timestamp in the past means "reset now"; more than [`MAX_SANE_WAIT`] is ignored.
fn reset(value: &str, now_utc: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let number: f64 = value.parse().ok().filter(|n: &f64| n.is_finite())?;
    let wait = if number >= 1e9 {
        let epoch_secs = if number >= 1e12 {
            number / 1000.0
        } else {
            number
        };
        let now = now_utc
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Duration::try_from_secs_f64((epoch_secs - now).max(0.0)).ok()?
    } else {
        Duration::try_from_secs_f64(number).ok()?
    };
    (wait <= MAX_SANE_WAIT).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    reqwest::header::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn ra(value: &str, now: SystemTime) -> Option<Duration> {
        retry_after(&headers(&[("retry-after", value)]), now)
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(ra("2", now), Some(Duration::from_secs(2)));
        assert_eq!(ra(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(ra("86400", now), Some(MAX_SANE_WAIT));
    }

    #[test]
    fn absurd_retry_after_is_kept_so_that_the_cap_applies() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(ra("999999999", now), Some(Duration::from_secs(999_999_999)));
        assert_eq!(ra("86401", now), Some(Duration::from_secs(86_401)));
        assert_eq!(
            ra("99999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            ra("Wed, 09 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(3 * 86_400))
        );
        assert_eq!(
            ra("Sat, 06 Nov 2094 08:49:37 GMT", now),
            Some(
                httpdate::parse_http_date("Sat, 06 Nov 2094 08:49:37 GMT")
                    .unwrap()
                    .duration_since(now)
                    .unwrap()
            )
        );
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            ra("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        // The obsolete forms RFC 9110 still requires recipients to accept.
        assert_eq!(
            ra("Sunday, 06-Nov-94 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            ra("Sun Nov  6 08:49:47 1994", now),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn bad_retry_after_falls_back_to_backoff() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        for bad in [
            "abc",
            "-5",
            "1e9",
            "2.5",
            "+3",
            "",
            "Sun, 06 Nov 1994 08:49:30 GMT", // in the past
            "Mon, 06 Nov 1994 08:49:47 GMT", // wrong weekday
        ] {
            assert_eq!(ra(bad, now), None, "{bad:?}");
        }
        let latin1 =
            HeaderMap::from_iter([(RETRY_AFTER, HeaderValue::from_bytes(b"\xff5").unwrap())]);
        assert_eq!(retry_after(&latin1, now), None);
    }

    fn rl(pairs: &[(&'static str, &str)]) -> Option<(Option<u64>, Option<u64>, Option<Duration>)> {
        let now_utc = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        RateLimit::from_headers(&headers(pairs), now_utc, Instant::now())
            .map(|r| (r.limit, r.remaining, r.reset))
    }

    #[test]
    fn ietf_dictionary_form() {
        let s = Duration::from_secs;
        assert_eq!(
            rl(&[("ratelimit", "limit=100, remaining=0, reset=30")]),
            Some((Some(100), Some(0), Some(s(30))))
        );
        assert_eq!(
            rl(&[("ratelimit", "remaining=7;w=60")]),
            Some((None, Some(7), None))
        );
    }

    #[test]
    fn ietf_list_form_with_policy() {
        let s = Duration::from_secs;
        assert_eq!(
            rl(&[
                ("ratelimit", r#""default";r=0;t=30"#),
                ("ratelimit-policy", r#""default";q=100;w=60"#)
            ]),
            Some((Some(100), Some(0), Some(s(30))))
        );
        // Several policies: the most constrained one wins.
        assert_eq!(
            rl(&[(
                "ratelimit",
                r#""day";r=500;t=3600, "burst";r=2;t=1, "odd,name";r=9;t=5"#
            )]),
            Some((None, Some(2), Some(s(1))))
        );
    }

    #[test]
    fn separate_headers_and_x_ratelimit() {
        let s = Duration::from_secs;
        assert_eq!(
            rl(&[
                ("ratelimit-limit", "60"),
                ("ratelimit-remaining", "59"),
                ("ratelimit-reset", "12")
            ]),
            Some((Some(60), Some(59), Some(s(12))))
        );
        assert_eq!(
            rl(&[
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "30")
            ]),
            Some((Some(5000), Some(0), Some(s(30))))
        );
    }

    #[test]
    fn x_ratelimit_reset_as_unix_timestamp() {
        let s = Duration::from_secs;
        assert_eq!(
            rl(&[("x-ratelimit-reset", "1700000042")]),
            Some((None, None, Some(s(42))))
        );
        assert_eq!(
            rl(&[("x-ratelimit-reset", "1700000042000")]),
            Some((None, None, Some(s(42))))
        );
        assert_eq!(
            rl(&[("x-ratelimit-reset", "1699999999")]),
            Some((None, None, Some(Duration::ZERO)))
        );
        assert_eq!(
            rl(&[("x-ratelimit-reset", "1.5")]),
            Some((None, None, Some(Duration::from_millis(1500))))
        );
    }

    #[test]
    fn garbage_rate_limit_headers_are_ignored() {
        assert_eq!(rl(&[]), None);
        for bad in [
            "-1",
            "abc",
            "1e3",
            "NaN",
            "inf",
            "",
            "9999999999999999999999999",
        ] {
            assert_eq!(rl(&[("x-ratelimit-remaining", bad)]), None, "{bad:?}");
            assert_eq!(rl(&[("x-ratelimit-reset", bad)]), None, "{bad:?}");
        }
        assert_eq!(
            rl(&[(
                "ratelimit",
                r#"limit=, remaining="x", reset=-3, ;;,"unterminated"#
            )]),
            None
        );
        // A reset of years is not believed.
        assert_eq!(rl(&[("x-ratelimit-reset", "999999999")]), None);
        assert_eq!(rl(&[("ratelimit", "reset=9999999")]), None);
    }
}

/// Property tests: no input panics, and every valid input parses to the value it encodes.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const LONG_WEEKDAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    /// The civil date and time of `secs` since the Unix epoch (Hinnant's `civil_from_days`).
    fn civil(secs: u64) -> (i64, usize, u64, usize, u64, u64, u64) {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let weekday = ((days + 4) % 7) as usize;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
        let year = yoe + era * 400 + i64::from(month <= 2);
        (
            year,
            month,
            day,
            weekday,
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
        )
    }

    /// `secs` in the three forms RFC 9110 §5.6.7 requires recipients to accept.
    fn http_dates(secs: u64) -> [String; 3] {
        let (year, month, day, weekday, h, m, s) = civil(secs);
        let mon = MONTHS[month - 1];
        [
            format!(
                "{}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT",
                WEEKDAYS[weekday]
            ),
            format!(
                "{}, {day:02}-{mon}-{:02} {h:02}:{m:02}:{s:02} GMT",
                LONG_WEEKDAYS[weekday],
                year % 100
            ),
            format!(
                "{} {mon} {day:>2} {h:02}:{m:02}:{s:02} {year}",
                WEEKDAYS[weekday]
            ),
        ]
    }

    fn one(name: &'static str, value: &str) -> Option<HeaderMap> {
        let value = HeaderValue::from_str(value).ok()?;
        Some(HeaderMap::from_iter([(
            HeaderName::from_static(name),
            value,
        )]))
    }

    fn epoch(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    proptest! {
        #[test]
        fn delta_seconds_parse_to_their_value(secs: u64, pad in "[ \t]{0,2}") {
            let headers = one("retry-after", &format!("{pad}{secs}{pad}")).unwrap();
            prop_assert_eq!(
                retry_after(&headers, SystemTime::now()),
                Some(Duration::from_secs(secs))
            );
        }

        /// Dates from 1970 to 2069, where the two-digit year of RFC 850 is unambiguous.
        #[test]
        fn http_dates_in_all_three_forms_parse_to_the_wait(
            at in 0u64..3_155_760_000,
            ahead in 0u64..10_000_000,
        ) {
            let now = epoch(at.saturating_sub(ahead));
            let expected = epoch(at).duration_since(now).unwrap();
            for date in http_dates(at) {
                let headers = one("retry-after", &date).unwrap();
                prop_assert_eq!(retry_after(&headers, now), Some(expected), "{}", date);
            }
        }

        #[test]
        fn dates_in_the_past_fall_back_to_backoff(at in 0u64..3_155_760_000, behind in 1u64..1_000_000) {
            let now = epoch(at + behind);
            for date in http_dates(at) {
                let headers = one("retry-after", &date).unwrap();
                prop_assert_eq!(retry_after(&headers, now), None, "{}", date);
            }
        }

        #[test]
        fn garbage_retry_after_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let headers = HeaderMap::from_iter([(RETRY_AFTER, value)]);
                let _ = retry_after(&headers, SystemTime::now());
                let _ = retry_after(&headers, SystemTime::UNIX_EPOCH);
            }
        }

        #[test]
        fn garbage_rate_limit_headers_never_panic(
            values in proptest::collection::vec("[ -~]{0,40}", 8),
            now in 0u64..u64::MAX / 2,
        ) {
            let names = [
                "ratelimit", "ratelimit-policy", "ratelimit-limit", "ratelimit-remaining",
                "ratelimit-reset", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
            ];
            let mut headers = HeaderMap::new();
            for (name, value) in names.into_iter().zip(&values) {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(HeaderName::from_static(name), value);
                }
            }
            let _ = RateLimit::from_headers(&headers, epoch(now), Instant::now());
        }

        #[test]
        fn valid_rate_limit_headers_parse_to_their_values(
            limit in 0u64..1_000_000_000_000_000,
            remaining in 0u64..1_000_000_000_000_000,
            reset in 0u64..=86_400,
        ) {
            let now_utc = epoch(1_700_000_000);
            let parsed = |pairs: &[(&'static str, String)]| {
                let headers: HeaderMap = pairs
                    .iter()
                    .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap()))
                    .collect();
                RateLimit::from_headers(&headers, now_utc, Instant::now())
                    .map(|r| (r.limit, r.remaining, r.reset))
            };
            let expected = Some((Some(limit), Some(remaining), Some(Duration::from_secs(reset))));
            prop_assert_eq!(
                parsed(&[("ratelimit", format!("limit={limit}, remaining={remaining}, reset={reset}"))]),
                expected
            );
            prop_assert_eq!(
                parsed(&[
                    ("ratelimit", format!("\"default\";r={remaining};t={reset}")),
                    ("ratelimit-policy", format!("\"default\";q={limit};w=60")),
                ]),
                expected
            );
            prop_assert_eq!(
                parsed(&[
                    ("x-ratelimit-limit", limit.to_string()),
                    ("x-ratelimit-remaining", remaining.to_string()),
                    ("x-ratelimit-reset", reset.to_string()),
                ]),
                expected
            );
            // X-RateLimit-Reset as a Unix timestamp, as GitHub sends it.
            prop_assert_eq!(
                parsed(&[("x-ratelimit-reset", (1_700_000_000 + reset).to_string())])
                    .and_then(|(_, _, r)| r),
                Some(Duration::from_secs(reset))
            );
        }
    }
}
