//! The token table of [`lockfree`](super): a lock-free hash table from token to [`Node`], and
//! the only module of the crate with `unsafe` code, behind the safe methods of [`Table`].
//!
//! # Structure
//! - A fixed **directory** of chunk pointers, sized once at construction; each **chunk** is an
//!   array of bucket heads, allocated on first use by a compare-and-swap (the loser frees its
//!   copy) and kept until the table is dropped. No resize ever happens, so no operation ever
//!   waits for another to move entries.
//! - Each **bucket** is a Harris–Michael lock-free linked list of nodes sorted by hash. The hash
//!   ([`TokenHash`]) is a bijection of the token, so the hash alone identifies a token in a
//!   list. A node is removed in two steps: *marked* (the low bit of its `next` pointer set,
//!   which freezes that pointer and is the removal's linearization point), then *unlinked* by
//!   whichever traversal gets its predecessor's compare-and-swap through first; that thread
//!   retires it.
//! - Each **node** is one token's presence: its hash, the per-token lock with the strong
//!   references ([`State`]), and an atomic pointer to the current [`Snapshot`] that readers
//!   use. The node is reference counted (the sync facade's `Arc`): the list holds one count,
//!   given up when the node is unlinked; a writer that found the node holds another across its
//!   callbacks.
//!
//! # Memory reclamation
//! Nodes and snapshots may still be read by a thread that loaded a pointer to them before they
//! were unlinked or replaced. Such a thread is *pinned* (crossbeam-epoch): the list's count of an
//! unlinked node, and a replaced snapshot, are released only once every thread pinned at the
//! time has unpinned. Pins are short: no guard is held across a callback or a lock wait. Under
//! `--cfg loom`, pinning does nothing and retired objects are kept until the table is dropped,
//! which is safe and lets loom check the list's own atomics.
//!
//! # Invariants
//! - **(T1)** A pointer read from a bucket head or a `next` field, by a thread pinned since
//!   before the read, points to a node whose list count has not been released: nodes are
//!   retired only after being unlinked, and released only after every pin that could have seen
//!   them.
//! - **(T2)** A node is unlinked at most once, by the compare-and-swap that moves its
//!   predecessor's pointer past it; only that thread retires it. Once marked, a node's `next`
//!   never changes again, so following it still leads into the list.
//! - **(T3)** A node's `seen` is never null; a replaced snapshot is retired by the thread that
//!   swapped it out, once.
//! - **(T4)** Nodes and chunks are never reused while reachable: a node is inserted once and
//!   never again after removal, so a compare-and-swap on a pointer never suffers ABA within a
//!   pin.

// The unsafe code of the crate: raw pointers between nodes, reclaimed by epochs. Every block
// says why it is sound; the methods of `Table` and `Node` are safe to call in any order.
#![allow(unsafe_code)]

use std::fmt;
use std::hash::Hasher;
use std::ptr;

use bypass_registry::Token;

use super::slot::{Snapshot, State};
use super::sync::{Arc, AtomicPtr, Mutex, MutexGuard, Ordering};

/// Bucket heads per chunk: `1 << CHUNK_BITS`. Under loom, one bucket in all, so that every
/// token of a model shares one list and the list's races are explored.
#[cfg(not(loom))]
const CHUNK_BITS: u32 = 8;
#[cfg(loom)]
const CHUNK_BITS: u32 = 0;

/// Default number of buckets: 65,536 (256 chunks of 256, a 2 KiB directory; 2 KiB more per
/// chunk in use). Lists stay short up to a few hundred thousand tokens (100,000 tokens: 1.5 a
/// bucket on average).
#[cfg(not(loom))]
const DEFAULT_BUCKET_BITS: u32 = 16;
#[cfg(loom)]
const DEFAULT_BUCKET_BITS: u32 = 0;

/// The most buckets a table gets, however large its requested capacity: 2^24 (a 512 KiB
/// directory).
const MAX_BUCKET_BITS: u32 = 24;

