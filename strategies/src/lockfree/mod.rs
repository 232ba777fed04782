//! `lockfree`: a lock-free token table of its own, one lock per token held across that
//! token's callbacks only, and reads that never wait.
//!
//! # Design
//! Each token with a participant has one **node** in the **table**:
//!
//! - The **table** is a lock-free hash table written for this backend (the private module
//!   `lockfree/table.rs`): a fixed directory of bucket chunks, allocated on first use, each
//!   bucket a Harris–Michael lock-free list of nodes sorted by a seeded bijective hash of the
//!   token, with epoch reclamation (crossbeam-epoch). Looking a token up, adding one and removing
//!   one never take a lock, global or sharded, and never wait for another thread: there is no
//!   resize to wait for, and a removal leaves no tombstone behind.
//! - The **node** holds the token's **lock**, behind it the **state** (the strong references to
//!   the producer and the consumer), and an atomic pointer to an immutable **snapshot** of that
//!   state with weak references, which is all that readers touch (the private module
//!   `lockfree/slot.rs` spells out the node's life cycle and the invariants).
//!
//! Registers and unregisters of a token that has a node take its lock and hold it across the
//! token's connect or disconnect callbacks: that lock gives exactly one connect when a producer
//! and a consumer arrive together, and per-token exclusion. After the callbacks, the writer
//! publishes a new snapshot, or removes the node if the token is now empty, still under the lock.
//!
//! A register on a token with no node builds a node with the participant already in it and
//! inserts it only if the token is still absent, in one compare-and-swap, so the first
//! participant of a token takes no lock at all. Whoever loses that race (the other side of the
//! token, arriving at the same time) finds the winner's node, takes its lock and connects:
//! exactly one connect.
//!
//! When an unregister takes a token's last participant out, it marks the node retired and
//! removes it, under the node's lock. A register that found the node before and was waiting for
//! its lock then sees it retired and starts over from the table, where it finds no node (and
//! inserts a new one) or a newer one: removing an emptied node never loses a concurrent
//! register.
//!
//! Why not papaya or scc? Measured with this cycle (register a producer and a consumer,
//! unregister both) before choosing: papaya 0.2.5 leaves a tombstone per removal, and one token
//! removed and inserted over and over fills its probe sequence and forces a full-table resize
//! every few cycles (at 100,000 live keys, 37 µs per insert+remove of one key against 0.13 µs
//! in an empty map); its resizes also make writers wait for the thread copying an entry, which
//! with 1,024 threads on 2 cores stalled registrations for up to seconds. scc's `HashMap` takes
//! a bucket lock on reads, and its `HashIndex` cost twice papaya per write here.
//!
//! # What is locked, and for how long
//! - **Nothing global, nothing sharded.** The table is lock-free, the population is two atomic
//!   counters.
//! - **The token's lock**: by a register that finds the token's node (the second participant,
//!   or a duplicate that got past the lock-free check) and by every unregister that finds its
//!   participant, from just after the lookup to just after the new snapshot is published or the
//!   node removed: the callbacks of the connect or disconnect included, nothing else. A slow or
//!   preempted callback holds up the registers and unregisters of its own token and no one
//!   else's.
//! - **Reads** (`is_paired`, `producer`, `consumer`, `population`) take no lock and never wait,
//!   not even for a callback of the token they read: they see the token as it was before the
//!   call whose callbacks are running, as every read from another thread does.
//! - **Epochs**: every table operation pins the thread (crossbeam-epoch) for a few
//!   instructions; no pin is held across a callback or a lock wait, so a blocked callback never
//!   holds back the reclamation of other tokens' garbage.
//!
//! # Re-entrancy
//! A callback that calls the registry for its own token gets `reentrant` (its thread holds the
//! token's lock). For another token, a call from a callback takes that token's lock only if it
//! is free at that instant, and gets `reentrant` if not, rather than wait: two callbacks of two
//! tokens each waiting for the other's token would otherwise deadlock. A call from a callback
//! that needs no lock (a token with no node yet, a duplicate, a `not-registered`) always works.
//! Reads from a callback always work and see the registry as it was before the call whose
//! callback is running took effect: inside the connect of a token, `is_paired` is still
//! `false`; inside its disconnect, still `true`.
//!
//! # Linearization points
//! A register takes effect when its node is inserted or its snapshot published (after its
//! connect); an unregister when its snapshot is published or its node marked removed (after its
//! disconnect). A read takes effect when it loads the token's snapshot. A `duplicate` or
//! `not-registered` is decided from the snapshot as looked up (no lock), or under the token's
//! lock.
//!
//! # Memory kept alive
//! - Per token with a participant: one node (about 100 bytes: hash, list link, snapshot
//!   pointer, a parking_lot mutex, the two strong references and the `Arc` header) and one
//!   snapshot (two weak references, 32 bytes).
//! - The directory (2 KiB at the default 65,536 buckets) and each bucket chunk in use (2 KiB per
//!   256 buckets, 512 KiB when all are), kept until the registry is dropped.
//! - Garbage waiting for its epoch: removed nodes and replaced snapshots, retired in per-thread
//!   batches (crossbeam-epoch keeps up to 64 per thread before handing them to its global
//!   queue) and freed once every thread pinned at the time has unpinned. A retired snapshot or
//!   node keeps weak references to the participants it saw, which keep their *allocations* but
//!   not the participants: the registry never holds a strong reference to a participant whose
//!   unregister has returned, and the participant is dropped as soon as its owner drops it.
//!
//! # Cost per operation
//! All O(1) expected: one hash (a seeded 64-bit mixer) and a walk of one bucket's list, which
//! averages (tokens / buckets) nodes; no operation ever waits for another thread except on its
//! own token's lock.
//! - **Read**: one pin, a list walk, and for `producer`/`consumer` a weak-to-strong upgrade
//!   (one compare-and-swap on the participant's count). `population` is two atomic loads.
//! - **Register, token absent**: one pin, a list walk, two allocations (node and snapshot) and
//!   one compare-and-swap. No lock.
//! - **Register, token present** (a connect): a lookup, the token's lock, the six callbacks, a
//!   new snapshot (one allocation, one swap, the old one retired).
//! - **Unregister**: a lookup, the token's lock, the six callbacks if paired, then a new
//!   snapshot, or the node's removal (a mark and an unlink) if it was the token's last
//!   participant.
//! - Each register and unregister also updates its side's population counter, striped over
//!   cache-padded cells so that threads on different tokens do not share its line.
//! - Past a few hundred thousand tokens lists grow (the table never resizes):
//!   [`LockFree::with_capacity`] sizes the buckets for the expected population.
//!
//! Measured on 2 cores (a quiet machine; single runs, so take them as orders of magnitude): a
//! connect+disconnect cycle costs about 0.5 µs with 0, 1,000, 10,000 or 100,000 unrelated live
//! tokens alike; two threads cycling their own tokens, 1.6 million cycles a second, against 0.9
//! to 2.5 million for the same inserts and removes on raw papaya maps but 18.8 million on
//! dashmap (criterion `cycle_threads` and `floor`): two threads do not yet scale past one here,
//! and a profile puts the allocator (snapshots and nodes freed on another thread) ahead of the
//! table and the epochs as the cause; with 1,024 threads on the
//! 2 cores, registration latency p50 0.2 µs, p99 1–3 µs, p99.9 35–42 µs once the process is
//! warm (the first run of a process, while the allocator sets up its per-thread arenas, was
//! 0.1 s at p99.9). The tail comes from the allocator and from crossbeam-epoch, whose pin runs
//! a collection every 128 pins that scans every registered thread.
//!
//! # When to choose it
//! Choose it when many threads register and unregister at once (boot storms, parallel
//! restores, irqfd floods), when callbacks can be slow or preempted (a callback holds up only
//! its own token), and when lookups must stay cheap and never wait while registrations churn
//! (the delivery path). It is the backend to choose by default for a multi-threaded VMM.
//!
//! Do not choose it when registrations are rare and come from one thread: a global-mutex
//! backend ([`mutex-map`](crate::mutex_map)) is simpler to reason about, allocates less, has no
//! deferred reclamation, and lets a callback register another token without ever seeing
//! `reentrant`. Nor when a callback must be able to register or unregister *another* token that
//! may be busy at that moment: here that call gets `reentrant` instead of waiting. And it costs
//! more per uncontended cycle than [`sharded`](crate::sharded) (about 0.5 µs against 0.3 µs):
//! choose that one if a slow callback may hold up a whole shard.
//!
//! # Loom
//! The table and the slot protocol run under loom (`.ci/loom`, models in
//! `strategies/tests/loom.rs`): under `--cfg loom` the `sync` facade hands out loom's mutex,
//! `Arc` and atomics, the table has a single bucket (so every token of a model shares one list),
//! and epoch reclamation is replaced by keeping retired objects until the table is dropped,
//! since crossbeam-epoch does not run under loom. The models check the lists and the per-token
//! state machine; the timing of frees is crossbeam-epoch's.
//!
//! # Example
//! A producer and a consumer of one token registering at the same time connect exactly once,
//! and reads go on while registrations do:
//!
//! ```
//! use std::sync::{Arc, Barrier};
//! use std::thread;
//! use bypass_registry::probe::{EventLog, Probe};
//! use bypass_registry::{Registry, Token};
//! use bypass_strategies::LockFree;
//!
//! let registry = LockFree::new();
//! let log = EventLog::new();
//! let t = Token::new(7).unwrap();
//! let barrier = Barrier::new(2);
//! thread::scope(|s| {
//!     s.spawn(|| {
//!         barrier.wait();
//!         registry.register_producer(t, Arc::new(Probe::producer(7, &log))).unwrap();
//!     });
//!     barrier.wait();
//!     registry.register_consumer(t, Arc::new(Probe::consumer(7, &log))).unwrap();
//! });
//! assert!(registry.is_paired(t));
//! assert_eq!(log.take().len(), 6); // one connect: stop, stop, add, add, start, start
//!
//! let other = Token::new(8).unwrap();
//! registry.register_producer(other, Arc::new(Probe::producer(8, &log))).unwrap();
//! let _producer = registry.unregister_producer(t).unwrap();
//! assert!(!registry.is_paired(t) && registry.consumer(t).is_some());
//! assert_eq!(registry.population().producers, 1);
//! ```

