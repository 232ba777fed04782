//! A counter that many threads update without sharing a cache line and without an atomic
//! read-modify-write: the population of the scalable backends, written by every register and
//! unregister, read only by `population`.
//!
//! One shared atomic would make every register and unregister of every thread write the same
//! cache line, and that line's bouncing between cores cost more than the rest of a
//! connect+disconnect cycle on disjoint tokens (measured with criterion's `cycle_threads`).
//! Cells shared by a few threads (stripes) avoid the bouncing but still need a locked
//! `fetch_add` per update, about 7–8 ns on the machine the backends were measured on, a few
//! times per cycle. So each thread gets a cell of its own in each counter: the cell has one
//! writer, and an update is a plain load and store (Relaxed), no `lock` prefix. A read sums
//! the cells.
//!
//! # Finding a thread's cell
//! Every thread that counts holds a **thread index**, the lowest one free when it first
//! counts, given back when the thread exits ([`index`]). A counter keeps its cells in buckets
//! allocated on first use, bucket `b` holding the `2^b` cells of indices `2^b - 1 ..
//! 2^(b+1) - 1`, so a thread finds its cell with one thread-local load and two loads of the
//! counter, whatever the number of threads, and a counter has as many cells as the most
//! threads that were alive at once (rounded up to a power of two), not as threads ever ran.
//!
//! The price is on the other side: a cell is a cache line (128 bytes with the padding), so a
//! counter takes 4 KiB once 16 threads have counted at once and 256 KiB at 1,024, and a read
//! loads every cell, where 16 shared stripes took 2 KiB and 16 loads whatever the threads.
//! Reads (`population`, a bus's bound counts) are statistics, rare next to the writes.
//!
//! # Invariants
//! 1. **One writer per cell.** An index belongs to at most one thread at a time: handed out
//!    and given back under one mutex, and a thread that gave its index back never uses it
//!    again. Only the owner of index `i` writes cell `i` of any counter, so its load and
//!    store cannot lose another thread's update.
//! 2. **No count is lost when a thread exits.** The cells outlive the thread: the next thread
//!    that gets the index takes the cell over, value included, and goes on adding to it. The
//!    mutex orders the old owner's last store before the new owner's first load.
//! 3. **Counting never fails, not even from a thread-local destructor.** The index is given
//!    back by a thread-local's destructor; a call that comes after it (another thread-local's
//!    destructor that calls the registry), or one whose thread can no longer register that
//!    destructor, has no index, and adds to the counter's one shared cell with an atomic
//!    read-modify-write instead. Nothing on the way panics or allocates, except a counter's
//!    first use of a bucket.
//!
//! A read loads every cell (Relaxed) and sums: exact when no update is in flight; otherwise
//! each cell is read once, before or after each update in flight to it, so the sum is one
//! that the updates in flight could have produced.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicIsize, Ordering};

use bypass_registry::Population;
use bypass_registry::pair::{Hold, Pair};
use crossbeam_utils::CachePadded;

/// Buckets per counter: room for `2^BUCKETS - 1` threads alive at once, the largest bucket
/// 64 MiB. Threads past that (never seen) count through the shared cell.
const BUCKETS: usize = 20;

/// The thread indices: the lowest free one for a thread that starts counting, given back
/// when it exits (invariants 1 to 3 of the [module](self)).
pub(crate) mod index {
    use std::cell::Cell;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::sync::{Mutex, PoisonError};

    /// No index yet: the thread has not counted.
    const UNSET: usize = usize::MAX;
    /// Index given back (or never to be had): the thread is exiting.
    const GONE: usize = usize::MAX - 1;

    /// The indices handed out: all below `next`, except those given back to `free`.
    struct Indices {
        next: usize,
        free: BinaryHeap<Reverse<usize>>,
    }

    static INDICES: Mutex<Indices> = Mutex::new(Indices {
        next: 0,
        free: BinaryHeap::new(),
    });

    thread_local! {
        // No destructor: readable until the thread is gone, even from other thread-locals'
        // destructors.
        static INDEX: Cell<usize> = const { Cell::new(UNSET) };
        // Gives the index back when the thread exits.
        static RELEASE: Release = const { Release };
    }

    struct Release;

    impl Drop for Release {
        fn drop(&mut self) {
            give_back();
        }
    }