/// One token in the table.
pub(crate) struct Node {
    hash: u64,
    /// The next node of the bucket's list; the low bit set marks this node removed.
    next: AtomicPtr<Node>,
    /// The current snapshot (T3): owned by the node, replaced by `Table::publish`.
    seen: AtomicPtr<Snapshot>,
    /// The token's lock and the strong references to its participants.
    lock: Mutex<State>,
}

impl Node {
    /// Waits for the token's lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.lock.lock()
    }

    /// Takes the token's lock if no one holds it.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, State>> {
        self.lock.try_lock()
    }

    /// A counted reference to this node, which was reached from a list while `_guard` was
    /// pinned: it keeps the node alive after the guard is dropped.
    fn to_arc(&self, _guard: &epoch::Guard<'_>) -> Arc<Node> {
        let node: *const Node = self;
        // Safety: the node was reached from the list while pinned, so the list's count of it is
        // not released yet (T1): its strong count is at least one, and it came from
        // `Arc::into_raw` (in `get_or_insert`), as `increment_strong_count` requires.
        unsafe {
            Arc::increment_strong_count(node);
            Arc::from_raw(node)
        }
    }

    /// The current snapshot, valid while `_guard` is held.
    fn snapshot<'g>(&self, _guard: &'g epoch::Guard<'_>) -> &'g Snapshot {
        let seen = self.seen.load(Ordering::Acquire);
        // Safety: `seen` is never null (T3) and was published by a `Release` swap or at the
        // node's creation before the node was reachable; a replaced snapshot is released only
        // after every guard pinned before the swap is dropped, and `_guard` was pinned before
        // this load, so the snapshot outlives `'g`.
        unsafe { &*seen }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let seen = self.seen.load(Ordering::Relaxed);
        // Safety: the node is being dropped, so no one can read `seen` any more; it came from
        // `Box::into_raw` and was never retired (a retired snapshot is no longer `seen`).
        drop(unsafe { Box::from_raw(seen) });
    }
}

/// What [`Table::get_or_insert`] did.
pub(crate) enum Found<R> {
    /// The token had no node: one holding the new state was inserted.
    Inserted,
    /// The token has a node.
    Present {
        /// The node, kept alive by this count.
        node: Arc<Node>,
        /// What the caller's `f` said of its snapshot.
        seen: R,
        /// The state the caller's `make` made, if it was called: not inserted, handed back.
        state: Option<State>,
    },
}

/// An array of bucket heads.
struct Chunk {
    buckets: Box<[AtomicPtr<Node>]>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            buckets: (0..1usize << CHUNK_BITS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }
}

/// A lock-free map from token to [`Node`]. See the [module documentation](self).
pub(crate) struct Table {
    hasher: TokenHash,
    /// Chunk pointers, null until first used; `directory.len()` is a power of two.
    directory: Box<[AtomicPtr<Chunk>]>,
    /// Where retired objects wait (only under loom; the real collector is global).
    retired: epoch::Retired,
}

impl Table {
    /// An empty table with buckets enough for `capacity` tokens, one list node each on
    /// average, and at least the default 65,536.
    pub(crate) fn with_capacity(capacity: usize) -> Table {
        let wanted = capacity
            .checked_next_power_of_two()
            .map_or(usize::BITS, usize::trailing_zeros);
        Table::with_bucket_bits(wanted.clamp(DEFAULT_BUCKET_BITS, MAX_BUCKET_BITS))
    }

    /// An empty table of `1 << bucket_bits` buckets (at least one chunk's worth).
    fn with_bucket_bits(bucket_bits: u32) -> Table {
        let chunks = 1usize << bucket_bits.saturating_sub(CHUNK_BITS);
        Table {
            hasher: TokenHash::new(),
            directory: (0..chunks)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            retired: epoch::Retired::new(),
        }
    }

    /// Calls `f` with the token's current snapshot, or `None` if the token has no node. The
    /// snapshot is pinned only for the duration of `f`: `f` must not block.
    #[inline]
    pub(crate) fn read<R>(&self, token: Token, f: impl FnOnce(Option<&Snapshot>) -> R) -> R {
        let guard = epoch::pin(&self.retired);
        let hash = self.hasher.hash(token);
        let node = self.find(hash, &guard);
        f(node.map(|node| node.snapshot(&guard)))
    }

