//! The Merkle tree over the ledger's event hashes, as RFC 9162 (Certificate
//! Transparency 2.0) section 2.1 defines it, so that one fact can be proved
//! against a signed checkpoint without handing over the whole ledger.
//!
//! The leaves are the events' chain hashes in position order (leaf `i` is
//! position `i + 1`). Leaf hash = SHA-256(0x00 ‖ event hash); node hash =
//! SHA-256(0x01 ‖ left ‖ right); a tree of `n` leaves splits at the largest
//! power of two below `n`; the empty tree's root is SHA-256 of nothing.
//!
//! [`Frontier`] keeps only the roots of the perfect subtrees on the right
//! edge, so a growing ledger's root costs O(log n) per event; [`root`] and
//! [`inclusion_proof`] work on the whole list of leaf hashes.

use sha2::{Digest, Sha256};

use crate::chain::Hash;

/// The hash of a leaf whose content is an event's chain hash.
pub fn leaf_hash(event_hash: &Hash) -> Hash {
    let mut digest = Sha256::new();
    digest.update([0x00]);
    digest.update(event_hash);
    digest.finalize().into()
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut digest = Sha256::new();
    digest.update([0x01]);
    digest.update(left);
    digest.update(right);
    digest.finalize().into()
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root of the tree whose leaf hashes are `leaves` (RFC 9162 MTH).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (RFC 9162
/// PATH), from the leaf's sibling up; `None` when `index` is out of range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(leaves, index, &mut path);
    Some(path)
}

fn path_into(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        path_into(&leaves[..k], index, path);
        path.push(root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], index - k, path);
        path.push(root(&leaves[..k]));
    }
}

/// Verifies an inclusion proof (RFC 9162 section 2.1.3.2): that the leaf
/// with hash `leaf` is leaf `index` of the tree of `size` leaves whose root
/// is `expected_root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    expected_root: &Hash,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *expected_root
}

/// The right edge of a growing tree: the roots of its perfect subtrees,
/// largest first, enough to compute the root after each appended leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(height, root)` of each perfect subtree, heights strictly
    /// decreasing.
    subtrees: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf for an event's chain hash.
    pub fn push_event(&mut self, event_hash: &Hash) {
        self.push_leaf(leaf_hash(event_hash));
    }

    /// Appends a leaf hash.
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.subtrees.last() {
            if height != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.subtrees.push(node);
        self.size += 1;
    }

    /// The root of the tree of every leaf so far (RFC 9162 MTH): the
    /// perfect subtrees folded from the smallest up.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(_, smallest)) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(smallest, |right, (_, left)| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| {
                let mut event = [0u8; 32];
                event[..8].copy_from_slice(&(i as u64).to_be_bytes());
                leaf_hash(&event)
            })
            .collect()
    }

    #[test]
    fn the_empty_tree_has_the_digest_of_nothing_as_its_root() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn small_trees_have_the_shape_rfc_9162_gives_them() {
        let l = leaves(7);
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(
            root(&l[..3]),
            node_hash(&node_hash(&l[0], &l[1]), &l[2]),
            "three leaves split 2 + 1"
        );
        let left = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3]));
        let right = node_hash(&node_hash(&l[4], &l[5]), &l[6]);
        assert_eq!(root(&l), node_hash(&left, &right), "seven split 4 + 3");
    }

    #[test]
    fn the_frontier_gives_the_same_root_as_the_whole_tree_at_every_size() {
        let l = leaves(130);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), empty_root());
        for (i, leaf) in l.iter().enumerate() {
            frontier.push_leaf(*leaf);
            assert_eq!(frontier.size(), i as u64 + 1);
            assert_eq!(frontier.root(), root(&l[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn every_leaf_proves_its_inclusion_and_nothing_else_does() {
        for n in [1usize, 2, 3, 5, 8, 13, 33] {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let path = inclusion_proof(&l, i).expect("in range");
                assert!(
                    verify_inclusion(&l[i], i as u64, n as u64, &path, &r),
                    "leaf {i} of {n}"
                );
                // Another leaf, another index, another size or a changed
                // path does not verify.
                let other = leaves(n + 1)[n];
                assert!(!verify_inclusion(&other, i as u64, n as u64, &path, &r));
                if n > 1 {
                    assert!(!verify_inclusion(
                        &l[i],
                        ((i + 1) % n) as u64,
                        n as u64,
                        &path,
                        &r
                    ));
                    let mut bent = path.clone();
                    bent[0][0] ^= 1;
                    assert!(!verify_inclusion(&l[i], i as u64, n as u64, &bent, &r));
                    // (The size is bound by the signed root it goes with: a
                    // path can fit another size, but not that size's root.)
                    let bigger = leaves(n + 1);
                    assert!(!verify_inclusion(
                        &l[i],
                        i as u64,
                        n as u64 + 1,
                        &path,
                        &root(&bigger)
                    ));
                }
            }
            assert!(inclusion_proof(&l, n).is_none());
        }
    }
}
