//! How far a background reader of the ledger (the qualification policy)
//! has got: one row per reader in the table `reader_checkpoints`, whose name
//! the schema keeps.

use crate::{Store, StoreError};

impl Store {
    /// The last ledger position `reader` has handled; 0 before its first
    /// batch.
    #[tracing::instrument(level = "debug", name = "store.reader_position", skip(self))]
    pub async fn reader_position(&self, reader: &str) -> Result<u64, StoreError> {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM reader_checkpoints WHERE reader = $1")
                .bind(reader)
                .fetch_optional(self.pool())
                .await
                .map_err(|e| StoreError::Database {
                    context: "reading a reader's position",
                    source: e,
                })?;
        Ok(position.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
    }

    /// Moves `reader` to `position`, committed asynchronously
    /// (docs/adr/0008-asynchronous-sequencer-commit.md): after a crash the reader reads its
    /// last batch again, so its effects must be idempotent.
    #[tracing::instrument(level = "debug", name = "store.move_reader_position", skip(self))]
    pub async fn move_reader_position(
        &self,
        reader: &str,
        position: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "WITH lazily AS (SELECT set_config('synchronous_commit', 'off', true)) \
             INSERT INTO reader_checkpoints (reader, position) SELECT $1, $2 FROM lazily \
             ON CONFLICT (reader) DO UPDATE SET position = EXCLUDED.position",
        )
        .bind(reader)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await
        .map_err(|e| StoreError::Database {
            context: "moving a reader's position",
            source: e,
        })?;
        Ok(())
    }
}
