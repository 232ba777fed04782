//! The token table of [`lockfree`](super): a lock-free, growing hash table from token to
//! [`Node`], and the module with the backend's `unsafe` code, behind the safe methods of
//! [`Table`], [`Pinned`], [`Found`] and [`Locked`].
//!
//! # Structure: a split-ordered list
//! One Harris–Michael lock-free linked list holds every node, sorted by **split-order key**
//! (the token's hash with its bits reversed, low bit set), with a **sentinel** link per
//! initialized bucket (key: the bucket index reversed, low bit clear) marking where that
//! bucket's nodes start (Shalev and Shavit, "Split-ordered lists", 2006). A **directory** of
//! segments (segment `s` holds buckets `2^(s-1) .. 2^s`, allocated on first use) holds the
//! sentinels in place, each with its bucket's state, so a lookup reaches its bucket's first
//! node with two dependent loads (the bucket, the node) rather than three. The table **grows**
//! by one atomic increment of its bucket count, whenever nodes outnumber buckets twice: no
//! entry ever moves, a new bucket is initialized by the first writer that needs it (it claims
//! the bucket, inserts the sentinel after its parent bucket's, then marks the bucket ready),
//! and a reader that meets an uninitialized bucket, or a writer that meets one another writer
//! is initializing, starts from its nearest ready ancestor instead. So a lookup walks about
//! one node at any population, and nothing ever waits for a resize or for another writer.
//!
//! The hash ([`TokenHash`]) is a bijection of the token; a link also keeps the token, so that
//! (key, token) identifies a node even where two hashes differ only in the bit the key drops.
//!
//! # Nodes stay
//! A token's node holds its state word and its two participant slots (see `slot.rs`). When
//! the token's last participant leaves, the node **stays**: the token's next register finds
//! and reuses it, so a token that cycles allocates nothing. Empty nodes are removed **lazily**:
//! an insert removes every empty, unlocked node it walks past on its way to its place in the
//! list (claim with one compare-and-swap, mark, unlink, retire), and [`Table::sweep`] removes
//! them all. Empty nodes hold no participant reference and count towards the load factor, so
//! memory stays bounded by the peak number of tokens.
//!
//! A node is removed in two steps: *marked* (the low bit of its `next` pointer set, which
//! freezes that pointer), then *unlinked* by whichever traversal gets its predecessor's
//! compare-and-swap through first; that thread retires it. Sentinels are never removed.
//!
//! # Memory reclamation
//! A thread that walks the list is *pinned* for the walk (`epoch.rs`: a store into the thread's
//! record, no read-modify-write; the rare collection pays with `membarrier`). An unlinked node
//! gives up the list's count of it (nodes are reference counted: the list holds one count, a
//! writer waiting for the token's lock holds another) only once every thread pinned at the
//! time has unpinned. A writer that finds its token's lock free while pinned takes it and
//! unpins: a locked node that is not retired cannot be removed (invariant 2 of `slot.rs`), so
//! it needs no count; only a writer that has to wait counts the node and waits unpinned. No pin
//! is held across a callback or a lock wait.
//!
//! The collector is the table's own: what it keeps is freed when the table drops, and
//! [`Table::sweep`] frees what it removed before it returns (unless another thread's pin holds
//! it back). Under test, a quarantining collector poisons the nodes it releases instead of
//! freeing them, as the loom one does.
//!
//! Under `--cfg loom`, pinning registers with a modelled collector instead (the `epoch` module
//! at the end of this file): retired nodes are kept with the epoch they were retired in and
//! released when no guard pinned before then is alive, and a node released there for the last
//! time is poisoned rather than freed, so that a later read through a stale pointer fails the
//! model instead of reading freed memory. Loom does not model `membarrier`: the real
//! collector's argument is in `epoch.rs`.
//!
//! # Invariants
//! - **(T1)** A pointer read from a `next` field (a sentinel's or a node's), by a thread pinned
//!   since before the read, points to a link that is not freed: sentinels live in the
//!   directory as long as the table, and a node's list count is released only after it was
//!   unlinked and every pin that could have seen it is gone.
//! - **(T2)** A node is unlinked at most once, by the compare-and-swap that moves its
//!   predecessor's pointer past it; only that thread retires it. Once marked, a node's `next`
//!   never changes again, so following it still leads into the list.
//! - **(T3)** A node is marked only after its word was claimed empty and retired (invariant 2
//!   of `slot.rs`); sentinels are never marked.
//! - **(T4)** A link enters the list once and is never reinserted, so a compare-and-swap on a
//!   pointer never suffers ABA within a pin.

// The unsafe code of the crate: raw pointers between links, reclaimed by epochs, and the
// participant slots the state word guards. Every block says why it is sound.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::hash::Hasher;
use std::ptr::{self, NonNull};
use std::sync::Arc as StdArc;

use bypass_registry::Token;
use bypass_registry::pair::{Hold, Pair, Role, Strong};

#[cfg(not(loom))]
use super::epoch;
use super::slot::{self, Word};
use super::sync::{Arc, AtomicPtr, AtomicUsize, Ordering, UnsafeCell};

/// Nodes per bucket, on average, past which the table doubles its buckets.
const LOAD: usize = 2;

/// Buckets of a new table: `1 << INITIAL_BITS`. Under loom, one, so that every token of a
/// model starts in one list and the growth to two buckets is part of the model.
#[cfg(not(loom))]
const INITIAL_BITS: usize = 4;
#[cfg(loom)]
const INITIAL_BITS: usize = 0;

/// The most buckets a table grows to: `1 << MAX_BITS` (one under loom's two).
#[cfg(not(loom))]
const MAX_BITS: usize = 40;
#[cfg(loom)]
const MAX_BITS: usize = 1;

/// Directory segments: segment 0 holds bucket 0, segment `s >= 1` buckets `2^(s-1) .. 2^s`.
const SEGMENTS: usize = MAX_BITS + 1;