    /// The token's node, with what `f` says of its current snapshot, or `None` if the token
    /// has no node. The returned `Arc` keeps the node alive without pinning.
    #[inline]
    pub(crate) fn get<R>(
        &self,
        token: Token,
        f: impl FnOnce(&Snapshot) -> R,
    ) -> Option<(Arc<Node>, R)> {
        let guard = epoch::pin(&self.retired);
        let hash = self.hasher.hash(token);
        let node = self.find(hash, &guard)?;
        let seen = f(node.snapshot(&guard));
        Some((node.to_arc(&guard), seen))
    }

    /// The token's node, with what `f` says of its snapshot; or, if the token has none, a new
    /// node holding the state that `make` returns, inserted. One pin, and no allocation when
    /// the token is present at first look. If another thread inserts the token between the look
    /// and the insert, its node is returned, with the state `make` made (`Some`) handed back.
    /// The state must not be empty: the snapshot readers see is taken from it.
    pub(crate) fn get_or_insert<R>(
        &self,
        token: Token,
        make: impl FnOnce() -> State,
        f: impl FnOnce(&Snapshot) -> R,
    ) -> Found<R> {
        let guard = epoch::pin(&self.retired);
        let hash = self.hasher.hash(token);
        if let Some(node) = self.find(hash, &guard) {
            let seen = f(node.snapshot(&guard));
            return Found::Present {
                node: node.to_arc(&guard),
                seen,
                state: None,
            };
        }
        let state = make();
        let seen = Box::into_raw(Box::new(state.snapshot()));
        let new = Arc::into_raw(Arc::new(Node {
            hash,
            next: AtomicPtr::new(ptr::null_mut()),
            seen: AtomicPtr::new(seen),
            lock: Mutex::new(state),
        }))
        .cast_mut();
        let head = self.bucket(hash, true).expect("allocated on demand");
        loop {
            let (prev, curr) = self.search(head, hash, &guard);
            // Safety: `curr`, when not null, was reached while pinned (T1).
            if let Some(node) = unsafe { curr.as_ref() }.filter(|node| node.hash == hash) {
                // Another thread inserted the token first. Ours was never published, so this
                // is its only count: take the state back out of it.
                // Safety: `new` came from `Arc::into_raw` above and was never shared.
                let ours = unsafe { Arc::from_raw(new) };
                let Ok(mut ours) = Arc::try_unwrap(ours) else {
                    unreachable!("an unpublished node has one owner")
                };
                let state = std::mem::take(ours.lock.get_mut());
                let seen = f(node.snapshot(&guard));
                return Found::Present {
                    node: node.to_arc(&guard),
                    seen,
                    state: Some(state),
                };
            }
            // Safety: `new` is ours alone until the compare-and-swap below publishes it.
            unsafe { (*new).next.store(curr, Ordering::Relaxed) };
            if prev
                .compare_exchange(curr, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Found::Inserted;
            }
        }
    }

    /// Makes `state` what readers of `node` see, from now on.
    pub(crate) fn publish(&self, node: &Node, state: &State) {
        let new = Box::into_raw(Box::new(state.snapshot()));
        let guard = epoch::pin(&self.retired);
        let old = node.seen.swap(new, Ordering::AcqRel);
        // Safety: `old` is no longer reachable from the node; a reader that loaded it was
        // pinned before this swap, and the deferred drop runs only after such pins are gone.
        // This thread swapped it out, so it is retired once (T3).
        unsafe { guard.defer(Retire::Snapshot(old)) };
    }

