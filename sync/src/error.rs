//! Errors of the store.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory could not be created or is not writable.
    #[error("data directory {path} is not usable: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A corrupt database file could not be moved aside (it is left untouched).
    #[error("database {path} is corrupt ({reason}) and could not be moved aside: {source}")]
    Quarantine {
        /// The corrupt file.
        path: PathBuf,
        /// What the integrity check said.
        reason: String,
        /// Why the rename failed.
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("sqlite error while {context}: {source}")]
    Sqlite {
        /// What the store was doing.
        context: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The disk (or the file system holding the database) is full: nothing was written.
    #[error("disk full while {context}: the write was not stored, earlier data is intact")]
    DiskFull {
        /// What the store was doing.
        context: &'static str,
    },
    /// A schema migration failed; the database is left at its previous version.
    #[error("migrating the database schema failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// Data handed to the store broke one of its rules (e.g. a card UID owned twice).
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The store thread is gone (it panicked or was shut down).
    #[error("the store thread has stopped")]
    Closed,
    /// An outbox record is larger than [`crate::MAX_RECORD_BYTES`]: it was refused, and with
    /// it the domain change it belongs to (nothing was written).
    #[error(
        "a {stream} record of {bytes} bytes exceeds the limit of {limit} bytes per outbox record; nothing was stored"
    )]
    RecordTooLarge {
        /// The record's stream.
        stream: crate::Stream,
        /// Its envelope's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A payload could not be encoded.
    #[error("encoding an outbox payload failed: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Extension to attach what the store was doing to a SQLite error.
pub(crate) trait SqlContext<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| {
            if let rusqlite::Error::SqliteFailure(e, _) = &source
                && e.code == rusqlite::ErrorCode::DiskFull
            {
                return Error::DiskFull { context };
            }
            Error::Sqlite { context, source }
        })
    }
}