/// The part of a sentinel and of a node that the list is made of.
#[repr(C)]
struct Link {
    /// Split-order key: odd for a node, even for a sentinel.
    key: u64,
    /// The token of a node; 0 for a sentinel (tokens are nonzero).
    token: u64,
    /// The next link; the low bit set marks this (node) link removed.
    next: AtomicPtr<Link>,
    /// Set (under loom, and by a quarantining collector under test) when the collector
    /// released the node's last count: poisoned.
    #[cfg(any(loom, test))]
    poisoned: std::sync::atomic::AtomicBool,
}

/// A bucket's entry in the directory: its sentinel, in place, so that a walk reaches the
/// sentinel's `next` with the load that finds the bucket (a separately allocated sentinel was
/// one more dependent cache miss a lookup), and whether the sentinel is in the list yet.
#[repr(C, align(32))]
struct Bucket {
    /// The sentinel: key the bucket index reversed, token 0. In the list once `state` is
    /// [`READY`], never before.
    link: Link,
    /// [`UNINIT`], [`CLAIMED`] (one writer is inserting `link`) or [`READY`].
    state: AtomicUsize,
}

/// A bucket whose sentinel no writer has claimed yet.
const UNINIT: usize = 0;
/// A bucket whose sentinel one writer is inserting: the others start from its parent's.
const CLAIMED: usize = 1;
/// A bucket whose sentinel is in the list.
const READY: usize = 2;

impl Link {
    fn new(key: u64, token: u64) -> Link {
        Link {
            key,
            token,
            next: AtomicPtr::new(ptr::null_mut()),
            #[cfg(any(loom, test))]
            poisoned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether this link sorts before (key, token).
    #[inline]
    fn before(&self, key: u64, token: u64) -> bool {
        (self.key, self.token) < (key, token)
    }

    #[inline]
    fn is(&self, key: u64, token: u64) -> bool {
        self.key == key && self.token == token
    }

    /// Fails a loom model, or a test, that reached a released node.
    #[inline]
    fn check(&self) {
        #[cfg(any(loom, test))]
        assert!(
            !self.poisoned.load(std::sync::atomic::Ordering::Relaxed),
            "a node was used after the collector released it"
        );
    }
}

/// A [`Hold`] of the participant slots of a node.
struct Slots;

impl Hold for Slots {
    type Of<T: ?Sized + 'static> = UnsafeCell<Option<StdArc<T>>>;
}

/// A [`Hold`] of each side's presence bit.
struct Bits;

impl Hold for Bits {
    type Of<T: ?Sized + 'static> = usize;
}

const SIDES: Pair<Bits> = Pair {
    producer: slot::PRODUCER,
    consumer: slot::CONSUMER,
};

/// The presence bit of `R`'s side.
#[inline]
pub(crate) fn bit<R: Role>() -> usize {
    *R::mine(&SIDES)
}

/// One token in the table: its link in the list, its state word and its participant slots.
#[repr(C)]
pub(crate) struct Node {
    /// First, so that a pointer to the link is a pointer to the node.
    link: Link,
    word: Word,
    slots: Pair<Slots>,
}

impl Node {
    /// The token's state word.
    #[inline]
    pub(crate) fn word(&self) -> &Word {
        self.link.check();
        &self.word
    }

    /// A clone of `R`'s participant, if that side is present: the word admits this thread as a
    /// reader of the slot for the clone.
    #[inline]
    pub(crate) fn read<R: Role>(&self) -> Option<StdArc<R::Me>> {
        if !self.word().enter(bit::<R>()) {
            return None;
        }
        // Safety: admitted as a reader, the slot is not written until this thread leaves
        // (invariant 4 of `slot.rs`), and it holds the participant (invariant 3).
        let participant = R::mine(&self.slots).with(|slot| unsafe { (*slot).clone() });
        self.word.leave();
        debug_assert!(participant.is_some(), "a present side with an empty slot");
        participant
    }
}

// Safety: the slots are read and written only as the node's word allows (invariants 3 and 4
// of `slot.rs`: one writer, the lock holder, and readers that only clone), and they hold
// participants, which are `Send + Sync`; everything else in a node is atomic.
unsafe impl Send for Node {}
// Safety: as above.
unsafe impl Sync for Node {}

/// A node reached from the list by a thread pinned for `'g`.
#[derive(Clone, Copy)]
pub(crate) struct Pinned<'g> {
    node: &'g Node,
}

impl<'g> Pinned<'g> {
    /// The node, valid while pinned.
    #[inline]
    pub(crate) fn node(self) -> &'g Node {
        self.node
    }

    /// Takes the token's lock if it is free and the node not retired: the node then stays
    /// in the table, and so alive, until the lock is released, with no count and no pin.
    #[inline]
    pub(crate) fn try_lock(self) -> Option<Found> {
        let word = self.node.word();
        if !word.try_lock() {
            return None;
        }
        if word.is_retired() {
            word.unlock(0);
            return None;
        }
        Some(Found {
            node: NonNull::from(self.node),
            state: Cell::new(HELD),
        })
    }

    /// A counted reference to the node, to wait for its lock unpinned.
    pub(crate) fn counted(self) -> Found {
        let node: *const Node = self.node;
        // Safety: the node was reached from the list while pinned, so the list's count of it
        // is not released yet (T1): its strong count is at least one, and it came from
        // `Arc::into_raw` (in `get_or_insert`), as `increment_strong_count` requires. The
        // count taken is the `Found`'s, given back when it drops.
        unsafe { Arc::increment_strong_count(node) };
        Found {
            node: NonNull::from(self.node),
            state: Cell::new(COUNTED),
        }
    }
}

/// A token's node found by a writer: with its lock already held (taken while pinned), or
/// with a count that keeps it alive while the writer waits for the lock.
///
/// Two words (the node and its state), so that it is passed in registers.
pub(crate) struct Found {
    node: NonNull<Node>,
    /// [`HELD`], [`HANDED`] or [`COUNTED`].
    state: Cell<u8>,
}