    /// Removes `node` from the table: marks it, then unlinks it. Readers that start afterwards
    /// do not find it. Removing a node twice, or one of another table, does nothing more.
    pub(crate) fn remove(&self, node: &Node) {
        let guard = epoch::pin(&self.retired);
        let mut next = node.next.load(Ordering::Acquire);
        loop {
            if is_marked(next) {
                return;
            }
            match node.next.compare_exchange_weak(
                next,
                marked(next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => next = actual,
            }
        }
        // A search up to the node's hash unlinks every marked node before that point, this one
        // included (or finds it already unlinked by another traversal).
        if let Some(head) = self.bucket(node.hash, false) {
            self.search(head, node.hash, &guard);
        }
    }

    /// The bucket head of `hash`, allocating its chunk if `allocate`; `None` if the chunk was
    /// never allocated (so the bucket is empty).
    fn bucket(&self, hash: u64, allocate: bool) -> Option<&AtomicPtr<Node>> {
        let slot = &self.directory[(hash >> CHUNK_BITS) as usize & (self.directory.len() - 1)];
        let mut chunk = slot.load(Ordering::Acquire);
        if chunk.is_null() {
            if !allocate {
                return None;
            }
            let new = Box::into_raw(Box::new(Chunk::new()));
            chunk = match slot.compare_exchange(
                ptr::null_mut(),
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => new,
                Err(winner) => {
                    // Safety: `new` lost the race and was never shared.
                    drop(unsafe { Box::from_raw(new) });
                    winner
                }
            };
        }
        // Safety: a published chunk is freed only when the table is dropped, and `&self` keeps
        // the table alive for the returned borrow.
        let chunk = unsafe { &*chunk };
        Some(&chunk.buckets[hash as usize & ((1 << CHUNK_BITS) - 1)])
    }

    /// The unmarked node of `hash`, if the list has one. Read-only: it follows marked nodes'
    /// frozen `next` pointers (T2) rather than unlinking them.
    fn find<'g>(&self, hash: u64, _guard: &'g epoch::Guard<'_>) -> Option<&'g Node> {
        let mut curr = self.bucket(hash, false)?.load(Ordering::Acquire);
        while !curr.is_null() {
            // Safety: reached from the list while `_guard` is pinned (T1).
            let node = unsafe { &*curr };
            let next = node.next.load(Ordering::Acquire);
            if node.hash >= hash {
                return (node.hash == hash && !is_marked(next)).then_some(node);
            }
            curr = unmarked(next);
        }
        None
    }

    /// Harris–Michael search: the link to change for `hash` and the first unmarked node at or
    /// after `hash` (null at the end), unlinking and retiring the marked nodes on the way.
    fn search<'g>(
        &'g self,
        head: &'g AtomicPtr<Node>,
        hash: u64,
        guard: &'g epoch::Guard<'_>,
    ) -> (&'g AtomicPtr<Node>, *mut Node) {
        'retry: loop {
            let mut prev = head;
            let mut curr = prev.load(Ordering::Acquire);
            loop {
                if curr.is_null() {
                    return (prev, curr);
                }
                // Safety: reached from the list while pinned (T1).
                let node: &'g Node = unsafe { &*curr };
                let next = node.next.load(Ordering::Acquire);
                if is_marked(next) {
                    // Unlink the removed node; if `prev` changed, start over.
                    match prev.compare_exchange(
                        curr,
                        unmarked(next),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            // Safety: this compare-and-swap unlinked `curr` (T2): no new
                            // traversal can reach it, the pinned ones are waited for, and
                            // no one else retires it.
                            unsafe { guard.defer(Retire::Node(curr)) };
                            curr = unmarked(next);
                            continue;
                        }
                        Err(_) => continue 'retry,
                    }
                }
                if node.hash >= hash {
                    return (prev, curr);
                }
                prev = &node.next;
                curr = next;
            }
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        for chunk in self.directory.iter() {
            let chunk = chunk.load(Ordering::Acquire);
            if chunk.is_null() {
                continue;
            }
            // Safety: `&mut self`: no other thread uses the table; the chunk came from
            // `Box::into_raw` and is freed only here.
            let chunk = unsafe { Box::from_raw(chunk) };
            for head in chunk.buckets.iter() {
                let mut curr = head.load(Ordering::Acquire);
                while !curr.is_null() {
                    // Safety: every node still in a list (marked or not) holds the list's
                    // count, which is released here and nowhere else (unlinked nodes are not
                    // in a list: their count is in the retired garbage).
                    let node = unsafe { Arc::from_raw(curr.cast_const()) };
                    curr = unmarked(node.next.load(Ordering::Acquire));
                    drop(node);
                }
            }
        }
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("buckets", &(self.directory.len() << CHUNK_BITS))
            .finish_non_exhaustive()
    }
}