mod slot;
// The backend's `unsafe` code (with the parking calls of `sync`): the lock-free table's raw
// pointers, epoch reclamation and participant slots, behind a safe API
// (`#![allow(unsafe_code)]` inside, every block with its safety argument).
mod sync;
mod table;

use std::fmt;
use std::sync::Arc as StdArc;

use bypass_registry::pair::{ConsumerRole, Pair, ProducerRole, Role, Strong};
use bypass_registry::protocol::RegistryId;
use bypass_registry::registration::{self, Lock, Pairs, Vacancy};
use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterProducerResult, Registry,
    Token, UnregisterError,
};

use self::table::{Entry, Found, Locked, Node, Table, bit};
use crate::counter::{self, Counts};

/// A registry on a lock-free token table, with one lock per token held across that token's
/// callbacks only; reads never wait for a callback. See the [module documentation](self).
pub struct LockFree {
    id: RegistryId,
    table: Table,
    /// The population, one striped counter per side: every register and unregister writes
    /// one, and threads on disjoint tokens should not share a cache line for it.
    ///
    /// Invariant: a counter is incremented before the participant it counts is published and
    /// decremented after it is unpublished, so its sum never falls below the number of
    /// published participants of its side; it exceeds it only by registrations and
    /// unregistrations in flight (and a sum read cell by cell while they are in flight may
    /// miss some of them).
    counts: Counts,
}

