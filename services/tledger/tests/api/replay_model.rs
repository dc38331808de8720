//! The offline replay of an export equals the server, and verification
//! holds exactly on untouched exports, on random histories with
//! corrections.
//!
//! Each case is a seed: `report_model.rs`'s random history through the
//! real command path (retractions among its commands), a checkpoint signed
//! with a key made for the case, an export of the whole ledger. Then:
//!
//! - the archive verifies and replays; every report computed from it alone
//!   (`replay::report_json`, what `tledger replay … report` prints) at
//!   random units, dates and `known_at` cuts equals the server's answer to
//!   the same question (the same JSON, or a refusal from both);
//! - random bit flips in the gzip file: each one that changes what the file
//!   decompresses to (or makes it unreadable) fails verification; one that
//!   does not (the gzip header's timestamp, the padding after the last
//!   block) changes no content, and the archive still verifies;
//! - random bit flips in the decompressed lines, recompressed: every one
//!   fails verification.
//!
//! `TLEDGER_MODEL_SEED=<seed>` runs that one case; `TLEDGER_MODEL_CASES=<n>`
//! runs n cases instead of the default.

use crate::support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::SecondsFormat;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::Value;
use support::random_history::{read_back, History, Model, Rng};
use support::spawn_app;
use tledger::checkpoint_signing::CheckpointSigning;
use tledger::export::{self, Until};
use tledger::replay::{self, ReplayReport};
use tledger_events::checkpoint::{CheckpointSigner, CheckpointVerifier};
use uuid::Uuid;

/// A handful of cases: each is a few seconds in a debug build.
const CASES: u64 = 3;
/// Report questions per case.
const QUESTIONS: usize = 12;
/// Bit flips per case, in the gzip file and in the decompressed lines.
const FLIPS: usize = 24;
const FIRST_SEED: u64 = 0x3e91_a7c0_0000_0000;

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("TLEDGER_MODEL_SEED") {
        let seed = seed.trim();
        let parsed = match seed.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => seed.parse(),
        };
        return vec![parsed.expect("TLEDGER_MODEL_SEED is a number")];
    }
    let cases = std::env::var("TLEDGER_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    (0..cases).map(|i| FIRST_SEED + i).collect()
}

/// Files removed when the case ends, whatever happens.
struct Scratch(Vec<PathBuf>);

impl Scratch {
    fn file(&mut self, what: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("replay-model-{}-{what}", Uuid::new_v4()));
        self.0.push(path.clone());
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).ok()?;
    Some(out)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

fn verifies(path: &Path, key: &CheckpointVerifier) -> Result<u64, String> {
    export::read_archive(path, key)
        .map(|r| r.events)
        .map_err(|e| e.to_string())
}

