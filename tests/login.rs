//! Getting the first refresh token (`authed::login`) against the mock API's device and
//! authorization endpoints, and against hostile answers.
#![cfg(all(feature = "login", feature = "mock"))]

use std::time::Duration;

use authed::{
    AuthErrorKind, ErrorKind, ExposeSecret, RefreshTokenStore,
    login::{Login, LoginTokens},
    mock::{MockApi, Route},
};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

/// An HTTP client that sets no timer, not even the idle-pool one: on paused time, tokio
/// auto-advances to the next timer while a request waits for the server's thread.
fn untimed() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

/// A login against the mock, with an HTTP client that sets no timer (paused time).
fn login(api: &MockApi) -> Login {
    Login::builder()
        .token_url(api.token_url())
        .device_authorization_url(api.device_authorization_url())
        .authorize_url(api.authorize_url())
        .client_id("authed-mock")
        .http_client(untimed())
        .build()
        .unwrap()
}

/// Checks that the refresh token of a login works for a client.
async fn assert_usable(api: &MockApi, tokens: &LoginTokens) {
    let refresh_token = tokens.refresh_token().expect("a refresh token").clone();
    let client = api
        .client_builder()
        .refresh_token(refresh_token)
        .build()
        .unwrap();
    let me: Value = client.get("/v1/me").send().await.unwrap();
    assert_eq!(me["id"], "user-1");
}

/// Token endpoint answers of the device grant, in order.
fn device_polls(api: &MockApi) -> Vec<Option<&'static str>> {
    api.journal()
        .into_iter()
        .filter(|e| e.param("grant_type") == Some("urn:ietf:params:oauth:grant-type:device_code"))
        .map(|e| e.error)
        .collect()
}

// ===== device flow =====

#[tokio::test(start_paused = true)]
async fn the_device_flow_polls_until_the_user_approves() {
    let api = MockApi::builder()
        .device_interval(Duration::from_secs(5))
        .start()
        .await;
    let login = login(&api);
    let device = login.start_device().await.unwrap();
    let started = tokio::time::Instant::now();

    let user = async {
        // The user approves after the program has polled twice.
        while device_polls(&api).len() < 2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(api.approve_device(&device.user_code().to_lowercase()));
    };
    let (tokens, ()) = tokio::join!(login.finish_device(&device), user);

    let tokens = tokens.unwrap();
    assert_usable(&api, &tokens).await;
    assert_eq!(
        device_polls(&api),
        [
            Some("authorization_pending"),
            Some("authorization_pending"),
            None
        ]
    );
    // Three intervals at least (the user's own timer may have moved paused time further while
    // a poll was in flight); the mock answers slow_down to any poll sooner than the interval.
    assert!(started.elapsed() >= Duration::from_secs(15));
    assert_eq!(
        device.verification_uri(),
        format!("{}/device", api.base_url())
    );
    assert!(!format!("{device:?} {tokens:?}").contains(tokens.access_token().expose_secret()));
}

#[tokio::test(start_paused = true)]
async fn the_device_flow_reports_a_denial() {
    let api = MockApi::start().await;
    let login = login(&api);
    let device = login.start_device().await.unwrap();
    assert!(api.deny_device(device.user_code()));

    let err = login.finish_device(&device).await.unwrap_err();

    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::AccessDenied),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_verification_page_approves_or_denies_as_the_user_would() {
    let api = MockApi::start().await;
    let login = login(&api);
    let approved = login.start_device().await.unwrap();
    let denied = login.start_device().await.unwrap();
    let visit = |url: String| async move { untimed().get(url).send().await.unwrap().status() };

    let pages = [
        visit(approved.verification_uri_complete().unwrap().to_owned()).await,
        visit(format!(
            "{}?user_code={}&deny",
            denied.verification_uri(),
            denied.user_code()
        ))
        .await,
        visit(format!("{}?user_code=ZZZZ-ZZZZ", denied.verification_uri())).await,
    ];
    let approved = login.finish_device(&approved).await;
    let denied = login.finish_device(&denied).await.unwrap_err();

    assert_eq!(pages.map(|s| s.as_u16()), [200, 200, 404]);
    assert_usable(&api, &approved.unwrap()).await;
    assert_eq!(denied.kind(), ErrorKind::Auth(AuthErrorKind::AccessDenied));
}

