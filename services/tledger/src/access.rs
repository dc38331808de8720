//! Access tokens, roles and scopes (docs/contract.md "Access").
//!
//! A token is a random secret shown once; the ledger keeps only its SHA-256.
//! Each token has a role (`admin`, `unit_officer` scoped to a unit subtree,
//! `inspector`, `publisher` scoped to a publisher). Verified tokens are
//! cached for a few seconds so that a command costs no extra round trip. A
//! revocation through this process takes effect at once; one made by
//! another process (`tledger tokens revoke`) is announced by PostgreSQL
//! (`NOTIFY tledger_token_changed`, a trigger on `tokens`) and takes effect
//! as soon as [`Access::follow_token_changes`] hears it, well within a
//! second. The cache's lifetime bounds what a lost announcement could cost.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::Row;
use tledger_events::{PublisherId, UnitId};
use tledger_store::{Store, StoreError};
use uuid::Uuid;

/// How long a verified token is trusted without asking the database again:
/// the bound on a revocation's delay should its announcement be lost (the
/// listening connection dropped).
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The channel on which PostgreSQL announces each changed token's id
/// (migration `20261127090000_token_changes.sql`).
pub const TOKEN_CHANGED_CHANNEL: &str = "tledger_token_changed";

/// How long to wait before listening again after the listener failed.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The roles of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    UnitOfficer,
    Inspector,
    Publisher,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::UnitOfficer => "unit_officer",
            Role::Inspector => "inspector",
            Role::Publisher => "publisher",
        }
    }
}

