//! Grants and token sources: client_credentials, a custom `TokenSource`, the grant chosen by
//! configuration, and when a token request may be sent twice.
#![cfg(feature = "mock")]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use authed::{
    AuthErrorKind, Client, ErrorKind, ExposeSecret, GrantType,
    auth::{AccessToken, Token, TokenFuture, TokenSource},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use common::{TestClock, TokenIssuer, bearer, received, token_body};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path},
};

const SECRET: &str = "cs-m2m-secret-0123456789";

fn cc_builder(server: &MockServer) -> authed::ClientBuilder {
    Client::builder()
        .base_url(server.uri())
        .token_url(format!("{}{}", server.uri(), common::TOKEN_PATH))
        .grant(GrantType::ClientCredentials)
        .client_id("m2m-client")
        .client_secret(SECRET)
}

async fn mount_me(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "svc"})))
        .mount(server)
        .await;
}

#[tokio::test]
async fn client_credentials_mints_with_scope_and_extra_parameters_on_the_wire() {
    let server = MockServer::start().await;
    let issuer = TokenIssuer::new(3600);
    issuer.mount(&server).await;
    mount_me(&server).await;
    let client = cc_builder(&server)
        .scope("widgets:read widgets:write")
        .token_param("audience", "https://api.example.com")
        .token_param("resource", "https://api.example.com/v1")
        .token_param("resource", "https://files.example.com")
        .build()
        .unwrap();

    let _: Value = client.get("/me").send().await.unwrap();
    let _: Value = client.get("/me").send().await.unwrap();

    assert_eq!(issuer.issued(), 1, "one token for both requests");
    assert_eq!(client.grant(), "client_credentials");
    let request = &received(&server, common::TOKEN_PATH).await[0];
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let get = |k: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("grant_type"), ["client_credentials"]);
    assert_eq!(get("scope"), ["widgets:read widgets:write"]);
    assert_eq!(get("audience"), ["https://api.example.com"]);
    assert_eq!(
        get("resource"),
        ["https://api.example.com/v1", "https://files.example.com"]
    );
    assert!(get("refresh_token").is_empty());
    let basic = format!("Basic {}", STANDARD.encode(format!("m2m-client:{SECRET}")));
    assert_eq!(bearer(request).unwrap(), basic, "client_secret_basic");
    // RFC 6749 §5.1: an omitted scope means the scope requested.
    let token = client.access_token().await.unwrap();
    assert_eq!(token.scope(), Some("widgets:read widgets:write"));
}

#[tokio::test]
async fn client_credentials_renews_at_expiry_and_replays_a_401() {
    let server = MockServer::start().await;
    let issuer = TokenIssuer::new(60);
    issuer.mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("authorization", "Bearer at-2"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    mount_me(&server).await;
    let clock = TestClock::new();
    let client = cc_builder(&server).clock(clock.clone()).build().unwrap();

    let _: Value = client.get("/me").send().await.unwrap();
    clock.advance(Duration::from_secs(61));
    // at-2 (after expiry) is refused by the API: invalidated, at-3 minted, request replayed.
    let _: Value = client.get("/me").send().await.unwrap();

    assert_eq!(issuer.issued(), 3);
    let bearers: Vec<_> = received(&server, "/me")
        .await
        .iter()
        .filter_map(bearer)
        .collect();
    assert_eq!(bearers, ["Bearer at-1", "Bearer at-2", "Bearer at-3"]);
}

#[tokio::test]
async fn client_credentials_token_requests_are_retried_on_5xx_but_a_refresh_is_not() {
    // After a 502 the server may have rotated the refresh token: presenting it again would be
    // a reuse. Client credentials carry nothing single-use, so they are retried.
    for (grant, expected_requests) in [
        (GrantType::ClientCredentials, 2),
        (GrantType::RefreshToken, 1),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(common::TOKEN_PATH))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(common::TOKEN_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(token_body("at-1", 60)))
            .mount(&server)
            .await;
        let policy = authed::retry::Policy::default().base_delay(Duration::from_millis(1));
        let builder = match grant {
            GrantType::ClientCredentials => cc_builder(&server),
            _ => common::builder(&server),
        };
        let client = builder.retry_policy(policy).build().unwrap();

        let result = client.access_token().await;

        assert_eq!(
            received(&server, common::TOKEN_PATH).await.len(),
            expected_requests,
            "{grant}"
        );
        assert_eq!(
            result.is_ok(),
            grant == GrantType::ClientCredentials,
            "{grant}"
        );
    }
}

/// A source that mints `custom-1`, `custom-2`, ... and records what it was asked to replace.
#[derive(Clone, Debug, Default)]
struct Counting(Arc<Minted>);

#[derive(Debug, Default)]
struct Minted {
    minted: AtomicUsize,
    replacing: std::sync::Mutex<Vec<Option<String>>>,
}

impl std::ops::Deref for Counting {
    type Target = Minted;
    fn deref(&self) -> &Minted {
        &self.0
    }
}

impl TokenSource for Counting {
    fn fetch<'a>(&'a self, replacing: Option<&'a AccessToken>) -> TokenFuture<'a> {
        Box::pin(async move {
            self.replacing
                .lock()
                .unwrap()
                .push(replacing.map(|t| t.expose_secret().to_owned()));
            let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Token::new(format!("custom-{n}"), Some(Duration::from_secs(600))).with_scope("all"))
        })
    }

    fn grant(&self) -> &str {
        "custom"
    }
}