fn is_marked(ptr: *mut Node) -> bool {
    ptr.addr() & 1 == 1
}

fn marked(ptr: *mut Node) -> *mut Node {
    ptr.map_addr(|addr| addr | 1)
}

fn unmarked(ptr: *mut Node) -> *mut Node {
    ptr.map_addr(|addr| addr & !1)
}

/// What a retired pointer needs once no reader can hold it.
enum Retire {
    /// An unlinked node: release the list's count.
    Node(*mut Node),
    /// A replaced snapshot: free it.
    Snapshot(*mut Snapshot),
}

// Safety: a `Retire` is the only handle to what it points to (T2, T3); `Node` and `Snapshot`
// are `Send + Sync`, so releasing them on another thread is sound.
unsafe impl Send for Retire {}

impl Retire {
    /// # Safety
    /// Runs once per retired pointer, after every thread that could have read it has unpinned.
    unsafe fn run(self) {
        match self {
            // Safety: the list's count, from `Arc::into_raw` in `get_or_insert` (caller's contract).
            Retire::Node(node) => drop(unsafe { Arc::from_raw(node.cast_const()) }),
            // Safety: from `Box::into_raw` in `publish` or `get_or_insert` (caller's contract).
            Retire::Snapshot(seen) => drop(unsafe { Box::from_raw(seen) }),
        }
    }
}

#[cfg(not(loom))]
mod epoch {
    use std::marker::PhantomData;

    use super::Retire;

    /// Nothing: crossbeam-epoch's global collector keeps the garbage.
    #[derive(Debug)]
    pub(super) struct Retired;

    impl Retired {
        pub(super) fn new() -> Retired {
            Retired
        }
    }

    /// A pinned thread: what it loaded from the table stays valid until this is dropped.
    pub(super) struct Guard<'a>(crossbeam_epoch::Guard, PhantomData<&'a Retired>);

    pub(super) fn pin(_: &Retired) -> Guard<'_> {
        Guard(crossbeam_epoch::pin(), PhantomData)
    }

    impl Guard<'_> {
        /// Runs `retire` once every thread pinned now has unpinned.
        ///
        /// # Safety
        /// No thread may reach the retired object except through a pin taken before this call.
        pub(super) unsafe fn defer(&self, retire: Retire) {
            // Safety: the caller's contract is what `defer_unchecked` needs; `Retire` is `Send`,
            // so it may run on any thread.
            unsafe { self.0.defer_unchecked(move || retire.run()) }
        }
    }
}

#[cfg(loom)]
mod epoch {
    use std::sync::Mutex;

    use super::Retire;

    /// Under loom: every retired object, released when the table is dropped.
    pub(super) struct Retired(Mutex<Vec<Retire>>);

    impl Retired {
        pub(super) fn new() -> Retired {
            Retired(Mutex::new(Vec::new()))
        }
    }

    /// Under loom: pins nothing, since nothing is released before the table is dropped.
    pub(super) struct Guard<'a>(&'a Retired);

    pub(super) fn pin(retired: &Retired) -> Guard<'_> {
        Guard(retired)
    }

    impl Guard<'_> {
        /// # Safety
        /// As the real `defer`.
        pub(super) unsafe fn defer(&self, retire: Retire) {
            (self.0).0.lock().unwrap().push(retire);
        }
    }

    impl Drop for Retired {
        fn drop(&mut self) {
            for retire in self.0.get_mut().unwrap().drain(..) {
                // Safety: the table is gone, and with it every reader.
                unsafe { retire.run() };
            }
        }
    }
}

/// Hashes tokens with a seeded 64-bit finalizer (murmur3's `fmix64`): a few multiplies instead
/// of SipHash's rounds, and a bijection, so distinct tokens have distinct hashes (a list needs
/// no key besides the hash), while every input bit reaches every output bit, so tokens that
/// are aligned addresses (low bits all zero) or small consecutive ids spread over the buckets.
///
/// Default: a seed drawn from std's `RandomState`, so that two registries (and two runs) place
/// tokens differently; fixed under loom, whose models must replay deterministically. Tokens are
/// chosen by the VMM (eventfd addresses, vector numbers), not by a guest, so the keyed mixer
/// does not need SipHash's resistance to chosen-key flooding; the worst case is a long list,
/// never an error.
#[derive(Clone, Debug)]
struct TokenHash {
    seed: u64,
}

