//! Epoch reclamation for the token table (`table.rs`) with asymmetric fences: a pin is two
//! loads and a store, with no atomic read-modify-write and no fence instruction; the rare
//! collection of removed nodes pays for both sides with one `membarrier` system call.
//!
//! This is the scheme of userspace RCU's "memb" flavour, with epochs so that a collection
//! frees what older pins alone could reach while newer pins go on.
//!
//! # The pieces
//! - **Records.** One per thread that pins, in a lock-free list for the whole process:
//!   claimed (one compare-and-swap of its `taken` flag) on the thread's first pin, released for
//!   another thread to claim when the thread exits (a thread-local whose destructor holds the
//!   claim). Records are never freed, so a scan can always read them; there are as many as
//!   threads ever pinned at once. A record's `state` is written only by the thread holding it:
//!   `IDLE`, or *active at epoch `e`*.
//! - **The epoch**, one counter for the process; only retirements change it, each with one
//!   increment.
//! - **The garbage**, per collector (one per table): the removed nodes, each tagged with the
//!   epoch it was retired in, under a mutex (retirement is rare next to pins).
//!
//! # The protocol
//! - **(E1) Pin** (outermost; nested pins count in a thread-local and change nothing): load the
//!   epoch `e` (`Acquire`), store *active at `e`* into the thread's record (`Release`), then a
//!   *light fence*: a compiler fence, which keeps the walk's loads after the store in the
//!   instruction stream. **Unpin**: store `IDLE` (`Release`).
//! - **(E2) Retire** a node, after the compare-and-swap that unlinked it: increment the epoch
//!   (`AcqRel`), tag the node with the epoch before the increment, `t`, and add it to the
//!   garbage.
//! - **(E3) Collect**: take the garbage out (the mutex orders every unlink in it before what
//!   follows), then a *heavy fence*, `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, then read
//!   every record (`Acquire`): `oldest` is the least epoch of the active ones. A node tagged
//!   `t < oldest` is released; the others go back to the garbage.
//!
//! `membarrier` returns only once every other thread of the process has a point in its
//! instruction stream, its *barrier point*, such that what it did before the point is visible
//! to the caller after the return, and what it does after the point sees every write the
//! caller saw before the call: the kernel interrupts the CPUs running one with a full memory
//! barrier, and a thread not running passes a context switch (a full barrier) before it runs
//! again. The caller's own pins are in its program order.
//!
//! # Why a node is never released while a pin can reach it
//! Let a collection release a node tagged `t`, and a pin `P` with epoch `e` reach it.
//! - **`e > t`.** `P`'s epoch load read the increment of the node's retirement or a later one;
//!   every change of the epoch is a read-modify-write, so the load synchronizes with that
//!   increment (E2): `P`'s whole walk happens after the retirement, and a walk that happens
//!   after a node's retirement cannot reach it (the contract of [`Guard::defer`], which the
//!   table keeps: the node was unlinked, and a removed node's `next` is frozen, T2).
//! - **`e <= t`, `P`'s barrier point after its record store.** The store is then visible to the
//!   scan, which reads it or a later value of the record. *Active at `e`* keeps the node
//!   (`oldest <= e <= t`): no release. A later value was stored (`Release`) by `P`'s unpin or
//!   after it, by `P`'s thread or by a thread that claimed the record later (the claim's
//!   `Acquire` on `taken` carries the order): the scan's `Acquire` load puts all of `P`'s
//!   accesses before the release.
//! - **`e <= t`, `P`'s barrier point before its record store.** `P`'s walk comes after the
//!   store in its instruction stream (the compiler fence), so after the barrier point, and
//!   sees every write that happened before the collection's `membarrier`, the node's unlink
//!   and retirement included (the garbage mutex orders them before the collection): as in the
//!   first case, it cannot reach the node.
//!
//! So a reader either shows up in the scan or cannot reach an unlinked node. A record claimed
//! by a thread's first pin is pushed onto the list before the pin's store, so the second case
//! finds it. Nested pins keep the outermost one's record and epoch, and their walks come after
//! its store: the argument is the outermost pin's.
//!
//! # Without `membarrier`
//! The first collector of the process (so the first table, before any pin) asks the kernel
//! (`MEMBARRIER_CMD_QUERY`) and registers (`MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`); in a
//! process already running several threads, the kernel waits for an RCU grace period there,
//! milliseconds, once. If either call fails (a kernel older than 4.14, a seccomp filter, a
//! system other than Linux), every pin is followed by a `SeqCst` fence and every collection
//! scans after one: the classic store-buffering pairing, correct, and as costly a pin as a
//! read-modify-write (the cost this scheme removes). Decided once for the process, before any
//! pin, so that a pin never waits for the decision. Should `membarrier` fail after a successful
//! registration (a seccomp filter installed meanwhile), the pins already made without a fence
//! cannot be trusted: the process aborts rather than risk a use after free.
//!
//! # When nodes are released
//! - By the guard that retired a node past the threshold ([`COLLECT_AFTER`] nodes more than
//!   the last collection left), once it has unpinned: a thread's own pin would hold back what
//!   it just retired, so collecting at the retirement itself would free nothing new.
//! - By any thread, every [`COLLECT_EVERY`] of its unpins while the collector has garbage (a
//!   thread-local count: no shared write on the pin path), less often after collections that
//!   freed nothing, so that garbage held back by a long pin does not make every thread issue
//!   `membarrier` again and again.
//! - By [`Collector::collect`] (the table's sweep ends with one) and, for all that is left,
//!   when the collector is dropped: no guard of it is alive then.
//!
//! So the garbage of a collector stays within the threshold plus what live pins hold back, and
//! none of it outlives the collector.
//!
//! # Threads
//! The record a thread claims is released by a thread-local destructor. A pin made from
//! another thread-local's destructor after that one ran claims a record for that pin alone and
//! releases it at the unpin. A pin never waits and takes no lock; a thread's first pin walks
//! the list of records (and allocates one if none is free).

