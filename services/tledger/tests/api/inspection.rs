//! Signed checkpoints, inclusion proofs and `tledger verify` against a real
//! PostgreSQL: the checkpoint and proof endpoints, and a ledger tampered
//! with directly in its table (a payload edited, a row deleted, two rows
//! swapped, a row forged, a whole suffix rewritten with recomputed hashes,
//! with and without deleting the newest checkpoints), each caught with the
//! first bad position named and a non-zero exit.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use tledger::access::Role;
use tledger::checkpoint_signing::{generate_signing_key, CheckpointSigning};
use tledger::inspection::verify_ledger_in_ranges;
use tledger_events::chain::{self, ChainRecord};
use tledger_events::checkpoint::{Checkpoint, CheckpointVerifier};
use tledger_events::facts::UnitRegistered;
use tledger_events::proof::InclusionProof;
use tledger_events::{AggregateKind, Date, Fact, UnitId, UnitLevel};
use tledger_store::{Append, EventMetadata, NewEvent, Sequencer, Store};
use tledger_tests::TestDatabase;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_tledger");

fn key_path() -> PathBuf {
    std::env::temp_dir().join(format!("tledger-{}.key", Uuid::new_v4()))
}

/// Runs the binary on `database` with the signing key `key`.
fn tledger(database: &str, key: &Path, args: &[&str]) -> Output {
    let output = std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TLEDGER_DATABASE_URL", database)
        .env("TLEDGER_SIGNING_KEY", key)
        .env("TLEDGER_LOG", "warn")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Appends units `from..to` and sequences them.
async fn record_units(store: &Store, from: u32, to: u32) {
    for i in from..to {
        let id = format!("u{i:03}");
        let fact = Fact::UnitRegistered(UnitRegistered {
            unit_id: UnitId::parse(&id).expect("unit id"),
            name: format!("Unit {i}"),
            level: UnitLevel::Commune,
            parent_id: None,
            effective_date: "2007-01-01".parse::<Date>().expect("date"),
        });
        store
            .append(&Append {
                aggregate: AggregateKind::Unit,
                aggregate_id: id,
                expected_version: 0,
                events: vec![NewEvent {
                    event_id: Uuid::now_v7(),
                    fact,
                    metadata: EventMetadata {
                        publisher: "/commands/test".into(),
                        actor: "test".into(),
                        ..EventMetadata::default()
                    },
                }],
                idempotency: None,
            })
            .await
            .expect("append");
    }
    let sequencer = Sequencer::new(store.clone());
    for _ in 0..2000 {
        sequencer.sequence_batch().await.expect("sequence");
        if store.unsequenced_count().await.expect("count") == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the events were not sequenced");
}

/// A ledger of 40 units with checkpoints signed by the binary at 10, 30
/// and 40; the last one's JSON as printed (what an inspector saves).
struct Signed {
    db: TestDatabase,
    store: Store,
    key: PathBuf,
    public: String,
    saved: PathBuf,
}

impl Drop for Signed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key);
        let _ = std::fs::remove_file(&self.saved);
    }
}

