//! The synchronization primitives of [`lockfree`](super), switched on `cfg(loom)`.
//!
//! Everything the backend's own concurrency is built from comes through here: the per-token
//! lock, the `Arc` that keeps a token's node alive and the table's atomic pointers (the
//! population counters are plain statistics, outside the model). Under `--cfg loom` they
//! are loom's, so the loom models in `strategies/tests/loom.rs` explore every interleaving of
//! them; otherwise they are parking_lot's lock (never poisoned, one byte) and std's atomics.
//!
//! The participants' own `Arc`s are always std's: they come from the
//! [`Registry`](bypass_registry::Registry) API and are not part of the modelled state.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicPtr, Ordering};

    /// A guard of [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    /// A mutex that is never poisoned: a panic under it cannot wedge a token.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(parking_lot::Mutex::new(value))
        }

        /// Waits for the lock.
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }

        /// Takes the lock if it is free, without waiting.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }

        /// The value, through an exclusive borrow: no locking.
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut()
        }
    }
}

#[cfg(loom)]
mod imp {
    use std::sync::{PoisonError, TryLockError};

    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{AtomicPtr, Ordering};

    /// A guard of [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    /// loom's mutex, with poisoning ignored as parking_lot's lock does.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Mutex<T> {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Waits for the lock.
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Takes the lock if it is free, without waiting.
        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        }

        /// The value, through an exclusive borrow: no locking.
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
        }
    }
}

pub(crate) use imp::*;