// The unsafe code of the collector: records shared through raw pointers, the `membarrier`
// system call, and the release of the nodes that the table hands over. Every block says why
// it is sound.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::atomic::{compiler_fence, fence};

use parking_lot::Mutex;

use super::table::{Node, release};

/// Retired nodes, past what the last collection left, after which the guard that retires one
/// collects once it has unpinned.
const COLLECT_AFTER: usize = 128;

/// A thread's unpins between two opportunistic collections, while its collector has garbage.
const COLLECT_EVERY: u32 = 1024;

/// At most `COLLECT_EVERY << MAX_BACKOFF` unpins between opportunistic collections, after
/// collections that freed nothing.
const MAX_BACKOFF: u32 = 10;

/// A record's state when its thread is not pinned; *active at `e`* is `e << 1 | 1`.
const IDLE: u64 = 0;

/// The epoch: changed only by [`Guard::defer`], with one increment (E2).
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The head of the list of records.
static RECORDS: AtomicPtr<Record> = AtomicPtr::new(ptr::null_mut());

/// Whether pins and collections use `SeqCst` fences, `membarrier` being unavailable. Set once,
/// by [`fenced`], before any pin.
static FENCED: AtomicBool = AtomicBool::new(false);

/// One thread's pin state, read by collections. Aligned to two cache lines, so that threads'
/// stores to their records do not share a line (or an adjacent-line prefetch pair).
#[repr(align(128))]
struct Record {
    /// `IDLE` or active at an epoch; written only by the thread that claimed the record.
    state: AtomicU64,
    /// Claimed by a thread.
    taken: AtomicBool,
    /// The next record; set before the record is published, never changed after.
    next: *const Record,
}

