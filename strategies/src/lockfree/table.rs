//! The token table of [`lockfree`](super): a concurrent map from token to [`Entry`].
//!
//! In a normal build it is a [`papaya::HashMap`]: lock-free lookups, inserts and removals, with
//! removed entries reclaimed by papaya's collector (`seize`) once no reader can still hold
//! them. Under `--cfg loom` it is a plain `HashMap` behind a loom mutex: papaya does not run
//! under loom, and the models check the slot protocol built *on* the table, for which any
//! linearizable map will do. Both offer the same operations, and the backend uses no other.

use bypass_registry::Token;

use super::slot::{Entry, Slot};
use super::sync::Arc;

#[cfg(not(loom))]
pub(crate) use papaya_table::Table;

#[cfg(loom)]
pub(crate) use loom_table::Table;

#[cfg(not(loom))]
mod papaya_table {
    use std::fmt;
    use std::hash::{BuildHasher, Hasher, RandomState};

    use papaya::HashMap;

    use super::{Arc, Entry, Slot, Token};

    /// A lock-free map from token to entry.
    pub(crate) struct Table {
        map: HashMap<Token, Entry, TokenHash>,
    }

    impl Table {
        /// An empty table with room for `capacity` tokens before its first resize.
        pub(crate) fn with_capacity(capacity: usize) -> Table {
            Table {
                map: HashMap::builder()
                    .capacity(capacity)
                    .hasher(TokenHash::new())
                    .build(),
            }
        }

        /// Calls `f` with the token's current entry. The entry is pinned (not reclaimed) only
        /// for the duration of `f`: `f` must not block.
        #[inline]
        pub(crate) fn read<R>(&self, token: Token, f: impl FnOnce(Option<&Entry>) -> R) -> R {
            f(self.map.pin().get(&token))
        }

        /// Inserts `entry` if the token has no entry; otherwise hands it back.
        #[inline]
        pub(crate) fn insert_new(&self, token: Token, entry: Entry) -> Result<(), Entry> {
            match self.map.pin().try_insert(token, entry) {
                Ok(_) => Ok(()),
                Err(occupied) => Err(occupied.not_inserted),
            }
        }

        /// Replaces the token's entry, which must exist and name the same slot.
        #[inline]
        pub(crate) fn replace(&self, token: Token, entry: Entry) {
            let slot = Arc::as_ptr(&entry.slot);
            let map = self.map.pin();
            let old = map.insert(token, entry);
            debug_assert!(
                old.is_some_and(|old| Arc::as_ptr(&old.slot) == slot),
                "token {token}: replaced an entry of another slot, or none"
            );
        }

        /// Removes the token's entry if it names `slot`; returns whether it did.
        #[inline]
        pub(crate) fn remove(&self, token: Token, slot: &Arc<Slot>) -> bool {
            matches!(
                self.map
                    .pin()
                    .remove_if(&token, |_, entry| entry.is_of(slot)),
                Ok(Some(_))
            )
        }

        /// How many tokens have an entry (approximate while writers run).
        pub(crate) fn len(&self) -> usize {
            self.map.len()
        }

        /// The tokens whose entry shows no participant, with their slots: the candidates of a
        /// sweep. Weakly consistent, like every iteration of a concurrent map: entries changed
        /// during the walk may or may not be listed, which the sweep re-checks under each
        /// slot's lock anyway.
        pub(crate) fn dormant(&self) -> Vec<(Token, Arc<Slot>)> {
            self.map
                .pin()
                .iter()
                .filter(|(_, entry)| entry.is_dormant())
                .map(|(token, entry)| (*token, Arc::clone(&entry.slot)))
                .collect()
        }
    }

