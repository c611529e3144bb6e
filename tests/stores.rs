//! Refresh token stores as the source of truth: precedence between the store and the
//! configuration, clearing a dead token, stores that fail, hang or panic, configuration errors.
#![cfg(feature = "mock")]

mod common;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use authed::{
    AuthErrorKind, Client, ErrorKind, ExposeSecret, FileStore, RefreshToken, RefreshTokenStore,
    auth::store::{StoreFuture, StoredTokens},
};
use common::{Captured, TestClock, TokenIssuer, form, received};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

async fn server_with(issuer: &TokenIssuer) -> MockServer {
    let server = MockServer::start().await;
    issuer.mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u"})))
        .mount(&server)
        .await;
    server
}

async fn presented(server: &MockServer) -> Vec<String> {
    received(server, common::TOKEN_PATH)
        .await
        .iter()
        .map(|r| form(r)["refresh_token"].clone())
        .collect()
}

async fn stored(store: &FileStore) -> Option<String> {
    let record = store.load().await.unwrap()?;
    Some(record.refresh_token.expose_secret().to_owned())
}

#[tokio::test]
async fn a_rotated_token_wins_over_the_same_seed_and_a_new_login_wins_over_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("token.json"));
    let issuer = TokenIssuer::new(3600).rotating();
    let server = server_with(&issuer).await;

    // First run: seeded from the configured token, which the server rotates to rt-1.
    let first = common::builder(&server)
        .token_store(store.clone())
        .build()
        .unwrap();
    first.access_token().await.unwrap();
    assert_eq!(stored(&store).await.as_deref(), Some("rt-1"));

    // A restart shares the stored access token while it lives: no token request at all.
    let restarted = common::builder(&server)
        .token_store(store.clone())
        .build()
        .unwrap();
    restarted.get("/me").send::<Value>().await.unwrap();
    assert_eq!(issuer.issued(), 1);

    // Once it expired, the restart presents the rotated token, not the retired one.
    let clock = TestClock::new();
    clock.advance(Duration::from_secs(3601));
    let later = common::builder(&server)
        .clock(clock)
        .token_store(store.clone())
        .build()
        .unwrap();
    later.get("/me").send::<Value>().await.unwrap();
    assert_eq!(presented(&server).await, [common::REFRESH_TOKEN, "rt-1"]);
    assert_eq!(stored(&store).await.as_deref(), Some("rt-2"));

    // The user logs in again: a different token in the configuration is a new login and wins.
    let relogged = common::builder(&server)
        .refresh_token("rt-fresh-login")
        .token_store(store.clone())
        .build()
        .unwrap();
    relogged.access_token().await.unwrap();
    assert_eq!(presented(&server).await.last().unwrap(), "rt-fresh-login");
    assert_eq!(stored(&store).await.as_deref(), Some("rt-3"));
}

#[tokio::test]
async fn invalid_grant_for_the_stored_token_clears_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("token.json"));
    let seed = StoredTokens::new(RefreshToken::new("rt-dead"), None);
    store.save(None, &seed).await.unwrap();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .mount(&server)
        .await;
    let client = common::builder(&server)
        .token_store(store.clone())
        .build()
        .unwrap();

    let err = client.access_token().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Auth(AuthErrorKind::InvalidGrant));
    assert!(err.is_reauth_required());
    assert!(
        err.to_string().contains("cleared from the token store"),
        "{err}"
    );
    assert_eq!(stored(&store).await, None, "the dead token is gone");
    assert_eq!(presented(&server).await, ["rt-dead"]);
}

#[tokio::test]
async fn a_rotation_kept_only_in_memory_warns_once_how_to_fix_it() {
    let logs = Captured::install();
    let issuer = TokenIssuer::new(60).rotating();
    let server = server_with(&issuer).await;
    let clock = TestClock::new();
    let client = common::builder(&server)
        .clock(clock.clone())
        .build()
        .unwrap();

    for _ in 0..3 {
        client.get("/me").send::<Value>().await.unwrap();
        clock.advance(Duration::from_secs(61));
    }

    assert_eq!(issuer.issued(), 3);
    let text = logs.text();
    let warnings = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("keeps it in memory only"))
        .count();
    assert_eq!(warnings, 1, "one warning, not one per rotation:\n{text}");
    assert!(text.contains("TOKEN_STORE=file:"), "it says how to fix it");
}

