//! `lockfree`: a lock-free, growing token table of its own, one lock per token held across
//! that token's callbacks only, and reads that never wait for a callback.
//!
//! # Design
//! Each token that ever had a participant has one **node** in the **table**:
//!
//! - The **table** (the private module `lockfree/table.rs`) is a split-ordered list: one
//!   Harris–Michael lock-free list of all nodes, sorted by the bit-reversed (seeded, bijective)
//!   hash of their token, with a sentinel per bucket kept in place in a directory of bucket
//!   segments allocated on first use. It **grows** by one atomic increment whenever nodes
//!   outnumber buckets twice: nothing moves, a new bucket is initialized by the first writer that needs
//!   it, and a lookup walks about one node at any population. Finding, adding and removing a
//!   node take no lock, global or sharded, and never wait for another thread.
//! - The **node** holds the token's **state word** and its two **participant slots** (the
//!   registry's strong references). The word (the private module `lockfree/slot.rs`) packs the
//!   presence bit of each side, the token's lock (and a flag for parked waiters), a retired
//!   flag and a count of readers cloning a participant out of a slot.
//!
//! A register or unregister finds the token's node with one walk while pinned (epoch
//! reclamation of the table's own, the private module `lockfree/epoch.rs`: a pin is a store
//! into the thread's record, with no atomic read-modify-write and no fence; the rare collection
//! of removed nodes pays with one `membarrier` system call), and takes the token's lock there
//! if it is free: a locked node that is not retired cannot be removed, so the writer unpins and
//! needs no reference count. If the lock is busy, it counts the node and waits for the lock
//! unpinned (spinning briefly, then parked on the word). It holds the lock across the token's connect or disconnect callbacks:
//! that gives exactly one connect when a producer and a consumer arrive together, and
//! per-token exclusion. A register stores its participant in its slot and sets its presence
//! bit in the same atomic step that releases the lock; an unregister, after its callbacks,
//! clears the bit, waits for the readers already cloning from the slot (a few instructions
//! each), and moves the participant out.
//!
//! A register on a token with no node inserts a new node with the participant already in it,
//! only if the token is still absent, in one compare-and-swap: the first participant of a
//! token takes no lock at all. Whoever loses that race (the other side of the token, arriving
//! at the same time) finds the winner's node, takes its lock and connects: exactly one connect.
//!
//! **Nodes stay.** When a token's last participant leaves, its node stays in the table, empty:
//! the token's next register reuses it, so a token that comes and goes allocates nothing and
//! frees nothing. Empty nodes are removed lazily: a register that inserts a new node removes
//! every empty, unlocked node it walks past on the way; once the nodes emptied since the last
//! sweep, less those a register refilled, reach half the table (and at least 1,024), the
//! unregister that empties the next one sweeps the whole list, so memory follows the live tokens at O(1) a call amortized (that
//! one call takes O(n), holding only its own token's lock); [`LockFree::reclaim_empty`]
//! removes them all at once. Removal claims a node with one compare-and-swap of its word from "empty,
//! unlocked, no reader" to "locked, retired", then unlinks it; a register that found the node
//! before and locks it afterwards sees it retired and starts over from the table, where it
//! finds no node (and inserts one) or a newer one: removing an emptied node never loses a
//! register.
//!
//! The registry keeps **no reference to a departed participant, strong or weak**: a slot holds
//! the only one, an unregister moves it out and hands it back, and an empty node (even one
//! waiting for reclamation) holds none. Nothing is dropped under a lock: a participant leaves
//! only by being handed back.
//!
//! Why not papaya or scc? Measured with this cycle before choosing: papaya 0.2.5 leaves a
//! tombstone per removal, and one token removed and inserted over and over forces a full-table
//! resize every few cycles (at 100,000 live keys, 37 µs per insert+remove of one key against
//! 0.13 µs in an empty map); its resizes also make writers wait for the thread copying an
//! entry. scc's `HashMap` takes a bucket lock on reads, and its `HashIndex` cost twice papaya
//! per write here.
//!
//! # What is locked, and for how long
//! - **Nothing global, nothing sharded.** The table is lock-free, the population is two
//!   per-thread counters (no read-modify-write).
//! - **The token's lock**, a bit of its node's word: by every register that finds the token's
//!   node (the second participant, or a first one reusing an emptied node) and by every
//!   unregister that finds its participant, from the lookup to the release that publishes the
//!   change: the callbacks of the connect or disconnect included, nothing else. A slow or
//!   preempted callback holds up the registers and unregisters of its own token and no one
//!   else's. Reclamation takes it only from an empty, unlocked node, for a compare-and-swap
//!   and a mark.
//! - **Reads** take no lock. `is_paired` is one load of the word. `producer` and `consumer`
//!   enter the slot as readers (a compare-and-swap that succeeds only while the side is
//!   present), clone the `Arc` and leave: they never wait, not even for a callback of the
//!   token they read, and see the token as it was before the call whose callbacks are running.
//!   The only wait for a reader is the unregister's, for the readers inside the slot it
//!   empties, each for the length of an `Arc` clone.
//! - **Epochs**: every table operation pins the thread for its walk, which takes no lock and
//!   never waits; no pin is held across a callback or a lock wait, so a blocked callback never
//!   holds back reclamation. Retiring a removed node takes the table's garbage mutex (removals
//!   only), and so does a collection, briefly, before and after its `membarrier`.
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
//! A register takes effect at the insert of its node, or at the release of the lock that sets
//! its presence bit (after its connect); an unregister when it clears its presence bit (after
//! its disconnect). A read takes effect at its load of the word (or its reader's
//! compare-and-swap). A `duplicate` or `not-registered` is decided from the word as looked up
//! (no lock), or under the token's lock.
//!
//! # Memory kept alive
//! Measured with a counting allocator (`strategies/tests/lockfree_memory.rs`,
//! `LOCKFREE_MEMORY_TOKENS=1000000 cargo test --release -p bypass-strategies --test
//! lockfree_memory -- --nocapture`): **97 bytes a live token** at 1,000,000 paired tokens, the
//! participants aside: the node (80 bytes with its reference count: link, word, two slots), its
//! share of the bucket sentinels and of the directory. An emptied token costs the same until
//! its node is reclaimed; after [`LockFree::reclaim_empty`], 17 bytes a token stay (the
//! directory, which holds the sentinels of the buckets the table grew to, 32 bytes a bucket,
//! kept until the registry is dropped). Empty nodes are swept once they reach half the table,
//! so memory stays within about twice what the live tokens need, however many distinct tokens come and go
//! (`stress/tests/memory.rs` fills and empties 2,000 fresh tokens ten times). Removed nodes
//! wait in the table's collector for the pins that may still reach them, and hold no
//! participant: a sweep frees what it removed before it returns, other removals are freed once
//! 128 of them wait (or by a thread's 1,024th unpin after they arrived), and the table frees
//! what is left when dropped. The collector keeps one record of 128 bytes per thread pinned at
//! once, for the process: a thread that exits leaves its record to the next.
//!
//! # Cost per operation
//! All O(1) expected at any population: one hash, a bucket lookup and a walk of about one node.
//! - **Read**: one pin (two loads and a store, and one store to unpin) and the walk;
//!   `is_paired` then one load, `producer`/`consumer` two atomic read-modify-writes on the word
//!   and one on the participant's count. `population` sums the per-thread counters.
//! - **Register or unregister on a token with a node** (every one but a token's first ever):
//!   one pin (no read-modify-write: `epoch.rs`), the walk, the lock (a compare-and-swap), its
//!   release (one atomic), and for an unregister one more atomic to clear its bit: two atomic
//!   read-modify-writes for a register, three for an unregister, ten a connect+disconnect
//!   cycle. The population counter is a load and a store of the thread's own cell
//!   (`counter.rs`), no read-modify-write. No allocation, no reference count, nothing retired.
//! - **Register on a new token**: the node's allocation and one compare-and-swap to insert it;
//!   now and then a bucket's first use (a sentinel inserted) or a growth (an increment).
//! - Each also runs the callback protocol (`bypass_registry::registration`).
//!
//! Measured on 2 shared cores, machine otherwise idle (criterion: `cargo bench -p
//! bypass-benches --bench cycle --no-run`, then the bench binary run directly with `--bench
//! --warm-up-time 1 --measurement-time 3 --output-format bencher 'FILTER'`, five runs in one
//! session, median and range): a connect+disconnect cycle costs 136 ns (120–150) against 88 ns
//! (81–91) for a raw dashmap doing the same inserts and removes (`floor`): 1.55 times the
//! floor; 124 ns (118–131) with 1,000,000 live tokens against 121 (121–127) with none (three
//! runs). Two threads on their own tokens spend 131 ns (129–145) of CPU time a cycle against
//! 139 (124–149) at one thread (`cycle_threads_cpu`: they scale), and take 146 ns (141–153) a
//! round of one cycle each against the floor's 101 ns (86–317; the floor is bimodal at two
//! threads): 0.69 times the floor's cycles a second (`cycle_threads`). The callback protocol
//! itself costs 14 ns of a cycle (`protocol`: 27 ns through `bypass_registry::registration`
//! against 13 ns for the twelve callbacks called directly). `is_paired` on 100,000 live tokens
//! under churn: 71 ns (57–187) against dashmap's `get`, 83 (68–118), three noisy runs of the
//! `lookup` bench (the churning thread and the lookups share the 2 cores). How the cycle came
//! down from 370 ns (the design before this one): nodes reused instead of allocated (164 ns);
//! population counters each thread writes with a plain load and store (a `fetch_add` on a
//! shared cell cost about 5 ns, four a cycle); pins with no read-modify-write (`epoch.rs`,
//! about 20 ns a cycle against crossbeam-epoch's); a writer's handle on the node it found cut
//! to two words, the node and a state byte (its count was a second pointer to the same node),
//! so that it travels in registers: the three words went through the stack, and reading them
//! back stalled on the stores just made (store forwarding), 12–15% of a cycle (fifteen
//! alternated runs of a fixed loop of cycles: 143 against 169 ns, medians). Folding an
//! unregister's clearing of its bit and its release into one compare-and-swap (with slots that
//! count as uninitialised while their bit is clear) was tried and measured no gain: the
//! remaining `lock` instructions wait for the stores before them to drain, and a drain one of
//! them paid moves to the next. Nor did taking the lock with one bit set (`lock bts`) or
//! clearing the bit with a subtraction (`lock xadd`) instead of compare-and-swap loops.
//!
//! What is left above the floor is the protocol and the atomic read-modify-writes: the floor
//! does two an operation (its shard lock and unlock), this backend two or three (the token's
//! lock and its release, and for an unregister the clearing of its bit).
//!
//! With 1,024 threads registering 87,000 tokens at once (`bypass run --backend lockfree
//! --scenario irqfd-flood --seed N --mode measured`, seeds 2026–2028, three rounds, machine
//! otherwise idle): 1.52–2.88 million operations a second, median 1.77 (mutex-map: 1.60–3.12,
//! median 1.77; sharded: 1.90–5.65, median 3.40; the floor: 1.75–4.15, median 2.45), register
//! p99.9 18–46 µs in eight runs of nine and 7.9 ms in one (mutex-map: 1.0–34 ms; sharded: 14 µs
//! to 14 ms; the floor, a raw map with no protocol: 55–700 µs, above 50 µs in all nine). On 2
//! cores the flood is bound by scheduling 1,024 threads: even the floor reaches only about 1.4
//! to 1.8 times mutex-map's throughput, and its own tail is longer than this backend's. This
//! backend's throughput is no better than mutex-map's there: each token's first register
//! allocates and inserts its node, the producer and consumer of a token arrive together, so one
//! waits for the other's lock, and the table's walk reaches nodes that 1,024 threads allocated
//! far apart (see below).
//!
//! The 1,000,000-token figure above is a cycle of one token, kept in cache, among the others.
//! Lookups of scattered tokens miss the cache on every backend: criterion's `lookup` bench
//! rebuilt at 1,000,000 tokens gave `is_paired` 474 ns here, 434 ns for `sharded` and 488 ns for
//! the raw dashmap. Yet in stress runs of the delivery path at 200,000 tokens (`bypass run
//! --scenario delivery-lookup --scale 2 --mode measured`, seeds 5–7) this backend took 0.8 to
//! 1.3 s against `sharded`'s 0.5–0.8 s, half of it in `is_paired`, while at 25,000 tokens the
//! two are even. A lookup is two dependent loads, the bucket (its sentinel in place since the
//! sentinels moved into the directory: about 6% off that run, medians of six alternated runs,
//! 1,047 against 1,112 ms) and the node, and the node's load takes two thirds of
//! `is_paired`'s samples: in the stress run each node was allocated between its token's
//! participants, so the nodes lie scattered over far more pages than criterion's, whose
//! participants take no memory; a dashmap keeps its entries in one array. Allocating nodes
//! in slabs would be the next step.
//!
//! # When to choose it
//! Choose it when many threads register and unregister at once (boot storms, parallel
//! restores, irqfd floods), when callbacks can be slow or preempted (a callback holds up only
//! its own token), when lookups must never wait while registrations churn (the delivery
//! path), and when the population can reach hundreds of thousands of tokens (the table
//! grows, though its lookups then cost more than `sharded`'s in stress runs: see above). In the
//! reference report (`reports/reference`) it has the shortest register p99.9 in six scenarios
//! of eight (irqfd-flood, boot-storm, serverless-churn, vector-toggle, delivery-lookup,
//! hot-tokens) and ties `sharded` for boot storms and slow callbacks, while `sharded` has the
//! higher throughput in most scenarios and is the recommended default.
//!
//! Do not choose it when registrations are rare and come from one thread: a global-mutex
//! backend ([`mutex-map`](crate::mutex_map)) is simpler to reason about, costs less per
//! uncontended cycle and lets a callback register another token without ever seeing
//! `reentrant`. Nor when a callback must be able to register or unregister *another* token that
//! may be busy at that moment: here that call gets `reentrant` instead of waiting. Nor when
//! memory must follow the live count at once, or no call may ever take O(n): emptied nodes stay
//! until an insert passes them, a sweep runs (once they reach half the table, inside one
//! unregister) or [`LockFree::reclaim_empty`] runs.
//!
//! # Loom
//! The state word, the slots, the table and its reclamation run under loom (`.ci/loom`,
//! models in `strategies/tests/loom.rs`): under `--cfg loom` the `sync` facade hands out
//! loom's atomics, `Arc` and cells, the table starts with a single bucket and grows to two, and
//! epoch reclamation is a modelled collector that releases a retired node only once no guard
//! pinned before its retirement is alive, poisoning what it releases, so an early free fails a
//! model. A writer waiting for a token's lock parks in a modelled parking lot, so a missed
//! wake-up is a deadlock that fails a model too. The models check that the table pins, retires
//! and reaches nodes as that contract requires; they do not model the real collector (loom has
//! no `membarrier`), whose argument is in `epoch.rs` and which the ordinary tests check: a
//! quarantining collector that poisons what it releases (an early release fails a reader's
//! check, every run), a stress of readers lingering on nodes while others sweep, the same tests
//! rerun with the fence fallback, and valgrind (`.ci/valgrind`, where `membarrier` works, so
//! the fast path runs).
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
//! let mut producer = registry.unregister_producer(t).unwrap();
//! assert!(Arc::get_mut(&mut producer).is_some()); // no reference left in the registry
//! assert!(!registry.is_paired(t) && registry.consumer(t).is_some());
//! assert_eq!(registry.population().producers, 1);
//! ```

