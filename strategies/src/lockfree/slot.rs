//! A token's state word: the per-token state machine of [`lockfree`](super), one atomic word
//! in the token's [`Node`](super::table::Node) beside the two participant slots it guards.
//!
//! # The word
//! ```text
//!  63 ............ 5    4        3       2        1          0
//! [ readers      ] [retired] [parked] [locked] [consumer] [producer]
//! ```
//! - **producer**, **consumer**: whether that side is registered. `is_paired` is one load of
//!   the word.
//! - **locked**: the token's lock, held by a register or unregister from its decision to its
//!   end, across the token's callbacks; **parked**: a writer sleeps waiting for it.
//! - **retired**: the node was claimed for removal while empty (see the table); it never
//!   holds a participant again, and a writer that locks it starts over from the table.
//! - **readers**: how many `producer`/`consumer` reads are cloning a participant out of its
//!   slot right now, each for the few instructions of an `Arc` clone.
//!
//! # Who does what
//! - A **reader** of one side enters by a compare-and-swap that adds one reader, only if that
//!   side's bit is set; clones the participant; leaves (subtracts one). It waits for no one:
//!   a failed compare-and-swap means the word changed, and it looks again.
//! - A **writer** holds the lock. To **store** a participant it writes the side's slot (no
//!   reader reads a slot whose bit is clear), then sets the bit in the same atomic step that
//!   releases the lock. To **take** one out it clears the bit (new readers stay out), waits
//!   for the readers already in to leave, then moves the participant out of the slot.
//! - The **table** claims an empty node for removal by one compare-and-swap from the word
//!   `0` (empty, unlocked, no reader, no waiter) to `locked | retired`.
//!
//! # Invariants
//! 1. **One live node per token.** The table holds at most one unremoved node per token; a
//!    node enters the table only by an insert that finds the token absent, with its first
//!    participant already in it, and leaves only after it was retired.
//! 2. **A retired node stays retired.** `retired` is set once, by the claim above, which
//!    needs the lock free and the node empty; it is never cleared. A writer that holds the
//!    lock of a node it found and sees `retired` clear knows the node is the token's live one
//!    and stays in the table until the lock is released: retiring needs the lock.
//! 3. **Only the lock holder changes a node's participants.** A slot is written only with the
//!    lock held: stored while its bit is clear, taken once its bit is clear and its readers
//!    are gone. So the slots are the truth, and the bits say which of them readers may read.
//! 4. **A participant is never read after it was taken.** A reader reads a slot only between
//!    entering (the bit set, atomically with its count) and leaving; a take clears the bit and
//!    waits for the count to drain before moving the participant out.
//! 5. **The registry holds no reference to a departed participant, strong or weak.** A slot
//!    holds the registry's only reference; a take moves it out and hands it back, and an
//!    emptied node keeps none. Nothing is retired with a participant in it.
//! 6. **Nothing is dropped under the lock.** A participant leaves the registry only by being
//!    handed back to the caller, who drops it after the lock is released.

use super::sync::{self, AtomicUsize, Ordering};

/// The producer's presence bit.
pub(crate) const PRODUCER: usize = 1;
/// The consumer's presence bit.
pub(crate) const CONSUMER: usize = 2;
/// Both presence bits: the token is paired when the word has both.
pub(crate) const PAIRED: usize = PRODUCER | CONSUMER;
const LOCKED: usize = 4;
const PARKED: usize = 8;
const RETIRED: usize = 16;
/// One reader in the count.
const READER: usize = 32;

/// A token's state word. See the [module documentation](self).
#[derive(Debug)]
pub(crate) struct Word(AtomicUsize);

impl Word {
    /// A word with the presence bits `present`, unlocked: a new node's.
    pub(crate) fn new(present: usize) -> Word {
        Word(AtomicUsize::new(present & PAIRED))
    }

    /// The presence bits as of now: one load.
    #[inline]
    pub(crate) fn present(&self) -> usize {
        self.0.load(Ordering::Acquire) & PAIRED
    }

    /// Takes the lock if no one holds it: one compare-and-swap.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut word = self.0.load(Ordering::Relaxed);
        while word & LOCKED == 0 {
            match self
                .0
                .compare_exchange(word, word | LOCKED, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                // A reader came or went: look again.
                Err(now) => word = now,
            }
        }
        false
    }

    /// Waits for the lock: spins briefly, then parks until the holder releases it.
    pub(crate) fn lock(&self) {
        if self.try_lock() {
            return;
        }
        let mut spins = 0;
        loop {
            let word = sync::latest(&self.0, Ordering::Relaxed);
            if word & LOCKED == 0 {
                if self.try_lock() {
                    return;
                }
                continue;
            }
            sync::wait(
                &self.0,
                &mut spins,
                || {
                    word & PARKED != 0
                        || self
                            .0
                            .compare_exchange(
                                word,
                                word | PARKED,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                },
                || self.0.load(Ordering::Relaxed) & (LOCKED | PARKED) == LOCKED | PARKED,
            );
        }
    }

    /// Whether the node was retired (invariant 2). Meaningful with the lock held.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.0.load(Ordering::Relaxed) & RETIRED != 0
    }

    /// Releases the lock and, in the same atomic step, sets the presence bits `publish`
    /// (clear until now): the linearization point of a register. Wakes a parked waiter.
    #[inline]
    pub(crate) fn unlock(&self, publish: usize) {
        debug_assert!(publish & !PAIRED == 0 && publish & self.present() == 0);
        let before = self.0.fetch_sub(LOCKED - publish, Ordering::Release);
        debug_assert!(before & LOCKED != 0, "unlock of a free token lock");
        if before & PARKED != 0 {
            sync::wake(&self.0, || {
                self.0.fetch_and(!PARKED, Ordering::Relaxed);
            });
        }
    }

    /// A reader enters `side`'s slot if that side is present; it must [`Word::leave`] after.
    #[inline]
    pub(crate) fn enter(&self, side: usize) -> bool {
        let mut word = self.0.load(Ordering::Relaxed);
        while word & side != 0 {
            match self
                .0
                .compare_exchange(word, word + READER, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
        false
    }

    /// A reader leaves the slot it entered.
    #[inline]
    pub(crate) fn leave(&self) {
        self.0.fetch_sub(READER, Ordering::Release);
    }

    /// With the lock held: clears `side`'s presence bit (the linearization point of an
    /// unregister), then waits for the readers inside to leave, so that the slot can be
    /// emptied (invariant 4).
    #[inline]
    pub(crate) fn withdraw(&self, side: usize) {
        let before = self.0.fetch_and(!side, Ordering::AcqRel);
        debug_assert!(before & LOCKED != 0 && before & side != 0);
        if before >= READER {
            while sync::latest(&self.0, Ordering::Acquire) >= READER {
                sync::spin();
            }
        }
    }

    /// Claims an empty, unlocked node for removal (invariant 2): on success the lock is held
    /// and the node retired; release it with [`Word::unlock`]`(0)` once the node is marked.
    #[inline]
    pub(crate) fn retire_if_empty(&self) -> bool {
        self.0
            .compare_exchange(0, LOCKED | RETIRED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}
