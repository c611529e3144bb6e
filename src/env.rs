//! Reading environment variables: a missing or empty one is `None`, never `""`, and an error
//! names the variable, never its value.

use crate::{Error, Result};

/// Reads a required variable: missing, empty or not UTF-8 is an error naming it.
pub(crate) fn required_var(name: &str) -> Result<String> {
    optional_var(name)?.ok_or_else(|| {
        Error::config(format!(
            "environment variable {name} is not set (or is empty)"
        ))
    })
}

/// Reads an optional variable: missing or empty is `None`, not UTF-8 is an error naming it.
pub(crate) fn optional_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(format!(
            "environment variable {name} is not valid UTF-8"
        ))),
    }
}