#[tokio::test(start_paused = true)]
async fn the_device_flow_gives_up_when_the_code_expires() {
    let api = MockApi::builder()
        .device_code_ttl(Duration::from_secs(60))
        .start()
        .await;
    let login = login(&api);
    let device = login.start_device().await.unwrap();

    let err = login.finish_device(&device).await.unwrap_err();

    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::LoginExpired),
        "{err:?}"
    );
    assert_eq!(api.pending_device_logins(), [device.user_code()]);
    assert!(device_polls(&api).len() <= 12, "{:?}", device_polls(&api));
}

#[tokio::test(start_paused = true)]
async fn the_device_flow_slows_down_when_told() {
    let server = MockServer::start().await;
    Mock::given(path("/device"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "device_code": "dc-secret-device-code",
            "user_code": "BCDF-GHJK",
            "verification_uri": "https://example.com/device",
            "expires_in": 600,
            "interval": 1,
        })))
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({ "error": "slow_down" })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1",
        })))
        .mount(&server)
        .await;
    let login = Login::builder()
        .token_url(format!("{}/token", server.uri()))
        .device_authorization_url(format!("{}/device", server.uri()))
        .client_id("cli")
        .http_client(untimed())
        .build()
        .unwrap();
    let device = login.start_device().await.unwrap();
    let started = tokio::time::Instant::now();

    let tokens = login.finish_device(&device).await.unwrap();

    // 1 s, then 1 + 5 s after slow_down.
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(tokens.refresh_token().unwrap().expose_secret(), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn the_device_flow_reads_answers_as_the_client_does_pending_in_a_200_and_form_encoded_tokens()
{
    // GitHub's device flow answers `200` with an `error` while the user has not approved, and
    // form-encoded tokens to a client that does not insist on JSON: the login reads token
    // answers with the client's own token endpoint code, which takes both.
    let server = MockServer::start().await;
    Mock::given(path("/device"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "device_code": "dc-secret-device-code",
            "user_code": "BCDF-GHJK",
            "verification_uri": "https://example.com/device",
            "expires_in": 600,
            "interval": 1,
        })))
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "error": "authorization_pending" })),
        )
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "access_token=at-1&token_type=bearer&expires_in=3600&refresh_token=rt-1",
            "application/x-www-form-urlencoded",
        ))
        .mount(&server)
        .await;
    let login = Login::builder()
        .token_url(format!("{}/token", server.uri()))
        .device_authorization_url(format!("{}/device", server.uri()))
        .client_id("cli")
        .http_client(untimed())
        .build()
        .unwrap();
    let device = login.start_device().await.unwrap();

    let tokens = login.finish_device(&device).await.unwrap();

    assert_eq!(tokens.refresh_token().unwrap().expose_secret(), "rt-1");
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(3600)));
}

// Real time (the 429 asks for 1 s): with paused time, the runtime idling on the browser's
// socket lets the clock jump to the listener's deadline, and the redirect finds it closed.
#[tokio::test]
async fn the_code_exchange_waits_out_a_429_as_token_requests_do() {
    let api = MockApi::start().await;
    let login = login(&api);
    let pending = login.start_authorization_code().await.unwrap();
    api.fault_next(
        Route::token_endpoint(),
        1,
        authed::mock::Fault::RateLimited(Some(Duration::from_secs(1))),
    );

    let (page, tokens) = tokio::join!(
        browse(pending.authorize_url().to_string()),
        pending.finish()
    );

    assert_eq!(page, 200);
    let tokens = tokens.unwrap();
    assert_usable(&api, &tokens).await;
}

// ===== authorization code flow =====

/// A browser: follows the authorization server's redirect to the loopback listener.
async fn browse(url: String) -> reqwest::StatusCode {
    reqwest::get(url)
        .await
        .expect("the redirect is followed")
        .status()
}