    /// This thread's index, or `None` once it gave it back (or could not get one): count
    /// through the shared cell then.
    #[inline]
    pub(crate) fn current() -> Option<usize> {
        match INDEX.with(Cell::get) {
            UNSET => claim(),
            GONE => None,
            index => Some(index),
        }
    }

    /// Takes the lowest free index, once `RELEASE`'s destructor is set to give it back. During
    /// the thread's exit, if that destructor already ran (or can no longer be set), no index.
    #[cold]
    fn claim() -> Option<usize> {
        if RELEASE.try_with(|_| ()).is_err() {
            INDEX.with(|i| i.set(GONE));
            return None;
        }
        let mut indices = INDICES.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match indices.free.pop() {
            Some(Reverse(index)) => index,
            None => {
                indices.next += 1;
                indices.next - 1
            }
        };
        drop(indices);
        INDEX.with(|i| i.set(index));
        Some(index)
    }

    /// Gives this thread's index back, for good: from here on it counts through the shared
    /// cells. Run by `RELEASE`'s destructor; tests call it to exercise that path.
    pub(crate) fn give_back() {
        let index = INDEX.with(|i| i.replace(GONE));
        if index < GONE {
            // The mutex orders this thread's last stores to its cells before the first loads
            // of the next thread that takes the index (invariant 2).
            let mut indices = INDICES.lock().unwrap_or_else(PoisonError::into_inner);
            indices.free.push(Reverse(index));
        }
    }
}

/// The bucket of index `i` and its place there.
#[inline]
fn locate(index: usize) -> (usize, usize) {
    let bucket = (index + 1).ilog2() as usize;
    (bucket, index + 1 - (1 << bucket))
}

type Cells = Box<[CachePadded<AtomicIsize>]>;

/// A count spread over per-thread cells, each written only by its thread (see the
/// [module](self)). A cell may go negative (one thread counts a participant in, another counts
/// it out); the sum never does while every decrement follows its increment.
pub(crate) struct PerThread {
    buckets: [OnceLock<Cells>; BUCKETS],
    /// The cell of threads without an index: updated with read-modify-writes.
    shared: CachePadded<AtomicIsize>,
}

impl PerThread {
    pub(crate) fn new() -> PerThread {
        PerThread {
            buckets: std::array::from_fn(|_| OnceLock::new()),
            shared: CachePadded::new(AtomicIsize::new(0)),
        }
    }

    // Relaxed throughout: the counts are statistics; no other memory is published through
    // them.
    #[inline]
    pub(crate) fn increment(&self) {
        self.add(1);
    }

    #[inline]
    pub(crate) fn decrement(&self) {
        self.add(-1);
    }