// The backend's `unsafe` code (with the parking calls of `sync`): epoch reclamation, and the
// lock-free table's raw pointers and participant slots, behind a safe API
// (`#![allow(unsafe_code)]` inside, every block with its safety argument). Under `--cfg loom`
// the table has a modelled collector instead of `epoch`.
#[cfg(not(loom))]
mod epoch;
mod slot;
mod sync;
mod table;

use std::fmt;
use std::sync::Arc as StdArc;

use bypass_registry::pair::{ConsumerRole, Pair, ProducerRole, Role, Strong};
use bypass_registry::protocol::RegistryId;
use bypass_registry::registration::{Lock, Pairs, Vacancy};
use bypass_registry::{Consumer, Population, Producer, Registry, Token};

use self::table::{Entry, Found, Locked, Node, Table, bit};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::counter::{self, Counts, PerThread};

/// A registry on a lock-free token table, with one lock per token held across that token's
/// callbacks only; reads never wait for a callback. See the [module documentation](self).
pub struct LockFree {
    id: RegistryId,
    table: Table,
    /// The population, one per-thread counter per side: every register and unregister writes
    /// one, and threads on disjoint tokens should not share a cache line for it.
    ///
    /// Invariant: a counter changes only for a register that succeeds or an unregister, and
    /// only while that call is in flight (a register counts its participant once stored, an
    /// unregister uncounts it once unpublished). So a sum read with no call in flight is exact,
    /// and one read while calls are in flight lies between the counts before and after them
    /// (cells read one after another may miss some of them): a register that ends `duplicate`
    /// or `connect-failed` never shows in it.
    counts: Counts,
    /// Nodes emptied so far less those refilled, and its sum at the last sweep: see
    /// [`LockFree::note_empty`].
    emptied: PerThread,
    swept_at: AtomicUsize,
    /// How many sweeps [`LockFree::note_empty`] ran (statistics).
    sweeps: AtomicUsize,
}