#[tokio::test]
async fn the_authorization_code_flow_receives_the_redirect_and_proves_pkce() {
    let api = MockApi::start().await;
    let login = login(&api);
    let pending = login.start_authorization_code().await.unwrap();
    let url = pending.authorize_url().clone();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();

    let (tokens, page) = tokio::join!(pending.finish(), browse(url.to_string()));

    let tokens = tokens.unwrap();
    assert_eq!(page, 200);
    assert_usable(&api, &tokens).await;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("code_challenge_method"), Some("S256"));
    assert_eq!(param("response_type"), Some("code"));
    assert!(
        param("redirect_uri")
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(param("state").unwrap().len() >= 22);
    let exchange = api
        .journal()
        .into_iter()
        .find(|e| e.param("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(exchange.param("code_verifier"), Some("[redacted]"));
    assert_eq!(exchange.status, Some(reqwest::StatusCode::OK));
}

#[tokio::test]
async fn a_redirect_with_another_state_is_refused_before_any_token_request() {
    let api = MockApi::start().await;
    let login = login(&api);
    let pending = login.start_authorization_code().await.unwrap();
    let forged = format!("{}?code=ac-forged&state=attacker", pending.redirect_uri());

    let (result, _) = tokio::join!(pending.finish(), browse(forged));

    let err = result.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::Rejected),
        "{err:?}"
    );
    assert!(err.to_string().contains("state"), "{err}");
    assert_eq!(api.requests(Route::token_endpoint()), 0);
}

#[tokio::test]
async fn a_denied_authorization_is_access_denied() {
    let api = MockApi::start().await;
    api.deny_authorizations(true);
    let login = login(&api);
    let pending = login.start_authorization_code().await.unwrap();
    let url = pending.authorize_url().to_string();

    let (result, _) = tokio::join!(pending.finish(), browse(url));

    let err = result.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::AccessDenied),
        "{err:?}"
    );
}

#[tokio::test]
async fn other_requests_to_the_listener_do_not_end_the_wait() {
    let api = MockApi::start().await;
    let login = login(&api);
    let pending = login.start_authorization_code().await.unwrap();
    let origin = pending
        .redirect_uri()
        .trim_end_matches("/callback")
        .to_owned();
    let url = pending.authorize_url().to_string();

    let browser = async {
        let favicon = browse(format!("{origin}/favicon.ico")).await;
        (favicon, browse(url).await)
    };
    let (tokens, (favicon, page)) = tokio::join!(pending.finish(), browser);

    assert!(tokens.is_ok(), "{tokens:?}");
    assert_eq!((favicon.as_u16(), page.as_u16()), (404, 200));
}

#[tokio::test(start_paused = true)]
async fn no_redirect_is_a_timeout() {
    let api = MockApi::start().await;
    let login = Login::builder()
        .token_url(api.token_url())
        .authorize_url(api.authorize_url())
        .client_id("authed-mock")
        .redirect_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let pending = login.start_authorization_code().await.unwrap();

    let err = pending.finish().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
}

// ===== the mock's authorization server =====

