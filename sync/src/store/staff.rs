//! Staff as the board sees them: who may log in, by PIN or by staff card.

use rusqlite::OptionalExtension;

use crate::error::{Result, SqlContext};

use super::handle::StoreHandle;

/// A teacher, for login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffLogin {
    /// Staff id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Argon2 PHC hash of the PIN, if any.
    pub pin_hash: Option<String>,
}

fn staff_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StaffLogin> {
    Ok(StaffLogin {
        id: r.get(0)?,
        name: r.get(1)?,
        pin_hash: r.get(2)?,
    })
}

impl StoreHandle {
    /// A teacher by staff id, for a PIN login.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn staff_login(&self, id: String) -> Result<Option<StaffLogin>> {
        self.call(move |db| {
            db.conn
                .query_row(
                    "SELECT id, name, pin_hash FROM staff WHERE id = ?1",
                    [id],
                    staff_row,
                )
                .optional()
                .ctx("reading staff")
        })
        .await
    }

    /// The teacher who owns staff card `uid`.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn staff_by_card(&self, uid: String) -> Result<Option<StaffLogin>> {
        self.call(move |db| staff_with_card(&db.conn, &uid)).await
    }

    /// All teachers as (id, name), by name.
    ///
    /// # Errors
    /// SQLite fails.
    pub async fn staff_list(&self) -> Result<Vec<(String, String)>> {
        self.call(|db| {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT id, name FROM staff ORDER BY name, id")
                .ctx("reading staff")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .ctx("reading staff")?;
            rows.collect::<rusqlite::Result<_>>().ctx("reading staff")
        })
        .await
    }
}

/// The staff member whose card `uid` is.
pub(super) fn staff_with_card(
    conn: &rusqlite::Connection,
    uid: &str,
) -> Result<Option<StaffLogin>> {
    conn.query_row(
        "SELECT s.id, s.name, s.pin_hash FROM staff_cards c JOIN staff s ON s.id = c.staff_id
         WHERE c.uid = ?1",
        [uid],
        staff_row,
    )
    .optional()
    .ctx("looking up a staff card")
}
