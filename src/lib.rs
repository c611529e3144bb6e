//! # authed
//!
//! An async client SDK for HTTP APIs protected by short-lived bearer tokens minted from a
//! long-lived refresh token (OAuth 2.0, RFC 6749 §6). You keep one secret — the refresh
//! token — in an environment variable; `authed` does the rest.
#![deny(missing_docs, missing_debug_implementations)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod auth;
mod client;
pub mod config;
mod error;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
pub mod pagination;
pub mod retry;
mod transport;
pub mod widgets;

pub use auth::{
    AccessToken, ClientSecret, Clock, RefreshToken, SystemClock,
    store::{FileStore, FnStore, MemoryStore, RefreshTokenStore},
};
pub use client::{Client, ClientBuilder, DEFAULT_TOKEN_LIFETIME, RequestBuilder};
pub use config::{ClientAuth, Config};
pub use error::{ApiError, AuthErrorKind, Error, ErrorKind, Result, RetrySummary};
pub use pagination::{Page, Pagination, Paginator};
pub use reqwest::{Method, StatusCode, header};
pub use secrecy::{ExposeSecret, SecretString};