/// Asks the mock's authorization endpoint for a code (no browser: the redirect is read).
async fn code_for(api: &MockApi, challenge: &str, redirect_uri: &str) -> String {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(api.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", "authed-mock"),
            ("redirect_uri", redirect_uri),
            ("state", "s"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn exchange(api: &MockApi, code: &str, verifier: &str, redirect_uri: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(api.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "authed-mock"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_mock_checks_the_verifier_the_redirect_uri_and_single_use() {
    // RFC 7636 Appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = "http://127.0.0.1:9/callback";
    let api = MockApi::start().await;

    let wrong_verifier = code_for(&api, challenge, redirect).await;
    let wrong_redirect = code_for(&api, challenge, redirect).await;
    let good = code_for(&api, challenge, redirect).await;
    let other_verifier = "x".repeat(43);

    let answers = [
        exchange(&api, &wrong_verifier, &other_verifier, redirect).await,
        exchange(
            &api,
            &wrong_redirect,
            verifier,
            "http://127.0.0.1:10/callback",
        )
        .await,
        exchange(&api, &good, verifier, redirect).await,
        exchange(&api, &good, verifier, redirect).await,
    ];

    let codes: Vec<(u16, &str)> = answers
        .iter()
        .map(|(status, body)| (*status, body["error"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        codes,
        [
            (400, "invalid_grant"),
            (400, "invalid_grant"),
            (200, ""),
            (400, "invalid_grant")
        ]
    );
    assert!(answers[2].1["refresh_token"].is_string());
}

#[tokio::test]
async fn the_mock_refuses_non_loopback_redirects_and_plain_requests() {
    let api = MockApi::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let evil = http
        .get(api.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", "authed-mock"),
            ("redirect_uri", "https://evil.example.com/cb"),
            ("code_challenge", &"a".repeat(43)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let plain = http
        .get(api.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", "authed-mock"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("state", "s"),
            ("code_challenge", &"a".repeat(43)),
            ("code_challenge_method", "plain"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(evil.status(), 400); // shown, never redirected
    assert_eq!(plain.status(), 302);
    let location = plain.headers()["location"].to_str().unwrap();
    assert!(location.contains("error=invalid_request"), "{location}");
    assert!(location.contains("state=s"), "{location}");
}

#[tokio::test]
async fn a_login_starts_a_new_grant_after_revocation() {
    let api = MockApi::start().await;
    let old = api.client();
    api.revoke_grant();
    let login = login(&api);
    let pending = login.start_authorization_code().await.unwrap();
    let url = pending.authorize_url().to_string();

    let (tokens, _) = tokio::join!(pending.finish(), browse(url));

    let tokens = tokens.unwrap();
    assert_usable(&api, &tokens).await;
    assert!(
        old.get("/v1/me")
            .send::<Value>()
            .await
            .unwrap_err()
            .is_reauth_required()
    );
    assert_eq!(
        api.refresh_token().expose_secret(),
        tokens.refresh_token().unwrap().expose_secret()
    );
}

// ===== hostile servers and configuration =====

#[tokio::test]
async fn plain_http_to_a_public_host_is_refused() {
    let err = Login::builder()
        .token_url("http://auth.example.com/oauth/token")
        .client_id("cli")
        .build()
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("plain http://"), "{err}");
}

#[tokio::test]
async fn an_oversized_answer_is_an_error_not_a_memory_spike() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(1024 * 1024)))
        .mount(&server)
        .await;
    let login = Login::builder()
        .token_url(format!("{}/token", server.uri()))
        .device_authorization_url(format!("{}/device", server.uri()))
        .client_id("cli")
        .build()
        .unwrap();

    let err = login.start_device().await.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(err.to_string().contains("larger than 64 KiB"), "{err}");
}

#[tokio::test]
async fn malformed_answers_are_typed_errors_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(path("/device"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "device_code": "dc-secret-device-code",
            "user_code": "BCDF-GHJK",
            "verification_uri": "https://example.com/device",
            "expires_in": "never",
        })))
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .and(body_string_contains("device_code"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"access_token\": "))
        .mount(&server)
        .await;
    let login = Login::builder()
        .token_url(format!("{}/token", server.uri()))
        .device_authorization_url(format!("{}/device", server.uri()))
        .client_id("cli")
        .client_secret("cli-secret-value")
        .build()
        .unwrap();

    let err = login.start_device().await.unwrap_err();

    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::InvalidResponse),
        "{err:?}"
    );
    assert!(err.to_string().contains("expires_in"), "{err}");
    let shown = format!("{err} {err:?} {login:?}");
    assert!(!shown.contains("dc-secret-device-code"), "{shown}");
    assert!(!shown.contains("cli-secret-value"), "{shown}");
}

// ===== the example, end to end =====

/// The `login` example's binary, built (or found up to date) by cargo now, so that a test run
/// of this file alone never runs a stale one. With the features of this test run (the
/// non-default `native-tls` tells an `--all-features` run), so that nothing is rebuilt.
fn example_binary() -> std::path::PathBuf {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(build_example).clone()
}

fn build_example() -> std::path::PathBuf {
    let features: &[&str] = if cfg!(feature = "native-tls") {
        &["--all-features"]
    } else {
        &["--features", "login,mock"]
    };
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "login"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success());
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir
        .join("examples")
        .join(format!("login{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn the_login_example_stores_a_working_refresh_token_for_both_flows() {
    let binary = example_binary();
    for flow in ["device", "code"] {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("refresh-token");

        let output = std::process::Command::new(&binary)
            .args(["--flow", flow, "--store"])
            .arg(&store)
            .arg("--print-export")
            .env_remove("AUTHED_TOKEN_URL")
            .output()
            .unwrap();

        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{flow}: {stderr}");
        assert!(
            stderr.contains("signed in as \"Ada Lovelace\""),
            "{flow}: {stderr}"
        );
        let token = stored_token(&store);
        assert!(token.starts_with("rt-"), "{flow}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            stdout.trim(),
            format!("export AUTHED_REFRESH_TOKEN='{token}'")
        );
        assert!(
            !stderr.contains(&token),
            "{flow}: the token is printed only when asked"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&store).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{flow}");
        }
    }
}

#[test]
fn the_login_example_logs_out_when_asked() {
    let output = std::process::Command::new(example_binary())
        .arg("--logout")
        .env_remove("AUTHED_TOKEN_URL")
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Logged out"), "{stderr}");
    assert!(
        stderr.contains("The revoked refresh token is refused"),
        "{stderr}"
    );
}

#[test]
fn the_login_example_prints_no_token_unless_asked() {
    let output = std::process::Command::new(example_binary())
        .args([
            "--token-url",
            "https://auth.example.com/oauth/token",
            "--client-id",
            "cli",
        ])
        .output()
        .unwrap();

    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--store PATH or --print-export"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_user_code_with_control_characters_is_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/device"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "device_code": "dc-1",
            "user_code": "\u{1b}[2J\u{1b}[HCALL 555-0100",
            "verification_uri": "https://example.com/device",
            "expires_in": 600,
        })))
        .mount(&server)
        .await;
    let login = Login::builder()
        .token_url(format!("{}/token", server.uri()))
        .device_authorization_url(format!("{}/device", server.uri()))
        .client_id("cli")
        .build()
        .unwrap();

    let err = login.start_device().await.unwrap_err();

    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::InvalidResponse),
        "{err:?}"
    );
    assert!(err.to_string().contains("user_code"), "{err}");
}

