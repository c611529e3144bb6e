//! Login: gets a first refresh token with the OAuth device flow (RFC 8628) or the
//! authorization code flow with PKCE and a loopback redirect (RFC 8252), and stores it where a
//! client starts from.
//!
//! ```text
//! # Against the embedded mock API (no setup, no network), playing the user's part too:
//! cargo run --example login --features login,mock
//! cargo run --example login --features login,mock -- --flow code
//!
//! # Against a real authorization server:
//! cargo run --example login --features login,mock -- \
//!     --flow device \
//!     --token-url https://auth.example.com/oauth/token \
//!     --device-url https://auth.example.com/oauth/device_authorization \
//!     --client-id my-cli --scope "api:read offline_access" \
//!     --store ~/.config/acme/refresh-token
//!
//! # Logging out: revoke the stored refresh token (RFC 7009) and clear the file
//! cargo run --example login --features login,mock -- --logout \
//!     --token-url https://auth.example.com/oauth/token --client-id my-cli \
//!     --store ~/.config/acme/refresh-token
//! ```
//!
//! Flags, each with its environment variable:
//!
//! | flag | variable | |
//! |---|---|---|
//! | `--flow device\|code` | `AUTHED_LOGIN_FLOW` | default `device` |
//! | `--token-url URL` | `AUTHED_TOKEN_URL` | unset: the embedded mock API |
//! | `--device-url URL` | `AUTHED_DEVICE_AUTHORIZATION_URL` | for `--flow device` |
//! | `--authorize-url URL` | `AUTHED_AUTHORIZE_URL` | for `--flow code` |
//! | `--client-id ID` | `AUTHED_CLIENT_ID` | required for a real server |
//! | `--scope SCOPE` | `AUTHED_SCOPE` | optional |
//! | `--store PATH` | | writes the refresh token to `PATH` (mode `0600`, `FileStore`) |
//! | `--print-export` | | prints `export AUTHED_REFRESH_TOKEN=…` (the token on your screen) |
//! | `--logout` | | logs out instead (`Client::revoke`): revokes the refresh token in `--store PATH` and clears the file; against the mock, logs in, then out |
//! | `--revocation-url URL` | `AUTHED_REVOCATION_URL` | for `--logout`; default derived from a token URL ending in `/token` |
//!
//! Against a real server, one of `--store` and `--print-export` is required: the refresh token
//! is printed only when asked. Against the mock without either, it goes to a temporary file
//! that is removed at the end, after a client has used it.

use std::{env, error::Error, path::PathBuf};

use authed::{
    ExposeSecret, FileStore, RefreshTokenStore,
    login::{Login, LoginTokens},
    mock::MockApi,
};

type BoxResult<T> = Result<T, Box<dyn Error>>;

#[tokio::main]
async fn main() -> BoxResult<()> {
    let args = Args::parse(env::args().skip(1))?;
    match args.token_url.clone() {
        Some(token_url) => real(&args, token_url).await,
        None => mock(&args).await,
    }
}

// ===== against a real server =====

async fn real(args: &Args, token_url: String) -> BoxResult<()> {
    if args.logout {
        return logout(args, token_url).await;
    }
    if args.store.is_none() && !args.print_export {
        return Err("say where the refresh token goes: --store PATH or --print-export".into());
    }
    let client_id = args
        .client_id
        .clone()
        .ok_or("--client-id (or AUTHED_CLIENT_ID) is required")?;
    let mut builder = Login::builder().token_url(token_url).client_id(client_id);
    if let Some(scope) = &args.scope {
        builder = builder.scope(scope.clone());
    }
    let tokens = match args.flow {
        Flow::Device => {
            let url = args
                .device_url
                .clone()
                .ok_or("--device-url (or AUTHED_DEVICE_AUTHORIZATION_URL) is required")?;
            let login = builder.device_authorization_url(url).build()?;
            let device = login.start_device().await?;
            eprintln!(
                "Open {} and enter the code {}",
                device.verification_uri(),
                device.user_code()
            );
            if let Some(complete) = device.verification_uri_complete() {
                eprintln!("(or open {complete})");
            }
            eprintln!("Waiting for you to approve...");
            login.finish_device(&device).await?
        }
        Flow::Code => {
            let url = args
                .authorize_url
                .clone()
                .ok_or("--authorize-url (or AUTHED_AUTHORIZE_URL) is required")?;
            let login = builder.authorize_url(url).build()?;
            let pending = login.start_authorization_code().await?;
            eprintln!(
                "Open this URL in your browser:\n\n  {}\n",
                pending.authorize_url()
            );
            eprintln!("Waiting for the redirect to {} ...", pending.redirect_uri());
            pending.finish().await?
        }
    };
    deliver(args, &tokens, args.store.clone()).await?;
    Ok(())
}