    /// Adds `n`: a load and a store of this thread's cell, no read-modify-write (invariant 1).
    #[inline]
    pub(crate) fn add(&self, n: isize) {
        match self.mine() {
            Some(cell) => cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            ),
            None => {
                self.shared.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// This thread's cell, `None` if it has no index (invariant 3).
    #[inline]
    fn mine(&self) -> Option<&AtomicIsize> {
        let (bucket, at) = locate(index::current()?);
        let slot = self.buckets.get(bucket)?;
        let cells = match slot.get() {
            Some(cells) => cells,
            None => Self::allocate(slot, bucket),
        };
        Some(&cells[at])
    }

    /// A bucket's first use: its cells, zeroed.
    #[cold]
    fn allocate(slot: &OnceLock<Cells>, bucket: usize) -> &Cells {
        slot.get_or_init(|| {
            (0..1usize << bucket)
                .map(|_| CachePadded::new(AtomicIsize::new(0)))
                .collect()
        })
    }

    /// The sum: exact when no update is in flight; otherwise the cells are read one after
    /// another, so the sum is one that the updates in flight could have produced.
    pub(crate) fn get(&self) -> usize {
        let sum: isize = self
            .buckets
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|cells| cells.iter())
            .chain(std::iter::once(&self.shared))
            .map(|cell| cell.load(Ordering::Relaxed))
            .fold(0, isize::wrapping_add);
        usize::try_from(sum).unwrap_or(0)
    }
}

/// A [`Hold`] of one [`PerThread`] counter per side: a backend's population, counted by
/// [`Role`](bypass_registry::pair::Role) as it registers and unregisters.
pub(crate) struct PerSide;

impl Hold for PerSide {
    type Of<T: ?Sized + 'static> = PerThread;
}

/// The two counters of a population.
pub(crate) type Counts = Pair<PerSide>;

/// Empty counters.
pub(crate) fn counts() -> Counts {
    Pair {
        producer: PerThread::new(),
        consumer: PerThread::new(),
    }
}

/// The population the counters give: exact when no register or unregister is in flight,
/// each count between its values before and after the calls in flight otherwise.
pub(crate) fn population(counts: &Counts) -> Population {
    Population {
        producers: counts.producer.get(),
        consumers: counts.consumer.get(),
    }
}

impl std::fmt::Debug for PerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sums_across_threads() {
        let c = PerThread::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.increment();
                    }
                });
            }
        });
        assert_eq!(c.get(), 8000);
        // Counted out by other threads than counted in.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        c.decrement();
                    }
                });
            }
        });
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn places_every_index_once() {
        let mut seen = std::collections::HashSet::new();
        for index in 0..(1 << 12) - 1 {
            let (bucket, at) = locate(index);
            assert!(
                at < 1 << bucket,
                "index {index}: {at} outside bucket {bucket}"
            );
            assert!(seen.insert((bucket, at)), "index {index} shares a cell");
        }
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(2), (1, 1));
        assert_eq!(locate(3), (2, 0));
    }

    /// The cells in use: allocated, so at least as many as the highest index that counted.
    fn cells(c: &PerThread) -> usize {
        c.buckets
            .iter()
            .filter_map(OnceLock::get)
            .map(|b| b.len())
            .sum()
    }

    /// A thread that exits keeps its counts, and the next thread takes its cell over: 1,000
    /// threads one after another, each counting once, leave an exact sum and the cells of the
    /// few threads alive at once, not 1,000 (without reuse, the indices would reach 999 and a
    /// counter 1,023 cells). Other tests of the process run meanwhile, so "few" is loose.
    #[test]
    fn exited_threads_keep_their_counts_and_hand_their_cells_on() {
        let c = Arc::new(PerThread::new());
        for i in 0..1000 {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    c.add(3);
                } else {
                    c.decrement();
                }
            })
            .join()
            .unwrap();
        }
        assert_eq!(c.get(), 500 * 3 - 500);
        assert!(
            cells(&c) < 256,
            "{} cells for threads run one at a time",
            cells(&c)
        );
    }

    /// A thread without its index (as in a thread-local destructor that runs after the one that
    /// gave it back) counts through the shared cell, and the sum stays exact.
    #[test]
    fn a_thread_without_an_index_counts_through_the_shared_cell() {
        let c = PerThread::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                c.add(5);
                index::give_back();
                assert_eq!(index::current(), None);
                c.decrement();
                c.decrement();
            });
        });
        assert_eq!(c.shared.load(Ordering::Relaxed), -2);
        assert_eq!(c.get(), 3);
    }

    /// Counting from thread-local destructors, registered before and after the thread's first
    /// count (destructors run in an unspecified order, so one of the two may run after the
    /// index was given back): no panic, no abort, and no count lost.
    #[test]
    fn counts_from_thread_local_destructors() {
        struct CountOnDrop(std::cell::RefCell<Option<Arc<PerThread>>>);
        impl Drop for CountOnDrop {
            fn drop(&mut self) {
                if let Some(c) = self.0.borrow_mut().take() {
                    c.increment();
                }
            }
        }
        thread_local! {
            static FIRST: CountOnDrop = const { CountOnDrop(std::cell::RefCell::new(None)) };
            static LAST: CountOnDrop = const { CountOnDrop(std::cell::RefCell::new(None)) };
        }
        let c = Arc::new(PerThread::new());
        for _ in 0..4 {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                FIRST.with(|d| *d.0.borrow_mut() = Some(Arc::clone(&c)));
                c.increment();
                LAST.with(|d| *d.0.borrow_mut() = Some(Arc::clone(&c)));
            })
            .join()
            .unwrap();
        }
        // A thread whose first count comes from a destructor.
        let c2 = Arc::clone(&c);
        std::thread::spawn(move || FIRST.with(|d| *d.0.borrow_mut() = Some(c2)))
            .join()
            .unwrap();
        assert_eq!(c.get(), 4 * 3 + 1);
    }
}