#[tokio::test]
async fn the_login_example_logs_in_to_the_server_its_flags_name() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let binary = tokio::task::spawn_blocking(example_binary).await.unwrap();
    for flow in ["device", "code"] {
        let api = MockApi::builder()
            .device_interval(Duration::from_secs(1))
            .start()
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("refresh-token");
        let mut child = tokio::process::Command::new(&binary)
            .args(["--flow", flow, "--client-id", "authed-mock"])
            .args(["--token-url", &api.token_url()])
            .args(["--device-url", &api.device_authorization_url()])
            .args(["--authorize-url", &api.authorize_url()])
            .arg("--store")
            .arg(&store)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();

        // Play the user from what the program prints: enter the code, or open the URL.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut shown = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            shown.push(line.clone());
            if let Some(code) = line.split("enter the code ").nth(1) {
                assert!(api.approve_device(code.trim()), "{code}");
                break;
            }
            if let Some(url) = line.trim().strip_prefix("http") {
                assert_eq!(browse(format!("http{url}")).await, 200);
                break;
            }
        }
        while let Some(line) = lines.next_line().await.unwrap() {
            shown.push(line);
        }
        let output = child.wait_with_output().await.unwrap();

        assert!(output.status.success(), "{flow}: {shown:#?}");
        assert!(
            output.stdout.is_empty(),
            "{flow}: no --print-export, no token printed"
        );
        assert_eq!(
            stored_token(&store),
            api.refresh_token().expose_secret(),
            "{flow}"
        );
    }
}

/// The refresh token a `FileStore` file holds.
fn stored_token(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let record = authed::auth::store::StoredTokens::from_json(&text).unwrap();
    record.refresh_token.expose_secret().to_owned()
}

#[tokio::test]
async fn the_login_example_logs_out_of_the_server_its_flags_name() {
    let binary = tokio::task::spawn_blocking(example_binary).await.unwrap();
    let api = MockApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refresh-token");
    let store = authed::FileStore::new(&path);
    let record = authed::auth::store::StoredTokens::new(api.refresh_token(), None);
    store.save(None, &record).await.unwrap();

    let output = tokio::process::Command::new(&binary)
        .args(["--logout", "--client-id", "authed-mock"])
        .args(["--token-url", &api.token_url()])
        .arg("--store")
        .arg(&path)
        .output()
        .await
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(api.stats().revocations, 1, "{:#?}", api.journal());
    assert!(
        store.load().await.unwrap().is_none(),
        "the file still holds a token"
    );
    let err = api
        .client()
        .get("/v1/me")
        .send::<Value>()
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Auth(AuthErrorKind::InvalidGrant),
        "{err}"
    );
}