/// The lock was taken while pinned, and not handed to a [`Locked`] yet.
const HELD: u8 = 0;
/// The lock taken while pinned was handed to a [`Locked`].
const HANDED: u8 = 1;
/// The `Found` owns one strong count of the node (the lock was not taken while pinned).
const COUNTED: u8 = 2;

impl Found {
    #[inline]
    fn node(&self) -> &Node {
        // Safety: either the `Found`'s count keeps the node alive (`COUNTED`), or this thread
        // holds its lock (`HELD`, or a `Locked` borrowing `self`) and it is not retired, so it
        // stays in the list (invariant 2 of `slot.rs`) and the list's count keeps it (T1).
        unsafe { self.node.as_ref() }
    }

    /// The token's lock: handed over if already held, else waited for (`wait`) or only tried
    /// (`None` if busy). The node may have been retired meanwhile: see [`Locked::is_retired`].
    #[inline]
    pub(crate) fn lock(&self, wait: impl FnOnce() -> bool) -> Option<Locked<'_>> {
        if self.state.get() == HELD {
            self.state.set(HANDED);
        } else {
            let word = self.node().word();
            if wait() {
                word.lock();
            } else if !word.try_lock() {
                return None;
            }
        }
        Some(Locked {
            node: self.node(),
            publish: 0,
        })
    }
}

impl Drop for Found {
    fn drop(&mut self) {
        match self.state.get() {
            HELD => self.node().word().unlock(0),
            // Safety: the count taken in `Pinned::counted`, given back once.
            COUNTED => drop(unsafe { Arc::from_raw(self.node.as_ptr().cast_const()) }),
            _ => {}
        }
    }
}

/// A token's lock, held: its participants to read and change. Dropping it releases the lock
/// and publishes what [`Locked::store`] stored.
pub(crate) struct Locked<'n> {
    node: &'n Node,
    /// Presence bits stored under the lock, set when it is released.
    publish: usize,
}

impl Locked<'_> {
    /// Whether the node was retired before this thread locked it: start over.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.node.word.is_retired()
    }

    /// Whether `R`'s side is taken.
    #[inline]
    pub(crate) fn is_taken<R: Role>(&self) -> bool {
        (self.node.word.present() | self.publish) & bit::<R>() != 0
    }

    /// Calls `f` with `R`'s participant and its partner, as registered.
    #[inline]
    pub(crate) fn look<R: Role, T>(
        &self,
        f: impl FnOnce(Option<&R::Me>, Option<&R::Partner>) -> T,
    ) -> T {
        let (mine, partner) = R::split(&self.node.slots);
        mine.with(|mine| {
            partner.with(|partner| {
                // Safety: only the lock holder writes a slot (invariant 3 of `slot.rs`), and
                // this thread is it: nothing writes them during `f`, and readers only read.
                unsafe { f((*mine).as_deref(), (*partner).as_deref()) }
            })
        })
    }

    /// Stores `me` on `R`'s side, free: readers see it once the lock is released.
    #[inline]
    pub(crate) fn store<R: Role>(&mut self, me: StdArc<R::Me>) {
        debug_assert!(!self.is_taken::<R>(), "store on a taken side");
        // Safety: the lock is held and the side's bit is clear, so no reader is admitted to
        // this slot (invariant 4 of `slot.rs`) and no one else writes it (invariant 3).
        R::mine(&self.node.slots).with_mut(|slot| unsafe { *slot = Some(me) });
        self.publish |= bit::<R>();
    }

    /// Takes `R`'s participant out, after calling `f` with it and its partner while readers
    /// still see it; `None` if that side is empty.
    #[inline]
    pub(crate) fn take<R: Role, T>(
        &mut self,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(StdArc<R::Me>, T)> {
        debug_assert!(self.publish == 0, "take after store under one lock");
        if !self.is_taken::<R>() {
            return None;
        }
        let done = self.look::<R, _>(|me, partner| f(me.expect("a present side"), partner));
        self.node.word.withdraw(bit::<R>());
        // Safety: the lock is held, the side's bit is clear and its readers have left
        // (`withdraw`): no one else touches the slot (invariants 3 and 4 of `slot.rs`).
        let me = R::mine(&self.node.slots).with_mut(|slot| unsafe { (*slot).take() });
        Some((me.expect("a present side"), done))
    }
}

impl Drop for Locked<'_> {
    #[inline]
    fn drop(&mut self) {
        self.node.word.unlock(self.publish);
    }
}

/// What [`Table::get_or_insert`] did.
pub(crate) enum Entry<T> {
    /// The token had no node: one holding the new participant was inserted.
    Inserted,
    /// The token has a node: what `present` said of it, and the participant `make` made,
    /// if it was called (another thread inserted the token first), handed back.
    Present(T, Option<Pair<Strong>>),
}

/// A lock-free, growing map from token to [`Node`]. See the [module documentation](self).
pub(crate) struct Table {
    hasher: TokenHash,
    /// Bucket 0's sentinel, the head of the list.
    head: NonNull<Link>,
    /// Segment pointers, null until first used (see [`SEGMENTS`]); a segment is an array of
    /// [`Bucket`]s.
    directory: Box<[AtomicPtr<Bucket>]>,
    /// The table has `1 << bits` buckets.
    bits: AtomicUsize,
    /// Nodes in the list (live or empty, not yet unlinked): the load the buckets carry.
    nodes: AtomicUsize,
    collector: epoch::Collector,
}

// Safety: the raw `head` is owned by the table, like the links it leads to; they are shared
// between threads only through atomics, as the invariants above describe.
unsafe impl Send for Table {}
// Safety: as above.
unsafe impl Sync for Table {}

impl Table {
    /// An empty table with buckets enough for `capacity` tokens at its load factor; it grows
    /// past that as needed.
    pub(crate) fn with_capacity(capacity: usize) -> Table {
        Table::with_collector(capacity, epoch::Collector::new())
    }

