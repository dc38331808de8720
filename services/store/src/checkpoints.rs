//! Signed checkpoints as stored, and the event hashes they commit to.

use sqlx::Row;
use tledger_events::chain::Hash;
use tledger_events::checkpoint::Checkpoint;

use crate::append::to_i64;
use crate::{Store, StoreError};

const COLUMNS: &str = "position, chain_hash, merkle_root, time, key_id, signature";

fn checkpoint_of(row: &sqlx::postgres::PgRow) -> Result<Checkpoint, StoreError> {
    let position: i64 = row.get("position");
    let corrupt = |what: &str| StoreError::CorruptCheckpoint {
        position: u64::try_from(position).unwrap_or(0),
        reason: format!("{what} has the wrong length"),
    };
    Ok(Checkpoint {
        position: u64::try_from(position).unwrap_or(0),
        chain_hash: row
            .get::<Vec<u8>, _>("chain_hash")
            .try_into()
            .map_err(|_| corrupt("chain_hash"))?,
        merkle_root: row
            .get::<Vec<u8>, _>("merkle_root")
            .try_into()
            .map_err(|_| corrupt("merkle_root"))?,
        time: row.get("time"),
        key_id: row.get("key_id"),
        signature: row
            .get::<Vec<u8>, _>("signature")
            .try_into()
            .map_err(|_| corrupt("signature"))?,
    })
}

impl Store {
    /// Stores a checkpoint (once per position: another instance may have
    /// signed the same position first, which is as good).
    #[tracing::instrument(level = "debug", name = "store.record_checkpoint", skip_all, fields(position = checkpoint.position))]
    pub async fn record_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        public_key: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (position, chain_hash, merkle_root, time, key_id, signature, \
             public_key) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (position) DO NOTHING",
        )
        .bind(to_i64(checkpoint.position))
        .bind(checkpoint.chain_hash.as_slice())
        .bind(checkpoint.merkle_root.as_slice())
        .bind(&checkpoint.time)
        .bind(&checkpoint.key_id)
        .bind(checkpoint.signature.as_slice())
        .bind(public_key)
        .execute(self.pool())
        .await
        .map_err(StoreError::db("recording a checkpoint"))?;
        Ok(())
    }

    /// The latest checkpoint, if any.
    #[tracing::instrument(level = "debug", name = "store.latest_checkpoint", skip_all)]
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM checkpoints ORDER BY position DESC LIMIT 1"
        ))
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading the latest checkpoint"))?;
        row.as_ref().map(checkpoint_of).transpose()
    }

    /// Every checkpoint, in position order.
    #[tracing::instrument(level = "debug", name = "store.checkpoints", skip_all)]
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM checkpoints ORDER BY position"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading the checkpoints"))?;
        rows.iter().map(checkpoint_of).collect()
    }

    /// The chain hashes of the sequenced events after `after`, at most
    /// `limit`, in position order.
    #[tracing::instrument(
        level = "debug",
        name = "store.event_hashes",
        skip_all,
        fields(after, limit)
    )]
    pub async fn event_hashes(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, hash FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(to_i64(after))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading event hashes"))?;
        rows.iter()
            .map(|row| {
                let position = u64::try_from(row.get::<i64, _>("position")).unwrap_or(0);
                let hash: Hash = row.get::<Vec<u8>, _>("hash").try_into().map_err(|_| {
                    StoreError::CorruptCheckpoint {
                        position,
                        reason: "an event hash is not 32 bytes".into(),
                    }
                })?;
                Ok((position, hash))
            })
            .collect()
    }
}