/// Revokes the refresh token in `--store PATH` at the revocation endpoint and clears the file.
async fn logout(args: &Args, token_url: String) -> BoxResult<()> {
    let path = args
        .store
        .clone()
        .ok_or("--logout needs --store PATH: the refresh token to revoke")?;
    // A logout sends nothing to the API: any base URL will do.
    let mut builder = authed::Client::builder()
        .base_url(token_url.clone())
        .token_url(token_url)
        .token_store(FileStore::new(&path));
    if let Some(id) = &args.client_id {
        builder = builder.client_id(id.clone());
    }
    if let Some(url) = &args.revocation_url {
        builder = builder.revocation_url(url.clone());
    }
    builder.build()?.revoke().await?;
    eprintln!(
        "Logged out: the refresh token is revoked and {} cleared",
        path.display()
    );
    Ok(())
}

// ===== against the embedded mock =====

async fn mock(args: &Args) -> BoxResult<()> {
    let api = MockApi::builder()
        .device_interval(std::time::Duration::from_secs(1))
        .start()
        .await;
    eprintln!(
        "No token URL given: logging in to the embedded mock API at {}",
        api.base_url()
    );
    let mut builder = Login::builder()
        .token_url(api.token_url())
        .device_authorization_url(api.device_authorization_url())
        .authorize_url(api.authorize_url())
        .client_id(
            args.client_id
                .clone()
                .unwrap_or_else(|| "authed-mock".into()),
        );
    if let Some(scope) = &args.scope {
        builder = builder.scope(scope.clone());
    }
    let login = builder.build()?;
    let tokens = match args.flow {
        Flow::Device => {
            let device = login.start_device().await?;
            eprintln!(
                "Open {} and enter the code {}",
                device.verification_uri(),
                device.user_code()
            );
            // Play the user: open the verification page with the code, which approves.
            let page = device
                .verification_uri_complete()
                .ok_or("the mock offers verification_uri_complete")?
                .to_owned();
            let user = async {
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                eprintln!("(the user approves on {page})");
                reqwest::get(&page).await?.error_for_status()?;
                Ok::<_, reqwest::Error>(())
            };
            let (tokens, approved) = tokio::join!(login.finish_device(&device), user);
            approved?;
            tokens?
        }
        Flow::Code => {
            let pending = login.start_authorization_code().await?;
            eprintln!(
                "Open this URL in your browser:\n\n  {}\n",
                pending.authorize_url()
            );
            // Play the browser: the mock approves at once and redirects to the listener.
            let browser = reqwest::get(pending.authorize_url().to_string());
            let (tokens, page) = tokio::join!(pending.finish(), browser);
            eprintln!("(the browser shows: {})", page?.text().await?);
            tokens?
        }
    };

    let temporary = tempdir_path();
    let path = args.store.clone().or_else(|| temporary.clone());
    deliver(args, &tokens, path.clone()).await?;

    // Show that the token works: a client starts from the file, as a deployment would.
    if let Some(path) = &path {
        let client = api
            .client_builder()
            .refresh_token_store(FileStore::new(path))
            .build()?;
        let me: serde_json::Value = client.get("/v1/me").send().await?;
        eprintln!(
            "A client started from {} and is signed in as {}",
            path.display(),
            me["name"]
        );
        if args.logout {
            client.revoke().await?;
            eprintln!("Logged out: the refresh token is revoked and the store cleared");
            let again = api
                .client_builder()
                .refresh_token(tokens.refresh_token().ok_or("a refresh token")?.clone())
                .build()?;
            match again.get("/v1/me").send::<serde_json::Value>().await {
                Err(e) if e.is_reauth_required() => {
                    eprintln!("The revoked refresh token is refused: {e}");
                }
                other => return Err(format!("the revoked token still works: {other:?}").into()),
            }
        }
    }
    if let (Some(path), None) = (&temporary, &args.store) {
        std::fs::remove_dir_all(path.parent().unwrap_or(path))?;
    }
    Ok(())
}