impl FromStr for Role {
    type Err = AccessError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "unit_officer" => Ok(Role::UnitOfficer),
            "inspector" => Ok(Role::Inspector),
            "publisher" => Ok(Role::Publisher),
            other => Err(AccessError::UnknownRole(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: the token's identity, role and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub token_id: Uuid,
    pub name: String,
    pub role: Role,
    /// The root of a unit officer's scope.
    pub unit_id: Option<UnitId>,
    /// A publisher token's publisher.
    pub publisher_id: Option<PublisherId>,
}

/// A token as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub caller: Caller,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token is not valid (unknown or revoked)")]
    Invalid,
    #[error("unknown role {0:?}; expected admin, unit_officer, inspector or publisher")]
    UnknownRole(String),
    #[error("a {role} token {needs}")]
    BadScope { role: Role, needs: &'static str },
    #[error("no token named or with id {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// Verified tokens by secret hash, with when they were verified.
type TokenCache = Arc<Mutex<VerifiedTokens>>;

#[derive(Debug, Default)]
struct VerifiedTokens {
    by_hash: HashMap<[u8; 32], (Caller, Instant)>,
    /// Counts the forgettings: a verification that started before one
    /// (and may have read the token before its revocation) is not kept.
    forgotten: u64,
}

/// Token storage and verification.
#[derive(Clone, Debug)]
pub struct Access {
    store: Store,
    cache: TokenCache,
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn new_secret() -> Result<String, AccessError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(format!("tl_{}", hex::encode(bytes)))
}

pub(crate) fn caller_from(row: &sqlx::postgres::PgRow) -> Result<Caller, AccessError> {
    let role: String = row.get("role");
    let parse_unit = |s: String| UnitId::parse(s).ok();
    let parse_publisher = |s: String| PublisherId::parse(s).ok();
    Ok(Caller {
        token_id: row.get("token_id"),
        name: row.get("name"),
        role: role.parse()?,
        unit_id: row.get::<Option<String>, _>("unit_id").and_then(parse_unit),
        publisher_id: row
            .get::<Option<String>, _>("publisher_id")
            .and_then(parse_publisher),
    })
}

impl Access {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// The caller a bearer token belongs to (401 when missing, unknown or
    /// revoked).
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Caller, AccessError> {
        let secret = bearer
            .filter(|s| !s.is_empty())
            .ok_or(AccessError::Missing)?;
        let hash = secret_hash(secret);
        if let Some(caller) = self.cached(&hash) {
            return Ok(caller);
        }
        let forgotten = self.cache.lock().map(|c| c.forgotten).unwrap_or_default();
        let row = sqlx::query(
            "SELECT token_id, name, role, unit_id, publisher_id FROM tokens \
             WHERE secret_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash.as_slice())
        .fetch_optional(self.store.pool())
        .await
        .map_err(|e| StoreError::Database {
            context: "verifying a token",
            source: e,
        })?;
        let caller = caller_from(&row.ok_or(AccessError::Invalid)?)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.forgotten == forgotten {
                cache.by_hash.insert(hash, (caller.clone(), Instant::now()));
            }
        }
        Ok(caller)
    }

    /// Listens for PostgreSQL's announcements of changed tokens until
    /// `stopped` completes, dropping each changed token from the cache. Run
    /// by every serving process. While it cannot listen (PostgreSQL down)
    /// it retries every second (saying so once, not at every try), and the
    /// cache is emptied whenever announcements may have been missed.
    pub async fn follow_token_changes(&self, stopped: impl std::future::Future<Output = ()>) {
        tokio::pin!(stopped);
        let failing = AtomicBool::new(false);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                ended = self.listen_for_token_changes(&failing) => {
                    self.forget_all();
                    if self.store.pool().is_closed() {
                        return;
                    }
                    if let Err(error) = ended {
                        if !failing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                %error,
                                "cannot listen for revoked tokens; trying every second \
                                 (meanwhile a revocation elsewhere takes up to 5 s)"
                            );
                        }
                    }
                }
            }
            tokio::select! {
                () = &mut stopped => return,
                () = tokio::time::sleep(LISTEN_RETRY) => {}
            }
        }
    }

    /// Listens until the connection is lost (`Ok`) or cannot be made.
    async fn listen_for_token_changes(&self, failing: &AtomicBool) -> Result<(), sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(self.store.pool()).await?;
        listener.listen(TOKEN_CHANGED_CHANNEL).await?;
        if failing.swap(false, Ordering::Relaxed) {
            tracing::info!("listening for revoked tokens again");
        }
        // What was verified before listening may have been revoked since.
        self.forget_all();
        while let Some(notification) = listener.try_recv().await? {
            match Uuid::parse_str(notification.payload()) {
                Ok(token_id) => self.forget(token_id),
                Err(_) => self.forget_all(),
            }
        }
        Ok(())
    }

    /// Drops a token from the cache.
    fn forget(&self, token_id: Uuid) {
        if let Ok(mut cache) = self.cache.lock() {
            cache
                .by_hash
                .retain(|_, (caller, _)| caller.token_id != token_id);
            cache.forgotten += 1;
        }
    }

    fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.by_hash.clear();
            cache.forgotten += 1;
        }
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<Caller> {
        let cache = self.cache.lock().ok()?;
        cache
            .by_hash
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(caller, _)| caller.clone())
    }

    /// Creates a token and returns it with its secret (shown once).
    pub async fn create(
        &self,
        role: Role,
        unit_id: Option<UnitId>,
        publisher_id: Option<PublisherId>,
        name: &str,
    ) -> Result<(Caller, String), AccessError> {
        let secret = new_secret()?;
        let caller = self
            .insert(role, unit_id, publisher_id, name, &secret)
            .await?;
        Ok((caller, secret))
    }

    /// Stores a token whose secret was chosen outside (`TLEDGER_ADMIN_TOKEN`);
    /// does nothing when a token with that secret exists already.
    pub async fn ensure(&self, role: Role, name: &str, secret: &str) -> Result<(), AccessError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tokens WHERE secret_hash = $1)")
                .bind(secret_hash(secret).as_slice())
                .fetch_one(self.store.pool())
                .await
                .map_err(|e| StoreError::Database {
                    context: "looking for a token",
                    source: e,
                })?;
        if !exists {
            self.insert(role, None, None, name, secret).await?;
        }
        Ok(())
    }

    async fn insert(
        &self,
        role: Role,
        unit_id: Option<UnitId>,
        publisher_id: Option<PublisherId>,
        name: &str,
        secret: &str,
    ) -> Result<Caller, AccessError> {
        match (role, &unit_id, &publisher_id) {
            (Role::UnitOfficer, None, _) => {
                return Err(AccessError::BadScope {
                    role,
                    needs: "needs --unit",
                })
            }
            (Role::Publisher, _, None) => {
                return Err(AccessError::BadScope {
                    role,
                    needs: "needs --publisher",
                })
            }
            (Role::Admin | Role::Inspector | Role::Publisher, Some(_), _) => {
                return Err(AccessError::BadScope {
                    role,
                    needs: "takes no --unit",
                })
            }
            (Role::Admin | Role::Inspector | Role::UnitOfficer, _, Some(_)) => {
                return Err(AccessError::BadScope {
                    role,
                    needs: "takes no --publisher",
                })
            }
            _ => {}
        }
        let caller = Caller {
            token_id: Uuid::now_v7(),
            name: name.to_owned(),
            role,
            unit_id,
            publisher_id,
        };
        sqlx::query(
            "INSERT INTO tokens (token_id, name, role, unit_id, publisher_id, secret_hash) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(caller.token_id)
        .bind(&caller.name)
        .bind(role.as_str())
        .bind(caller.unit_id.as_ref().map(UnitId::as_str))
        .bind(caller.publisher_id.as_ref().map(PublisherId::as_str))
        .bind(secret_hash(secret).as_slice())
        .execute(self.store.pool())
        .await
        .map_err(|e| StoreError::Database {
            context: "storing a token",
            source: e,
        })?;
        Ok(caller)
    }

    /// Every token, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, AccessError> {
        let rows = sqlx::query(
            "SELECT token_id, name, role, unit_id, publisher_id, created_at, revoked_at \
             FROM tokens ORDER BY created_at, token_id",
        )
        .fetch_all(self.store.pool())
        .await
        .map_err(|e| StoreError::Database {
            context: "listing tokens",
            source: e,
        })?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    caller: caller_from(row)?,
                    created_at: row.get("created_at"),
                    revoked: row
                        .get::<Option<chrono::DateTime<chrono::Utc>>, _>("revoked_at")
                        .is_some(),
                })
            })
            .collect()
    }

    /// Revokes the token with this id or name; returns how many were revoked.
    pub async fn revoke(&self, id_or_name: &str) -> Result<u64, AccessError> {
        let id = Uuid::parse_str(id_or_name).ok();
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = now() \
             WHERE revoked_at IS NULL AND (token_id = $1 OR name = $2)",
        )
        .bind(id)
        .bind(id_or_name)
        .execute(self.store.pool())
        .await
        .map_err(|e| StoreError::Database {
            context: "revoking a token",
            source: e,
        })?
        .rows_affected();
        if done == 0 {
            return Err(AccessError::NotFound(id_or_name.to_owned()));
        }
        self.forget_all();
        Ok(done)
    }

    /// Whether an admin token was ever created, revoked ones included: the
    /// first start generates one only when none was, so that revoking the
    /// generated token does not make the next start print a new one.
    pub async fn admin_ever_created(&self) -> Result<bool, AccessError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tokens WHERE role = 'admin')")
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| {
                StoreError::Database {
                    context: "looking for an admin token",
                    source: e,
                }
                .into()
            })
    }
}
