//! An inclusion proof of one ledger event against a signed checkpoint, in a
//! form a third party can check with the public key alone
//! (`tledger verify proof`): the event's hashed content and the previous
//! event's hash (so the event hash is recomputed, not trusted), the RFC
//! 9162 inclusion path, and the checkpoint.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::chain::{self, ChainRecord, Hash};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointVerifier};
use crate::merkle;
use crate::values::Date;

/// The hashed content of the event, owned (see [`ChainRecord`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvedRecord {
    pub position: u64,
    pub event_id: Uuid,
    pub stream: String,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub effective_date: Date,
    pub recorded_at: String,
    pub data: Value,
    pub metadata: Value,
}

impl ProvedRecord {
    /// The record as the chain hashes it.
    pub fn chain_record(&self) -> ChainRecord<'_> {
        ChainRecord {
            position: self.position,
            event_id: self.event_id,
            stream: &self.stream,
            version: self.version,
            event_type: &self.event_type,
            effective_date: self.effective_date,
            recorded_at: self.recorded_at.clone(),
            data: &self.data,
            metadata: &self.metadata,
        }
    }
}

/// `GET /v1/ledger/proof/<position>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub position: u64,
    pub record: ProvedRecord,
    /// The chain hash of the event before (32 zero bytes before position 1).
    #[serde(with = "hex_hash")]
    pub previous_hash: Hash,
    #[serde(with = "hex_hash")]
    pub event_hash: Hash,
    /// RFC 9162: leaf index (position − 1) and tree size (the checkpoint's
    /// position).
    pub leaf_index: u64,
    pub tree_size: u64,
    #[serde(with = "hex_path")]
    pub inclusion_path: Vec<Hash>,
    pub checkpoint: Checkpoint,
}

/// Why a proof does not prove its event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("the proof is for position {position} but {what}")]
    Inconsistent { position: u64, what: String },
    #[error("the event's content does not hash to the event hash given: it was changed")]
    ContentChanged,
    #[error("the inclusion path does not lead to the checkpoint's Merkle root")]
    NotIncluded,
    #[error("the event's content cannot be hashed: {0}")]
    Canonical(String),
}

impl InclusionProof {
    /// Checks the proof with the ledger's public key: the checkpoint's
    /// signature, the event hash from its content, and the path to the
    /// signed root.
    pub fn verify(&self, key: &CheckpointVerifier) -> Result<(), ProofError> {
        key.verify(&self.checkpoint)?;
        let inconsistent = |what: String| ProofError::Inconsistent {
            position: self.position,
            what,
        };
        if self.record.position != self.position {
            return Err(inconsistent(format!(
                "the record is at position {}",
                self.record.position
            )));
        }
        if self.leaf_index + 1 != self.position {
            return Err(inconsistent(format!(
                "the leaf index is {}",
                self.leaf_index
            )));
        }
        if self.tree_size != self.checkpoint.position {
            return Err(inconsistent(format!(
                "the tree size {} is not the checkpoint's position {}",
                self.tree_size, self.checkpoint.position
            )));
        }
        let hash = chain::event_hash(&self.previous_hash, &self.record.chain_record())
            .map_err(|e| ProofError::Canonical(e.to_string()))?;
        if hash != self.event_hash {
            return Err(ProofError::ContentChanged);
        }
        if self.position == self.tree_size && hash != self.checkpoint.chain_hash {
            return Err(ProofError::ContentChanged);
        }
        let leaf = merkle::leaf_hash(&self.event_hash);
        if merkle::verify_inclusion(
            &leaf,
            self.leaf_index,
            self.tree_size,
            &self.inclusion_path,
            &self.checkpoint.merkle_root,
        ) {
            Ok(())
        } else {
            Err(ProofError::NotIncluded)
        }
    }
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::chain::Hash;

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }

    pub fn parse(text: &str) -> Result<Hash, String> {
        let bytes = hex::decode(text).map_err(|e| e.to_string())?;
        bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("{} bytes, not 32", b.len()))
    }
}

mod hex_path {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::chain::Hash;

    pub fn serialize<S: Serializer>(path: &[Hash], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(path.len()))?;
        for hash in path {
            seq.serialize_element(&hex::encode(hash))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| super::hex_hash::parse(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkpoint::CheckpointSigner;

    /// A ledger of `n` events and a proof of `position` against a
    /// checkpoint at `n`.
    fn proof(n: u64, position: u64) -> (InclusionProof, CheckpointVerifier) {
        let signer = CheckpointSigner::from_secret([4; 32]);
        let mut previous = chain::GENESIS;
        let mut hashes = Vec::new();
        let mut records = Vec::new();
        for p in 1..=n {
            let record = ProvedRecord {
                position: p,
                event_id: Uuid::from_u128(u128::from(p)),
                stream: format!("unit-u{p}"),
                version: 1,
                event_type: "unit.registered.v1".into(),
                effective_date: "2007-01-01".parse().expect("date"),
                recorded_at: "2026-11-25T08:00:00.000000Z".into(),
                data: json!({"unit_id": format!("u{p}")}),
                metadata: json!({"actor": "test"}),
            };
            let hash = chain::event_hash(&previous, &record.chain_record()).expect("hash");
            hashes.push((previous, hash));
            records.push(record);
            previous = hash;
        }
        let leaves: Vec<Hash> = hashes.iter().map(|(_, h)| merkle::leaf_hash(h)).collect();
        let checkpoint = signer
            .sign(
                n,
                previous,
                merkle::root(&leaves),
                "2026-11-25T08:00:01.000000Z".into(),
            )
            .expect("sign");
        let i = usize::try_from(position - 1).expect("index");
        let proof = InclusionProof {
            position,
            record: records[i].clone(),
            previous_hash: hashes[i].0,
            event_hash: hashes[i].1,
            leaf_index: position - 1,
            tree_size: n,
            inclusion_path: merkle::inclusion_proof(&leaves, i).expect("path"),
            checkpoint,
        };
        (proof, signer.verifier())
    }

    #[test]
    fn a_proof_of_each_event_verifies_and_survives_its_json() {
        for position in 1..=11 {
            let (p, key) = proof(11, position);
            assert_eq!(p.verify(&key), Ok(()), "position {position}");
            let json = serde_json::to_string(&p).expect("json");
            let back: InclusionProof = serde_json::from_str(&json).expect("parse");
            assert_eq!(back.verify(&key), Ok(()));
        }
    }

    #[test]
    fn a_changed_event_path_or_checkpoint_is_caught() {
        let (p, key) = proof(9, 4);
        let mut changed = p.clone();
        changed.record.data = json!({"unit_id": "forged"});
        assert_eq!(changed.verify(&key), Err(ProofError::ContentChanged));

        let mut moved = p.clone();
        moved.inclusion_path.swap(0, 1);
        assert_eq!(moved.verify(&key), Err(ProofError::NotIncluded));

        let mut resized = p.clone();
        resized.tree_size = 8;
        assert!(matches!(
            resized.verify(&key),
            Err(ProofError::Inconsistent { .. })
        ));

        let mut resigned = p.clone();
        resigned.checkpoint.merkle_root[0] ^= 1;
        assert!(matches!(
            resigned.verify(&key),
            Err(ProofError::Checkpoint(CheckpointError::BadSignature(9)))
        ));

        let stranger = CheckpointSigner::from_secret([5; 32]).verifier();
        assert!(matches!(
            p.verify(&stranger),
            Err(ProofError::Checkpoint(CheckpointError::OtherKey { .. }))
        ));
    }
}
