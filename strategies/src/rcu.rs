//! `rcu`: readers load an immutable snapshot through [`arc_swap`] and never wait; writers
//! publish a new snapshot, one bucket at a time.
//!
//! # Design
//! Tokens are spread over a fixed array of buckets by a hash of the token
//! ([`Rcu::bucket_of`]). Each bucket holds its snapshot, an immutable hash trie (a HAMT: nodes of
//! up to 32 children, leaves holding a token's producer and consumer) behind an
//! [`ArcSwap`], and a writer lock. A read loads the bucket's current snapshot, walks it and
//! drops it: no lock, no retry, no wait for a writer. A register or unregister takes the
//! bucket's writer lock for the whole call, decides on the current snapshot, runs the connect or
//! disconnect callbacks, and publishes a new snapshot that copies only the trie nodes on the
//! token's way and shares the rest with the old one. The writer lock gives exactly one connect
//! and per-token exclusion; tokens of other buckets go on in parallel, callbacks included.
//!
//! Why a trie and not a plain map per bucket? Copying a whole map costs O(n) per
//! registration; split into a fixed number of buckets it is still O(n / buckets), linear in n.
//! The trie copies at most 32 children per level over 1 + log₃₂(n / buckets) levels. Measured
//! (one thread, a lone register then unregister of a fresh token, 256 buckets, release build
//! on a loaded 2-core VM, so only the trend counts):
//!
//! | live tokens | 0 | 10,000 | 100,000 | 1,000,000 |
//! |---|---|---|---|---|
//! | trie per bucket (this backend) | 0.5 µs | 1.4–1.8 µs | 1.9 µs | 3.2–4.3 µs |
//! | sorted `Vec` per bucket, copied | 0.2 µs | 1.2 µs | 8.3 µs | 189 µs |
//!
//! The trie's cost is reference counting: a copied node clones up to 32 children, and each
//! clone of a leaf touches the counts of its two participants.
//!
//! # What it locks, and for how long
//! - **The bucket's writer lock**: by registers and unregisters of the bucket's tokens, for the
//!   whole call, callbacks included. A slow or blocked callback holds up the other writers of
//!   its bucket (1 in [`Rcu::buckets`] of the tokens), no one else.
//! - **Nothing for readers**: `is_paired`, `producer`, `consumer` and `population` take no lock
//!   and never wait for a writer or a callback. Writers pay for that instead: see the cost of a
//!   store below.
//!
//! # Re-entrancy
//! A callback that registers or unregisters a token of its own bucket (its own token included)
//! gets `reentrant`: the bucket's writer lock is held by its own thread. A call for a token of
//! another bucket works, unless it would wait for a lower-numbered bucket than one its thread
//! holds while that bucket is busy; then it gets `reentrant` too, the price of never deadlocking
//! (a thread holding writer locks only ever waits for a higher-numbered one, so no two threads
//! can wait for each other). Which tokens share a bucket is fixed by the hash and the bucket
//! count ([`Rcu::bucket_of`]). A callback that blocks until *another thread* has registered or
//! unregistered a token of its own bucket still deadlocks: no registry can see that wait.
//!
//! Read calls from a callback answer from the current snapshot, in which a register takes
//! effect when its snapshot is published, after its connect callbacks, and an unregister when
//! its snapshot is published, before its disconnect callbacks: inside the connect of a token, the
//! new participant is not yet there and `is_paired` is `false`; inside a disconnect, the leaving
//! participant is already gone.
//!
//! # Memory
//! Per token with a participant, one leaf (48 bytes, inline in its parent's array of
//! children) and its share of trie nodes; per bucket, a padded writer lock and a root. Each
//! write allocates the new nodes of its path (a few, of at most 32 children each) and frees the
//! old ones once no reader holds the old snapshot. Readers hold one only for their lookup, so
//! besides the current snapshot of a bucket, at most one old snapshot per reader in flight is
//! alive, sharing all but one path with the current one. A reader in flight can thus keep an
//! unregistered participant alive for the instant of its lookup (the registry never calls it
//! again): the `Arc` that unregister hands back is the only one left once no read is in flight.
//!
//! # Cost per operation
//! Reads: a multiply-xorshift hash of the token, one arc-swap load (no write to any shared
//! cache line in the common case), a walk of 1 + log₃₂(n / buckets) nodes, and for `producer`
//! and `consumer` a reference-count increment: O(log n), in practice 1 to 3 nodes. Alone on one
//! core a lookup costs a little more than `sharded`'s at 100,000 tokens (`is_paired`, measured
//! as above: 84 ns against 60 ns; the walk touches one or two more cache lines); the gain is
//! that readers on many cores never write a shared line and never wait. Registers and
//! unregisters: the writer lock of the bucket, a path copy of O(log₃₂ n) nodes of at most 32
//! children, one leaf, and one store, which walks arc-swap's per-thread slots (next section);
//! [`Registry::population`] sums two per-thread counters.
//!
//! # The cost of a store grows with threads
//! arc-swap lets readers skip reference counting by leaving a "debt" in a slot of their own
//! thread; a store walks the debt slots of every thread to pay them. arc-swap keeps one slot
//! node per thread that has ever loaded from any `ArcSwap` at the same time as others, in the
//! whole process, and never frees them (a later thread reuses one). So each register and
//! unregister costs about 0.1 µs per such node on top of its own work: measured as above with
//! 10,000 live tokens, a write took 0.9 µs in a fresh process, 7.5 µs once 64 threads had read
//! at once, and 109 µs once 1,024 had (the irqfd-flood scenario's thread count). Readers do not
//! pay it, and it does not grow with the number of tokens.
//!
//! # When to choose it
//! Choose it when lookups on the interrupt path dominate (delivery-lookup: 99% reads over
//! 100,000 live tokens): reads scale with cores and never wait, not even for a slow callback,
//! and registrations still run in parallel across buckets. Prefer [`sharded`](crate::sharded)
//! for write-heavy churn, and whenever hundreds of threads read the registry or any other
//! `ArcSwap` of the process: each write here allocates and frees a few trie nodes and pays
//! arc-swap's store, whose cost grows with those threads. Do not choose it if callbacks call
//! back into the registry for other tokens and cannot handle `reentrant`.
//!
//! ```
//! use std::sync::Arc;
//! use bypass_registry::probe::{EventLog, Probe};
//! use bypass_registry::{ErrorKind, Registry, Token};
//! use bypass_strategies::Rcu;
//!
//! let registry = Rcu::new();
//! let log = EventLog::new();
//! let t = Token::new(3).unwrap();
//! registry.register_producer(t, Arc::new(Probe::producer(3, &log))).unwrap();
//! registry.register_consumer(t, Arc::new(Probe::consumer(3, &log))).unwrap();
//! assert!(registry.is_paired(t));
//! let p = registry.unregister_producer(t).unwrap();
//! assert_eq!(Arc::strong_count(&p), 1); // no snapshot keeps it
//! assert!(registry.bucket_of(t) < registry.buckets());
//! let again = registry.unregister_producer(t).err().map(|e| e.kind());
//! assert_eq!(again, Some(ErrorKind::NotRegistered));
//! ```