impl TokenHash {
    fn new() -> TokenHash {
        #[cfg(not(loom))]
        let seed = {
            use std::hash::BuildHasher;
            std::hash::RandomState::new().hash_one(0x9E37_79B9_7F4A_7C15_u64)
        };
        #[cfg(loom)]
        let seed = 0x9E37_79B9_7F4A_7C15_u64;
        TokenHash { seed }
    }

    #[inline]
    fn hash(&self, token: Token) -> u64 {
        let mut hasher = TokenHasher(self.seed);
        hasher.write_u64(token.get());
        hasher.finish()
    }
}

/// The hasher of [`TokenHash`].
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    #[inline]
    fn write_u64(&mut self, n: u64) {
        let mut h = self.0 ^ n;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        self.0 = h ^ (h >> 33);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn aligned_tokens_spread_over_buckets() {
        // Fixed seeds, so the test is deterministic; many of them, so it speaks for the random
        // seed a registry draws. 1,024 aligned tokens (64 apart, as addresses are) land in 1,024
        // bins (the low bits) and in 128 bins (the top 7 bits). A uniform hash fills about 63%
        // of the first (647, with a standard deviation near 9) and, on average, 127.96 of the
        // second; below 550 and 120 is many deviations away for a good mixer, while one that
        // leaves the top or bottom bits of aligned tokens alone fills a handful.
        for seed in (0..64u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
            let hash = TokenHash { seed };
            let mut low = std::collections::HashSet::new();
            let mut high = std::collections::HashSet::new();
            for i in 1..=1024u64 {
                let h = hash.hash(Token::new(i * 64).unwrap());
                low.insert(h & 0x3ff);
                high.insert(h >> 57);
            }
            assert!(
                low.len() > 550,
                "seed {seed:#x}: low bits: {} distinct of 1024",
                low.len()
            );
            assert!(
                high.len() >= 120,
                "seed {seed:#x}: high bits: {} distinct of 128",
                high.len()
            );
        }
    }

    #[test]
    fn sizes_follow_capacity() {
        let buckets = |t: &Table| t.directory.len() << CHUNK_BITS;
        assert_eq!(buckets(&Table::with_capacity(0)), 1 << 16);
        assert_eq!(buckets(&Table::with_capacity(100_000)), 1 << 17);
        assert_eq!(buckets(&Table::with_capacity(usize::MAX)), 1 << 24);
    }

    #[test]
    fn insert_find_remove_many() {
        // 200,000 tokens in 65,536 buckets: lists of several nodes, inserted and removed out of
        // order.
        let table = Table::with_capacity(0);
        let mut tokens: Vec<Token> = (1..=200_000u64).map(|i| Token::new(i).unwrap()).collect();
        let insert = |t| table.get_or_insert(t, || with_marker(State::default()), |_| ());
        for &t in &tokens {
            assert!(matches!(insert(t), Found::Inserted));
        }
        for &t in &tokens {
            assert!(matches!(insert(t), Found::Present { state: None, .. }));
            assert!(table.read(t, |s| s.is_some()));
        }
        tokens.reverse();
        for &t in tokens.iter().step_by(2) {
            let (node, ()) = table.get(t, |_| ()).expect("present");
            table.remove(&node);
            table.remove(&node);
        }
        for (i, &t) in tokens.iter().enumerate() {
            assert_eq!(table.read(t, |s| s.is_some()), i % 2 == 1, "token {t}");
        }
    }

    /// Many tokens in one bucket's list, inserted, removed and read from four threads at once,
    /// with real epoch reclamation: every token ends present at most once, and lookups agree
    /// with what the threads last did.
    #[test]
    fn one_crowded_list_under_contention() {
        use std::sync::atomic::AtomicBool;

        let table = Table::with_bucket_bits(CHUNK_BITS);
        let tokens: Vec<Token> = (1..)
            .map(|i| Token::new(i).unwrap())
            .filter(|&t| table.hasher.hash(t) & ((1 << CHUNK_BITS) - 1) == 0)
            .take(24)
            .collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..3u64)
                .map(|w| {
                    let (table, tokens) = (&table, &tokens);
                    s.spawn(move || {
                        let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ w;
                        for _ in 0..60_000 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let t = tokens[(x % tokens.len() as u64) as usize];
                            if x & (1 << 40) == 0 {
                                let _ = table.get_or_insert(
                                    t,
                                    || with_marker(State::default()),
                                    |_| (),
                                );
                            } else if let Some((node, ())) = table.get(t, |_| ()) {
                                table.remove(&node);
                            }
                        }
                    })
                })
                .collect();
            let reader = s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    for &t in &tokens {
                        table.read(t, |seen| {
                            assert!(seen.is_none_or(|seen| seen.producer.is_some()));
                        });
                    }
                }
            });
            for writer in writers {
                writer.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
            reader.join().unwrap();
        });
        // The list is sorted and holds each token at most once.
        let guard = epoch::pin(&table.retired);
        let head = table.bucket(table.hasher.hash(tokens[0]), false).unwrap();
        let mut curr = head.load(Ordering::Acquire);
        let mut last = None;
        while !curr.is_null() {
            // Safety: reached from the list while pinned.
            let node = unsafe { &*curr };
            let next = node.next.load(Ordering::Acquire);
            if !is_marked(next) {
                assert!(
                    last < Some(node.hash),
                    "the list is out of order or has a duplicate"
                );
                last = Some(node.hash);
            }
            curr = unmarked(next);
        }
        drop(guard);
        for &t in &tokens {
            let present = table.read(t, |seen| seen.is_some());
            let again = table.get_or_insert(t, || with_marker(State::default()), |_| ());
            assert_eq!(matches!(again, Found::Present { .. }), present, "token {t}");
        }
    }

    /// A reader in the middle of a lookup keeps the snapshot and the node it reached while
    /// another thread replaces the snapshot, removes the node and reclaims all it can. Under
    /// valgrind (`.ci/valgrind`), a snapshot or node freed without its epoch deferral is an
    /// invalid read here, every run: the reader touches both after the writer is done.
    #[test]
    fn a_pinned_reader_keeps_what_it_reached() {
        use std::sync::mpsc;

        let table = Table::with_capacity(0);
        let t = Token::new(7).unwrap();
        let _ = table.get_or_insert(t, || with_marker(State::default()), |_| ());
        let (reached, wait_reached) = mpsc::channel();
        let (go, wait_go) = mpsc::channel();
        std::thread::scope(|s| {
            let table = &table;
            let reader = s.spawn(move || {
                // `get` pins, hands `f` the snapshot, then counts a reference to the node.
                table.get(t, |seen| {
                    reached.send(()).unwrap();
                    wait_go.recv().unwrap();
                    // The replaced snapshot is still readable: its producer is still there.
                    seen.producer.as_ref().is_some_and(|p| p.weak_count() > 0)
                })
            });
            wait_reached.recv().unwrap();
            let (node, ()) = table.get(t, |_| ()).expect("inserted");
            table.publish(&node, &with_marker(State::default()));
            table.remove(&node);
            drop(node);
            for _ in 0..64 {
                crossbeam_epoch::pin().flush();
            }
            go.send(()).unwrap();
            let (node, had_producer) = reader.join().unwrap().expect("the reader found the node");
            assert!(had_producer);
            assert_eq!(node.hash, table.hasher.hash(t));
        });
        assert!(!table.read(t, |seen| seen.is_some()));
    }

    fn with_marker(mut state: State) -> State {
        // A state with a participant, as `get_or_insert` requires.
        state.pair.producer = Some(std::sync::Arc::new(Marker));
        state
    }

    struct Marker;
    impl bypass_registry::Producer for Marker {
        fn add_consumer(
            &self,
            _: &dyn bypass_registry::Consumer,
        ) -> Result<(), bypass_registry::CallbackError> {
            Ok(())
        }
        fn del_consumer(&self, _: &dyn bypass_registry::Consumer) {}
    }
}