impl Record {
    /// A record for this thread: a released one, claimed, or a new one pushed onto the list.
    fn claim() -> &'static Record {
        let mut curr = RECORDS.load(Ordering::Acquire);
        // Safety: records are never freed; `next` is immutable once published.
        while let Some(record) = unsafe { curr.as_ref() } {
            if !record.taken.load(Ordering::Relaxed)
                && record
                    .taken
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return record;
            }
            curr = record.next.cast_mut();
        }
        let new = Box::into_raw(Box::new(Record {
            state: AtomicU64::new(IDLE),
            taken: AtomicBool::new(true),
            next: ptr::null(),
        }));
        let mut head = RECORDS.load(Ordering::Relaxed);
        loop {
            // Safety: `new` is ours alone until the compare-and-swap below publishes it.
            unsafe { (*new).next = head };
            match RECORDS.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Relaxed) {
                // Safety: published, never freed.
                Ok(_) => return unsafe { &*new },
                Err(now) => head = now,
            }
        }
    }

    /// Gives the record back for another thread to claim. Its thread is not pinned.
    fn release(&self) {
        debug_assert_eq!(self.state.load(Ordering::Relaxed), IDLE);
        self.taken.store(false, Ordering::Release);
    }
}

/// The least epoch of the active records, or `u64::MAX` if none is active.
fn oldest_pinned() -> u64 {
    let mut oldest = u64::MAX;
    let mut curr = RECORDS.load(Ordering::Acquire);
    // Safety: records are never freed; `next` is immutable once published.
    while let Some(record) = unsafe { curr.as_ref() } {
        let state = record.state.load(Ordering::Acquire);
        if state & 1 == 1 {
            oldest = oldest.min(state >> 1);
        }
        curr = record.next.cast_mut();
    }
    oldest
}

/// Completed once the process is registered for `membarrier`, or found unable to.
static DETECTED: Once = Once::new();

/// Whether pins and collections fall back to `SeqCst` fences: decided on the first call, which
/// registers the process for `membarrier` if it can. The first call may wait (for an RCU grace
/// period of the kernel's, when the process already runs several threads), and so may calls
/// that come meanwhile: only [`Collector::new`] and collections call it, never a pin.
fn fenced() -> bool {
    DETECTED.call_once(|| FENCED.store(!membarrier::register(), Ordering::Relaxed));
    FENCED.load(Ordering::Relaxed)
}

/// The heavy fence of a collection (E3).
fn heavy_fence() {
    fence(Ordering::SeqCst);
    if !fenced() {
        membarrier::barrier();
    }
    fence(Ordering::SeqCst);
}

#[cfg(target_os = "linux")]
mod membarrier {
    use std::io;

    use libc::{
        MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_QUERY,
        MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, SYS_membarrier, c_int, c_long, c_uint,
    };

    fn call(cmd: c_int) -> c_long {
        // Safety: `membarrier(cmd, flags, cpu_id)` reads and writes no user memory; these
        // commands take no flags and ignore `cpu_id`.
        unsafe { libc::syscall(SYS_membarrier, cmd, 0 as c_uint, 0 as c_int) }
    }