mod trie;

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bypass_registry::pair::{Pair, Role, Strong};
use bypass_registry::protocol::RegistryId;
use bypass_registry::registration::{Lock, Pairs, Vacancy};
use bypass_registry::{Consumer, Population, Producer, Registry, Token};
use crossbeam_utils::CachePadded;
use parking_lot::MutexGuard;

use crate::counter::{self, Counts};

use self::trie::{Leaf, Node};
use crate::writer_lock::{self, WriterLock};

/// The default number of buckets.
///
/// A bucket's writer lock is held across callbacks, which can take milliseconds, and every
/// writer of the bucket waits for them: 256 buckets keep the chance that an unrelated token
/// waits for a given slow callback at 1 in 256, for 32 KiB of padded buckets per registry. The
/// trie inside each bucket keeps writes cheap however many tokens share it.
pub const DEFAULT_BUCKETS: usize = 256;

/// One bucket: its published snapshot and its writer lock.
struct Bucket {
    /// What readers see. Invariant: replaced only under `writer`.
    snapshot: ArcSwap<Node>,
    writer: WriterLock,
}

/// A registry of immutable snapshots published through arc-swap, one per bucket: see the
/// [module docs](self).
pub struct Rcu {
    id: RegistryId,
    buckets: Box<[CachePadded<Bucket>]>,
    /// log₂ of the bucket count: the hash bits that choose the bucket.
    bucket_bits: u32,
    counts: Counts,
}

