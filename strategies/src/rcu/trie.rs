//! The snapshot of one bucket: an immutable hash array mapped trie (HAMT) of leaves, one per
//! token with a participant.
//!
//! Each node has up to 32 children, chosen by 5 bits of the token's path (its hash without the
//! bits that chose the bucket), and stores only the children present, in index order, with a
//! 32-bit bitmap of which are there. A child is a leaf or another node, stored inline in the
//! array, so a lookup reads one allocation per level. An update copies the
//! nodes on the way from the root to the token's leaf, at most 32 children each, and shares
//! every other node with the previous snapshot: O(log₃₂ n) copies for n tokens in the bucket,
//! never O(n).
//!
//! Paths come from a bijective hash, so two tokens never have the same path and every pair of
//! leaves separates by depth 13 (64 bits, 5 a level): no collision lists, and the depth is
//! bounded whatever the tokens.
//!
//! Invariant: a node other than a root holds at least two leaves in its subtree (a removal
//! that leaves one lifts it into the parent), so the trie is as shallow as its paths allow.

use std::sync::Arc;

use bypass_registry::Token;
use bypass_registry::pair::{Pair, Strong};

/// Bits of the path consumed per level.
const BITS: u32 = 5;

/// What is registered under one token. Invariant: at least one side is `Some`.
#[derive(Clone)]
pub(super) struct Leaf {
    pub(super) token: Token,
    /// The token's path, kept so a split need not hash again.
    pub(super) path: u64,
    /// The token's participants.
    pub(super) pair: Pair<Strong>,
}

/// A child, stored inline in its parent's array: a lookup touches one allocation per level
/// (the children of each node on the way), not three (node, children, leaf).
#[derive(Clone)]
enum Child {
    Leaf(Leaf),
    Branch(Node),
}

/// An immutable trie node; a bucket's snapshot is its root. Cloning it shares its children.
#[derive(Clone)]
pub(super) struct Node {
    /// Bit `i` is set when the child of index `i` is present.
    bitmap: u32,
    /// The present children, in index order, shared between the snapshots that have them.
    children: Arc<[Child]>,
}

impl Default for Node {
    fn default() -> Node {
        Node {
            bitmap: 0,
            children: Arc::new([]),
        }
    }
}

/// The bit of the child that `path` goes through at `shift`.
fn bit(path: u64, shift: u32) -> u32 {
    // Past the 64th bit every path reads 0; two distinct paths have separated before that.
    1 << (path.checked_shr(shift).unwrap_or(0) & 31)
}

impl Node {
    /// The position among the present children of the child for `bit`.
    fn position(&self, bit: u32) -> usize {
        (self.bitmap & (bit - 1)).count_ones() as usize
    }

    /// The leaf of `token`, whose path is `path`, if any.
    pub(super) fn get(&self, token: Token, path: u64) -> Option<&Leaf> {
        let mut node = self;
        let mut shift = 0;
        loop {
            let bit = bit(path, shift);
            if node.bitmap & bit == 0 {
                return None;
            }
            match &node.children[node.position(bit)] {
                Child::Leaf(leaf) => return (leaf.token == token).then_some(leaf),
                Child::Branch(next) => {
                    node = next;
                    shift += BITS;
                }
            }
        }
    }

    /// A new root in which `token` (whose path is `path`) has `leaf`, or no leaf if `None`;
    /// every node off the token's way is shared with `self`.
    pub(super) fn with(&self, token: Token, path: u64, leaf: Option<Leaf>) -> Node {
        debug_assert!(
            leaf.as_ref()
                .is_none_or(|l| l.token == token && l.path == path)
        );
        self.with_at(token, path, leaf, 0)
    }

    fn with_at(&self, token: Token, path: u64, leaf: Option<Leaf>, shift: u32) -> Node {
        let bit = bit(path, shift);
        let position = self.position(bit);
        if self.bitmap & bit == 0 {
            return match leaf {
                Some(leaf) => self.inserted(bit, position, Child::Leaf(leaf)),
                None => self.clone(),
            };
        }
        let child = match (&self.children[position], leaf) {
            (Child::Leaf(old), Some(new)) if old.token == token => Child::Leaf(new),
            (Child::Leaf(old), None) if old.token == token => return self.removed(bit, position),
            // Another token's leaf sits where this one goes: both move one level down.
            (Child::Leaf(old), Some(new)) => {
                Child::Branch(Node::pair(old.clone(), new, shift + BITS))
            }
            (Child::Leaf(_), None) => return self.clone(),
            (Child::Branch(next), leaf) => {
                let next = next.with_at(token, path, leaf, shift + BITS);
                match next.lone_leaf() {
                    // A removal left one leaf in that branch: lift it here.
                    Some(leaf) => Child::Leaf(leaf),
                    None => {
                        // Invariant: a branch holds two leaves or more, so it is never empty.
                        debug_assert!(next.bitmap != 0, "an emptied branch was kept");
                        Child::Branch(next)
                    }
                }
            }
        };
        self.replaced(bit, position, child)
    }