    impl fmt::Debug for Table {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Table")
                .field("tokens", &self.map.len())
                .finish()
        }
    }

    /// Hashes tokens with a seeded 64-bit finalizer (murmur3's `fmix64`): a few multiplies
    /// instead of SipHash's rounds, and every input bit reaches every output bit, so tokens that
    /// are aligned addresses (low bits all zero) or small consecutive ids spread over papaya's
    /// buckets and tags alike.
    ///
    /// Default: a seed drawn from std's `RandomState`, so that two registries (and two runs)
    /// place tokens differently. Tokens are chosen by the VMM (eventfd addresses, vector
    /// numbers), not by a guest, so the keyed mixer does not need SipHash's resistance to
    /// chosen-key flooding.
    #[derive(Clone, Debug)]
    pub(crate) struct TokenHash {
        seed: u64,
    }

    impl TokenHash {
        fn new() -> TokenHash {
            TokenHash {
                seed: RandomState::new().hash_one(0x9E37_79B9_7F4A_7C15_u64) | 1,
            }
        }
    }

    impl BuildHasher for TokenHash {
        type Hasher = TokenHasher;
        #[inline]
        fn build_hasher(&self) -> TokenHasher {
            TokenHasher(self.seed)
        }
    }

    /// The hasher of [`TokenHash`]. A token hashes as one `write_u64`; other writes fold
    /// their bytes in the same way, for completeness.
    #[derive(Debug)]
    pub(crate) struct TokenHasher(u64);

    #[inline]
    fn fmix64(mut h: u64) -> u64 {
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }

    impl Hasher for TokenHasher {
        #[inline]
        fn write_u64(&mut self, n: u64) {
            self.0 = fmix64(self.0 ^ n);
        }

        fn write(&mut self, bytes: &[u8]) {
            for chunk in bytes.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                self.write_u64(u64::from_le_bytes(word));
            }
        }

        #[inline]
        fn finish(&self) -> u64 {
            self.0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn aligned_tokens_spread_over_low_and_high_bits() {
            let hash = TokenHash::new();
            let mut low = std::collections::HashSet::new();
            let mut high = std::collections::HashSet::new();
            for i in 1..=1024u64 {
                let h = hash.hash_one(Token::new(i * 64).unwrap());
                low.insert(h & 0x3ff);
                high.insert(h >> 57);
            }
            // 1,024 balls in 1,024 bins fill about 63% of them; 128 bins, all of them.
            assert!(low.len() > 550, "low bits: {} distinct of 1024", low.len());
            assert_eq!(high.len(), 128, "high bits: {} distinct of 128", high.len());
        }
    }
}

#[cfg(loom)]
mod loom_table {
    use std::collections::HashMap;

    use super::{Arc, Entry, Slot, Token};
    use crate::lockfree::sync::Mutex;

    /// The loom stand-in: a linearizable map, each operation one critical section.
    #[derive(Debug)]
    pub(crate) struct Table {
        map: Mutex<HashMap<Token, Entry>>,
    }

    impl Table {
        pub(crate) fn with_capacity(capacity: usize) -> Table {
            Table {
                map: Mutex::new(HashMap::with_capacity(capacity)),
            }
        }

        pub(crate) fn read<R>(&self, token: Token, f: impl FnOnce(Option<&Entry>) -> R) -> R {
            f(self.map.lock().get(&token))
        }

        pub(crate) fn insert_new(&self, token: Token, entry: Entry) -> Result<(), Entry> {
            let mut map = self.map.lock();
            if map.contains_key(&token) {
                return Err(entry);
            }
            map.insert(token, entry);
            Ok(())
        }

        pub(crate) fn replace(&self, token: Token, entry: Entry) {
            let slot = Arc::as_ptr(&entry.slot);
            let old = self.map.lock().insert(token, entry);
            assert!(
                old.is_some_and(|old| Arc::as_ptr(&old.slot) == slot),
                "token {token}: replaced an entry of another slot, or none"
            );
        }

        pub(crate) fn remove(&self, token: Token, slot: &Arc<Slot>) -> bool {
            let mut map = self.map.lock();
            if map.get(&token).is_some_and(|entry| entry.is_of(slot)) {
                map.remove(&token);
                true
            } else {
                false
            }
        }

        pub(crate) fn len(&self) -> usize {
            self.map.lock().len()
        }

        pub(crate) fn dormant(&self) -> Vec<(Token, Arc<Slot>)> {
            self.map
                .lock()
                .iter()
                .filter(|(_, entry)| entry.is_dormant())
                .map(|(token, entry)| (*token, Arc::clone(&entry.slot)))
                .collect()
        }
    }
}
