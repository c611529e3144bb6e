//! Secret newtypes: the refresh token, the client secret and the access token.
//!
//! Each wraps a [`secrecy::SecretString`]: the value is zeroized on drop and `Debug` prints
//! `[redacted]`. Read the value with [`ExposeSecret::expose_secret`]. The crate itself does so
//! only where the value has to leave the wrapper: building the token request or the
//! `Authorization` header, writing the [`FileStore`](crate::FileStore), and scrubbing the
//! secret out of error bodies.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::Result;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// Reads the secret from the environment variable `name`.
            ///
            /// A missing, empty or non-UTF-8 variable is a [`Config`](crate::ErrorKind::Config)
            /// error that names the variable (never its value).
            pub fn from_env(name: &str) -> Result<Self> {
                crate::env::required_var(name).map(Self::new)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<SecretString> for $name {
            fn from(secret: SecretString) -> Self {
                Self(secret)
            }
        }

        impl From<String> for $name {
            fn from(secret: String) -> Self {
                Self::new(secret)
            }
        }

        impl From<&str> for $name {
            fn from(secret: &str) -> Self {
                Self::new(secret)
            }
        }

        impl ExposeSecret<str> for $name {
            fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }
    };
}

secret_type! {
    /// The long-lived OAuth 2.0 refresh token the client mints access tokens from.
    ///
    /// ```
    /// # fn run() -> authed::Result<()> {
    /// # unsafe { std::env::set_var("ACME_REFRESH_TOKEN", "rt-123") };
    /// let token = authed::RefreshToken::from_env("ACME_REFRESH_TOKEN")?;
    /// assert_eq!(format!("{token:?}"), "RefreshToken([redacted])");
    /// # Ok(()) }
    /// # run().unwrap();
    /// ```
    RefreshToken
}

secret_type! {
    /// The OAuth 2.0 client secret of a confidential client.
    ClientSecret
}

impl RefreshToken {
    pub(crate) fn is_same(&self, other: &RefreshToken) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}
