//! Expectations on what the API received, checked when the [`MockApi`](super::MockApi) is
//! dropped (as wiremock's `Mock::expect` is), with a report of what it did receive.

use std::fmt::Write as _;

use super::{Exchange, Route, Stats};

/// What an expectation counts.
#[derive(Clone, Debug)]
pub(super) enum Counted {
    /// Access tokens issued by the token endpoint.
    Refreshes,
    /// Requests to the token endpoint.
    TokenRequests,
    /// Requests to a route.
    Requests(Route),
}

/// One expectation: how many of `counted` the API must have received.
#[derive(Clone, Debug)]
pub(super) struct Expectation {
    pub(super) counted: Counted,
    pub(super) expected: usize,
}

impl Expectation {
    fn actual(&self, journal: &[Exchange]) -> usize {
        match &self.counted {
            Counted::Refreshes => Stats::of(journal).refreshes,
            Counted::TokenRequests => Stats::of(journal).token_requests,
            Counted::Requests(route) => journal
                .iter()
                .filter(|e| route.matches_parts(&e.method, &e.path))
                .count(),
        }
    }

    fn describe(&self) -> String {
        match &self.counted {
            Counted::Refreshes => "access tokens issued (expect_refreshes)".to_owned(),
            Counted::TokenRequests => "token endpoint requests (expect_token_requests)".to_owned(),
            Counted::Requests(route) => format!("requests to {route} (expect_requests)"),
        }
    }
}

/// The report of every unmet expectation and of the journal, or `None` when all are met.
pub(super) fn report(expectations: &[Expectation], journal: &[Exchange]) -> Option<String> {
    let failed: Vec<(&Expectation, usize)> = expectations
        .iter()
        .map(|e| (e, e.actual(journal)))
        .filter(|(e, actual)| *actual != e.expected)
        .collect();
    if failed.is_empty() {
        return None;
    }
    let mut report = String::from("MockApi expectations not met:\n");
    for (e, actual) in failed {
        let _ = writeln!(
            report,
            "- {}: expected {}, received {actual}",
            e.describe(),
            e.expected
        );
    }
    let _ = writeln!(report, "Requests received ({}):", journal.len());
    for (i, e) in journal.iter().enumerate() {
        let _ = writeln!(report, "{:>4}. {e}", i + 1);
    }
    Some(report)
}
