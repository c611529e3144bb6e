//! The typed Widgets API (`authed::widgets`) against the mock API: what a user of
//! `client.widgets()` and `client.me()` sees.
#![cfg(feature = "mock")]

use authed::widgets::WidgetsExt;
use authed::{
    ErrorKind, StatusCode,
    mock::MockApi,
    widgets::{Color, NewWidget, WidgetPatch},
};
use futures_util::TryStreamExt;

/// The `detail` of the problem body an error carries.
fn detail(err: &authed::Error) -> &str {
    err.api_error()
        .and_then(|p| p.detail.as_deref())
        .unwrap_or_else(|| panic!("no problem detail in {err:?}"))
}

#[tokio::test]
async fn crud_round_trip() {
    // Arrange
    let api = MockApi::builder().widgets(3).start().await;
    let client = api.client();
    let widgets = client.widgets();

    // Act + Assert, one step at a time.
    let new = NewWidget::new("sprocket", Color::Blue)
        .weight_grams(250)
        .tag("metal");
    let created = widgets.create(&new).await.expect("create");
    assert_eq!(created.id, 4, "ids continue after the 3 seeded widgets");
    assert_eq!(
        (created.name.as_str(), &created.color),
        ("sprocket", &Color::Blue)
    );
    assert_eq!(
        (created.weight_grams, created.tags.clone()),
        (250, vec!["metal".to_owned()])
    );

    let fetched = widgets.get(created.id).await.expect("get");
    assert_eq!(fetched, created);

    let patch = WidgetPatch::new().name("sprocket v2").tags(["metal", "v2"]);
    let updated = widgets.update(created.id, &patch).await.expect("update");
    assert_eq!(updated.name, "sprocket v2");
    assert_eq!(updated.tags, ["metal", "v2"]);
    assert_eq!(
        (updated.color.clone(), updated.weight_grams),
        (Color::Blue, 250),
        "fields not in the patch are unchanged"
    );

    // Seeded widget 3 is blue too; the filter keeps exactly the blue ones.
    let blue: Vec<_> = widgets
        .list()
        .color("blue")
        .stream()
        .try_collect()
        .await
        .expect("list");
    assert_eq!(blue.iter().map(|w| w.id).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(blue[1], updated);

    widgets.delete(created.id).await.expect("delete");

    let err = widgets
        .get(created.id)
        .await
        .expect_err("the widget is gone");
    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(detail(&err), "widget 4 does not exist");
    let err = widgets
        .delete(created.id)
        .await
        .expect_err("deleting twice");
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
}

#[tokio::test]
async fn list_streams_several_pages_with_a_filter_and_a_limit() {
    // Arrange: 100 widgets, 25 of them blue (ids 3, 7, 11, ...).
    let api = MockApi::builder().widgets(100).start().await;
    let client = api.client();

    // Act: the stream owns a client clone, so it can run on another task.
    let stream = client
        .widgets()
        .list()
        .color(Color::Blue)
        .page_size(10)
        .paginator()
        .limit(23)
        .stream();
    drop(client);
    let blue: Vec<_> = tokio::spawn(stream.try_collect::<Vec<_>>())
        .await
        .expect("the task completes")
        .expect("the listing succeeds");

    // Assert: exactly 23 blue widgets in order, fetched as 10 + 10 + 3.
    let ids: Vec<u64> = blue.iter().map(|w| w.id).collect();
    assert_eq!(ids, (0..23).map(|i| 3 + 4 * i).collect::<Vec<_>>());
    assert!(blue.iter().all(|w| w.color == Color::Blue));
    let queries: Vec<String> = api
        .journal()
        .into_iter()
        .filter(|e| e.path == "/v1/widgets")
        .filter_map(|e| e.query)
        .collect();
    assert_eq!(
        queries,
        [
            "color=blue&skip=0&take=10",
            "color=blue&skip=10&take=10",
            "color=blue&skip=20&take=3"
        ],
        "the last page asks only for the widgets still needed"
    );
}

#[tokio::test]
async fn pages_carry_the_total_and_a_checkpoint_to_resume_from() {
    let api = MockApi::builder().widgets(30).start().await;
    let client = api.client();

    let pages: Vec<_> = client
        .widgets()
        .list()
        .page_size(12)
        .pages()
        .try_collect()
        .await
        .unwrap();
    let sizes: Vec<usize> = pages.iter().map(|p| p.items().len()).collect();
    assert_eq!(sizes, [12, 12, 6]);
    assert!(pages.iter().all(|p| p.total() == Some(30)));
    assert!(
        pages[2].next().is_none(),
        "the last page has no next position"
    );

    // Resuming from the first page's checkpoint yields exactly the widgets after it.
    let checkpoint = pages[0].next().expect("a next position").clone();
    let rest = client
        .widgets()
        .list()
        .page_size(12)
        .paginator()
        .resume_from(checkpoint)
        .stream();
    let rest: Vec<_> = rest.try_collect().await.unwrap();
    assert_eq!(rest.first().map(|w| w.id), Some(13));
    assert_eq!(rest.len(), 18);
}

#[tokio::test]
async fn page_sizes_above_the_api_maximum_are_clamped_so_no_widget_is_lost() {
    let api = MockApi::builder().widgets(250).start().await;

    let all: Vec<_> = api
        .client()
        .widgets()
        .list()
        .page_size(500)
        .stream()
        .try_collect()
        .await
        .unwrap();

    assert_eq!(all.len(), 250);
    assert_eq!(api.requests("GET /v1/widgets"), 3, "pages of 100, 100, 50");
}

#[tokio::test]
async fn me_returns_the_profile_of_the_token() {
    let api = MockApi::start().await;

    let me = api.client().me().await.expect("me");

    assert_eq!(me.id, "user-1");
    assert!(!me.name.is_empty() && me.email.contains('@'));
    assert!(
        me.scopes.iter().any(|s| s == "widgets:read"),
        "{:?}",
        me.scopes
    );
}

#[tokio::test]
async fn validation_errors_surface_the_problem_detail() {
    let api = MockApi::start().await;
    let client = api.client();
    let widgets = client.widgets();

    let err = widgets
        .create(&NewWidget::new("", "red"))
        .await
        .expect_err("empty name");
    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(detail(&err), "name must not be empty");
    assert!(err.to_string().contains("name must not be empty"), "{err}");

    let err = widgets
        .create(&NewWidget::new("w", "purple"))
        .await
        .expect_err("unknown color");
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert!(detail(&err).contains(r#""purple""#), "{}", detail(&err));

    let err = widgets
        .update(1, &WidgetPatch::new().color("teal"))
        .await
        .expect_err("bad patch");
    assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
    assert_eq!(
        widgets.get(1).await.unwrap().color,
        Color::Red,
        "a refused patch changes nothing"
    );
}