#[tokio::test]
async fn a_custom_token_source_gets_single_flight_and_the_401_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header("authorization", "Bearer custom-1"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    mount_me(&server).await;
    let source = Counting::default();
    let client = Client::builder()
        .base_url(server.uri())
        .token_source(source.clone())
        .build()
        .expect("no token URL is needed with a custom source");

    // 16 concurrent first calls: one fetch; the 401 on custom-1: one more fetch, replayed.
    let calls = (0..16).map(|_| {
        let client = client.clone();
        async move { client.get("/me").send::<Value>().await }
    });
    for result in futures_util::future::join_all(calls).await {
        result.unwrap();
    }

    assert_eq!(source.minted.load(Ordering::SeqCst), 2);
    assert_eq!(
        *source.replacing.lock().unwrap(),
        [None, Some("custom-1".to_owned())],
        "the source is told which token it replaces"
    );
    assert_eq!(client.grant(), "custom");
    assert_eq!(client.access_token().await.unwrap().scope(), Some("all"));
}

#[test]
fn the_grant_is_chosen_by_configuration_and_its_credentials_are_required() {
    // Each case uses its own prefix: tests in this binary run in parallel.
    let set = |name: &str, value: &str| unsafe { std::env::set_var(name, value) };
    for p in ["G1", "G2", "G3", "G4"] {
        set(&format!("{p}_BASE_URL"), "https://api.example.com");
        set(&format!("{p}_TOKEN_URL"), "https://auth.example.com/token");
    }
    set("G1_GRANT", "client_credentials");
    set("G1_CLIENT_ID", "svc");
    set("G1_CLIENT_SECRET", SECRET);
    let client = Client::from_env_prefixed("G1").expect("no refresh token needed");
    assert_eq!(client.grant(), "client_credentials");

    set("G2_GRANT", "client_credentials");
    set("G2_CLIENT_ID", "svc");
    let err = Client::from_env_prefixed("G2").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("G2_CLIENT_SECRET"), "{err}");

    set("G3_GRANT", "password");
    let err = Client::from_env_prefixed("G3").unwrap_err();
    assert!(err.to_string().contains("G3_GRANT"), "{err}");
    assert!(err.to_string().contains("unknown grant"), "{err}");

    set("G4_REFRESH_TOKEN", "rt-1");
    assert_eq!(
        Client::from_env_prefixed("G4").unwrap().grant(),
        "refresh_token"
    );

    let err = Client::builder()
        .base_url("https://api.example.com")
        .token_url("https://auth.example.com/token")
        .grant(GrantType::ClientCredentials)
        .client_id("svc")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("client secret"), "{err}");
    let err = Client::builder()
        .base_url("https://api.example.com")
        .token_url("https://auth.example.com/token")
        .refresh_token("")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("refresh token is empty"), "{err}");
}

#[tokio::test]
async fn form_encoded_token_responses_are_understood_success_and_error_alike() {
    // GitHub's legacy token endpoint answers form-encoded unless asked for JSON.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "access_token=at-form&token_type=bearer&expires_in=600&scope=repo",
            "application/x-www-form-urlencoded",
        ))
        .mount(&server)
        .await;
    let client = common::builder(&server).build().unwrap();
    let token = client.access_token().await.unwrap();
    assert_eq!(token.expose_secret(), "at-form");
    assert_eq!(token.scope(), Some("repo"));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(common::TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "error=access_denied&error_description=The+user+said+no&error_uri=https%3A%2F%2Fdocs.example%2Ferr",
            "application/x-www-form-urlencoded",
        ))
        .mount(&server)
        .await;
    let client = common::builder(&server).build().unwrap();
    let err = client.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth(AuthErrorKind::Rejected));
    let api = err.api_error().expect("the OAuth error is kept");
    assert_eq!(api.code.as_deref(), Some("access_denied"));
    assert_eq!(api.message.as_deref(), Some("The user said no"));
    assert_eq!(api.error_uri.as_deref(), Some("https://docs.example/err"));
}

#[tokio::test]
async fn client_credentials_against_the_mock_api_first_use_expiry_and_a_revoked_token() {
    let api = authed::mock::MockApi::builder()
        .client_secret(SECRET)
        .start()
        .await;
    let client = api
        .client_builder()
        .grant(GrantType::ClientCredentials)
        .token_param("audience", "https://api.example.com")
        .build()
        .unwrap();

    let _: Value = client.get("/v1/me").send().await.unwrap();
    api.expire_access_tokens(); // the server now refuses the token the client holds
    let _: Value = client.get("/v1/me").send().await.unwrap(); // 401, new token, replayed

    let stats = api.stats();
    assert_eq!(stats.refreshes, 2);
    assert_eq!(stats.unauthorized, 1);
    let grants: Vec<_> = api
        .journal()
        .into_iter()
        .filter(|e| e.param("grant_type").is_some())
        .collect();
    assert_eq!(grants.len(), 2);
    for exchange in grants {
        assert_eq!(exchange.param("grant_type"), Some("client_credentials"));
        assert_eq!(exchange.param("audience"), Some("https://api.example.com"));
        assert_eq!(exchange.param("refresh_token"), None);
    }
}
