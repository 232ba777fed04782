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
mod sync;
// The crate's only `unsafe` code: the lock-free table's raw pointers and epoch reclamation,
// behind a safe API (`#![allow(unsafe_code)]` inside, every block with its safety argument).
mod table;

use std::fmt;
use std::sync::{Arc as StdArc, Weak};

use bypass_registry::pair::{ConsumerRole, ProducerRole, Role};
use bypass_registry::protocol::RegistryId;
use bypass_registry::registration::{self, Lock, Pairs, Vacancy};
use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterProducerResult, Registry,
    Token, UnregisterError,
};

use self::slot::{Snapshot, State};
use self::sync::{Arc, MutexGuard};
use self::table::{Found, Node, Table};
use crate::counter::{self, Counts};

/// A registry on a lock-free token table, with one lock per token held across that token's
/// callbacks only; reads never wait. See the [module documentation](self).
pub struct LockFree {
    id: RegistryId,
    table: Table,
    /// The population, one striped counter per side: every register and unregister writes
    /// one, and threads on disjoint tokens should not share a cache line for it.
    ///
    /// Invariant: a counter changes only for a register that succeeds or an unregister, and
    /// only while that call is in flight (a register counts its participant once stored, an
    /// unregister uncounts it once unpublished). So a sum read with no call in flight is exact,
    /// and one read while calls are in flight lies between the counts before and after them
    /// (cells read one after another may miss some of them): a register that ends `duplicate`
    /// or `connect-failed` never shows in it.
    counts: Counts,
}

impl LockFree {
    /// An empty registry, with 65,536 buckets: lists stay short up to a few hundred thousand
    /// tokens.
    pub fn new() -> LockFree {
        LockFree::with_capacity(0)
    }

    /// An empty registry with a bucket for each of `tokens` tokens (rounded up to a power of
    /// two, at least 65,536 and at most 2^24). The table never resizes: for a VMM that expects
    /// more than a few hundred thousand tokens, so that lists stay short.
    pub fn with_capacity(tokens: usize) -> LockFree {
        LockFree {
            id: RegistryId::new(),
            table: Table::with_capacity(tokens),
            counts: counter::counts(),
        }
    }

    /// Reads one side of the token: upgrades the weak reference that `pick` chooses from the
    /// current snapshot.
    fn participant<T: ?Sized>(
        &self,
        token: Token,
        pick: impl Fn(&Snapshot) -> Option<&Weak<T>>,
    ) -> Option<StdArc<T>> {
        loop {
            match self
                .table
                .read(token, |seen| seen.and_then(&pick).map(Weak::upgrade))
            {
                None => return None,
                Some(Some(participant)) => return Some(participant),
                // The snapshot was replaced after the lookup and its participant dropped since
                // (invariant 5): look again. Each retry follows a completed unregister.
                Some(None) => continue,
            }
        }
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

    fn is_paired(&self, token: Token) -> bool {
        self.table.read(token, |seen| {
            seen.is_some_and(|seen| seen.producer.is_some() && seen.consumer.is_some())
        })
    }

    fn producer(&self, token: Token) -> Option<StdArc<dyn Producer>> {
        self.participant(token, |seen| seen.producer.as_ref())
    }

    fn consumer(&self, token: Token) -> Option<StdArc<dyn Consumer>> {
        self.participant(token, |seen| seen.consumer.as_ref())
    }

    fn population(&self) -> Population {
        counter::population(&self.counts)
    }
}

/// A token's locked node: its state, and the node to publish to or remove.
struct Locked<'h> {
    node: &'h Node,
    state: MutexGuard<'h, State>,
}

/// A token's pair is its node's state; its lock, the node's. The comments name the invariants
/// of `slot.rs` that each step relies on.
/// [`LockFree`] as [`Pairs`] for [`registration`]: private, so that only the registry's own
/// calls reach its pairs.
struct Writes<'r>(&'r LockFree);

