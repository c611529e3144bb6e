//! The authorization code grant with PKCE (RFC 7636) and a loopback redirect (RFC 8252 §7.3).

use std::{collections::HashMap, fmt, net::Ipv4Addr, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use url::Url;

use super::{Login, LoginTokens, login_error, random_urlsafe};
use crate::{AuthErrorKind, Error, ErrorKind, Result, auth::Replay};

/// The largest request head the loopback listener reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long one connection to the listener may take to send its request head.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// An authorization in progress: send the user's browser to
/// [`authorize_url`](Self::authorize_url), then [`finish`](Self::finish) receives the redirect
/// and exchanges the code. `Debug` shows neither the PKCE verifier nor the `state`.
pub struct PendingAuthorization {
    login: Login,
    listener: TcpListener,
    redirect_uri: String,
    authorize_url: Url,
    state: SecretString,
    verifier: SecretString,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// Starts an authorization code login: binds `127.0.0.1` on a free port for the redirect,
    /// and builds the authorization URL with `response_type=code`, the redirect URI, a random
    /// `state` and the PKCE S256 `code_challenge` (RFC 7636 §4.2).
    ///
    /// Errors: a [`Config`](ErrorKind::Config) error without an
    /// [`authorize_url`](super::LoginBuilder::authorize_url); a
    /// [`Transport`](ErrorKind::Transport) error if the port cannot be bound.
    pub async fn start_authorization_code(&self) -> Result<PendingAuthorization> {
        let authorize = self.authorize_url.as_ref().ok_or_else(|| {
            Error::config("the authorization code flow needs an authorization URL")
        })?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    "could not listen on 127.0.0.1 for the redirect",
                )
                .with_source(e)
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| {
                Error::new(ErrorKind::Transport, "could not read the listener's port")
                    .with_source(e)
            })?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}{}", self.redirect_path);
        // 32 random bytes: a 43-character verifier, the least RFC 7636 §4.1 allows, and 256 bits.
        let verifier = SecretString::from(random_urlsafe(32)?);
        let state = SecretString::from(random_urlsafe(16)?);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()));
        let mut authorize_url = authorize.clone();
        {
            let mut query = authorize_url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", state.expose_secret())
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(scope) = &self.scope {
                query.append_pair("scope", scope);
            }
        }
        Ok(PendingAuthorization {
            login: self.clone(),
            listener,
            redirect_uri,
            authorize_url,
            state,
            verifier,
        })
    }
}

impl PendingAuthorization {
    /// The URL to open in the user's browser (or to print for the user to open).
    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// The loopback redirect URI, `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the browser's redirect (at most the
    /// [`redirect_timeout`](super::LoginBuilder::redirect_timeout)), checks its `state`, and
    /// exchanges the code with the PKCE `code_verifier` (RFC 6749 §4.1.3, RFC 7636 §4.5).
    /// Requests to other paths (a browser's `/favicon.ico`) get `404` and the wait goes on.
    ///
    /// Errors: [`Timeout`](ErrorKind::Timeout) when no redirect comes;
    /// [`AuthErrorKind::AccessDenied`] when the user declined; a
    /// [`Rejected`](AuthErrorKind::Rejected) error for a redirect whose `state` differs (it may
    /// be forged) or that carries another error; the token endpoint's refusal.
    pub async fn finish(self) -> Result<LoginTokens> {
        let deadline = Instant::now() + self.login.redirect_timeout;
        let params = tokio::time::timeout_at(deadline, self.receive_redirect())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    "no redirect from the authorization server reached the loopback listener in time",
                )
            })??;
        let code = self.check_redirect(params)?;
        let (code, verifier) = (code.expose_secret(), self.verifier.expose_secret());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        // The code is single-use: sent again only where the server cannot have used it.
        self.login
            .token
            .request(&form, &[code, verifier], Replay::NotConsumed)
            .await
            .map(LoginTokens::from)
            .map_err(login_error)
    }

    /// Accepts connections until one asks for the redirect path; answers it with a page
    /// telling the user to go back to the program.
    async fn receive_redirect(&self) -> Result<HashMap<String, String>> {
        loop {
            let (mut stream, _) = self.listener.accept().await.map_err(|e| {
                Error::new(ErrorKind::Transport, "the loopback listener failed").with_source(e)
            })?;
            let head = match tokio::time::timeout(CONNECTION_TIMEOUT, read_head(&mut stream)).await
            {
                Ok(Some(head)) => head,
                // A stalled, oversized or garbled request is not the redirect: wait on.
                _ => continue,
            };
            match redirect_params(&head, &self.login.redirect_path) {
                Some(params) => {
                    let page = if params.contains_key("code") {
                        "Login complete. You can close this window and go back to the program."
                    } else {
                        "Login failed. Go back to the program for details."
                    };
                    respond(&mut stream, "200 OK", page).await;
                    return Ok(params);
                }
                None => respond(&mut stream, "404 Not Found", "Not found.").await,
            }
        }
    }

    /// The code of a redirect whose `state` matches, or the error it carries.
    fn check_redirect(&self, params: HashMap<String, String>) -> Result<SecretString> {
        let state_matches = params
            .get("state")
            .is_some_and(|s| constant_time_eq(s.as_bytes(), self.state.expose_secret().as_bytes()));
        if !state_matches {
            return Err(Error::auth(
                AuthErrorKind::Rejected,
                "the redirect's state does not match this login's: refused (it may be forged)",
            ));
        }
        if let Some(error) = params.get("error") {
            // Shown in the error message: printable ASCII only, and short.
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            return Err(if error == "access_denied" {
                Error::auth(
                    AuthErrorKind::AccessDenied,
                    "the user denied the authorization request (access_denied)",
                )
            } else {
                Error::auth(
                    AuthErrorKind::Rejected,
                    format!("the authorization server refused the login ({error})"),
                )
            });
        }
        params
            .get("code")
            .filter(|c| !c.is_empty())
            .map(|c| SecretString::from(c.clone()))
            .ok_or_else(|| {
                Error::auth(
                    AuthErrorKind::InvalidResponse,
                    "the redirect carries neither a code nor an error",
                )
            })
    }
}

/// Reads a request head (up to the blank line), at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

/// The query parameters of `GET <path>?…`, if the request line asks for `path`.
fn redirect_params(head: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut parts = head.lines().next()?.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" {
        return None;
    }
    let url = Url::parse("http://127.0.0.1").ok()?.join(target).ok()?;
    (url.path() == path).then(|| url.query_pairs().into_owned().collect())
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    // The browser's page is a courtesy: the login goes on if it cannot be sent.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_path_and_query_are_read_from_the_request_line() {
        let head = "GET /callback?code=ac-1&state=xyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let params = redirect_params(head, "/callback").unwrap();
        assert_eq!(params["code"], "ac-1");
        assert_eq!(params["state"], "xyz");
        assert!(redirect_params(head, "/other").is_none());
        assert!(redirect_params("GET /favicon.ico HTTP/1.1\r\n\r\n", "/callback").is_none());
        assert!(redirect_params("POST /callback?code=1 HTTP/1.1\r\n\r\n", "/callback").is_none());
    }

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
