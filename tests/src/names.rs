//! Unique names for per-test resources on shared servers.
//!
//! Tests run in parallel (threads of one binary, and several binaries at
//! once) against the same PostgreSQL and nats-server, so every database,
//! stream and subject a test makes carries a name no other test uses. The
//! randomness comes from UUID v4 (already a dependency), not from a clock
//! or a counter, which would collide across test binaries.

/// Lowercase letters and digits: valid unquoted in SQL identifiers, NATS
/// stream names and subject tokens.
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `len` random characters from `[a-z0-9]`.
pub(crate) fn random_lower_alnum(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        // 122 random bits per UUID v4; 36^10 < 2^52, so one UUID gives more
        // than two batches of ten characters.
        let mut bits = uuid::Uuid::new_v4().as_u128();
        for _ in 0..20 {
            if out.len() == len {
                break;
            }
            let index = (bits % 36) as usize;
            bits /= 36;
            out.push(char::from(ALPHABET[index]));
        }
    }
    out
}

/// A fresh prefix for NATS stream names, subjects and consumer names:
/// `t` followed by 10 random characters from `[a-z0-9]`, so it matches
/// `[a-z0-9_-]{1,32}` and is different on every call (36^10 ≈ 3.7·10^15
/// values).
///
/// Use it for everything a test creates on the shared nats-server, e.g.
/// stream `{prefix}_EVENTS` on subjects `{prefix}.events.>`.
pub fn unique_prefix() -> String {
    format!("t{}", random_lower_alnum(10))
}