impl Signed {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let store = Store::connect(db.url(), 4).await.expect("connect");
        store.migrate().await.expect("migrate");
        let key = key_path();
        let generated = tledger(db.url(), &key, &["keys", "generate", "--out", path(&key)]);
        assert_eq!(generated.status.code(), Some(0), "{}", stderr(&generated));
        let public = stdout(&generated).trim().to_owned();
        assert_eq!(public.len(), 64, "{public}");
        let saved = std::env::temp_dir().join(format!("checkpoint-{}.json", Uuid::new_v4()));
        for (from, to) in [(1, 11), (11, 31), (31, 41)] {
            record_units(&store, from, to).await;
            let signed = tledger(db.url(), &key, &["checkpoint"]);
            assert_eq!(signed.status.code(), Some(0), "{}", stderr(&signed));
            std::fs::write(&saved, stdout(&signed)).expect("save the checkpoint");
        }
        let positions: Vec<u64> = store
            .checkpoints()
            .await
            .expect("checkpoints")
            .iter()
            .map(|c| c.position)
            .collect();
        assert_eq!(positions, vec![10, 30, 40]);
        Self {
            db,
            store,
            key,
            public,
            saved,
        }
    }

    fn public_key_id(&self) -> String {
        CheckpointVerifier::from_public_hex(&self.public)
            .expect("public key")
            .key_id()
            .to_owned()
    }

    fn verify(&self, outside: bool) -> Output {
        let mut args = vec!["verify", "--public-key", self.public.as_str()];
        if outside {
            args.extend(["--checkpoint", path(&self.saved)]);
        }
        tledger(self.db.url(), &self.key, &args)
    }

    async fn sql(&self, statement: &str) {
        sqlx::raw_sql(statement)
            .execute(self.store.pool())
            .await
            .expect("tamper");
    }

    /// Changes the unit's name at `from` and recomputes every hash from
    /// there on, and the head: what a forger who knows the chain does.
    async fn rewrite_from(&self, from: u64) {
        let events = self.store.read_ledger(from - 1, 1000).await.expect("read");
        let mut previous: [u8; 32] = self
            .store
            .read_ledger(from - 2, 1)
            .await
            .expect("read")
            .first()
            .map(|e| e.hash.clone().try_into().expect("hash"))
            .expect("an event before");
        for (i, event) in events.iter().enumerate() {
            let mut data = event.data.clone();
            if i == 0 {
                data["name"] = json!("Forged");
            }
            let stream = event.stream();
            let hash = chain::event_hash(
                &previous,
                &ChainRecord {
                    position: event.position,
                    event_id: event.event_id,
                    stream: &stream,
                    version: event.version,
                    event_type: &event.event_type,
                    effective_date: event.effective_date.into(),
                    recorded_at: chain::format_instant(event.recorded_at),
                    data: &data,
                    metadata: &event.metadata,
                },
            )
            .expect("hash");
            sqlx::query("UPDATE events SET data = $1, hash = $2 WHERE position = $3")
                .bind(&data)
                .bind(hash.as_slice())
                .bind(i64::try_from(event.position).expect("position"))
                .execute(self.store.pool())
                .await
                .expect("rewrite");
            previous = hash;
        }
        sqlx::query("UPDATE ledger_head SET hash = $1")
            .bind(previous.as_slice())
            .execute(self.store.pool())
            .await
            .expect("rewrite the head");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The verifier's failure, asserted: exit 1 and the first bad position.
fn assert_caught(output: &Output, position: u64, why: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&format!(
            "verification FAILED: first bad position {position}:"
        )),
        "{message}"
    );
    assert!(message.contains(why), "{message}");
}