#[tokio::test]
async fn a_garbage_store_file_is_a_typed_error_and_an_empty_one_holds_nothing() {
    let issuer = TokenIssuer::new(3600);
    let server = server_with(&issuer).await;
    let dir = tempfile::tempdir().unwrap();

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"refresh_token\": \"rt-half").unwrap();
    let client = common::builder(&server)
        .token_store(FileStore::new(&garbage))
        .build()
        .unwrap();
    let err = client.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("garbage.json"), "{err}");
    assert!(
        !format!("{err} {err:?}").contains("rt-half"),
        "no secret: {err:?}"
    );
    assert_eq!(issuer.issued(), 0, "nothing presented from a broken store");

    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let client = common::builder(&server)
        .token_store(FileStore::new(&empty))
        .build()
        .unwrap();
    client.access_token().await.unwrap();
    assert_eq!(presented(&server).await, [common::REFRESH_TOKEN]);
}

#[test]
fn token_store_configuration_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let set = |name: &str, value: &str| unsafe { std::env::set_var(name, value) };
    for p in ["S1", "S2", "S3", "S4"] {
        set(&format!("{p}_BASE_URL"), "https://api.example.com");
        set(&format!("{p}_TOKEN_URL"), "https://auth.example.com/token");
        set(&format!("{p}_REFRESH_TOKEN"), "rt-1");
    }
    let cases = [
        (
            "S1",
            "s3://bucket/key".to_owned(),
            "S1_TOKEN_STORE: unknown token store",
        ),
        (
            "S2",
            format!("file:{}/token.json", a_file.display()),
            "does not exist or is not a directory",
        ),
        (
            "S3",
            format!("file:{}", dir.path().display()),
            "is a directory",
        ),
    ];
    for (prefix, store, expected) in cases {
        set(&format!("{prefix}_TOKEN_STORE"), &store);
        let err = Client::from_env_prefixed(prefix).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{store}");
        assert!(err.to_string().contains(expected), "{store}: {err}");
    }
    // With a file store the refresh token may come from the store alone (e.g. a login).
    unsafe { std::env::remove_var("S4_REFRESH_TOKEN") };
    set(
        "S4_TOKEN_STORE",
        &format!("file:{}", dir.path().join("t.json").display()),
    );
    Client::from_env_prefixed("S4").expect("the store may hold the token");
}

/// A store in memory whose `save` misbehaves as told.
#[derive(Debug, Default)]
struct Unruly {
    inner: authed::MemoryStore,
    hang: bool,
    panics_left: AtomicUsize,
    saves: AtomicUsize,
}

impl RefreshTokenStore for Unruly {
    fn load(&self) -> StoreFuture<'_, Option<StoredTokens>> {
        self.inner.load()
    }

    fn save<'a>(
        &'a self,
        expected: Option<&'a RefreshToken>,
        record: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            return Box::pin(std::future::pending());
        }
        if self
            .panics_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("the store's disk is on fire");
        }
        self.inner.save(expected, record)
    }

    fn clear(&self) -> StoreFuture<'_, ()> {
        self.inner.clear()
    }
}

#[tokio::test]
async fn a_store_that_never_answers_is_bounded_and_reported_and_the_rotated_token_is_kept() {
    let issuer = TokenIssuer::new(60).rotating();
    let server = server_with(&issuer).await;
    let clock = TestClock::new();
    let client = common::builder(&server)
        .clock(clock.clone())
        .token_store(Unruly {
            hang: true,
            ..Default::default()
        })
        .token_store_timeout(Duration::from_millis(100))
        .build()
        .unwrap();

    client
        .get("/me")
        .send::<Value>()
        .await
        .expect("served despite the store");
    let err = client.store_error().expect("the store failure is reported");
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("did not save within"), "{err}");

    // The rotated tokens are not lost: each refresh presents the latest, save failed or not.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(61));
        client.get("/me").send::<Value>().await.unwrap();
    }
    assert_eq!(
        presented(&server).await,
        [common::REFRESH_TOKEN, "rt-1", "rt-2"]
    );
}

#[tokio::test]
async fn a_store_that_panics_once_does_not_brick_the_client() {
    let issuer = TokenIssuer::new(60);
    let server = server_with(&issuer).await;
    let client = common::builder(&server)
        .token_store(Unruly {
            panics_left: AtomicUsize::new(1),
            ..Default::default()
        })
        .build()
        .unwrap();

    let err = client.access_token().await.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    // The failed refresh is not left "in flight": the next call refreshes and succeeds.
    client.get("/me").send::<Value>().await.unwrap();
    assert_eq!(issuer.issued(), 2);
}