/// A bijective mix of the token's bits (splitmix64's finalizer): tokens that are addresses
/// (aligned, clustered) or small counters spread over every bucket and trie level, and two
/// tokens never share a hash.
fn mix(token: Token) -> u64 {
    let mut z = token.get();
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rcu {
    /// An empty registry with [`DEFAULT_BUCKETS`] buckets.
    pub fn new() -> Rcu {
        Rcu::with_buckets(DEFAULT_BUCKETS)
    }

    /// An empty registry with `buckets` buckets, rounded up to a power of two.
    pub fn with_buckets(buckets: usize) -> Rcu {
        let buckets = buckets.max(1).next_power_of_two();
        Rcu {
            id: RegistryId::new(),
            buckets: (0..buckets)
                .map(|_| {
                    CachePadded::new(Bucket {
                        snapshot: ArcSwap::from_pointee(Node::default()),
                        writer: WriterLock::default(),
                    })
                })
                .collect(),
            bucket_bits: buckets.trailing_zeros(),
            counts: counter::counts(),
        }
    }

    /// The number of buckets.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket of `token`, below [`Rcu::buckets`]: tokens of different buckets never wait
    /// for each other's callbacks. It depends only on the token and the bucket count.
    pub fn bucket_of(&self, token: Token) -> usize {
        self.locate(token).0
    }

    /// The bucket of `token` and its path in the bucket's trie (the hash bits left).
    fn locate(&self, token: Token) -> (usize, u64) {
        let hash = mix(token);
        let mask = (1u64 << self.bucket_bits) - 1;
        ((hash & mask) as usize, hash >> self.bucket_bits)
    }

    fn place(&self, token: Token) -> Place {
        let (index, path) = self.locate(token);
        Place { index, path, token }
    }

    /// Runs `read` on the leaf of `token` in the current snapshot of its bucket.
    fn read<T>(&self, token: Token, read: impl FnOnce(Option<&Leaf>) -> T) -> T {
        let (bucket, path) = self.locate(token);
        read(self.buckets[bucket].snapshot.load().get(token, path))
    }

    /// The producer and consumer of `token` in its bucket's current snapshot. Called with the
    /// bucket's writer lock held, so the answer holds until this thread publishes.
    fn current(&self, at: &Place) -> Pair<Strong> {
        let snapshot = self.buckets[at.index].snapshot.load();
        snapshot
            .get(at.token, at.path)
            .map_or_else(Pair::default, |leaf| leaf.pair.clone())
    }

    /// Publishes a snapshot of the bucket of `at` in which its token has `pair`. Called with
    /// the bucket's writer lock held.
    fn publish(&self, at: &Place, pair: Pair<Strong>) {
        let Place { index, path, token } = *at;
        let leaf = (!pair.is_empty()).then_some(Leaf { token, path, pair });
        let snapshot = &self.buckets[index].snapshot;
        let next = snapshot.load().with(token, path, leaf);
        // The old snapshot is freed here, unless a reader still holds it.
        snapshot.store(Arc::new(next));
    }
}

/// Where a token lives: its bucket and its path in the bucket's trie.
#[derive(Clone, Copy)]
struct Place {
    index: usize,
    path: u64,
    token: Token,
}

/// A bucket's writer lock, held, with the token's participants as the current snapshot had
/// them when it was taken (they hold until this thread publishes).
struct Writing<'h> {
    _writer: MutexGuard<'h, ()>,
    at: &'h Place,
    pair: Pair<Strong>,
}

