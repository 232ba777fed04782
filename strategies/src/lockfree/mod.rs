//! `lockfree`: a lock-free token table, one lock per token held across that token's callbacks
//! only, and reads that never wait.
//!
//! # Design
//! Each token with a participant has a **slot** and an **entry** (the private module
//! `lockfree/slot.rs` spells out their life cycle and invariants):
//!
//! - The **table** maps the token to its entry. It is a lock-free hash map ([`papaya`]):
//!   looking a token up, adding a token and removing one never take a lock, global or sharded.
//! - The **entry** is an immutable snapshot of the token: weak references to its producer and
//!   consumer, and the `Arc` of its slot. A change publishes a new entry; readers see the old or
//!   the new one, whole.
//! - The **slot** holds the token's lock and, behind it, the strong references to the
//!   participants. Registers and unregisters of an existing token take it, and hold it across
//!   the token's connect or disconnect callbacks: that lock is what gives exactly one connect
//!   when a producer and a consumer arrive together, and per-token exclusion.
//!
//! A register on a token with no entry builds the slot with the participant already in it and
//! inserts the entry only if the token is still absent, in one atomic step of the table, so
//! the first participant of a token takes no lock at all. Whoever loses that race (the other
//! side of the token, arriving at the same time) finds the winner's entry, takes its lock and
//! connects: exactly one connect.
//!
//! When an unregister takes a token's last participant out, it marks the slot retired and
//! removes the entry, under the slot's lock. A register that found the slot before and was
//! waiting for its lock then sees it retired and starts over from the table, where it finds no
//! entry (and inserts a new slot) or a newer one: removing an emptied slot never loses a
//! concurrent register.
//!
//! # What is locked, and for how long
//! - **Nothing global, nothing sharded.** The table is lock-free, the population is two atomic
//!   counters.
//! - **The token's lock**: by a register that finds the token's entry (the second participant,
//!   or a duplicate that got past the lock-free check) and by every unregister that finds its
//!   participant, from just after the lookup to just after the new entry is published:
//!   the callbacks of the connect or disconnect included, nothing else. A slow or preempted
//!   callback holds up the registers and unregisters of its own token and no one else's.
//! - **Reads** (`is_paired`, `producer`, `consumer`, `population`) take no lock and never wait,
//!   not even for a callback of the token they read: they see the token as it was before the
//!   call whose callbacks are running, as every read from another thread does.
//! - papaya itself blocks in one rare case: a writer that meets an entry being moved by a
//!   concurrent resize of the table waits for that entry's copy (a few instructions, unless the
//!   copying thread is preempted). [`LockFree::with_capacity`] avoids resizes for a known
//!   population.
//!
//! # Re-entrancy
//! A callback that calls the registry for its own token gets `reentrant` (the thread holds the
//! token's lock). For another token, a call from a callback takes that token's lock only if it
//! is free at that instant, and gets `reentrant` if not, rather than wait: two callbacks of two
//! tokens each waiting for the other's token would otherwise deadlock. A call from a callback
//! whose token has no entry yet, or whose side is a plain duplicate or unregistered, needs no
//! lock and always works. Reads from a callback always work and see the registry as it was
//! before the call whose callback is running took effect: inside the connect of a token,
//! `is_paired` is still `false`; inside its disconnect, still `true`.
//!
//! # Linearization points
//! A register or unregister takes effect when its new entry is published (inserted, replaced or
//! removed), after its connect and before its disconnect's return. A read takes effect when it
//! looks the entry up. A `duplicate` or `not-registered` is decided from the entry as looked up
//! (no lock), or under the token's lock.
//!
//! # Memory kept alive
//! - Per token with a participant: one table entry (the snapshot, two weak references and the
//!   slot's `Arc`: 48 bytes in papaya's allocation), one slot (a parking_lot mutex and the two
//!   strong references: about 56 bytes with its `Arc` header).
//! - Replaced and removed entries are reclaimed by papaya's collector once every thread that
//!   could have read them has moved on: they are retired in per-thread batches, so a few dozen
//!   per thread wait at any time. A retired entry keeps its slot's allocation and weak
//!   references to the participants it saw, which keep their *allocations* but not the
//!   participants themselves: the registry never holds a strong reference to a participant
//!   whose unregister has returned, and the participant is dropped as soon as its owner drops
//!   it. No guard is ever held across a callback, so a blocked callback does not hold back
//!   reclamation.
//!
//! # Cost per operation
//! All O(1) expected, independent of the number of tokens.
//! - **Read**: one hash (a seeded 64-bit mixer, not SipHash), one papaya lookup under a
//!   collector guard, and for `producer`/`consumer` a weak-to-strong upgrade (one
//!   compare-and-swap on the participant's count). `population` is two atomic loads.
//! - **Register, token absent**: one lookup, two allocations (slot and entry) and one
//!   insert-if-absent. No lock.
//! - **Register, token present** (a connect): one lookup, the token's lock (uncontended unless
//!   the token is busy), the six callbacks, one entry replace (one allocation).
//! - **Unregister**: one lookup, the token's lock, the six callbacks if paired, then one entry
//!   replace, or one removal if it was the token's last participant.
//! - Each register and unregister also updates one shared atomic counter of its side.
//!
//! # When to choose it
//! Choose it when many threads register and unregister at once (boot storms, parallel
//! restores, irqfd floods), when callbacks can be slow or preempted (a callback holds up only
//! its own token), and when lookups must stay cheap and never wait while registrations churn
//! (the delivery path). It is the backend to choose by default for a multi-threaded VMM.
//!
//! Do not choose it when registrations are rare and come from one thread: a global-mutex
//! backend ([`mutex-map`](crate::mutex_map)) is simpler to reason about, has no deferred
//! reclamation, and lets a callback register another token without ever seeing `reentrant`.
//! Nor when a callback must be able to register or unregister *another* token that may be busy
//! at that moment: here that call gets `reentrant` instead of waiting.
//!
//! # Loom
//! The slot protocol runs under loom (`.ci/loom`, models in `strategies/tests/loom.rs`) with
//! the table replaced by a mutex-protected `HashMap`, since papaya does not run under loom:
//! the models check the per-token state machine built on the table (the locks, the retired
//! flag, insert-if-absent, replace and remove), taking the table as a linearizable map.
//!
//! # Example
//! A producer and a consumer of one token registering at the same time connect exactly once,
//! and a slow callback of one token does not hold up another token:
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
//! // Reads and other tokens go on while token 7's lock is held by a disconnect.
//! let other = Token::new(8).unwrap();
//! registry.register_producer(other, Arc::new(Probe::producer(8, &log))).unwrap();
//! let _ = registry.unregister_producer(t).unwrap();
//! assert!(!registry.is_paired(t) && registry.consumer(t).is_some());
//! assert_eq!(registry.population().producers, 1);
//! ```

