//! Small device facts kept in the `meta` table, and the status snapshot the UI polls.

use rusqlite::{OptionalExtension, params};

use crate::error::{Result, SqlContext};

use super::handle::StoreHandle;

impl StoreHandle {
    /// Sets a value of the store's meta table (insert or replace).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn meta_set(&self, key: String, value: String) -> Result<()> {
        self.call(move |db| {
            db.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = ?2",
                    [key, value],
                )
                .ctx("writing meta")?;
            Ok(())
        })
        .await
    }

    /// A value of the store's meta table.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn meta_get(&self, key: String) -> Result<Option<String>> {
        self.call(move |db| {
            db.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .ctx("reading meta")
        })
        .await
    }

    /// A value kept in the store's meta table, set once: the first `value` offered wins and
    /// is returned ever after (e.g. when the engine first ran on this board).
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn meta_once(&self, key: String, value: String) -> Result<String> {
        self.call(move |db| {
            db.conn
                .execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                    [&key, &value],
                )
                .ctx("writing meta")?;
            db.conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
                    r.get(0)
                })
                .ctx("reading meta")
        })
        .await
    }
}

pub(super) fn meta_u64(conn: &rusqlite::Connection, key: &str) -> Result<u64> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .ctx("reading meta")?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub(super) fn set_meta(tx: &rusqlite::Connection, key: &str, value: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value.to_string()],
    )
    .ctx("writing meta")?;
    Ok(())
}
