//! Generic: the core of `authed` against an API that is not the Widgets API — your own
//! response types, `Link` header pagination (GitHub style), query filters and typed errors.
//!
//! ```text
//! cargo run --example generic --features mock
//! ```
//!
//! The API here is a small issue tracker, mounted on the embedded mock API's server: a paged
//! collection served by `MockApi::collection` (behind the bearer check) and one resource
//! mocked with plain wiremock on `MockApi::server()`. Against a real API, only the client
//! changes: `authed::Client::from_env()` instead of `api.client()`.
//!
//! Environment variables: none; it always runs against the embedded mock API.

use std::pin::pin;

use authed::{
    Pagination, StatusCode,
    mock::{MockApi, Paging},
    pagination::{LinkHeader, Marker},
};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{header_exists, method, path},
};

/// A repository, as `GET /repos/{owner}/{name}` returns it.
#[derive(Debug, Deserialize)]
struct Repo {
    full_name: String,
    open_issues: u64,
}

/// An issue, as the issue listing returns it. Fields the program does not need are ignored.
#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    title: String,
    state: State,
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Open,
    Closed,
}

const ISSUES_PATH: &str = "/repos/acme/anvil/issues";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Arrange the fake issue tracker: 57 issues, every third closed, every fifth a bug.
    let api = MockApi::start().await;
    let issues = (1..=57)
        .map(|n| {
            json!({
                "number": n,
                "title": format!("Issue {n}"),
                "state": if n % 3 == 0 { "closed" } else { "open" },
                "labels": if n % 5 == 0 { vec!["bug"] } else { vec![] },
            })
        })
        .collect();
    api.collection(ISSUES_PATH, issues, Paging::link_header())
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/anvil"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "full_name": "acme/anvil", "open_issues": 38, "private": false }),
        ))
        .mount(api.server())
        .await;
    let client = api.client();

    // One typed resource.
    let repo: Repo = client.get("/repos/acme/anvil").send().await?;
    println!("{}: {} open issues", repo.full_name, repo.open_issues);

    // A listing that pages with `Link: <...?page=2&per_page=20&state=open>; rel="next"`.
    // `size_param` asks for 20 per page on the first request; the links carry it on.
    let pagination = Pagination::new(LinkHeader::new().size_param("per_page")).page_size(20);
    let mut pages = pin!(
        client
            .paginate::<Issue>(ISSUES_PATH, pagination.clone())
            .query(&[("state", "open")])
            .pages()
    );
    let mut open = 0;
    while let Some(page) = pages.try_next().await? {
        open += page.items().len() as u64;
        let next = match page.next().map(|p| p.marker()) {
            Some(Marker::Url(url)) => url.as_str(),
            _ => "none: last page",
        };
        println!("page of {} open issues; next: {next}", page.items().len());
        if let Some(issue) = page.items().iter().find(|i| i.state != State::Open) {
            return Err(format!("the state=open filter let #{} through", issue.number).into());
        }
    }
    if open != repo.open_issues {
        return Err(format!(
            "listed {open} open issues, the repository says {}",
            repo.open_issues
        )
        .into());
    }

    // The same listing as a stream of items, with another filter and a limit.
    let bugs: Vec<Issue> = client
        .paginate(ISSUES_PATH, pagination)
        .query(&[("labels", "bug")])
        .limit(5)
        .stream()
        .try_collect()
        .await?;
    println!("first {} bugs:", bugs.len());
    for issue in &bugs {
        println!(
            "  #{} {} ({:?}, labels {:?})",
            issue.number, issue.title, issue.state, issue.labels
        );
    }

    // Errors are typed too: status, and the problem+json body the API sent.
    match client.get("/repos/acme/missing").send::<Repo>().await {
        Err(err) if err.status() == Some(StatusCode::NOT_FOUND) => {
            let detail = err
                .api_error()
                .and_then(|p| p.detail.as_deref())
                .unwrap_or("-");
            println!("GET /repos/acme/missing -> 404 Not Found: {detail}");
            Ok(())
        }
        Err(err) => Err(err.into()),
        Ok(repo) => Err(format!("expected a 404, got {repo:?}").into()),
    }
}