impl Pairs for Writes<'_> {
    type Handle = Arc<Node>;
    type Guard<'h>
        = Locked<'h>
    where
        Self: 'h;

    fn id(&self) -> RegistryId {
        self.0.id
    }

    /// Lock-free first look: a duplicate is refused here, at the instant of the lookup; an
    /// absent token gets a new node holding the arriving participant, inserted only if the
    /// token is still absent (invariant 1). No one has seen that node, so no lock.
    fn find_for_register<R: Role>(
        &self,
        token: Token,
        arriving: &mut Option<StdArc<R::Me>>,
    ) -> Vacancy<Arc<Node>> {
        let found = self.0.table.get_or_insert(
            token,
            || {
                let mut state = State::default();
                *R::mine_mut(&mut state.pair) = arriving.take();
                state
            },
            |seen| R::mine(seen).is_some(),
        );
        match found {
            Found::Inserted => {
                // Counted once inserted, while the register is still in flight (the invariant
                // of `counts`): a register that loses the insert and then fails is never counted.
                R::mine(&self.0.counts).increment();
                Vacancy::Inserted
            }
            Found::Present { node, seen, state } => {
                if let Some(mut state) = state {
                    // Lost the insert to another register of the token: take it back.
                    *arriving = R::mine_mut(&mut state.pair).take();
                }
                if seen {
                    Vacancy::Taken
                } else {
                    Vacancy::At(node)
                }
            }
        }
    }

    /// Lock-free first look: nothing on this side is `not-registered`, at that instant.
    fn find_for_unregister<R: Role>(&self, token: Token) -> Option<Arc<Node>> {
        match self.0.table.get(token, |seen| R::mine(seen).is_some()) {
            Some((node, true)) => Some(node),
            _ => None,
        }
    }

    /// From inside a callback of this registry the lock is only tried: the thread may hold
    /// another token's lock, and waiting here could close a cycle with a callback of this
    /// token waiting for that one.
    fn lock<'h>(&'h self, node: &'h Arc<Node>) -> Lock<Locked<'h>> {
        let state = if self.0.id.in_callback() {
            node.try_lock()
        } else {
            Some(node.lock())
        };
        match state {
            None => Lock::Reentrant,
            // Emptied and removed since the lookup (invariant 2): start over.
            Some(state) if state.retired => Lock::Retry,
            // Invariant 3: from here until the guard drops, the node is ours to change.
            Some(state) => Lock::Held(Locked { node, state }),
        }
    }

    fn look<R: Role, T>(
        &self,
        guard: &Locked<'_>,
        token: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T {
        let (taken, partner) = (
            R::mine(&guard.state.pair).is_some(),
            R::partner(&guard.state.pair).as_deref(),
        );
        // Invariant 4: a live node with our side free has the other side.
        debug_assert!(
            taken || partner.is_some(),
            "token {token}: a live node with no participant"
        );
        f(taken, partner)
    }

    fn store<R: Role>(&self, guard: &mut Locked<'_>, _: Token, me: StdArc<R::Me>) {
        R::mine(&self.0.counts).increment();
        // The strong reference is stored before the snapshot is published (invariant 5).
        *R::mine_mut(&mut guard.state.pair) = Some(me);
        self.0.table.publish(guard.node, &guard.state);
    }

    fn take<R: Role, T>(
        &self,
        guard: &mut Locked<'_>,
        _: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(StdArc<R::Me>, T)> {
        let state = &mut *guard.state;
        let me = R::mine_mut(&mut state.pair).take()?;
        // `me` stays alive on this stack until the snapshot without it is published or the
        // node removed (invariant 5); the callbacks run with the old snapshot published.
        let done = f(&me, R::partner(&state.pair).as_deref());
        if state.is_empty() {
            // The last participant: retire the node and remove it, in one critical section
            // (invariant 2).
            state.retired = true;
            self.0.table.remove(guard.node);
        } else {
            self.0.table.publish(guard.node, state);
        }
        // Uncounted after it is unpublished (the invariant of `counts`).
        R::mine(&self.0.counts).decrement();
        Some((me, done))
    }
}