    /// A node holding exactly the leaves `a` and `b` (distinct paths), at `shift`.
    fn pair(a: Leaf, b: Leaf, shift: u32) -> Node {
        debug_assert!(a.path != b.path, "two tokens with one path");
        let (bit_a, bit_b) = (bit(a.path, shift), bit(b.path, shift));
        if bit_a == bit_b {
            return Node {
                bitmap: bit_a,
                children: Arc::new([Child::Branch(Node::pair(a, b, shift + BITS))]),
            };
        }
        let (first, second) = if bit_a < bit_b { (a, b) } else { (b, a) };
        Node {
            bitmap: bit_a | bit_b,
            children: Arc::new([Child::Leaf(first), Child::Leaf(second)]),
        }
    }

    /// The leaf, if this node holds a single child and that child is a leaf.
    fn lone_leaf(&self) -> Option<Leaf> {
        match &*self.children {
            [Child::Leaf(leaf)] => Some(leaf.clone()),
            _ => None,
        }
    }

    // Each copy below collects from exact-size iterators: one allocation, no reallocation.

    /// A copy with `skip` children at `position` replaced by `child`, and `bitmap`.
    fn spliced(&self, bitmap: u32, position: usize, skip: usize, child: Option<Child>) -> Node {
        let (before, after) = self.children.split_at(position);
        Node {
            bitmap,
            children: before
                .iter()
                .cloned()
                .chain(child)
                .chain(after[skip..].iter().cloned())
                .collect(),
        }
    }

    fn inserted(&self, bit: u32, position: usize, child: Child) -> Node {
        self.spliced(self.bitmap | bit, position, 0, Some(child))
    }

    fn removed(&self, bit: u32, position: usize) -> Node {
        self.spliced(self.bitmap & !bit, position, 1, None)
    }

    fn replaced(&self, bit: u32, position: usize, child: Child) -> Node {
        self.spliced(self.bitmap | bit, position, 1, Some(child))
    }

    /// How many leaves the trie holds, and its depth in nodes: for tests.
    #[cfg(test)]
    fn shape(&self) -> (usize, usize) {
        self.children
            .iter()
            .map(|child| match child {
                Child::Leaf(_) => (1, 1),
                Child::Branch(next) => {
                    let (leaves, depth) = next.shape();
                    assert!(leaves >= 2, "a branch holds {leaves} leaf");
                    (leaves, depth + 1)
                }
            })
            .fold((0, 1), |(n, d), (leaves, depth)| (n + leaves, d.max(depth)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn leaf(token: u64, path: u64) -> Leaf {
        Leaf {
            token: Token::new(token).unwrap(),
            path,
            pair: Pair::default(),
        }
    }

    /// Replays `ops` (token, insert?) on a trie and a map, comparing every lookup; paths come
    /// from `path_of`, which may collide on their low bits to force deep splits.
    fn check(ops: &[(u64, bool)], path_of: impl Fn(u64) -> u64) {
        let mut trie = Node::default();
        let mut model = BTreeMap::new();
        for &(id, insert) in ops {
            let token = Token::new(id).unwrap();
            let path = path_of(id);
            let (before, before_model) = (trie.clone(), model.clone());
            trie = trie.with(token, path, insert.then(|| leaf(id, path)));
            if insert {
                model.insert(id, path);
            } else {
                model.remove(&id);
            }
            // The old snapshot is untouched by the update.
            assert_eq!(before.shape().0, before_model.len());
            for (&other, &other_path) in &before_model {
                assert!(before.get(Token::new(other).unwrap(), other_path).is_some());
            }
            let (leaves, depth) = trie.shape();
            assert_eq!(leaves, model.len(), "leaf count after {id}/{insert}");
            assert!(depth <= 14, "depth {depth}");
            for (&other, &other_path) in &model {
                let found = trie.get(Token::new(other).unwrap(), other_path);
                assert!(found.is_some_and(|l| l.token.get() == other && l.path == other_path));
            }
            assert!(trie.get(token, path).is_some() == insert);
        }
    }

    #[test]
    fn deep_split_and_lift() {
        // Paths equal on their low 60 bits: the two leaves separate at the last level.
        let path_of = |id: u64| (id << 60) | 0x0FFF_FFFF_FFFF_FFFF;
        check(
            &[(1, true), (2, true), (3, true), (2, false), (1, false)],
            path_of,
        );
        check(
            &[(1, true), (2, true), (1, false), (2, false), (2, true)],
            path_of,
        );
    }

    proptest! {
        #[test]
        fn matches_a_map(ops in proptest::collection::vec((1u64..40, any::<bool>()), 0..200)) {
            // Few distinct low bits: many shared prefixes, so many splits and lifts.
            check(&ops, |id| (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) << 3) | (id & 7));
        }
    }
}
