//! Signed checkpoints (docs/contract.md "Audit and inspection"): the ledger's
//! position, the chain hash there and the Merkle root of every event hash up
//! to it, signed with ed25519, so that an inspector holding the public key
//! can tell whether anything up to that position was rewritten since.
//!
//! The signature covers the RFC 8785 canonical JSON of the checkpoint
//! without its `signature` field: `{"chain_hash","key_id","merkle_root",
//! "position","time"}`, hashes in lowercase hex, `time` RFC 3339 UTC with
//! microseconds. `key_id` is the first 16 hex digits of SHA-256 of the
//! 32-byte public key. Keys are kept and exchanged as 64 hex digits.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chain::{self, Hash};

/// One signed checkpoint, as stored, served and saved by inspectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub position: u64,
    #[serde(with = "hex_bytes")]
    pub chain_hash: Hash,
    #[serde(with = "hex_bytes")]
    pub merkle_root: Hash,
    pub time: String,
    pub key_id: String,
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

/// What the signature covers.
#[derive(Serialize)]
struct Signed<'a> {
    position: u64,
    chain_hash: String,
    merkle_root: String,
    time: &'a str,
    key_id: &'a str,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        signed_bytes(
            self.position,
            &self.chain_hash,
            &self.merkle_root,
            &self.time,
            &self.key_id,
        )
    }
}

fn signed_bytes(
    position: u64,
    chain_hash: &Hash,
    merkle_root: &Hash,
    time: &str,
    key_id: &str,
) -> Result<Vec<u8>, CheckpointError> {
    chain::canonical_json(&Signed {
        position,
        chain_hash: hex::encode(chain_hash),
        merkle_root: hex::encode(merkle_root),
        time,
        key_id,
    })
    .map_err(|e| CheckpointError::Canonical(e.to_string()))
}

/// Why a key or a checkpoint is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("a key is 64 hexadecimal digits (32 bytes): {0}")]
    BadKey(String),
    #[error("the checkpoint at position {position} was signed by key {found}, not by {expected}")]
    OtherKey {
        position: u64,
        expected: String,
        found: String,
    },
    #[error("the signature of the checkpoint at position {0} does not verify")]
    BadSignature(u64),
    #[error("cannot write the signed bytes: {0}")]
    Canonical(String),
}

/// The identifier of a public key: 16 hex digits of its SHA-256.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public.as_bytes())[..8])
}

fn key_bytes(text: &str) -> Result<[u8; 32], CheckpointError> {
    let bytes = hex::decode(text.trim()).map_err(|e| CheckpointError::BadKey(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| CheckpointError::BadKey(format!("{} bytes", b.len())))
}

/// Signs checkpoints with the ledger's key.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer from 32 secret bytes (from a random source for a new key).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&secret);
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// A signer from a key file's content (64 hex digits).
    pub fn from_secret_hex(text: &str) -> Result<Self, CheckpointError> {
        key_bytes(text).map(Self::from_secret)
    }

    /// The key file's content.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The verifier for this key's checkpoints.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier {
            key: self.key.verifying_key(),
            key_id: self.key_id.clone(),
        }
    }

    /// Signs other bytes with the same key (an export's digest).
    pub fn sign_bytes(&self, bytes: &[u8]) -> [u8; 64] {
        self.key.sign(bytes).to_bytes()
    }

    /// Signs a checkpoint at `position`.
    pub fn sign(
        &self,
        position: u64,
        chain_hash: Hash,
        merkle_root: Hash,
        time: String,
    ) -> Result<Checkpoint, CheckpointError> {
        let bytes = signed_bytes(position, &chain_hash, &merkle_root, &time, &self.key_id)?;
        Ok(Checkpoint {
            position,
            chain_hash,
            merkle_root,
            time,
            key_id: self.key_id.clone(),
            signature: self.key.sign(&bytes).to_bytes(),
        })
    }
}

/// Checks checkpoint signatures against a public key that comes from
/// outside the ledger being checked.
#[derive(Clone, Debug)]
pub struct CheckpointVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointVerifier {
    /// A verifier from a public key (64 hex digits).
    pub fn from_public_hex(text: &str) -> Result<Self, CheckpointError> {
        let key = VerifyingKey::from_bytes(&key_bytes(text)?)
            .map_err(|e| CheckpointError::BadKey(e.to_string()))?;
        let key_id = key_id(&key);
        Ok(Self { key, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Whether `signature` over `bytes` was made with this key.
    pub fn verify_bytes(&self, bytes: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify(bytes, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// Whether `checkpoint` was signed by this key, as it stands.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        if checkpoint.key_id != self.key_id {
            return Err(CheckpointError::OtherKey {
                position: checkpoint.position,
                expected: self.key_id.clone(),
                found: checkpoint.key_id.clone(),
            });
        }
        let signature = Signature::from_bytes(&checkpoint.signature);
        self.key
            .verify(&checkpoint.signed_bytes()?, &signature)
            .map_err(|_| CheckpointError::BadSignature(checkpoint.position))
    }
}

/// Fixed-size byte arrays as lowercase hex in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|b: Vec<u8>| serde::de::Error::custom(format!("{} bytes, not {N}", b.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(seed: u8) -> CheckpointSigner {
        CheckpointSigner::from_secret([seed; 32])
    }

    #[test]
    fn a_signed_checkpoint_verifies_with_its_public_key_only() {
        let s = signer(7);
        let c = s
            .sign(42, [1; 32], [2; 32], "2026-11-25T08:00:00.000000Z".into())
            .expect("sign");
        let v = CheckpointVerifier::from_public_hex(&s.public_hex()).expect("public key");
        assert_eq!(v.key_id(), s.key_id());
        assert_eq!(v.verify(&c), Ok(()));

        let other = CheckpointVerifier::from_public_hex(&signer(8).public_hex()).expect("key");
        assert!(matches!(
            other.verify(&c),
            Err(CheckpointError::OtherKey { position: 42, .. })
        ));
        for tamper in [
            |c: &mut Checkpoint| c.position += 1,
            |c: &mut Checkpoint| c.chain_hash[0] ^= 1,
            |c: &mut Checkpoint| c.merkle_root[31] ^= 1,
            |c: &mut Checkpoint| c.time.push('0'),
            |c: &mut Checkpoint| c.signature[5] ^= 1,
        ] {
            let mut bent = c.clone();
            tamper(&mut bent);
            assert!(
                matches!(v.verify(&bent), Err(CheckpointError::BadSignature(_))),
                "{bent:?}"
            );
        }
    }

    #[test]
    fn a_checkpoint_round_trips_through_its_json_and_the_secret_through_its_file() {
        let s = signer(3);
        let c = s
            .sign(1, [9; 32], [8; 32], "2026-11-25T08:00:00.000000Z".into())
            .expect("sign");
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(json["chain_hash"], hex::encode([9u8; 32]));
        assert_eq!(json["key_id"].as_str().map(str::len), Some(16));
        let back: Checkpoint = serde_json::from_value(json).expect("parse");
        assert_eq!(back, c);
        let again =
            CheckpointSigner::from_secret_hex(&format!("{}\n", s.secret_hex())).expect("key file");
        assert_eq!(again.public_hex(), s.public_hex());
        assert!(CheckpointSigner::from_secret_hex("abc").is_err());
        assert!(format!("{s:?}").contains(s.key_id()));
        assert!(!format!("{s:?}").contains(&s.secret_hex()));
    }
}