impl LockFree {
    /// An empty registry. Its table grows as tokens arrive.
    pub fn new() -> LockFree {
        LockFree::with_capacity(0)
    }

    /// An empty registry whose table starts with buckets for `tokens` tokens, so that it
    /// does not grow (an atomic increment each time, and the first use of each new bucket)
    /// while they arrive.
    pub fn with_capacity(tokens: usize) -> LockFree {
        LockFree {
            id: RegistryId::new(),
            table: Table::with_capacity(tokens),
            counts: counter::counts(),
        }
    }

    /// Removes the nodes of the tokens that have no participant left. Registers do it
    /// lazily for the nodes they walk past; this does it for the whole table at once (for
    /// example after a VM with thousands of tokens was torn down). Never needed for
    /// correctness, and safe to call at any time from any thread.
    pub fn reclaim_empty(&self) {
        self.table.sweep();
    }

    /// One side of the token, cloned out of its node.
    #[inline]
    fn participant<R: Role>(&self, token: Token) -> Option<StdArc<R::Me>> {
        self.table
            .read(token, |node| node.and_then(Node::read::<R>))
    }
}

impl Default for LockFree {
    fn default() -> LockFree {
        LockFree::new()
    }
}

impl fmt::Debug for LockFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFree")
            .field("id", &self.id)
            .field("table", &self.table)
            .field("population", &self.population())
            .finish()
    }
}

impl Registry for LockFree {
    fn name(&self) -> &'static str {
        "lockfree"
    }

    fn register_producer(
        &self,
        token: Token,
        producer: StdArc<dyn Producer>,
    ) -> RegisterProducerResult {
        registration::register::<ProducerRole, _>(&Writes(self), token, producer)
    }

    fn register_consumer(
        &self,
        token: Token,
        consumer: StdArc<dyn Consumer>,
    ) -> RegisterConsumerResult {
        registration::register::<ConsumerRole, _>(&Writes(self), token, consumer)
    }

    fn unregister_producer(&self, token: Token) -> Result<StdArc<dyn Producer>, UnregisterError> {
        registration::unregister::<ProducerRole, _>(&Writes(self), token)
    }

    fn unregister_consumer(&self, token: Token) -> Result<StdArc<dyn Consumer>, UnregisterError> {
        registration::unregister::<ConsumerRole, _>(&Writes(self), token)
    }

    #[inline]
    fn is_paired(&self, token: Token) -> bool {
        self.table.read(token, |node| {
            node.is_some_and(|node| node.word().present() == slot::PAIRED)
        })
    }

    fn producer(&self, token: Token) -> Option<StdArc<dyn Producer>> {
        self.participant::<ProducerRole>(token)
    }

    fn consumer(&self, token: Token) -> Option<StdArc<dyn Consumer>> {
        self.participant::<ConsumerRole>(token)
    }

    fn population(&self) -> Population {
        counter::population(&self.counts)
    }
}