mod slot;
mod sync;
mod table;

use std::fmt;
use std::sync::Arc as StdArc;

use bypass_registry::protocol::{self, Connection, Disconnection, RegistryId};
use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterError, RegisterProducerResult,
    Registry, Token, UnregisterError,
};

use self::slot::{Entry, Slot, Snapshot, State};
use self::sync::{Arc, AtomicBool, AtomicUsize, MutexGuard, Ordering};
use self::table::Table;

/// A registry on a lock-free token table, with one lock per token held across that token's
/// callbacks only; reads never wait. See the [module documentation](self).
pub struct LockFree {
    id: RegistryId,
    table: Table,
    counts: Counts,
    /// Emptied tokens kept before a sweep; 0: an emptied token's entry is removed at once.
    dormant_limit: usize,
}

/// The counters, on their own cache line: every register and unregister writes one of them,
/// and they should not make the table's handle bounce with it.
///
/// Invariant: a population counter is incremented before the participant it counts is
/// published and decremented after it is unpublished, so it never falls below the number of
/// published participants of its side and never wraps; it exceeds it only by registrations and
/// unregistrations in flight.
#[repr(align(128))]
struct Counts {
    producers: AtomicUsize,
    consumers: AtomicUsize,
    /// Live slots with no participant (invariant 4 of the slot module).
    dormant: AtomicUsize,
    /// The dormant count above which the next emptying token starts a sweep.
    sweep_at: AtomicUsize,
    /// Set while a sweep runs: one at a time, and no one waits for it.
    sweeping: AtomicBool,
}

impl LockFree {
    /// Default for [`LockFree::with_limits`]'s `dormant`: enough that the tokens a VMM toggles
    /// (the vectors of a few devices) stay in the table between sweeps, few enough that a sweep
    /// (a walk of the table) is rare and cheap next to the emptyings that pay for it.
    pub const DEFAULT_DORMANT: usize = 1024;

    /// An empty registry.
    pub fn new() -> LockFree {
        // Default: no preallocation; the table grows by incremental resizes, each writer
        // moving a small chunk of entries, so no single call pays for a whole resize.
        LockFree::with_limits(0, LockFree::DEFAULT_DORMANT)
    }

