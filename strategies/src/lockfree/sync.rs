//! The synchronization primitives of [`lockfree`](super), switched on `cfg(loom)`.
//!
//! Everything the backend's own concurrency is built from comes through here: the `Arc` that
//! keeps a token's node alive while a writer waits for its lock, the atomics of the lists and
//! of each node's state word, the cells that hold a token's participants, and how a writer
//! waits for a token's lock. Under `--cfg loom` they are loom's, so the loom models in
//! `strategies/tests/loom.rs` explore every interleaving of them (and loom's cells check that
//! no participant slot is written while another thread reads it), and waiters park in a
//! modelled parking lot, so a lost wake-up is a deadlock loom reports; otherwise they are
//! std's, with waiters parked on the state word's address by parking_lot_core.
//!
//! The participants' own `Arc`s are always std's: they come from the
//! [`Registry`](bypass_registry::Registry) API. The population counters are plain statistics,
//! outside the model.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    /// A cell written only by the holder of a token's lock, read by it and by readers the
    /// state word admits (see `slot.rs`). Loom's `UnsafeCell` API, so that both builds share
    /// the code that touches it.
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// The value, out of the cell.
        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner()
        }

        /// Calls `f` with a pointer to read the value through.
        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Calls `f` with a pointer to change the value through.
        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// Spins this many rounds for a token's lock before parking: a register or unregister
    /// without callbacks holds it for well under a microsecond.
    const SPINS: u32 = 64;

    /// Waits on `word` while `blocked` says the lock is held: spins a little, then (once
    /// `announce` has flagged a parked waiter in the word) parks until `wake` is called for
    /// `word`. Returns to retry the lock whenever it may have been released.
    #[cold]
    #[allow(unsafe_code)] // parking_lot_core's park
    pub(crate) fn wait(
        word: &AtomicUsize,
        spins: &mut u32,
        announce: impl FnOnce() -> bool,
        still_blocked: impl Fn() -> bool,
    ) {
        if *spins < SPINS {
            *spins += 1;
            if *spins < SPINS / 2 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            return;
        }
        if !announce() {
            return;
        }
        let key = std::ptr::from_ref(word).addr();
        // Safety: `key` is the address of the word, which outlives the park (the caller holds
        // the node it belongs to); the callbacks neither panic nor call into parking_lot_core.
        unsafe {
            parking_lot_core::park(
                key,
                still_blocked,
                || {},
                |_, _| {},
                parking_lot_core::DEFAULT_PARK_TOKEN,
                None,
            );
        }
    }

    /// A load in a wait loop: the hardware makes every store visible in time.
    #[inline]
    pub(crate) fn latest(word: &AtomicUsize, order: Ordering) -> usize {
        word.load(order)
    }

    /// One round of a busy wait that lasts nanoseconds (a reader leaving a participant slot).
    #[inline]
    pub(crate) fn spin() {
        std::hint::spin_loop();
    }

    /// Wakes one waiter parked on `word`; `last` runs (inside the park queue's lock) if no
    /// other waiter is left, to clear the word's parked flag.
    #[cold]
    #[allow(unsafe_code)] // parking_lot_core's unpark
    pub(crate) fn wake(word: &AtomicUsize, last: impl FnOnce()) {
        let key = std::ptr::from_ref(word).addr();
        let mut last = Some(last);
        // Safety: the callback neither panics nor calls into parking_lot_core.
        unsafe {
            parking_lot_core::unpark_one(key, |result| {
                if !result.have_more_threads {
                    if let Some(last) = last.take() {
                        last();
                    }
                }
                parking_lot_core::DEFAULT_UNPARK_TOKEN
            });
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

    use loom::sync::Mutex;
    use loom::thread::Thread;

    loom::lazy_static! {
        /// The parked waiters of the model, by the address of the word they wait on: the
        /// parking lot, with one queue lock as parking_lot_core has per bucket. New for each
        /// execution of a model.
        static ref PARKED: Mutex<Vec<(usize, Thread)>> = Mutex::new(Vec::new());
    }

    /// Under loom, a waiter parks at once (no spinning): it announces itself in the word,
    /// then, under the queue lock, checks that the word still says it must wait (as
    /// parking_lot_core's `validate`), queues and sleeps until [`wake`] picks it. A wake that
    /// is missed (a release that does not see the parked flag, or a flag cleared with a waiter
    /// still queued) leaves it asleep, and loom reports the deadlock. No spurious wake-ups:
    /// loom's `park` returns only after an `unpark` (parking_lot_core's, without a timeout,
    /// likewise).
    pub(crate) fn wait(
        word: &AtomicUsize,
        _: &mut u32,
        announce: impl FnOnce() -> bool,
        still_blocked: impl Fn() -> bool,
    ) {
        if !announce() {
            return;
        }
        let key = std::ptr::from_ref(word).addr();
        {
            let mut parked = PARKED.lock().unwrap();
            if !still_blocked() {
                return;
            }
            parked.push((key, loom::thread::current()));
        }
        // An unpark between the queue lock's release and this park is kept for it.
        loom::thread::park();
    }

    /// A load in a wait loop, under loom: a read-modify-write, which reads the latest value
    /// (a plain load may return a stale one each time, and loom would explore a wait that
    /// never ends, which no hardware does).
    pub(crate) fn latest(word: &AtomicUsize, order: Ordering) -> usize {
        word.fetch_add(0, order)
    }

    /// Under loom, a busy wait yields, so that loom runs the thread waited for.
    pub(crate) fn spin() {
        loom::thread::yield_now();
    }

    /// Wakes the first waiter queued on `word`; `last` runs under the queue lock if no other
    /// is left (as parking_lot_core's `unpark_one` callback).
    pub(crate) fn wake(word: &AtomicUsize, last: impl FnOnce()) {
        let key = std::ptr::from_ref(word).addr();
        let woken = {
            let mut parked = PARKED.lock().unwrap();
            let woken = parked
                .iter()
                .position(|(k, _)| *k == key)
                .map(|i| parked.remove(i).1);
            if !parked.iter().any(|(k, _)| *k == key) {
                last();
            }
            woken
        };
        if let Some(thread) = woken {
            thread.unpark();
        }
    }
}

pub(crate) use imp::*;