impl Default for Rcu {
    fn default() -> Rcu {
        Rcu::new()
    }
}

impl fmt::Debug for Rcu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rcu")
            .field("id", &self.id)
            .field("buckets", &self.buckets())
            .field("population", &self.population())
            .finish_non_exhaustive()
    }
}

impl Registry for Rcu {
    fn name(&self) -> &'static str {
        "rcu"
    }

    bypass_registry::registration_methods!(Writes);

    fn is_paired(&self, token: Token) -> bool {
        self.read(token, |leaf| leaf.is_some_and(|l| l.pair.is_paired()))
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.read(token, |leaf| leaf.and_then(|l| l.pair.producer.clone()))
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.read(token, |leaf| leaf.and_then(|l| l.pair.consumer.clone()))
    }

    fn population(&self) -> Population {
        counter::population(&self.counts)
    }
}

/// A token's pair is its leaf in its bucket's snapshot; its lock, the bucket's writer lock.
/// [`Rcu`] as [`Pairs`] for [`registration`]: private, so that only the registry's own
/// calls reach its pairs.
struct Writes<'r>(&'r Rcu);

impl Pairs for Writes<'_> {
    type Handle = Place;
    type Guard<'h>
        = Writing<'h>
    where
        Self: 'h;

    fn id(&self) -> RegistryId {
        self.0.id
    }

    fn find_for_register<R: Role>(
        &self,
        token: Token,
        _: &mut Option<Arc<R::Me>>,
    ) -> Vacancy<Place> {
        Vacancy::At(self.0.place(token))
    }

    fn find_for_unregister<R: Role>(&self, token: Token) -> Option<Place> {
        Some(self.0.place(token))
    }

    /// The writer lock of the bucket, or `reentrant` if this thread must not wait for it (see
    /// [`crate::writer_lock`]).
    fn lock<'h>(&'h self, at: &'h Place) -> Lock<Writing<'h>> {
        let bucket = &self.0.buckets[at.index];
        match writer_lock::lock(self.0.id, &bucket.writer, at.index, |t| self.0.bucket_of(t)) {
            Some(writer) => Lock::Held(Writing {
                _writer: writer,
                at,
                pair: self.0.current(at),
            }),
            None => Lock::Reentrant,
        }
    }

    fn look<R: Role, T>(
        &self,
        guard: &Writing<'_>,
        _: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T {
        f(
            R::mine(&guard.pair).is_some(),
            R::partner(&guard.pair).as_deref(),
        )
    }

    fn store<R: Role>(&self, guard: &mut Writing<'_>, _: Token, me: Arc<R::Me>) {
        let mut pair = std::mem::take(&mut guard.pair);
        *R::mine_mut(&mut pair) = Some(me);
        self.0.publish(guard.at, pair);
        // Relaxed: the counters are statistics; the snapshots, not they, decide every call.
        R::mine(&self.0.counts).increment();
    }

    fn take<R: Role, T>(
        &self,
        guard: &mut Writing<'_>,
        _: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(Arc<R::Me>, T)> {
        let me = R::mine_mut(&mut guard.pair).take()?;
        // Published before the disconnect: reads from its callbacks no longer see it.
        self.0.publish(guard.at, guard.pair.clone());
        R::mine(&self.0.counts).decrement();
        let done = f(&me, R::partner(&guard.pair).as_deref());
        Some((me, done))
    }
}