    /// An empty registry with room for `tokens` tokens before the table first resizes: for a
    /// VMM that knows its population (vectors times VMs), so that no register meets a resize.
    pub fn with_capacity(tokens: usize) -> LockFree {
        LockFree::with_limits(tokens, LockFree::DEFAULT_DORMANT)
    }

    /// An empty registry with room for `capacity` tokens before the table first resizes, that
    /// keeps the entries of emptied tokens until they number more than `dormant` and more than
    /// the registered participants; then the next unregister that empties a token sweeps them
    /// out (skipping any token busy at that instant).
    ///
    /// `dormant == 0` removes a token's entry as soon as its last participant leaves, as a plain
    /// map would: the least memory, but a token registered and unregistered over and over then
    /// removes and re-inserts its entry each time, which costs papaya a tombstone each time and
    /// a full-table resize every few times (see the module documentation).
    pub fn with_limits(capacity: usize, dormant: usize) -> LockFree {
        LockFree {
            id: RegistryId::new(),
            table: Table::with_capacity(capacity),
            counts: Counts {
                producers: AtomicUsize::new(0),
                consumers: AtomicUsize::new(0),
                dormant: AtomicUsize::new(0),
                sweep_at: AtomicUsize::new(dormant),
                sweeping: AtomicBool::new(false),
            },
            dormant_limit: dormant,
        }
    }

