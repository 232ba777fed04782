//! A counter that many threads update without sharing a cache line: the population of the
//! scalable backends, written by every register and unregister, read only by `population`.
//!
//! One shared atomic would make every register and unregister of every thread write the same
//! cache line, and that line's bouncing between cores cost more than the rest of a
//! connect+disconnect cycle on disjoint tokens (measured with criterion's `cycle_threads`).
//! Each thread writes instead to one of [`STRIPES`] padded cells, chosen once per thread; a
//! read sums them.

use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use bypass_registry::Population;
use bypass_registry::pair::{Hold, Pair};
use crossbeam_utils::CachePadded;

/// Cells per counter: more than the cores this is expected to run on, so that threads rarely
/// share one; 2 KiB per counter.
const STRIPES: usize = 16;

/// The cell this thread writes, assigned round robin as threads first count.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

/// A count spread over per-thread cells. A cell may go negative (one thread counts a
/// participant in, another counts it out); the sum never does while every decrement follows
/// its increment.
pub(crate) struct Striped([CachePadded<AtomicIsize>; STRIPES]);

impl Striped {
    pub(crate) fn new() -> Striped {
        Striped(std::array::from_fn(|_| {
            CachePadded::new(AtomicIsize::new(0))
        }))
    }

    // Relaxed: the counts are statistics; no other memory is published through them.
    pub(crate) fn increment(&self) {
        self.0[stripe()].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub(crate) fn add(&self, n: isize) {
        self.0[stripe()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn decrement(&self) {
        self.0[stripe()].fetch_sub(1, Ordering::Relaxed);
    }

    /// The sum: exact when no update is in flight; otherwise the cells are read one after
    /// another, so the sum is one that the updates in flight could have produced.
    pub(crate) fn get(&self) -> usize {
        let sum: isize = self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        usize::try_from(sum).unwrap_or(0)
    }
}

/// A [`Hold`] of one [`Striped`] counter per side: a backend's population, counted by
/// [`Role`](bypass_registry::pair::Role) as it registers and unregisters.
pub(crate) struct PerSide;

impl Hold for PerSide {
    type Of<T: ?Sized + 'static> = Striped;
}

/// The two counters of a population.
pub(crate) type Counts = Pair<PerSide>;

/// Empty counters.
pub(crate) fn counts() -> Counts {
    Pair {
        producer: Striped::new(),
        consumer: Striped::new(),
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

impl std::fmt::Debug for Striped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_threads() {
        let c = Striped::new();
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
}