#[tokio::test]
async fn an_untouched_ledger_verifies_against_its_key_and_an_outside_checkpoint() {
    let signed = Signed::new().await;
    let output = signed.verify(true);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output)
            .starts_with("verified: 40 events, chain and Merkle roots recomputed; 3 checkpoint(s)"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("the outside checkpoint at position 40 matches"));

    // Another key is not the ledger's.
    let other = key_path();
    let other_public = generate_signing_key(&other).expect("key").public_hex();
    let _ = std::fs::remove_file(&other);
    let output = tledger(
        signed.db.url(),
        &signed.key,
        &["verify", "--public-key", &other_public],
    );
    assert_caught(&output, 10, "signed by key");

    // Without a key there is no trust anchor.
    let output = tledger(signed.db.url(), &signed.key, &["verify"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--public-key is required"));
}

#[tokio::test]
async fn an_edited_payload_is_caught_at_its_position() {
    let signed = Signed::new().await;
    signed
        .sql("UPDATE events SET data = jsonb_set(data, '{name}', '\"Forged\"') WHERE position = 12")
        .await;
    assert_caught(
        &signed.verify(false),
        12,
        "stored hash is not the hash of its content",
    );
}

#[tokio::test]
async fn a_deleted_row_is_caught_at_its_position() {
    let signed = Signed::new().await;
    signed.sql("DELETE FROM events WHERE position = 20").await;
    assert_caught(&signed.verify(false), 20, "missing");
    // The newest event deleted (and the head moved back) is caught by the
    // checkpoint that signed it.
    let signed = Signed::new().await;
    signed
        .sql(
            "DELETE FROM events WHERE position = 40; \
             UPDATE ledger_head SET position = 39, hash = (SELECT hash FROM events WHERE position = 39)",
        )
        .await;
    assert_caught(&signed.verify(false), 40, "events were deleted");
}

/// `tledger verify` reads the ledger in position ranges linked in
/// parallel. However the ledger is split, an untouched ledger verifies and
/// each kind of damage is found at the same position for the same reason,
/// including damage on a range boundary and a range left empty.
#[tokio::test]
async fn the_findings_do_not_depend_on_how_the_ledger_is_split_into_ranges() {
    let damage: [(&str, Option<(u64, &str)>); 6] = [
        ("", None),
        (
            "UPDATE events SET data = jsonb_set(data, '{name}', '\"Forged\"') WHERE position = 12",
            Some((12, "stored hash is not the hash of its content")),
        ),
        (
            "DELETE FROM events WHERE position = 20",
            Some((20, "missing: the ledger jumps from position 19 to 21")),
        ),
        (
            "DELETE FROM events WHERE position BETWEEN 7 AND 9",
            Some((7, "missing: the ledger jumps from position 6 to 10")),
        ),
        (
            "UPDATE events SET position = -15 WHERE position = 15; \
             UPDATE events SET position = 15 WHERE position = 16; \
             UPDATE events SET position = 16 WHERE position = -15;",
            Some((15, "stored hash")),
        ),
        (
            "UPDATE ledger_head SET position = 38",
            Some((39, "the ledger head says position 38, the events end at 40")),
        ),
    ];
    for (tamper, expected) in damage {
        let signed = Signed::new().await;
        if !tamper.is_empty() {
            signed.sql(tamper).await;
        }
        let key = CheckpointVerifier::from_public_hex(&signed.public).expect("public key");
        let whole = verify_ledger_in_ranges(&signed.store, &key, None, 10_000)
            .await
            .expect("verify");
        assert_eq!(whole.checkpoints, 3, "{tamper}");
        match (&whole.first_bad, expected) {
            (None, None) => assert_eq!(whole.events, 40),
            (Some(bad), Some((position, why))) => {
                assert_eq!(bad.position, position, "{tamper}: {bad:?}");
                assert!(bad.reason.contains(why), "{tamper}: {bad:?}");
            }
            (found, expected) => panic!("{tamper}: found {found:?}, expected {expected:?}"),
        }
        for positions_per_range in [1, 3, 7, 39, 40] {
            let split = verify_ledger_in_ranges(&signed.store, &key, None, positions_per_range)
                .await
                .expect("verify");
            assert_eq!(split, whole, "{tamper}: ranges of {positions_per_range}");
        }
    }
}

#[tokio::test]
async fn two_swapped_rows_are_caught_at_the_first() {
    let signed = Signed::new().await;
    signed
        .sql(
            "UPDATE events SET position = -15 WHERE position = 15; \
             UPDATE events SET position = 15 WHERE position = 16; \
             UPDATE events SET position = 16 WHERE position = -15;",
        )
        .await;
    assert_caught(&signed.verify(false), 15, "stored hash");
}

#[tokio::test]
async fn a_forged_row_is_caught() {
    let signed = Signed::new().await;
    // A row slipped in at 25 with a hash chained correctly to 24; every
    // later row moved up one.
    let before = signed.store.read_ledger(23, 1).await.expect("read");
    let previous: [u8; 32] = before[0].hash.clone().try_into().expect("hash");
    signed
        .sql("UPDATE events SET position = -position WHERE position >= 25; UPDATE events SET position = -position + 1 WHERE position < 0;")
        .await;
    let data = json!({"unit_id": "forged", "name": "Forged", "level": "commune", "effective_date": "2007-01-01"});
    let metadata = json!({"publisher": "/commands/test", "actor": "test"});
    let event_id = Uuid::now_v7();
    let recorded_at = before[0].recorded_at;
    let hash = chain::event_hash(
        &previous,
        &ChainRecord {
            position: 25,
            event_id,
            stream: "unit-forged",
            version: 1,
            event_type: "unit.registered.v1",
            effective_date: "2007-01-01".parse().expect("date"),
            recorded_at: chain::format_instant(recorded_at),
            data: &data,
            metadata: &metadata,
        },
    )
    .expect("hash");
    sqlx::query(
        "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, \
         schema_version, data, metadata, effective_date, publisher, actor, position, recorded_at, hash) \
         VALUES ($1, 'unit', 'forged', 1, 'unit.registered.v1', 1, $2, $3, '2007-01-01', \
         '/commands/test', 'test', 25, $4, $5)",
    )
    .bind(event_id)
    .bind(&data)
    .bind(&metadata)
    .bind(recorded_at)
    .bind(hash.as_slice())
    .execute(signed.store.pool())
    .await
    .expect("forge");
    // The forged row itself chains; the next one no longer does.
    assert_caught(&signed.verify(false), 26, "stored hash");
}

#[tokio::test]
async fn a_rewritten_suffix_is_caught_by_the_signatures_and_by_an_outside_checkpoint() {
    let signed = Signed::new().await;
    signed.rewrite_from(15).await;
    // The chain holds together; the checkpoint at 30 does not.
    assert_caught(
        &signed.verify(false),
        11,
        "not what the checkpoint at 30 signed: rewritten after position 10",
    );

    // A forger who also deletes the checkpoints after the rewrite point
    // leaves a ledger that agrees with itself ...
    let signed = Signed::new().await;
    signed
        .sql("DELETE FROM checkpoints WHERE position >= 15")
        .await;
    signed.rewrite_from(15).await;
    let output = signed.verify(false);
    assert_eq!(
        output.status.code(),
        Some(0),
        "nothing inside the database can tell: {}",
        stderr(&output)
    );
    // ... which the checkpoint kept outside catches.
    assert_caught(
        &signed.verify(true),
        11,
        "not what the outside checkpoint at 40 signed",
    );
}

#[tokio::test]
async fn the_service_refuses_to_start_when_checkpoints_exist_but_the_key_is_missing() {
    let signed = Signed::new().await;
    let missing = key_path();
    let output = tledger(signed.db.url(), &missing, &["serve"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the ledger has signed checkpoints but the signing key"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists(), "no new key was made in its place");
    // `keys public` prints the public key of the configured key.
    let output = tledger(signed.db.url(), &signed.key, &["keys", "public"]);
    assert_eq!(stdout(&output).trim(), signed.public);
    // A key file is never overwritten.
    let output = tledger(
        signed.db.url(),
        &signed.key,
        &["keys", "generate", "--out", path(&signed.key)],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("exists already"));
}

#[tokio::test]
async fn checkpoints_and_proofs_are_served_and_a_proof_verifies_offline() {
    let ledger = support::spawn_app().await;
    let head = ledger.projected().await;
    assert!(head >= 3, "the reference data is recorded");
    let (status, body) = ledger.get("/v1/ledger/checkpoint", None, false).await;
    assert_eq!(status, 404, "{body}");

    let key = key_path();
    let signer = generate_signing_key(&key).expect("key");
    let mut checkpointer = CheckpointSigning::new(
        ledger.store.clone(),
        signer.clone(),
        10,
        std::time::Duration::from_secs(60),
    );
    let checkpoint = checkpointer
        .checkpoint()
        .await
        .expect("checkpoint")
        .expect("a new one");
    assert_eq!(checkpoint.position, head);
    assert!(
        checkpointer.checkpoint().await.expect("again").is_none(),
        "nothing new to sign"
    );
    let (status, body) = ledger.get("/v1/ledger/checkpoint", None, false).await;
    assert_eq!(status, 200, "{body}");
    let served: Checkpoint = serde_json::from_str(&body).expect("a checkpoint");
    assert_eq!(served, checkpoint);
    let verifier = CheckpointVerifier::from_public_hex(&signer.public_hex()).expect("key");
    assert_eq!(verifier.verify(&served), Ok(()));

    // A proof: for admins and inspectors, of positions the checkpoint covers.
    let (status, body) = ledger
        .get("/v1/ledger/proof/2", Some(&ledger.admin), false)
        .await;
    assert_eq!(status, 200, "{body}");
    let proof: InclusionProof = serde_json::from_str(&body).expect("a proof");
    assert_eq!((proof.position, proof.tree_size), (2, head));
    assert_eq!(proof.verify(&verifier), Ok(()));
    let inspector = ledger.token(Role::Inspector, None).await;
    let (status, _) = ledger
        .get("/v1/ledger/proof/1", Some(&inspector), false)
        .await;
    assert_eq!(status, 200);
    let (status, body) = ledger.get("/v1/ledger/proof/2", None, false).await;
    assert_eq!(status, 401, "{body}");
    let publisher = ledger.token(Role::Publisher, None).await;
    let (status, body) = ledger
        .get("/v1/ledger/proof/2", Some(&publisher), false)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = ledger
        .get(
            &format!("/v1/ledger/proof/{}", head + 1),
            Some(&ledger.admin),
            false,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let error: Value = serde_json::from_str(&body).expect("error JSON");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not covered by the latest checkpoint")),
        "{error}"
    );
    let (status, _) = ledger
        .get("/v1/ledger/proof/two", Some(&ledger.admin), false)
        .await;
    assert_eq!(status, 400);

    // `tledger verify proof` needs only the proof and the public key.
    let file = std::env::temp_dir().join(format!("proof-{}.json", Uuid::new_v4()));
    std::fs::write(&file, &body_of(&ledger, 2).await).expect("save the proof");
    let output = tledger(
        "postgres://unused@127.0.0.1:1/none",
        &key,
        &[
            "verify",
            "proof",
            "--public-key",
            &signer.public_hex(),
            path(&file),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("the event at position 2 (reference.published.v1"),
        "{}",
        stdout(&output)
    );
    let mut bent: Value = serde_json::from_str(&body_of(&ledger, 2).await).expect("json");
    bent["record"]["data"]["name"] = json!("Forged");
    std::fs::write(&file, bent.to_string()).expect("save the bent proof");
    let output = tledger(
        "postgres://unused@127.0.0.1:1/none",
        &key,
        &[
            "verify",
            "proof",
            "--public-key",
            &signer.public_hex(),
            path(&file),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the event's content does not hash"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&key);
}

async fn body_of(ledger: &support::Ledger, position: u64) -> String {
    let (status, body) = ledger
        .get(
            &format!("/v1/ledger/proof/{position}"),
            Some(&ledger.admin),
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Rewrites an archive's uncompressed lines with `edit` (and compresses it
/// again), as someone who changes an export would.
fn edit_archive(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    use std::io::{Read as _, Write as _};
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open"))
        .read_to_string(&mut text)
        .expect("gunzip");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edit(&mut lines);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all((lines.join("\n") + "\n").as_bytes())
        .expect("gzip");
    std::fs::write(path, gzip.finish().expect("gzip")).expect("write");
}

/// An export stops at a gap in the ledger, says where and what to run,
/// and leaves no archive (nor a partial one) behind.
#[tokio::test]
async fn an_export_of_a_ledger_with_a_gap_is_refused_and_leaves_nothing() {
    let signed = Signed::new().await;
    signed.sql("DELETE FROM events WHERE position = 20").await;
    let archive = std::env::temp_dir().join(format!("export-{}.jsonl.gz", Uuid::new_v4()));
    let output = tledger(signed.db.url(), &signed.key, &["export", path(&archive)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("the ledger has no event at position 20 (a gap): run tledger verify"),
        "{}",
        stderr(&output)
    );
    assert!(!archive.exists());
    assert!(!archive.with_extension("partial").exists());
}

#[tokio::test]
async fn an_export_verifies_offline_and_every_change_to_it_is_caught() {
    let signed = Signed::new().await;
    let archive = std::env::temp_dir().join(format!("export-{}.jsonl.gz", Uuid::new_v4()));
    let exported = tledger(signed.db.url(), &signed.key, &["export", path(&archive)]);
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    assert!(stdout(&exported).starts_with("exported positions 1 to 40 (3 checkpoint(s))"));

    // Offline: no database is reachable at this address.
    let offline = "postgres://nobody@127.0.0.1:1/none";
    let replay = |file: &Path| {
        tledger(
            offline,
            &signed.key,
            &["replay", path(file), "--public-key", &signed.public],
        )
    };
    let output = replay(&archive);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        format!(
            "verified: 40 events up to position 40, 3 checkpoint(s), signed by key {}",
            &signed.public_key_id()
        )
    );

    // A prefix by position, and by date (everything was recorded today).
    let until = std::env::temp_dir().join(format!("export-{}.jsonl.gz", Uuid::new_v4()));
    let output = tledger(
        signed.db.url(),
        &signed.key,
        &["export", "--until", "30", path(&until)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&replay(&until))
        .starts_with("verified: 30 events up to position 30, 2 checkpoint(s)"));
    let output = tledger(
        signed.db.url(),
        &signed.key,
        &["export", "--until", "2000-01-01", path(&until)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&replay(&until)).starts_with("verified: 0 events up to position 0, 0 checkpoint(s)")
    );
    let _ = std::fs::remove_file(&until);

    let caught = |file: &Path, why: &str| {
        let output = replay(file);
        assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.starts_with("error: the archive does not verify: ") && message.contains(why),
            "{message}"
        );
    };
    let pristine = std::fs::read(&archive).expect("read");
    // A flipped byte anywhere in the compressed file.
    for at in [20, pristine.len() / 2, pristine.len() - 3] {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x40;
        std::fs::write(&archive, &bytes).expect("write");
        let output = replay(&archive);
        assert_eq!(
            output.status.code(),
            Some(1),
            "byte {at}: {}",
            stdout(&output)
        );
    }
    // A changed fact, the archive otherwise intact.
    std::fs::write(&archive, &pristine).expect("write");
    edit_archive(&archive, |lines| {
        lines[12] = lines[12].replace("Unit 12", "Unit 99");
    });
    caught(&archive, "does not match its digest");
    // The same change with the digest recomputed: the signature fails.
    std::fs::write(&archive, &pristine).expect("write");
    edit_archive(&archive, |lines| {
        lines[12] = lines[12].replace("Unit 12", "Unit 99");
        let body: String = lines[..lines.len() - 1]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
        let mut last: Value = serde_json::from_str(&lines[lines.len() - 1]).expect("digest line");
        last["digest"]["sha256"] = json!(digest);
        let n = lines.len();
        lines[n - 1] = last.to_string();
    });
    caught(&archive, "not signed by the key given");
    // Cut short.
    std::fs::write(&archive, &pristine).expect("write");
    edit_archive(&archive, |lines| {
        lines.pop();
    });
    caught(&archive, "cut short");
    // Another key.
    std::fs::write(&archive, &pristine).expect("write");
    let other = key_path();
    let other_public = generate_signing_key(&other).expect("key").public_hex();
    let _ = std::fs::remove_file(&other);
    let output = tledger(
        offline,
        &signed.key,
        &["replay", path(&archive), "--public-key", &other_public],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not signed by the key given"));
    let _ = std::fs::remove_file(&archive);
}