/// A fresh temporary directory's `refresh-token` path.
fn tempdir_path() -> Option<PathBuf> {
    let dir = env::temp_dir().join(format!("authed-login-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("refresh-token"))
}

// ===== output =====

async fn deliver(args: &Args, tokens: &LoginTokens, store: Option<PathBuf>) -> BoxResult<()> {
    let refresh_token = tokens.refresh_token().ok_or(
        "the server issued no refresh token; many issue one only for a scope such as offline_access",
    )?;
    if let Some(path) = store {
        // A login starts a new grant: it replaces whatever the store held.
        let store = FileStore::new(&path);
        let held = store.load().await.ok().flatten().map(|r| r.refresh_token);
        let record = authed::auth::store::StoredTokens::new(refresh_token.clone(), None);
        store.save(held.as_ref(), &record).await?;
        eprintln!("Refresh token written to {} (mode 0600)", path.display());
    }
    if args.print_export {
        println!(
            "export AUTHED_REFRESH_TOKEN={}",
            shell_quote(refresh_token.expose_secret())
        );
    }
    Ok(())
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

// ===== arguments =====

#[derive(Clone, Copy, Debug)]
enum Flow {
    Device,
    Code,
}

#[derive(Debug)]
struct Args {
    flow: Flow,
    token_url: Option<String>,
    device_url: Option<String>,
    authorize_url: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    store: Option<PathBuf>,
    print_export: bool,
    logout: bool,
    revocation_url: Option<String>,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> BoxResult<Self> {
        let var = |name: &str| env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut args = Args {
            flow: Flow::Device,
            token_url: var("AUTHED_TOKEN_URL"),
            device_url: var("AUTHED_DEVICE_AUTHORIZATION_URL"),
            authorize_url: var("AUTHED_AUTHORIZE_URL"),
            client_id: var("AUTHED_CLIENT_ID"),
            scope: var("AUTHED_SCOPE"),
            store: None,
            print_export: false,
            logout: false,
            revocation_url: var("AUTHED_REVOCATION_URL"),
        };
        let mut flow = var("AUTHED_LOGIN_FLOW");
        while let Some(flag) = argv.next() {
            let mut value = || argv.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--flow" => flow = Some(value()?),
                "--token-url" => args.token_url = Some(value()?),
                "--device-url" => args.device_url = Some(value()?),
                "--authorize-url" => args.authorize_url = Some(value()?),
                "--client-id" => args.client_id = Some(value()?),
                "--scope" => args.scope = Some(value()?),
                "--store" => args.store = Some(PathBuf::from(value()?)),
                "--print-export" => args.print_export = true,
                "--logout" => args.logout = true,
                "--revocation-url" => args.revocation_url = Some(value()?),
                "-h" | "--help" => {
                    eprintln!(
                        "usage: login [--flow device|code] [--token-url URL] [--device-url URL] \
                         [--authorize-url URL] [--client-id ID] [--scope SCOPE] [--store PATH] \
                         [--print-export] [--logout] [--revocation-url URL]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other:?}; try --help").into()),
            }
        }
        args.flow = match flow.as_deref() {
            None | Some("device") => Flow::Device,
            Some("code") => Flow::Code,
            Some(other) => return Err(format!("--flow is device or code, not {other:?}").into()),
        };
        Ok(args)
    }
}
