//! How often a reader that follows the ledger in the background (the
//! projector, the qualification policy) starts a batch
//! (docs/adr/0018-background-readers-gather.md).
//!
//! Each batch costs a fixed number of statements whatever it holds. Woken
//! by every sequencer batch, such a reader would spend those statements on
//! every command under load, on the cores the commands need. A cadence
//! makes it start batches at least `least_gap` apart: a reader woken sooner
//! waits out the rest of the gap and then takes everything sequenced
//! meanwhile in one batch. A reader woken after a quiet spell starts at
//! once, so at low load nothing is delayed.

use std::time::{Duration, Instant};

/// The start of a reader's batches, kept at least a gap apart.
#[derive(Clone, Debug)]
pub struct Cadence {
    least_gap: Duration,
    last_start: Option<Instant>,
}

impl Cadence {
    pub fn new(least_gap: Duration) -> Self {
        Self {
            least_gap,
            last_start: None,
        }
    }

    /// How long a batch starting at `now` must still wait.
    pub fn wait_at(&self, now: Instant) -> Duration {
        self.last_start.map_or(Duration::ZERO, |last| {
            (last + self.least_gap).saturating_duration_since(now)
        })
    }

    /// Waits out the rest of the gap since the previous batch began, then
    /// marks this batch's start.
    pub async fn before_batch(&mut self) {
        let wait = self.wait_at(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.last_start = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_batch_and_one_after_a_quiet_spell_start_at_once() {
        let mut cadence = Cadence::new(Duration::from_millis(5));
        let now = Instant::now();
        assert_eq!(cadence.wait_at(now), Duration::ZERO);
        cadence.last_start = Some(now);
        assert_eq!(
            cadence.wait_at(now + Duration::from_millis(9)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_batch_woken_within_the_gap_waits_for_the_rest_of_it() {
        let mut cadence = Cadence::new(Duration::from_millis(5));
        let now = Instant::now();
        cadence.last_start = Some(now);
        assert_eq!(
            cadence.wait_at(now + Duration::from_millis(2)),
            Duration::from_millis(3)
        );
        assert_eq!(cadence.wait_at(now), Duration::from_millis(5));
    }
}
