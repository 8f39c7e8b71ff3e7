//! Config errors: each names a field path and what was expected.

use std::path::{Path, PathBuf};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// Dotted path, e.g. `hardware.card_readers[0].spi`; empty for the whole file.
    pub(crate) path: String,
    /// What is wrong and what was expected.
    pub(crate) message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// All problems found in one config file.
#[derive(Debug, Clone)]
pub(crate) struct ConfigErrors {
    pub(crate) file: PathBuf,
    pub(crate) errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(file: &Path, errors: Vec<ConfigError>) -> Self {
        Self {
            file: file.to_owned(),
            errors,
        }
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} problem{} found",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