    /// Registers the process for private expedited barriers; whether it worked. Under test,
    /// `BYPASS_TEST_EPOCH_FENCED` set makes it fail, to run the fallback.
    pub(super) fn register() -> bool {
        #[cfg(test)]
        if std::env::var_os(super::tests::FENCED_ENV).is_some() {
            return false;
        }
        let commands = call(MEMBARRIER_CMD_QUERY);
        commands >= 0
            && commands & c_long::from(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0
            && call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// A memory barrier on every running thread of the process.
    pub(super) fn barrier() {
        if call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 {
            // Pins made without a fence are only safe with this barrier: stop rather than
            // free what one of them may still read.
            eprintln!(
                "lockfree: membarrier failed after registering ({}); aborting",
                io::Error::last_os_error()
            );
            std::process::abort();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn barrier() {
        unreachable!("never registered");
    }
}

/// A thread's pin state. No destructor: usable while the thread's other thread-locals are
/// being destroyed.
struct Local {
    /// This thread's record, with the [`TEMPORARY`] bit set if it was claimed for the current
    /// outermost pin only; null if none.
    record: Cell<*const Record>,
    /// This thread's live guards.
    nest: Cell<usize>,
    /// Unpins since this thread's last opportunistic collection.
    unpins: Cell<u32>,
}

/// The low bit of [`Local::record`]: a record claimed for one pin (records are aligned).
const TEMPORARY: usize = 1;

/// The record that [`Local::record`] points to.
///
/// # Safety
/// `record` is a value of [`Local::record`], not null.
unsafe fn record<'a>(record: *const Record) -> &'a Record {
    // Safety: a claimed record, never freed (the caller's contract).
    unsafe { &*record.map_addr(|addr| addr & !TEMPORARY) }
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            record: Cell::new(ptr::null()),
            nest: Cell::new(0),
            unpins: Cell::new(0),
        }
    };
    /// Holds the claim of this thread's record; its destructor releases it.
    static CLAIM: Claim = const { Claim };
}

/// The thread-local whose destructor releases the thread's record.
struct Claim;

impl Drop for Claim {
    fn drop(&mut self) {
        // `LOCAL` has no destructor: always there.
        LOCAL.with(|local| {
            debug_assert_eq!(local.nest.get(), 0, "a thread exits pinned");
            let claimed = local.record.replace(ptr::null());
            if !claimed.is_null() {
                // Safety: not null, so this thread's record.
                unsafe { record(claimed) }.release();
            }
        });
    }
}

/// Claims a record for this thread (or, once the thread's destructors ran, for this pin).
#[cold]
#[inline(never)]
fn claim(local: &Local) -> *const Record {
    // Decided when the collector was made (`Collector::new`), before any pin.
    debug_assert!(DETECTED.is_completed());
    // Registers the claim's destructor, unless it already ran.
    let permanent = CLAIM.try_with(|_| ()).is_ok();
    let claimed = ptr::from_ref(Record::claim());
    let claimed = if permanent {
        claimed
    } else {
        claimed.map_addr(|addr| addr | TEMPORARY)
    };
    local.record.set(claimed);
    claimed
}

/// Retired nodes, with the epoch each was retired in.
struct Garbage {
    bag: Vec<Retired>,
    /// The guard that retires a node with the bag this long collects once it has unpinned.
    collect_at: usize,
}

/// A removed node, waiting for the pins that may reach it.
struct Retired {
    epoch: u64,
    node: *mut Node,
}

// Safety: a retired node is reachable only through this pointer (T2) and the pins the
// collector waits for; `Node` is `Send + Sync`, so releasing it on another thread is sound.
unsafe impl Send for Retired {}

/// A table's collector: the garbage its guards retired.
pub(super) struct Collector {
    garbage: Mutex<Garbage>,
    /// The garbage's length, as last written under the lock: read by unpins.
    pending: AtomicUsize,
    /// Collections in a row that freed nothing: spaces out the opportunistic ones.
    fruitless: AtomicU32,
    /// Under test: released nodes are poisoned and kept rather than freed.
    #[cfg(test)]
    quarantine: Option<Mutex<Vec<super::sync::Arc<Node>>>>,
}

impl Collector {
    /// A collector with no garbage. The first of the process decides how pins fence
    /// ([`fenced`]), so that no pin ever waits for that.
    pub(super) fn new() -> Collector {
        fenced();
        Collector {
            garbage: Mutex::new(Garbage {
                bag: Vec::new(),
                collect_at: COLLECT_AFTER,
            }),
            pending: AtomicUsize::new(0),
            fruitless: AtomicU32::new(0),
            #[cfg(test)]
            quarantine: None,
        }
    }

    /// Under test: a collector that poisons the nodes it releases for the last time and keeps
    /// them until dropped, so that a read through a stale pointer fails a check
    /// (`Link::check`) instead of reading freed memory.
    #[cfg(test)]
    pub(super) fn quarantining() -> Collector {
        let mut collector = Collector::new();
        collector.quarantine = Some(Mutex::new(Vec::new()));
        collector
    }

    /// Pins this thread: what it loads from the table stays valid until the guard is dropped.
    /// Never waits; no read-modify-write and no fence instruction, except on the thread's first
    /// pin and without `membarrier`.
    #[inline]
    pub(super) fn pin(&self) -> Guard<'_> {
        LOCAL.with(|local| {
            let nest = local.nest.get();
            if nest == 0 {
                let mut claimed = local.record.get();
                if claimed.is_null() {
                    claimed = claim(local);
                }
                // E1.
                let epoch = EPOCH.load(Ordering::Acquire);
                // Safety: not null, so this thread's record.
                unsafe { record(claimed) }
                    .state
                    .store(epoch << 1 | 1, Ordering::Release);
                if FENCED.load(Ordering::Relaxed) {
                    fence(Ordering::SeqCst);
                } else {
                    compiler_fence(Ordering::SeqCst);
                }
            }
            local.nest.set(nest + 1);
        });
        Guard {
            collector: self,
            due: Cell::new(false),
            _thread: PhantomData,
        }
    }

    /// Releases the garbage that no pin can reach any more (E3).
    #[cold]
    #[inline(never)]
    pub(super) fn collect(&self) {
        let bag = {
            let mut garbage = self.garbage.lock();
            if garbage.bag.is_empty() {
                return;
            }
            std::mem::take(&mut garbage.bag)
        };
        heavy_fence();
        let oldest = oldest_pinned();
        let (free, keep): (Vec<Retired>, Vec<Retired>) =
            bag.into_iter().partition(|retired| retired.epoch < oldest);
        {
            let mut garbage = self.garbage.lock();
            garbage.bag.extend(keep);
            garbage.collect_at = garbage.bag.len() + COLLECT_AFTER;
            self.pending.store(garbage.bag.len(), Ordering::Relaxed);
        }
        let fruitless = if free.is_empty() {
            self.fruitless.load(Ordering::Relaxed).saturating_add(1)
        } else {
            0
        };
        self.fruitless.store(fruitless, Ordering::Relaxed);
        for retired in free {
            // Safety: retired once (E2), unlinked before, and no pin that may reach it is
            // left (the argument in the module documentation).
            unsafe { self.release(retired.node) };
        }
    }

    /// Gives up the list's count of `node`.
    ///
    /// # Safety
    /// As [`release`].
    unsafe fn release(&self, node: *mut Node) {
        #[cfg(test)]
        if let Some(quarantine) = &self.quarantine {
            // Safety: the caller's contract.
            if let Some(node) = unsafe { super::table::poison(node) } {
                quarantine.lock().push(node);
            }
            return;
        }
        // Safety: the caller's contract.
        unsafe { release(node) };
    }

    /// Whether this thread's opportunistic collection is due, counting this unpin.
    #[inline]
    fn tick(&self, local: &Local) -> bool {
        let unpins = local.unpins.get() + 1;
        let backoff = self.fruitless.load(Ordering::Relaxed).min(MAX_BACKOFF);
        let due = unpins >= COLLECT_EVERY << backoff;
        local.unpins.set(if due { 0 } else { unpins });
        due
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // No guard of this collector is alive: nothing can reach its garbage.
        for retired in std::mem::take(&mut self.garbage.get_mut().bag) {
            // Safety: retired once, unlinked, and no pin is left.
            unsafe { self.release(retired.node) };
        }
    }
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A pinned thread: what it loaded from the table stays valid until this is dropped. Not
/// `Send`: it is this thread's pin.
pub(super) struct Guard<'a> {
    collector: &'a Collector,
    /// Set when this guard retired a node past the collector's threshold.
    due: Cell<bool>,
    _thread: PhantomData<*mut ()>,
}

impl Guard<'_> {
    /// Releases the list's count of `node` once every thread pinned now has unpinned.
    ///
    /// # Safety
    /// `node` was just unlinked, by this thread, and is retired once: a walk that happens
    /// after this call cannot reach it, only pins that may have started before it.
    pub(super) unsafe fn defer(&self, node: *mut Node) {
        // E2: after the unlink.
        let epoch = EPOCH.fetch_add(1, Ordering::AcqRel);
        let mut garbage = self.collector.garbage.lock();
        garbage.bag.push(Retired { epoch, node });
        let len = garbage.bag.len();
        self.collector.pending.store(len, Ordering::Relaxed);
        if len >= garbage.collect_at {
            self.due.set(true);
        }
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        let collect = LOCAL.with(|local| {
            let nest = local.nest.get() - 1;
            local.nest.set(nest);
            if nest != 0 {
                return false;
            }
            let claimed = local.record.get();
            // Safety: pinned, so this thread has a record.
            let record = unsafe { record(claimed) };
            // E1: the unpin.
            record.state.store(IDLE, Ordering::Release);
            if claimed.addr() & TEMPORARY != 0 {
                local.record.set(ptr::null());
                record.release();
            }
            self.due.get()
                || (self.collector.pending.load(Ordering::Relaxed) != 0
                    && self.collector.tick(local))
        });
        if collect {
            self.collector.collect();
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Set in a test process's environment, pins and collections use the `SeqCst` fallback.
    pub(crate) const FENCED_ENV: &str = "BYPASS_TEST_EPOCH_FENCED";

    #[test]
    fn membarrier_is_used_unless_told_not_to() {
        let told = std::env::var_os(FENCED_ENV).is_some();
        if told {
            assert!(fenced(), "{FENCED_ENV} is set, yet pins do not fence");
        } else if cfg!(target_os = "linux") {
            // This machine's kernel has `membarrier`; a sandbox without it would fail here,
            // which is worth knowing, as every pin then costs a fence.
            assert!(
                !fenced(),
                "membarrier unavailable: pins fall back to fences"
            );
        }
    }

    #[test]
    fn nested_pins_keep_the_outer_epoch() {
        let collector = Collector::new();
        let outer = collector.pin();
        let state = || {
            // Safety: pinned, so this thread has a record.
            unsafe { record(LOCAL.with(|local| local.record.get())) }
                .state
                .load(Ordering::Relaxed)
        };
        let pinned = state();
        assert_eq!(pinned & 1, 1, "active");
        EPOCH.fetch_add(1, Ordering::AcqRel);
        let inner = collector.pin();
        assert_eq!(state(), pinned, "a nested pin changes nothing");
        drop(inner);
        assert_eq!(state(), pinned, "nor does its unpin");
        drop(outer);
        assert_eq!(state(), IDLE);
    }

    /// A thread's record is released when it exits and claimed again by the next thread;
    /// a pin from a thread-local destructor that runs after the claim's works, and gives its
    /// record back at the unpin.
    #[test]
    fn records_are_reused_and_pins_work_from_late_destructors() {
        static LATE_PINS: AtomicUsize = AtomicUsize::new(0);
        struct Late(&'static Collector);
        impl Drop for Late {
            fn drop(&mut self) {
                // Registered before `CLAIM` (see below), so destroyed after it. No panic
                // here (it would abort): the test thread checks the count.
                let gone = CLAIM.try_with(|_| ()).is_err();
                let guard = self.0.pin();
                let temporary = LOCAL.with(|local| local.record.get()).addr() & TEMPORARY != 0;
                drop(guard);
                let given_back = LOCAL.with(|local| local.record.get()).is_null();
                if gone && temporary && given_back {
                    LATE_PINS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        thread_local! {
            static LATE: Cell<Option<Late>> = const { Cell::new(None) };
        }
        let collector: &'static Collector = Box::leak(Box::new(Collector::new()));
        for _ in 0..3 {
            std::thread::spawn(move || {
                // Destructors run in the reverse order of their registration: `LATE`'s,
                // registered before the pin registers the claim's, runs after it.
                LATE.with(|late| late.set(Some(Late(collector))));
                drop(collector.pin());
            })
            .join()
            .unwrap();
        }
        assert_eq!(LATE_PINS.load(Ordering::Relaxed), 3);

        let records = || {
            let mut n = 0;
            let mut curr = RECORDS.load(Ordering::Acquire);
            // Safety: records are never freed.
            while let Some(record) = unsafe { curr.as_ref() } {
                n += 1;
                curr = record.next.cast_mut();
            }
            n
        };
        // Other tests' threads pin meanwhile, so the list may grow by as many as they run at
        // once; without reuse, each of these threads would add one.
        let before = records();
        for _ in 0..64 {
            std::thread::spawn(move || drop(collector.pin()))
                .join()
                .unwrap();
        }
        let grown = records() - before;
        assert!(
            grown < 32,
            "{grown} records added by 64 threads, one at a time"
        );
    }
}