    /// Locks `slot` for a register or unregister. From inside a callback of this registry the
    /// lock is only tried: the thread may hold another token's lock, and waiting here could
    /// close a cycle with a callback of this token waiting for that one. `None`: refused as
    /// re-entrant.
    fn lock<'a>(&self, slot: &'a Slot) -> Option<MutexGuard<'a, State>> {
        if self.id.in_callback() {
            slot.try_lock()
        } else {
            Some(slot.lock())
        }
    }

    fn register<S: Side>(
        &self,
        token: Token,
        me: StdArc<S::Me>,
    ) -> Result<(), RegisterError<StdArc<S::Me>>> {
        if self.id.in_callback_for(token) {
            return Err(RegisterError::Reentrant(me));
        }
        let count = S::count(&self.counts);
        let mut me = me;
        loop {
            // Lock-free first look: a duplicate is refused here, at the instant of the lookup.
            let found = self.table.read(token, |entry| {
                entry.map(|entry| (S::seen(&entry.seen), Arc::clone(&entry.slot)))
            });
            let slot = match found {
                Some((true, _)) => return Err(RegisterError::Duplicate(me)),
                Some((false, slot)) => slot,
                None => {
                    // The token has no entry: publish a new slot holding `me`, if the token is
                    // still absent (invariant 1). No one has seen the slot, so no lock.
                    let mut state = State::default();
                    *S::mine(&mut state) = Some(me);
                    let seen = Snapshot::of(&state);
                    let slot = Arc::new(Slot::new(state));
                    // Counted before it is published (the invariant of `Counts`).
                    count.fetch_add(1, Ordering::Relaxed);
                    match self.table.insert_new(
                        token,
                        Entry {
                            seen,
                            slot: slot.clone(),
                        },
                    ) {
                        Ok(()) => return Ok(()),
                        Err(entry) => {
                            // Lost to another register of the token: take `me` back out of
                            // the unpublished slot and start over.
                            count.fetch_sub(1, Ordering::Relaxed);
                            drop(entry);
                            let taken = S::mine(&mut slot.lock()).take();
                            me = taken.expect("an unpublished slot keeps its participant");
                            continue;
                        }
                    }
                }
            };
            let Some(mut state) = self.lock(&slot) else {
                return Err(RegisterError::Reentrant(me));
            };
            if state.retired {
                // Emptied and removed since the lookup (invariant 2): start over.
                continue;
            }
            // Invariant 3: from here until the guard drops, the token's entry is ours to change.
            if S::mine(&mut state).is_some() {
                return Err(RegisterError::Duplicate(me));
            }
            // A live slot with our side free has the other side, or is dormant (invariant 4).
            let connection = S::connect(self.id, token, &me, &state);
            let mut publish = |me: StdArc<S::Me>| {
                count.fetch_add(1, Ordering::Relaxed);
                if state.is_empty() {
                    self.counts.dormant.fetch_sub(1, Ordering::Relaxed);
                }
                // The strong reference is stored before the entry is published (invariant 5).
                *S::mine(&mut state) = Some(me);
                self.table.replace(token, Entry::of(&state, &slot));
            };
            return match connection {
                Some(connection) => connection.commit(me, publish),
                None => {
                    publish(me);
                    Ok(())
                }
            };
        }
    }

    fn unregister<S: Side>(&self, token: Token) -> Result<StdArc<S::Me>, UnregisterError> {
        if self.id.in_callback_for(token) {
            return Err(UnregisterError::Reentrant);
        }
        loop {
            // Lock-free first look: nothing on our side is `not-registered`, at that instant.
            let slot = self
                .table
                .read(token, |entry| {
                    entry
                        .filter(|entry| S::seen(&entry.seen))
                        .map(|entry| Arc::clone(&entry.slot))
                })
                .ok_or(UnregisterError::NotRegistered)?;
            let mut state = self.lock(&slot).ok_or(UnregisterError::Reentrant)?;
            if state.retired {
                // Emptied and removed since the lookup (invariant 2): start over.
                continue;
            }
            let me = S::mine(&mut state)
                .take()
                .ok_or(UnregisterError::NotRegistered)?;
            // `me` stays alive on this stack until the entry without it is published
            // (invariant 5); the callbacks run with the old entry still published.
            let disconnection = S::disconnect(self.id, token, &me, &state);
            let emptied = state.is_empty();
            if emptied && self.dormant_limit == 0 {
                // The last participant, and no dormancy: retire the slot and remove its entry,
                // in one critical section (invariant 2).
                state.retired = true;
                let removed = self.table.remove(token, &slot);
                debug_assert!(removed, "token {token}: the live slot's entry was not there");
            } else {
                if emptied {
                    // The last participant: the slot stays, dormant (invariant 4).
                    self.counts.dormant.fetch_add(1, Ordering::Relaxed);
                }
                self.table.replace(token, Entry::of(&state, &slot));
            }
            // Uncounted after it is unpublished (the invariant of `Counts`).
            S::count(&self.counts).fetch_sub(1, Ordering::Relaxed);
            drop(state);
            if emptied && self.dormant_limit != 0 {
                self.maybe_sweep();
            }
            return Ok(match disconnection {
                // Resumes a callback's panic, now that the registry is in order.
                Some(disconnection) => disconnection.finish(me),
                None => me,
            });
        }
    }

    /// Sweeps the dormant slots out of the table if they have grown past the limit and no
    /// other thread is sweeping. Never waits: a sweep in progress elsewhere, or a slot whose lock
    /// is held (its token is in use, so it will not stay dormant), is skipped.
    fn maybe_sweep(&self) {
        let counts = &self.counts;
        if counts.dormant.load(Ordering::Relaxed) <= counts.sweep_at.load(Ordering::Relaxed)
            || counts.sweeping.swap(true, Ordering::Acquire)
        {
            return;
        }
        // Clears `sweeping` however the sweep ends, so a panic cannot stop sweeps for good.
        struct Sweeping<'a>(&'a AtomicBool);
        impl Drop for Sweeping<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _sweeping = Sweeping(&counts.sweeping);
        for (token, slot) in self.table.dormant() {
            let Some(mut state) = slot.try_lock() else {
                continue;
            };
            if state.retired || !state.is_empty() {
                // Retired by a racing sweep, or in use again since the walk saw it.
                continue;
            }
            // Dormant and locked: retire it and remove its entry, in one critical section
            // (invariant 2), so a register waiting for this lock starts over.
            state.retired = true;
            let removed = self.table.remove(token, &slot);
            debug_assert!(removed, "token {token}: the dormant slot's entry was not there");
            counts.dormant.fetch_sub(1, Ordering::Relaxed);
        }
        // Next sweep once as many tokens again have emptied as the limit, or as participants
        // remain, whichever is more: a sweep's walk is then paid for by that many emptyings.
        let population = self.population();
        let room = self
            .dormant_limit
            .max(population.producers + population.consumers);
        let next = counts.dormant.load(Ordering::Relaxed).saturating_add(room);
        counts.sweep_at.store(next, Ordering::Relaxed);
    }

    /// Reads one side of the token: upgrades the weak reference that `pick` chooses from the
    /// current entry.
    fn participant<T: ?Sized>(
        &self,
        token: Token,
        pick: impl Fn(&Snapshot) -> Option<&std::sync::Weak<T>>,
    ) -> Option<StdArc<T>> {
        loop {
            match self.table.read(token, |entry| {
                entry.and_then(|e| pick(&e.seen)).map(|w| w.upgrade())
            }) {
                None => return None,
                Some(Some(participant)) => return Some(participant),
                // The entry was replaced after the lookup and its participant dropped since
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
            .field("tokens", &self.table.len())
            .field("dormant", &self.counts.dormant.load(Ordering::Relaxed))
            .field("population", &self.population())
            .finish()
    }
}

/// One side of a token, so that register and unregister are written once for both.
trait Side {
    /// `dyn Producer` or `dyn Consumer`.
    type Me: ?Sized;
    /// This side's strong reference in a state.
    fn mine(state: &mut State) -> &mut Option<StdArc<Self::Me>>;
    /// Whether a snapshot has this side.
    fn seen(seen: &Snapshot) -> bool;
    /// This side's counter.
    fn count(counts: &Counts) -> &AtomicUsize;
    /// Connects `me` to the other side of `state`, if there is one.
    fn connect(id: RegistryId, token: Token, me: &Self::Me, state: &State) -> Option<Connection>;
    /// Disconnects `me` from the other side of `state`, if there is one.
    fn disconnect(
        id: RegistryId,
        token: Token,
        me: &Self::Me,
        state: &State,
    ) -> Option<Disconnection>;
}

struct ProducerSide;
struct ConsumerSide;

impl Side for ProducerSide {
    type Me = dyn Producer;
    fn mine(state: &mut State) -> &mut Option<StdArc<dyn Producer>> {
        &mut state.producer
    }
    fn seen(seen: &Snapshot) -> bool {
        seen.producer.is_some()
    }
    fn count(counts: &Counts) -> &AtomicUsize {
        &counts.producers
    }
    fn connect(
        id: RegistryId,
        token: Token,
        p: &dyn Producer,
        state: &State,
    ) -> Option<Connection> {
        let c = state.consumer.as_deref()?;
        Some(protocol::connect(id, token, p, c))
    }
    fn disconnect(
        id: RegistryId,
        token: Token,
        p: &dyn Producer,
        state: &State,
    ) -> Option<Disconnection> {
        let c = state.consumer.as_deref()?;
        Some(protocol::disconnect(id, token, p, c))
    }
}

impl Side for ConsumerSide {
    type Me = dyn Consumer;
    fn mine(state: &mut State) -> &mut Option<StdArc<dyn Consumer>> {
        &mut state.consumer
    }
    fn seen(seen: &Snapshot) -> bool {
        seen.consumer.is_some()
    }
    fn count(counts: &Counts) -> &AtomicUsize {
        &counts.consumers
    }
    fn connect(
        id: RegistryId,
        token: Token,
        c: &dyn Consumer,
        state: &State,
    ) -> Option<Connection> {
        let p = state.producer.as_deref()?;
        Some(protocol::connect(id, token, p, c))
    }
    fn disconnect(
        id: RegistryId,
        token: Token,
        c: &dyn Consumer,
        state: &State,
    ) -> Option<Disconnection> {
        let p = state.producer.as_deref()?;
        Some(protocol::disconnect(id, token, p, c))
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
        self.register::<ProducerSide>(token, producer)
    }

    fn register_consumer(
        &self,
        token: Token,
        consumer: StdArc<dyn Consumer>,
    ) -> RegisterConsumerResult {
        self.register::<ConsumerSide>(token, consumer)
    }

    fn unregister_producer(&self, token: Token) -> Result<StdArc<dyn Producer>, UnregisterError> {
        self.unregister::<ProducerSide>(token)
    }

    fn unregister_consumer(&self, token: Token) -> Result<StdArc<dyn Consumer>, UnregisterError> {
        self.unregister::<ConsumerSide>(token)
    }

    fn is_paired(&self, token: Token) -> bool {
        self.table.read(token, |entry| {
            entry.is_some_and(|e| e.seen.producer.is_some() && e.seen.consumer.is_some())
        })
    }

    fn producer(&self, token: Token) -> Option<StdArc<dyn Producer>> {
        self.participant(token, |seen| seen.producer.as_ref())
    }

    fn consumer(&self, token: Token) -> Option<StdArc<dyn Consumer>> {
        self.participant(token, |seen| seen.consumer.as_ref())
    }

    fn population(&self) -> Population {
        Population {
            producers: self.counts.producers.load(Ordering::Relaxed),
            consumers: self.counts.consumers.load(Ordering::Relaxed),
        }
    }
}