/// [`LockFree`] as [`Pairs`] for [`registration`]: a token's pair is its node's slots, its
/// lock the node's state word. Private, so that only the registry's own calls reach its
/// pairs. The comments name the invariants of `slot.rs` that each step relies on.
struct Writes<'r>(&'r LockFree);

impl Writes<'_> {
    /// The node a writer found, with its lock if it was free (taken while pinned, no count),
    /// else counted, to wait for the lock unpinned.
    #[inline]
    fn found(node: table::Pinned<'_>) -> Found {
        node.try_lock().unwrap_or_else(|| node.counted())
    }
}

impl Pairs for Writes<'_> {
    type Handle = Found;
    type Guard<'h>
        = Locked<'h>
    where
        Self: 'h;

    fn id(&self) -> RegistryId {
        self.0.id
    }

    /// Lock-free first look: a duplicate is refused here, at the load of the token's word;
    /// an absent token gets a new node holding the arriving participant, inserted only if the
    /// token is still absent (invariant 1). No one has seen that node, so no lock.
    #[inline]
    fn find_for_register<R: Role>(
        &self,
        token: Token,
        arriving: &mut Option<StdArc<R::Me>>,
    ) -> Vacancy<Found> {
        let count = R::mine(&self.0.counts);
        let entry = self.0.table.get_or_insert(
            token,
            || {
                let mut pair = Pair::<Strong>::default();
                *R::mine_mut(&mut pair) = arriving.take();
                // Counted before it is published (the invariant of `counts`).
                count.increment();
                pair
            },
            |node| (node.node().word().present() & bit::<R>() == 0).then(|| Writes::found(node)),
        );
        match entry {
            Entry::Inserted => Vacancy::Inserted,
            Entry::Present(found, back) => {
                if let Some(mut pair) = back {
                    // Lost the insert to another register of the token: take it back.
                    count.decrement();
                    *arriving = R::mine_mut(&mut pair).take();
                }
                found.map_or(Vacancy::Taken, Vacancy::At)
            }
        }
    }

    /// Lock-free first look: nothing on this side is `not-registered`, at that instant.
    #[inline]
    fn find_for_unregister<R: Role>(&self, token: Token) -> Option<Found> {
        self.0
            .table
            .get(token, |node| {
                (node.node().word().present() & bit::<R>() != 0).then(|| Writes::found(node))
            })
            .flatten()
    }

    /// From inside a callback of this registry the lock is only tried: the thread may hold
    /// another token's lock, and waiting here could close a cycle with a callback of this
    /// token waiting for that one.
    #[inline]
    fn lock<'h>(&'h self, found: &'h Found) -> Lock<Locked<'h>> {
        match found.lock(|| !self.0.id.in_callback()) {
            None => Lock::Reentrant,
            // Emptied and removed since the lookup (invariant 2): start over.
            Some(locked) if locked.is_retired() => Lock::Retry,
            // Invariant 3: from here until the guard drops, the node is ours to change.
            Some(locked) => Lock::Held(locked),
        }
    }

    #[inline]
    fn look<R: Role, T>(
        &self,
        guard: &Locked<'_>,
        _: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T {
        guard.look::<R, _>(|mine, partner| f(mine.is_some(), partner))
    }

    #[inline]
    fn store<R: Role>(&self, guard: &mut Locked<'_>, _: Token, me: StdArc<R::Me>) {
        // Counted before it is published, when the guard is released.
        R::mine(&self.0.counts).increment();
        guard.store::<R>(me);
    }

    #[inline]
    fn take<R: Role, T>(
        &self,
        guard: &mut Locked<'_>,
        _: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(StdArc<R::Me>, T)> {
        // The callbacks run while readers still see `me`; then it is withdrawn and moved out
        // (invariant 4). An emptied node stays for the token's next register.
        let taken = guard.take::<R, _>(f)?;
        // Uncounted after it is unpublished (the invariant of `counts`).
        R::mine(&self.0.counts).decrement();
        Some(taken)
    }
}