    /// Under test: a table whose collector poisons and keeps the nodes it releases.
    #[cfg(all(test, not(loom)))]
    fn quarantined() -> Table {
        Table::with_collector(0, epoch::Collector::quarantining())
    }

    fn with_collector(capacity: usize, collector: epoch::Collector) -> Table {
        let wanted = (capacity / LOAD)
            .checked_next_power_of_two()
            .map_or(MAX_BITS, |n| n.trailing_zeros() as usize);
        let mut table = Table {
            hasher: TokenHash::new(),
            head: NonNull::dangling(),
            directory: (0..SEGMENTS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            bits: AtomicUsize::new(wanted.clamp(INITIAL_BITS, MAX_BITS)),
            nodes: AtomicUsize::new(0),
            collector,
        };
        // Bucket 0's sentinel is the list: in it from the start.
        let zero = table.bucket(0, true).expect("allocated on demand");
        zero.state.store(READY, Ordering::Release);
        let head = NonNull::from(&zero.link);
        table.head = head;
        table
    }

    /// Calls `f` with the token's node, or `None`. The node is pinned only for the duration
    /// of `f`: `f` must not block.
    #[inline]
    pub(crate) fn read<T>(&self, token: Token, f: impl FnOnce(Option<&Node>) -> T) -> T {
        let guard = self.collector.pin();
        f(self.find(token, &guard).map(Pinned::node))
    }

    /// Calls `f` with the token's node, pinned, or returns `None` if the token has none.
    #[inline]
    pub(crate) fn get<T>(&self, token: Token, f: impl FnOnce(Pinned<'_>) -> T) -> Option<T> {
        let guard = self.collector.pin();
        self.find(token, &guard).map(f)
    }

    /// Calls `present` with the token's node, pinned; or, if the token has none, inserts a
    /// new node holding the participants `make` returns (at least one). No allocation when
    /// the token is present at first look. If another thread inserts the token between the
    /// look and the insert, `present` gets its node and the participants are handed back.
    pub(crate) fn get_or_insert<T>(
        &self,
        token: Token,
        make: impl FnOnce() -> Pair<Strong>,
        present: impl FnOnce(Pinned<'_>) -> T,
    ) -> Entry<T> {
        let guard = self.collector.pin();
        if let Some(node) = self.find(token, &guard) {
            return Entry::Present(present(node), None);
        }
        let hash = self.hasher.hash(token);
        let (key, token) = (node_key(hash), token.get());
        let pair = make();
        let bits = (usize::from(pair.producer.is_some()) * slot::PRODUCER)
            | (usize::from(pair.consumer.is_some()) * slot::CONSUMER);
        debug_assert!(bits != 0, "a node is inserted with a participant");
        let new = Arc::into_raw(Arc::new(Node {
            link: Link::new(key, token),
            word: Word::new(bits),
            slots: Pair {
                producer: UnsafeCell::new(pair.producer),
                consumer: UnsafeCell::new(pair.consumer),
            },
        }))
        .cast_mut();
        let start = self.start_init(self.bucket_of(hash), &guard);
        loop {
            let (prev, curr) = self.search(start, key, token, true, &guard);
            // Safety: `curr`, when not null, was reached while pinned (T1).
            if let Some(link) = unsafe { curr.as_ref() }.filter(|link| link.is(key, token)) {
                // Another thread inserted the token first. Ours was never published, so this
                // is its only count: take the participants back out of it.
                // Safety: `new` came from `Arc::into_raw` above and was never shared.
                let ours = unsafe { Arc::from_raw(new) };
                let Ok(ours) = Arc::try_unwrap(ours) else {
                    unreachable!("an unpublished node has one owner")
                };
                let Node { slots, .. } = ours;
                let pair = Pair {
                    producer: slots.producer.into_inner(),
                    consumer: slots.consumer.into_inner(),
                };
                // Safety: a link with a nonzero token is a node's, the first field of the
                // `repr(C)` node.
                let node = unsafe { &*ptr::from_ref(link).cast::<Node>() };
                return Entry::Present(present(Pinned { node }), Some(pair));
            }
            // Safety: `new` is ours alone until the compare-and-swap below publishes it.
            unsafe { (*new).link.next.store(curr, Ordering::Relaxed) };
            if prev
                .compare_exchange(curr, new.cast(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.grow_for(self.nodes.fetch_add(1, Ordering::Relaxed) + 1);
                return Entry::Inserted;
            }
        }
    }

    /// The nodes in the list, live or empty.
    pub(crate) fn len(&self) -> usize {
        self.nodes.load(Ordering::Relaxed)
    }

    /// Removes every empty, unlocked node, as inserts do for the nodes they walk past, then
    /// releases what no other thread's pin holds back.
    pub(crate) fn sweep(&self) {
        {
            let guard = self.collector.pin();
            // Safety: the head is a sentinel, alive as long as the table.
            let head = unsafe { self.head.as_ref() };
            self.search(head, u64::MAX, u64::MAX, true, &guard);
        }
        #[cfg(not(loom))]
        self.collector.collect();
    }

    /// Doubles the buckets if `nodes` outgrew them: one compare-and-swap, nothing moves.
    #[inline]
    fn grow_for(&self, nodes: usize) {
        let bits = self.bits.load(Ordering::Relaxed);
        if bits < MAX_BITS && nodes > LOAD << bits {
            // A lost race means another thread grew it.
            let _ =
                self.bits
                    .compare_exchange(bits, bits + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The bucket of `hash` at the current size.
    #[inline]
    fn bucket_of(&self, hash: u64) -> usize {
        let bits = self.bits.load(Ordering::Relaxed);
        (hash as usize) & ((1usize << bits) - 1)
    }

    /// Bucket `b`'s entry, allocating its segment if `allocate`; `None` if the segment was
    /// never allocated (so the bucket is uninitialized).
    #[inline]
    fn bucket(&self, b: usize, allocate: bool) -> Option<&Bucket> {
        let (segment, offset, len) = match b {
            0 => (0, 0, 1),
            _ => {
                let s = (usize::BITS - b.leading_zeros()) as usize;
                (s, b ^ (1 << (s - 1)), 1 << (s - 1))
            }
        };
        let entry = &self.directory[segment];
        let mut buckets = entry.load(Ordering::Acquire);
        if buckets.is_null() {
            if !allocate {
                return None;
            }
            // The first bucket of the segment: `b` less its offset.
            let first = b - offset;
            let new: Box<[Bucket]> = (0..len)
                .map(|i| Bucket {
                    link: Link::new(((first + i) as u64).reverse_bits(), 0),
                    state: AtomicUsize::new(UNINIT),
                })
                .collect();
            let new = Box::into_raw(new).cast::<Bucket>();
            buckets = match entry.compare_exchange(
                ptr::null_mut(),
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => new,
                Err(winner) => {
                    // Safety: `new` lost the race and was never shared; it is the slice of
                    // `len` buckets made above.
                    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(new, len)) });
                    winner
                }
            };
        }
        // Safety: a published segment holds `len` buckets and is freed only when the table
        // is dropped; `&self` keeps the table alive for the returned borrow.
        Some(unsafe { &*buckets.add(offset) })
    }

    /// The sentinel to start a walk for bucket `b` from: its own if initialized, else its
    /// nearest initialized ancestor's (which precedes it in the list). Allocates nothing.
    #[inline]
    fn start<'g>(&'g self, mut b: usize, _guard: &'g epoch::Guard<'_>) -> &'g Link {
        loop {
            if let Some(bucket) = self.bucket(b, false) {
                if bucket.state.load(Ordering::Acquire) == READY {
                    return &bucket.link;
                }
            }
            b = parent(b);
        }
    }

    /// Bucket `b`'s sentinel, inserting it (after its parent's, initialized first) if the
    /// bucket is not initialized yet; while another writer is inserting it, the parent's
    /// sentinel, which precedes it in the list, so that no writer waits for another.
    fn start_init<'g>(&'g self, b: usize, guard: &'g epoch::Guard<'_>) -> &'g Link {
        let bucket = self.bucket(b, true).expect("allocated on demand");
        if bucket.state.load(Ordering::Acquire) == READY {
            return &bucket.link;
        }
        let parent = self.start_init(parent(b), guard);
        if bucket
            .state
            .compare_exchange(UNINIT, CLAIMED, Ordering::Acquire, Ordering::Acquire)
            .is_err()
        {
            // Claimed by another writer, which may have finished since.
            return if bucket.state.load(Ordering::Acquire) == READY {
                &bucket.link
            } else {
                parent
            };
        }
        let (key, new) = (bucket.link.key, ptr::from_ref(&bucket.link).cast_mut());
        loop {
            let (prev, curr) = self.search(parent, key, 0, false, guard);
            // Only the claiming writer inserts a bucket's sentinel, once (T4).
            // Safety: `curr`, when not null, was reached while pinned (T1).
            debug_assert!(!unsafe { curr.as_ref() }.is_some_and(|link| link.is(key, 0)));
            bucket.link.next.store(curr, Ordering::Relaxed);
            if prev
                .compare_exchange(curr, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
        }
        bucket.state.store(READY, Ordering::Release);
        &bucket.link
    }

    /// The token's node, if the list has it unmarked. Read-only: it follows marked nodes'
    /// frozen `next` pointers (T2) rather than unlinking them.
    #[inline]
    fn find<'g>(&'g self, token: Token, guard: &'g epoch::Guard<'_>) -> Option<Pinned<'g>> {
        let hash = self.hasher.hash(token);
        let (key, token) = (node_key(hash), token.get());
        let mut curr = self
            .start(self.bucket_of(hash), guard)
            .next
            .load(Ordering::Acquire);
        loop {
            // Safety: reached from the list while pinned (T1).
            let link = unsafe { curr.as_ref() }?;
            link.check();
            let next = link.next.load(Ordering::Acquire);
            if !link.before(key, token) {
                if !link.is(key, token) || is_marked(next) {
                    return None;
                }
                // Safety: a link with a nonzero token is a node's, the first field of the
                // `repr(C)` node, and lives as long as the link.
                let node = unsafe { &*ptr::from_ref(link).cast::<Node>() };
                return Some(Pinned { node });
            }
            curr = unmarked(next);
        }
    }

    /// Harris–Michael search from the sentinel `start`: the link to change for (key, token)
    /// and the first unmarked link at or after it (null at the end), unlinking and retiring
    /// the marked nodes on the way; with `reclaim`, also claiming and removing the empty,
    /// unlocked nodes it passes.
    fn search<'g>(
        &'g self,
        start: &'g Link,
        key: u64,
        token: u64,
        reclaim: bool,
        guard: &'g epoch::Guard<'_>,
    ) -> (&'g AtomicPtr<Link>, *mut Link) {
        'retry: loop {
            let mut prev = &start.next;
            let mut curr = prev.load(Ordering::Acquire);
            loop {
                // Safety: reached from the list while pinned (T1).
                let Some(link) = (unsafe { curr.as_ref() }) else {
                    return (prev, curr);
                };
                link.check();
                let next = link.next.load(Ordering::Acquire);
                if is_marked(next) {
                    // Unlink the removed node; if `prev` changed, start over.
                    if prev
                        .compare_exchange(curr, unmarked(next), Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        continue 'retry;
                    }
                    self.nodes.fetch_sub(1, Ordering::Relaxed);
                    // Safety: this compare-and-swap unlinked the node (T2, T3: only nodes are
                    // marked): no new traversal can reach it, the pinned ones are waited for,
                    // and no one else retires it.
                    unsafe { guard.defer(curr.cast()) };
                    curr = unmarked(next);
                    continue;
                }
                if !link.before(key, token) {
                    return (prev, curr);
                }
                if reclaim && link.token != 0 {
                    // Safety: a link with a nonzero token is a node's (see `find`).
                    let node = unsafe { &*ptr::from_ref(link).cast::<Node>() };
                    if node.word.retire_if_empty() {
                        // Claimed: mark it (T3), release its lock, and unlink it on the next
                        // round of this loop.
                        mark(&link.next);
                        node.word.unlock(0);
                        continue;
                    }
                }
                prev = &link.next;
                curr = next;
            }
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        let mut curr = self.head.as_ptr();
        while !curr.is_null() {
            // Safety: `&mut self`: no other thread uses the table. Every node still in the
            // list (marked or not) is freed here and nowhere else: it holds the list's count
            // (unlinked nodes are not in the list: their count is with the collector). A
            // sentinel (token 0) lives in its directory segment, freed below.
            unsafe {
                let next = unmarked((*curr).next.load(Ordering::Acquire));
                if (*curr).token != 0 {
                    drop(Arc::from_raw(curr.cast_const().cast::<Node>()));
                }
                curr = next;
            }
        }
        for (s, segment) in self.directory.iter().enumerate() {
            let buckets = segment.load(Ordering::Acquire);
            if !buckets.is_null() {
                let len = if s == 0 { 1 } else { 1 << (s - 1) };
                // Safety: allocated in `bucket` as a slice of `len` buckets, freed only here,
                // after the walk above that read their sentinels.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(buckets, len)) });
            }
        }
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("buckets", &(1usize << self.bits.load(Ordering::Relaxed)))
            .field("nodes", &self.nodes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The split-order key of a node whose token hashes to `hash`: odd, so that it sorts after
/// its bucket's sentinel.
#[inline]
fn node_key(hash: u64) -> u64 {
    hash.reverse_bits() | 1
}

/// The bucket `b` splits from: `b` without its highest bit.
#[inline]
fn parent(b: usize) -> usize {
    debug_assert!(b != 0, "bucket 0 has no parent");
    b & !(1 << (usize::BITS - 1 - b.leading_zeros()))
}

/// Marks the node whose `next` this is as removed (T2, T3).
fn mark(next: &AtomicPtr<Link>) {
    let mut curr = next.load(Ordering::Acquire);
    while let Err(now) =
        next.compare_exchange(curr, marked(curr), Ordering::AcqRel, Ordering::Acquire)
    {
        curr = now;
    }
}

fn is_marked(ptr: *mut Link) -> bool {
    ptr.addr() & 1 == 1
}

fn marked(ptr: *mut Link) -> *mut Link {
    ptr.map_addr(|addr| addr | 1)
}

fn unmarked(ptr: *mut Link) -> *mut Link {
    ptr.map_addr(|addr| addr & !1)
}

/// Releases the list's count of an unlinked node.
///
/// # Safety
/// Once per node, after every thread that could have reached it has unpinned.
#[cfg(not(loom))]
pub(super) unsafe fn release(node: *mut Node) {
    // Safety: the list's count, from `Arc::into_raw` in `get_or_insert` (caller's contract).
    drop(unsafe { Arc::from_raw(node.cast_const()) });
}

/// Under test, what a quarantining collector does instead of [`release`]: the list's count of
/// the node, poisoned if it is the last one (a later read through the list then fails
/// [`Link::check`]); `None` if another count is left, which keeps the node alive.
///
/// # Safety
/// As [`release`].
#[cfg(all(test, not(loom)))]
pub(super) unsafe fn poison(node: *mut Node) -> Option<Arc<Node>> {
    // Safety: as in `release`.
    let node = unsafe { Arc::from_raw(node.cast_const()) };
    if Arc::strong_count(&node) > 1 {
        return None;
    }
    node.link
        .poisoned
        .store(true, std::sync::atomic::Ordering::Relaxed);
    Some(node)
}

/// Under loom: a collector with the contract of an epoch scheme, modelled. Each pin records
/// the epoch it starts in; each retired node the epoch it was retired in, after which the
/// epoch advances; a retired node is released once no guard pinned at or before its epoch is
/// alive, checked at every unpin and every retire. A release that gives up a node's last
/// count poisons the node and keeps it until the collector drops: a read through a stale
/// pointer then fails the model (`Link::check`) instead of reading freed memory.
#[cfg(loom)]
mod epoch {
    use std::sync::Mutex;

    use loom::sync::atomic::{Ordering, fence};

    use super::{Arc, Node};

    #[derive(Default)]
    struct State {
        epoch: u64,
        next_id: u64,
        /// Live guards: (id, epoch pinned in).
        pins: Vec<(u64, u64)>,
        /// Retired nodes (as addresses) with the epoch they were retired in.
        retired: Vec<(u64, usize)>,
        /// Released nodes, poisoned.
        quarantine: Vec<Arc<Node>>,
    }

    /// The table's collector. A std mutex, never held across a loom operation, so loom
    /// never switches threads inside it.
    pub(super) struct Collector(Mutex<State>);

    pub(super) struct Guard<'a> {
        collector: &'a Collector,
        id: u64,
    }

    impl Collector {
        pub(super) fn new() -> Collector {
            Collector(Mutex::new(State::default()))
        }

        /// Registers a guard, then a `SeqCst` fence, as a real pin stores its epoch and
        /// fences: if the fence of a retire (below) comes first, this thread's loads see the
        /// unlink that preceded it; if this one comes first, the retire sees this pin.
        pub(super) fn pin(&self) -> Guard<'_> {
            let id = {
                let mut state = self.0.lock().unwrap();
                let id = state.next_id;
                state.next_id += 1;
                let epoch = state.epoch;
                state.pins.push((id, epoch));
                id
            };
            fence(Ordering::SeqCst);
            Guard {
                collector: self,
                id,
            }
        }

        /// Releases what no live guard can still reach.
        fn collect(&self) {
            let ready: Vec<usize> = {
                let mut state = self.0.lock().unwrap();
                let oldest = state.pins.iter().map(|&(_, e)| e).min();
                let (ready, kept) = std::mem::take(&mut state.retired)
                    .into_iter()
                    .partition(|&(e, _)| oldest.is_none_or(|oldest| e < oldest));
                state.retired = kept;
                ready.into_iter().map(|(_, node)| node).collect()
            };
            for node in ready {
                // Safety: the list's count of a node retired once, from `Arc::into_raw` in
                // `get_or_insert`, and no guard pinned before its retirement is alive.
                let node = unsafe { Arc::from_raw(node as *const Node) };
                if Arc::strong_count(&node) == 1 {
                    node.link
                        .poisoned
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    self.0.lock().unwrap().quarantine.push(node);
                } else {
                    drop(node);
                }
            }
        }
    }

    impl Guard<'_> {
        /// # Safety
        /// As the real `defer`.
        pub(super) unsafe fn defer(&self, node: *mut Node) {
            // The retire's fence, after the unlink (see `pin`).
            fence(Ordering::SeqCst);
            {
                let mut state = self.collector.0.lock().unwrap();
                let epoch = state.epoch;
                state.retired.push((epoch, node as usize));
                state.epoch += 1;
            }
            self.collector.collect();
        }
    }

    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.collector
                .0
                .lock()
                .unwrap()
                .pins
                .retain(|&(id, _)| id != self.id);
            self.collector.collect();
        }
    }

    impl Drop for Collector {
        fn drop(&mut self) {
            // No guard is alive: release everything, then drop the poisoned nodes too.
            self.collect();
            let quarantine = std::mem::take(&mut self.0.get_mut().unwrap().quarantine);
            drop(quarantine);
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
    use bypass_registry::pair::ProducerRole;

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
        let bits = |t: &Table| t.bits.load(Ordering::Relaxed);
        assert_eq!(bits(&Table::with_capacity(0)), INITIAL_BITS);
        assert_eq!(bits(&Table::with_capacity(100_000)), 16);
        assert_eq!(bits(&Table::with_capacity(usize::MAX)), MAX_BITS);
        assert_eq!(parent(1), 0);
        assert_eq!(parent(6), 2);
        assert_eq!(parent(13), 5);
    }

    /// Inserts `t` with a producer; whether it was absent.
    fn insert(table: &Table, t: Token) -> bool {
        matches!(table.get_or_insert(t, with_marker, |_| ()), Entry::Inserted)
    }

    /// Takes the producer of `t` out (leaving its node empty); whether there was one.
    fn take(table: &Table, t: Token) -> bool {
        let Some(found) = table.get(t, |pinned| pinned.counted()) else {
            return false;
        };
        let mut locked = found.lock(|| true).expect("waited for");
        !locked.is_retired() && locked.take::<ProducerRole, _>(|_, _| ()).is_some()
    }

    fn present(table: &Table, t: Token) -> bool {
        table.read(t, |node| {
            node.is_some_and(|node| node.word().present() != 0)
        })
    }

    /// The list, walked from its head: sorted by (key, token) with no duplicate, and the
    /// number of unmarked nodes in it.
    fn check_list(table: &Table) -> usize {
        let guard = table.collector.pin();
        let mut curr = table.head.as_ptr();
        let mut last = None;
        let mut nodes = 0;
        while !curr.is_null() {
            // Safety: reached from the list while pinned.
            let link = unsafe { &*curr };
            let next = link.next.load(Ordering::Acquire);
            if !is_marked(next) {
                assert!(
                    last < Some((link.key, link.token)),
                    "out of order or duplicated"
                );
                last = Some((link.key, link.token));
                nodes += usize::from(link.token != 0);
            }
            curr = unmarked(next);
        }
        drop(guard);
        nodes
    }

    #[test]
    fn grows_and_finds_through_growth() {
        // 200,000 tokens from 16 buckets: the table doubles its buckets 14 times while they
        // are inserted; every token stays findable, and emptied nodes are swept.
        let table = Table::with_capacity(0);
        let mut tokens: Vec<Token> = (1..=200_000u64).map(|i| Token::new(i).unwrap()).collect();
        for &t in &tokens {
            assert!(insert(&table, t));
        }
        assert!(table.bits.load(Ordering::Relaxed) >= 16);
        for &t in &tokens {
            assert!(!insert(&table, t), "token {t} inserted twice");
            assert!(present(&table, t));
        }
        tokens.reverse();
        for &t in tokens.iter().step_by(2) {
            assert!(take(&table, t));
            assert!(!take(&table, t));
        }
        assert_eq!(
            check_list(&table),
            200_000,
            "emptied nodes stay until swept"
        );
        table.sweep();
        assert_eq!(check_list(&table), 100_000);
        for (i, &t) in tokens.iter().enumerate() {
            assert_eq!(present(&table, t), i % 2 == 1, "token {t}");
        }
    }

    /// Tokens inserted, emptied, swept and read from four threads at once, with real epoch
    /// reclamation, through the table's growth: the list stays sorted with each token at
    /// most once, and lookups agree with what the threads last did.
    #[test]
    fn churn_under_contention() {
        use std::sync::atomic::AtomicBool;

        let table = Table::with_capacity(0);
        let tokens: Vec<Token> = (1..=96).map(|i| Token::new(i).unwrap()).collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..3u64)
                .map(|w| {
                    let (table, tokens) = (&table, &tokens);
                    s.spawn(move || {
                        let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ w;
                        for i in 0..60_000 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let t = tokens[(x % tokens.len() as u64) as usize];
                            if x & (1 << 40) == 0 {
                                if let Entry::Present((), None) =
                                    table.get_or_insert(t, with_marker, |_| ())
                                {
                                    // Present: refill it if it is empty.
                                    if let Some(found) = table.get(t, |p| p.counted()) {
                                        let mut locked = found.lock(|| true).unwrap();
                                        if !locked.is_retired()
                                            && !locked.is_taken::<ProducerRole>()
                                        {
                                            locked.store::<ProducerRole>(marker());
                                        }
                                    }
                                }
                            } else {
                                take(table, t);
                            }
                            if i % 1_000 == 0 {
                                table.sweep();
                            }
                        }
                    })
                })
                .collect();
            let reader = s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    for &t in &tokens {
                        table.read(t, |node| {
                            if let Some(node) = node {
                                let p = node.read::<ProducerRole>();
                                assert!(p.is_none() || node.link.token == t.get());
                            }
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
        check_list(&table);
        for &t in &tokens {
            let was = present(&table, t);
            let inserted = insert(&table, t);
            assert!(!(was && inserted), "token {t}: present, yet inserted again");
        }
    }

    /// A reader in the middle of a lookup keeps the node it reached while another thread
    /// empties it, sweeps it out of the table and collects: the reader touches the node after
    /// the writer is done. With a quarantining collector, a node released too early is
    /// poisoned and the reader's check fails, every run; with a freeing one, it is an invalid
    /// read under valgrind (`.ci/valgrind`), every run.
    #[test]
    fn a_pinned_reader_keeps_what_it_reached() {
        a_pinned_reader_keeps_what_it_reached_in(Table::quarantined());
        a_pinned_reader_keeps_what_it_reached_in(Table::with_capacity(0));
    }

    fn a_pinned_reader_keeps_what_it_reached_in(table: Table) {
        use std::sync::mpsc;

        let t = Token::new(7).unwrap();
        assert!(insert(&table, t));
        let (reached, wait_reached) = mpsc::channel();
        let (go, wait_go) = mpsc::channel();
        std::thread::scope(|s| {
            let table = &table;
            let reader = s.spawn(move || {
                table.get(t, |pinned| {
                    reached.send(()).unwrap();
                    wait_go.recv().unwrap();
                    // Removed meanwhile, yet still readable: its link and its word.
                    let node = pinned.node();
                    (
                        node.link.token,
                        node.word().present(),
                        node.read::<ProducerRole>().is_none(),
                    )
                })
            });
            wait_reached.recv().unwrap();
            assert!(take(table, t));
            table.sweep();
            assert!(table.get(t, |_| ()).is_none(), "swept");
            for _ in 0..4 {
                table.collector.collect();
            }
            go.send(()).unwrap();
            let seen = reader.join().unwrap().expect("the reader found the node");
            assert_eq!(seen, (t.get(), 0, true));
        });
        assert!(!present(&table, t));
    }

    /// Readers walk the list and linger on the nodes they reach, while writers empty tokens,
    /// sweep them out and collect, over and over: the collector poisons what it releases
    /// instead of freeing it, so a reader that reaches a node its pin did not protect fails a
    /// check (`Link::check`, on every link walked and on a node's word), in any build and on
    /// this hardware's own reordering (valgrind runs one thread at a time).
    #[test]
    fn readers_never_reach_what_was_released() {
        use std::sync::atomic::AtomicBool;

        let table = Table::quarantined();
        let tokens: Vec<Token> = (1..=32).map(|i| Token::new(i).unwrap()).collect();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..2u64)
                .map(|w| {
                    let (table, tokens) = (&table, &tokens);
                    s.spawn(move || {
                        let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ w;
                        for i in 0..20_000 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let t = tokens[(x % tokens.len() as u64) as usize];
                            if x & (1 << 40) == 0 {
                                insert(table, t);
                            } else {
                                take(table, t);
                            }
                            if i % 16 == 0 {
                                table.sweep();
                            }
                        }
                    })
                })
                .collect();
            let readers: Vec<_> = (0..2u64)
                .map(|r| {
                    let (table, tokens, done) = (&table, &tokens, &done);
                    s.spawn(move || {
                        let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ r;
                        while !done.load(Ordering::Relaxed) {
                            for &t in tokens {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                table.get(t, |pinned| {
                                    for _ in 0..x % 256 {
                                        std::hint::spin_loop();
                                    }
                                    pinned.node().word().present()
                                });
                            }
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            done.store(true, Ordering::Relaxed);
            for reader in readers {
                reader.join().unwrap();
            }
        });
        check_list(&table);
    }

    /// The fallback for systems without `membarrier`: this module's concurrent tests again, in
    /// a child process whose pins and collections use `SeqCst` fences.
    #[test]
    fn fenced_pins_pass_the_same_tests() {
        use super::epoch::tests::FENCED_ENV;

        if std::env::var_os(FENCED_ENV).is_some() {
            return; // the child
        }
        let tests = [
            "lockfree::epoch::tests::membarrier_is_used_unless_told_not_to",
            "lockfree::table::tests::a_pinned_reader_keeps_what_it_reached",
            "lockfree::table::tests::churn_under_contention",
            "lockfree::table::tests::readers_never_reach_what_was_released",
        ];
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "--test-threads=1"])
            .args(tests)
            .env(FENCED_ENV, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A use after free can leave the list in a cycle: fail rather than hang. The child
        // takes a second or two (far more under valgrind, which does not follow it).
        let id = child.id();
        let (finished, watch) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let waited = watch.recv_timeout(std::time::Duration::from_secs(600));
            if waited == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &id.to_string()])
                    .status();
            }
        });
        let out = child.wait_with_output().unwrap();
        drop(finished);
        watchdog.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let passed = format!("test result: ok. {} passed", tests.len());
        assert!(stdout.contains(&passed), "{stdout}");
    }

    fn marker() -> StdArc<dyn bypass_registry::Producer> {
        StdArc::new(Marker)
    }

    fn with_marker() -> Pair<Strong> {
        // A pair with a participant, as `get_or_insert` requires.
        Pair {
            producer: Some(marker()),
            consumer: None,
        }
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
