//! The ledger's verification status for the dashboard.
//!
//! `tledger verify` walks the whole ledger (every hash, the Merkle root and
//! signature of every checkpoint): seconds on a district, far too slow for
//! each page view. The dashboard runs the same check ([`verify_ledger`]) in
//! the background instead, at most once every [`REVERIFY_AFTER`], and shows
//! the last result with the time it was taken, saying so on the page. The
//! public key is the service's own signing key's: an inspector who does not
//! trust the service runs `tledger verify` with a key they hold (README,
//! "For inspectors").

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tledger_events::checkpoint::CheckpointVerifier;
use tledger_store::Store;

use crate::inspection::{verify_ledger, Verification};

/// What the dashboard keeps between requests.
#[derive(Clone, Debug)]
pub struct DashboardState {
    pub verification: Arc<LedgerVerification>,
}

impl DashboardState {
    /// `verifier`: the public key of the service's signing key, to verify
    /// checkpoints with; `None` shows the ledger as not verified.
    pub fn new(verifier: Option<CheckpointVerifier>) -> Self {
        Self {
            verification: LedgerVerification::new(verifier),
        }
    }
}

/// How old a result may be before a page view starts a new check.
pub const REVERIFY_AFTER: Duration = Duration::from_secs(600);

/// A finished check: when it ended and what it found (or why it could not
/// run).
#[derive(Clone, Debug)]
pub struct Checked {
    pub at: DateTime<Utc>,
    pub outcome: Result<Verification, String>,
}

/// What the page shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub last: Option<Checked>,
    pub running: bool,
    /// `false` when the service was built without its key (in-process
    /// tests): nothing is verified then.
    pub has_key: bool,
}

#[derive(Debug, Default)]
struct Progress {
    last: Option<Checked>,
    running: bool,
}

/// The cached result of the last background verification.
#[derive(Debug)]
pub struct LedgerVerification {
    verifier: Option<CheckpointVerifier>,
    progress: Mutex<Progress>,
}

impl LedgerVerification {
    pub fn new(verifier: Option<CheckpointVerifier>) -> Arc<Self> {
        Arc::new(Self {
            verifier,
            progress: Mutex::new(Progress::default()),
        })
    }

    /// Starts a check in the background unless one is running or the last
    /// one is recent.
    pub fn refresh(self: &Arc<Self>, store: &Store) {
        let Some(verifier) = self.verifier.clone() else {
            return;
        };
        {
            let Ok(mut progress) = self.progress.lock() else {
                return;
            };
            let recent = progress.last.as_ref().is_some_and(|c| {
                (Utc::now() - c.at)
                    .to_std()
                    .is_ok_and(|age| age < REVERIFY_AFTER)
            });
            if progress.running || recent {
                return;
            }
            progress.running = true;
        }
        let this = Arc::clone(self);
        let store = store.clone();
        tokio::spawn(async move {
            let outcome = verify_ledger(&store, &verifier, None)
                .await
                .map_err(|e| e.to_string());
            if let Ok(mut progress) = this.progress.lock() {
                progress.last = Some(Checked {
                    at: Utc::now(),
                    outcome,
                });
                progress.running = false;
            }
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        let has_key = self.verifier.is_some();
        match self.progress.lock() {
            Ok(progress) => Snapshot {
                last: progress.last.clone(),
                running: progress.running,
                has_key,
            },
            Err(_) => Snapshot {
                has_key,
                ..Snapshot::default()
            },
        }
    }
}
