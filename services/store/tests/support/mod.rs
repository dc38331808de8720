//! What the store's test binaries share.

use tledger_store::{Sequencer, Store};

/// Sequences everything committed (other databases' open transactions on
/// the shared cluster may hold it back for a moment).
pub async fn sequence_all(store: &Store) {
    let sequencer = Sequencer::new(store.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let batch = sequencer.sequence_batch().await.expect("sequence");
        assert!(std::time::Instant::now() < deadline, "held back for 30 s");
        if batch.held_back {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        if batch.events.is_empty() {
            return;
        }
    }
}