/// A thread counts the nodes it empties and refills locally, and adds them to
/// [`LockFree::note_empty`]'s count (and checks whether a sweep is due) once they differ by
/// this many.
const SWEEP_CHECK: u32 = 64;

/// The fewest emptied nodes worth a sweep of the whole list.
const SWEEP_AFTER: usize = 1024;

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
            emptied: PerThread::new(),
            swept_at: AtomicUsize::new(0),
            sweeps: AtomicUsize::new(0),
        }
    }

    /// Removes the nodes of the tokens that have no participant left. Registers do it
    /// lazily for the nodes they walk past; this does it for the whole table at once (for
    /// example after a VM with thousands of tokens was torn down). Never needed for
    /// correctness, and safe to call at any time from any thread.
    pub fn reclaim_empty(&self) {
        self.table.sweep();
    }

    /// Counts a node emptied (`change` 1) or an emptied node refilled (-1), and now and then
    /// removes the empty nodes, so that memory follows the live tokens, not every token ever
    /// registered (a VMM's tokens are eventfd addresses, new with each VM): a sweep runs once the
    /// nodes emptied since the last one, less those refilled, reach half the nodes in the table
    /// and at least [`SWEEP_AFTER`], so its walk of the list costs O(1) a call, amortized. A
    /// token that comes and goes empties and refills its one node: it counts for nothing, and
    /// sets off no sweep (counting its empties alone walked a million-node list every 500,000
    /// cycles). The thread that empties the node sweeps, with that node's lock held: the sweep
    /// never waits (it skips locked nodes), so only that token's writers wait for it.
    fn note_empty(&self, change: i32) {
        // Loom runs its threads on one OS thread and replays each model many times: a std
        // thread-local tally would carry over between replays and make the model
        // nondeterministic. No model comes near a sweep's threshold anyway.
        if cfg!(loom) {
            return;
        }
        thread_local! {
            // No destructor: usable while the thread's other locals are being destroyed.
            static TALLY: Cell<i32> = const { Cell::new(0) };
        }
        // A thread-local tally, so the common case writes no shared or atomic memory; up to
        // `SWEEP_CHECK - 1` a thread are counted late (or towards another registry of the
        // thread's), which only shifts when a sweep runs.
        let flushed = TALLY.with(|tally| {
            let n = tally.get() + change;
            if n.unsigned_abs() >= SWEEP_CHECK {
                tally.set(0);
                Some(n)
            } else {
                tally.set(n);
                None
            }
        });
        let Some(n) = flushed else { return };
        self.emptied.add(n as isize);
        if n < 0 {
            return;
        }
        let emptied = self.emptied.get();
        let last = self.swept_at.load(Ordering::Relaxed);
        let due = emptied.saturating_sub(last) >= SWEEP_AFTER.max(self.table.len() / 2);
        // One thread of those that see it due sweeps.
        if due
            && self
                .swept_at
                .compare_exchange(last, emptied, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweeps.fetch_add(1, Ordering::Relaxed);
            self.table.sweep();
        }
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

    bypass_registry::registration_methods!(Writes);

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
        let entry = self.0.table.get_or_insert(
            token,
            || {
                let mut pair = Pair::<Strong>::default();
                *R::mine_mut(&mut pair) = arriving.take();
                pair
            },
            |node| (node.node().word().present() & bit::<R>() == 0).then(|| Writes::found(node)),
        );
        match entry {
            Entry::Inserted => {
                // Counted once inserted, while the register is still in flight (the invariant
                // of `counts`): a register that loses the insert and then fails is never
                // counted.
                R::mine(&self.0.counts).increment();
                Vacancy::Inserted
            }
            Entry::Present(found, back) => {
                if let Some(mut pair) = back {
                    // Lost the insert to another register of the token: take it back.
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
        // Counted while the register is in flight, before the guard's release publishes it.
        R::mine(&self.0.counts).increment();
        if !guard.is_taken::<ProducerRole>() && !guard.is_taken::<ConsumerRole>() {
            // An emptied node reused.
            self.0.note_empty(-1);
        }
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
        if !guard.is_taken::<ProducerRole>() && !guard.is_taken::<ConsumerRole>() {
            self.0.note_empty(1);
        }
        Some(taken)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use bypass_registry::probe::{EventLog, Probe};

    use super::*;

    fn token(n: u64) -> Token {
        Token::new(n).unwrap()
    }

    fn cycle(r: &LockFree, log: &StdArc<EventLog>, t: u64) {
        let p = StdArc::new(Probe::producer(t, log));
        let c = StdArc::new(Probe::consumer(t, log));
        r.register_producer(token(t), p).unwrap();
        r.register_consumer(token(t), c).unwrap();
        r.unregister_producer(token(t)).unwrap();
        r.unregister_consumer(token(t)).unwrap();
        log.take();
    }

    /// Fresh tokens leave emptied nodes behind: sweeps remove them, so memory follows the live
    /// tokens.
    #[test]
    fn fresh_tokens_set_off_sweeps() {
        let (r, log) = (LockFree::new(), EventLog::new());
        for t in 1..=20_000 {
            cycle(&r, &log, t);
        }
        assert!(r.sweeps.load(Ordering::Relaxed) > 0);
        assert!(r.table.len() < 20_000, "{} nodes left", r.table.len());
    }

    /// One token that comes and goes reuses its one node: it sets off no sweep, whatever the
    /// table holds (each sweep walks every node).
    #[test]
    fn a_token_that_comes_and_goes_sets_off_no_sweep() {
        let (r, log) = (LockFree::new(), EventLog::new());
        for t in 1..=2_000 {
            let p = StdArc::new(Probe::producer(t, &log));
            r.register_producer(token(t), p).unwrap();
        }
        for _ in 0..100_000 {
            cycle(&r, &log, 1_000_000);
        }
        assert_eq!(r.sweeps.load(Ordering::Relaxed), 0);
    }
}
