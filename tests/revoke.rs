//! Logging out with `Client::revoke` (RFC 7009): the tokens are revoked at the server with the
//! client's authentication, and the client forgets them.
#![cfg(feature = "mock")]

use authed::{
    AuthErrorKind, ErrorKind, ExposeSecret, FileStore,
    auth::store::RefreshTokenStore,
    mock::{
        MockApi,
        wiremock::{Mock, ResponseTemplate, matchers::path},
    },
};
use serde_json::Value;

/// A confidential client: the revocation requests must authenticate like token requests.
async fn confidential_api() -> MockApi {
    MockApi::builder()
        .client_id("app")
        .client_secret("app-secret")
        .start()
        .await
}

#[tokio::test]
async fn revoke_revokes_the_grant_so_a_later_refresh_is_invalid_grant() {
    let api = confidential_api().await;
    let client = api.client();
    let refresh_token = api.refresh_token();
    let _: Value = client.get("/v1/me").send().await.unwrap();
    let access_token = client.access_token().await.unwrap();

    client.revoke().await.unwrap();

    assert_eq!(api.stats().revocations, 2, "{:#?}", api.journal());
    let journal = api.journal();
    let revocations: Vec<_> = journal
        .iter()
        .filter(|e| e.path == authed::mock::REVOCATION_PATH)
        .collect();
    assert_eq!(
        revocations[0].param("token_type_hint"),
        Some("refresh_token")
    );
    assert_eq!(
        revocations[1].param("token_type_hint"),
        Some("access_token")
    );
    // Another client starting from the same refresh token: the grant is gone.
    let other = api
        .client_builder()
        .refresh_token(refresh_token)
        .build()
        .unwrap();
    let err = other.get("/v1/me").send::<Value>().await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::InvalidGrant),
        "{err}"
    );
    // The access token it held is refused too.
    let status = reqwest::Client::new()
        .get(format!("{}/v1/me", api.base_url()))
        .bearer_auth(access_token.expose_secret())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn after_revoke_the_client_uses_no_token_and_asks_for_none() {
    let api = MockApi::start().await;
    let client = api.client();
    let _: Value = client.get("/v1/me").send().await.unwrap();
    client.revoke().await.unwrap();
    let before = api.stats();

    let err = client
        .clone()
        .get("/v1/me")
        .send::<Value>()
        .await
        .unwrap_err();

    assert!(err.is_reauth_required(), "{err}");
    assert!(err.to_string().contains("logged out"), "{err}");
    let after = api.stats();
    assert_eq!(
        after.requests,
        before.requests,
        "nothing was sent: {:#?}",
        api.journal()
    );
}

#[tokio::test]
async fn revoke_clears_the_token_store() {
    let api = MockApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("token.json"));
    let client = api
        .client_builder()
        .token_store(FileStore::new(dir.path().join("token.json")))
        .build()
        .unwrap();
    let _: Value = client.get("/v1/me").send().await.unwrap();
    assert!(store.load().await.unwrap().is_some());

    client.revoke().await.unwrap();

    assert!(
        store.load().await.unwrap().is_none(),
        "the store still holds a token"
    );
}

#[tokio::test]
async fn revoking_twice_is_not_an_error() {
    // RFC 7009 §2.2: a token the server no longer knows is answered 200.
    let api = MockApi::start().await;
    let client = api.client();

    client.revoke().await.unwrap();
    client.revoke().await.unwrap();

    assert_eq!(api.stats().revocations, 2);
}

#[tokio::test]
async fn a_refused_revocation_is_a_typed_error_without_secrets_and_the_tokens_are_forgotten() {
    let api = confidential_api().await;
    let client = api.client();
    let refresh_token = api.refresh_token();
    let _: Value = client.get("/v1/me").send().await.unwrap();
    Mock::given(path(authed::mock::REVOCATION_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("bad client for {}", refresh_token.expose_secret()),
        })))
        .mount(api.server())
        .await;

    let err = client.revoke().await.unwrap_err();

    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::InvalidClient),
        "{err}"
    );
    assert!(err.to_string().contains("not confirmed"), "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(refresh_token.expose_secret()), "{shown}");
        assert!(!shown.contains("app-secret"), "{shown}");
    }
    let err = client.get("/v1/me").send::<Value>().await.unwrap_err();
    assert!(
        err.is_reauth_required(),
        "the client still used a token: {err}"
    );
}

#[tokio::test]
async fn without_a_revocation_endpoint_revoke_is_a_config_error_and_changes_nothing() {
    let api = MockApi::start().await;
    // A token URL that does not end in /token: nothing to derive the endpoint from.
    let client = api
        .client_builder()
        .token_url(format!("{}/oauth/token/", api.base_url()))
        .build()
        .unwrap();

    let err = client.revoke().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("revocation_url"), "{err}");
    assert_eq!(api.stats().requests, 0);
}

#[tokio::test]
async fn an_explicit_revocation_url_is_used() {
    let api = MockApi::start().await;
    let client = api
        .client_builder()
        .revocation_url(api.revocation_url())
        .token_url(format!("{}/oauth/token/", api.base_url()))
        .build()
        .unwrap();

    client.revoke().await.unwrap();

    assert_eq!(
        api.stats().revocations,
        1,
        "the refresh token: {:#?}",
        api.journal()
    );
}

/// A token source that answers only when let through.
#[derive(Debug)]
struct Gated {
    gate: std::sync::Arc<tokio::sync::Notify>,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl authed::TokenSource for Gated {
    fn fetch<'a>(&'a self, _: Option<&'a authed::AccessToken>) -> authed::auth::TokenFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.gate.notified().await;
            Ok(authed::auth::Token::new(
                "at-minted-during-logout",
                Some(std::time::Duration::from_secs(3600)),
            ))
        })
    }

    fn grant(&self) -> &str {
        "gated"
    }
}

#[tokio::test(start_paused = true)]
async fn a_token_minted_while_logging_out_is_never_served() {
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = authed::Client::builder()
        .base_url("https://api.example.com")
        .revocation_url("https://auth.example.com/oauth/revoke")
        .token_source(Gated {
            gate: gate.clone(),
            calls: calls.clone(),
        })
        .build()
        .unwrap();
    // A request starts the refresh, which waits at the gate.
    let request = tokio::spawn(client.get("/v1/me").send::<Value>());
    while calls.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let logout = tokio::spawn({
        let client = client.clone();
        async move { client.revoke().await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;

    gate.notify_one();
    let request = request.await.unwrap();
    let logout = logout.await.unwrap();

    logout.unwrap();
    let err = request.unwrap_err();
    assert!(
        err.is_reauth_required(),
        "the minted token was served: {err}"
    );
    let err = client.access_token().await.unwrap_err();
    assert!(err.is_reauth_required(), "{err}");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no refresh after logout"
    );
}
