//! Hooks for the secret audit (`.ci/secret-audit`), off unless their environment variable is
//! set: the mock reports every secret it issues or holds, and installs a `tracing` subscriber,
//! so that a whole test run's output can be searched for those secrets.

use std::io::Write;

/// Names a file the mock appends one `kind<TAB>value` line to for every secret it issues or
/// holds: `access_token`, `refresh_token`, `client_secret`, and `basic` (the
/// `base64(id:secret)` a client sends in `Authorization: Basic`).
pub const SECRETS_FILE_ENV: &str = "AUTHED_MOCK_SECRETS_FILE";

/// When set (to anything), the first [`MockApi`](super::MockApi) started in a process installs
/// a global `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (all targets at
/// TRACE when unset), unless the process already has one.
pub const TRACE_ENV: &str = "AUTHED_MOCK_TRACE";

/// Appends a secret to the file named by [`SECRETS_FILE_ENV`], if set. A failure to write
/// is reported on stderr (without the secret), never ignored silently: the audit would
/// otherwise pass for want of secrets to look for.
pub(super) fn record(kind: &str, value: &str) {
    let Some(path) = std::env::var_os(SECRETS_FILE_ENV) else {
        return;
    };
    // One write per line: appends of a few bytes do not interleave between processes.
    let line = format!("{kind}\t{value}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("authed mock: cannot append to {SECRETS_FILE_ENV} ({path:?}): {e}");
    }
}

/// `base64(id:secret)` as a client sends it in `Authorization: Basic` (RFC 6749 §2.3.1: each
/// part form-urlencoded first).
pub(super) fn basic(id: &str, secret: &str) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let encode =
        |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))
}

/// Installs the subscriber described at [`TRACE_ENV`], once per process.
pub(super) fn init_trace() {
    if std::env::var_os(TRACE_ENV).is_none() {
        return;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("trace"));
    // `try_init`: a test or example that installed its own subscriber keeps it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