async fn case(seed: u64) -> String {
    let mut history = History {
        seed,
        ledger: spawn_app().await,
        rng: Rng(seed),
        model: Model::default(),
        answers: BTreeMap::new(),
    };
    history.run().await;
    let History {
        ledger, mut rng, ..
    } = history;
    let head = ledger.projected().await;
    let ledgered = read_back(&ledger).await;
    let retractions = ledgered
        .facts
        .iter()
        .filter(|f| matches!(f.fact, tledger_events::Fact::FactRetracted(_)))
        .count();

    // A key of the case's own; the checkpoint and the export are the
    // service's code, in process.
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&seed.to_le_bytes());
    let signer = CheckpointSigner::from_secret(secret);
    let key = signer.verifier();
    CheckpointSigning::new(
        ledger.store.clone(),
        signer.clone(),
        1,
        Duration::from_secs(60),
    )
    .checkpoint()
    .await
    .expect("a checkpoint");
    let mut scratch = Scratch(Vec::new());
    let archive = scratch.file("ledger.jsonl.gz");
    let exported = export::export(&ledger.store, &signer, Until::Head, &archive)
        .await
        .expect("export");
    assert_eq!(exported.events, head, "seed {seed:#x}");

    // The replay against the server.
    let (replayed, offline) = replay::load(&archive, &key)
        .unwrap_or_else(|e| panic!("seed {seed:#x}: the untouched export: {e}"));
    assert_eq!(replayed.events, head, "seed {seed:#x}");
    let mut answered = 0;
    for _ in 0..QUESTIONS {
        let name = *rng.pick(&["training-volume", "standards", "alignment"]);
        let unit = (!rng.percent(30)).then(|| rng.pick(&ledgered.units).clone());
        let from = rng.day("2003-01-01", "2012-06-30");
        let to = rng.around(from, 0, 6 * 365);
        let as_of = rng.day("2003-06-01", "2013-06-30");
        // Half at the head, half at an instant around a recorded_at.
        let known_at = rng.percent(50).then(|| {
            let (_, at) = *rng.pick(&ledgered.recorded);
            at + chrono::Duration::microseconds(rng.below(3) as i64 - 1)
        });
        let mut params = vec![];
        if let Some(u) = &unit {
            params.push(format!("unit={u}"));
        }
        if name == "training-volume" {
            params.push(format!("from={from}&to={to}"));
        } else {
            params.push(format!("as_of={as_of}"));
        }
        if let Some(at) = known_at {
            params.push(format!(
                "known_at={}",
                at.to_rfc3339_opts(SecondsFormat::Micros, true)
            ));
        }
        let url = format!("/v1/reports/{name}?{}", params.join("&"));
        let (status, body) = ledger.get(&url, Some(&ledger.admin), false).await;
        let request = ReplayReport {
            name: name.into(),
            unit: unit.clone(),
            as_of: Some(as_of.into()),
            from: Some(from.into()),
            to: Some(to.into()),
            known_at,
        };
        let offline_answer = replay::report_json(&offline, &request);
        match (status, offline_answer) {
            (200, Ok(json)) => {
                let served: Value = serde_json::from_str(&body).expect("JSON");
                assert_eq!(json, served, "seed {seed:#x}: {url}");
                answered += 1;
            }
            (404 | 422, Err(_)) => {}
            (status, offline) => {
                panic!("seed {seed:#x}: {url}: the server said {status} {body}, the replay {offline:?}")
            }
        }
    }

    // Bit flips in the gzip file.
    let original = std::fs::read(&archive).expect("the archive");
    let content = gunzip(&original).expect("the archive decompresses");
    let flipped = scratch.file("flipped.jsonl.gz");
    let (mut caught, mut harmless) = (0, 0);
    for _ in 0..FLIPS {
        let mut bytes = original.clone();
        let at = rng.below(bytes.len());
        bytes[at] ^= 1 << rng.below(8);
        std::fs::write(&flipped, &bytes).expect("write");
        let outcome = verifies(&flipped, &key);
        if gunzip(&bytes).as_deref() == Some(content.as_slice()) {
            assert_eq!(
                outcome,
                Ok(head),
                "seed {seed:#x}: a flip at byte {at} that changes no content"
            );
            harmless += 1;
        } else {
            assert!(
                outcome.is_err(),
                "seed {seed:#x}: a flip at byte {at} of the gzip file verified"
            );
            caught += 1;
        }
    }
    // Bit flips in the lines themselves, recompressed.
    for _ in 0..FLIPS {
        let mut lines = content.clone();
        let at = rng.below(lines.len());
        lines[at] ^= 1 << rng.below(8);
        std::fs::write(&flipped, gzip(&lines)).expect("write");
        assert!(
            verifies(&flipped, &key).is_err(),
            "seed {seed:#x}: a flip at byte {at} of the decompressed archive verified"
        );
    }
    format!(
        "seed {seed:#x}: {head} facts ({retractions} retractions), {answered} of {QUESTIONS} \
         reports answered and equal, {caught} gzip flips caught, {harmless} changed no content, \
         {FLIPS} content flips caught"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exports_replay_equals_the_server_and_only_untouched_exports_verify() {
    for seed in seeds() {
        eprintln!("{}", case(seed).await);
    }
}
