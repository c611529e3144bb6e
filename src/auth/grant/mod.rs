//! The built-in grants, one file each, on the shared [`TokenEndpoint`](super::TokenEndpoint).

pub(crate) mod client_credentials;
pub(crate) mod refresh_token;

/// Extra form parameters for the token request (`audience`, RFC 8707 `resource`, ...).
pub(crate) type Params = Vec<(String, String)>;
