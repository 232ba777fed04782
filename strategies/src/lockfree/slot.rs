//! A token's slot and the entries that publish it: the per-token state machine of
//! [`lockfree`](super).
//!
//! # The two halves of a token
//! - The **slot** ([`Slot`]) is the token's writer side: a lock around the token's [`State`],
//!   the strong references to its participants. Registers and unregisters of the token take the
//!   lock and hold it across their callbacks; nothing else ever takes it.
//! - The **entry** ([`Entry`]) is the token's reader side: an immutable snapshot, stored as the
//!   value of the token in the table, holding weak references to the participants and the
//!   `Arc` of the slot. Reads look the entry up and never touch the slot.
//!
//! # Life cycle of a slot
//! ```text
//!             insert_new(entry)              replace(entry), under the lock
//!  (absent) ─────────────────▶ occupied ◀──────────────────────────────▶ dormant
//!     ▲       a new slot, its     │      a participant arrives / the last   │
//!     │       first participant   │      one leaves (the entry stays)       │
//!     │       already in it       │                                         │ sweep, or at once
//!     │                           │ last one leaves, dormancy off           │ if dormancy is off:
//!     │                           ▼                                         ▼ retired = true,
//!     └────────────────────── retired ◀─────────────────────────────────────┘ entry removed,
//!        a later register makes a new slot;       (dropped when the last Arc goes)
//!        a retired slot never comes back
//! ```
//!
//! A slot whose last participant leaves stays in the table, **dormant** (live, empty), so that a
//! token that comes and goes (a vector masked and unmasked, a device unplugged and plugged back,
//! a connect+disconnect cycle) replaces its entry instead of removing it and inserting it again:
//! an open-addressing table like papaya's leaves a tombstone on every removal, and one key
//! removed and re-inserted over and over fills its probe sequence with them and forces a full
//! resize every few cycles (measured with papaya 0.2.5 at 100,000 live keys: 37 µs per
//! insert+remove of one key, against 0.13 µs in an empty map). Dormant slots are removed in bulk
//! by a sweep once they outnumber the participants (see `LockFree::with_limits`).
//!
//! # Invariants
//! The table and the slots keep these at every instant; the comments in
//! [`LockFree`](super::LockFree)'s operations name the ones each step relies on.
//!
//! 1. **One live slot per token.** The table's entry for a token, if any, names a slot that is
//!    not retired, and no other slot of that token is live. A slot enters the table only through
//!    `insert_new`, which succeeds only when the token has no entry, and it leaves the table only
//!    together with `retired = true`, under its lock.
//! 2. **A retired slot stays retired.** `retired` is set once, under the lock, in the same
//!    critical section that removes the slot's entry, and only when the slot is empty; it is
//!    never cleared, and a retired slot is never inserted again. So a writer that holds the lock
//!    of a slot it found in the table and sees `retired == false` knows the slot is the token's
//!    live one, and that the table's entry cannot change while it holds the lock (invariant 3).
//!    A writer that sees `retired == true` starts over from the table: the removal it lost to
//!    has completed, so it cannot find the same slot again. That is why removing an emptied slot
//!    never loses a concurrent register of the same token: the register either got the lock
//!    before the removal (and the slot was not empty, so it was not removed), or it finds no
//!    entry, or a newer slot, and starts from there.
//! 3. **Only the lock holder changes a live slot's entry.** `replace` and `remove` of a token's
//!    entry happen only under the lock of the slot it names; `insert_new` cannot touch an
//!    existing entry. The state behind the lock is therefore the truth, and the entry its copy,
//!    published after each change.
//! 4. **Counted dormancy.** A live slot is empty exactly when it is dormant, and the registry's
//!    dormant counter changes with each such transition, under the slot's lock: +1 when the last
//!    participant leaves and the slot stays, −1 when a participant arrives in a dormant slot or
//!    the sweep retires it. A slot made by `insert_new` is never empty.
//! 5. **The entry never names a dead participant.** The current entry's weak references are to
//!    participants that the state holds (a register stores the strong reference before it
//!    publishes the entry) or that an unregister still holds on its stack until it has published
//!    the entry without them. So upgrading a weak reference of the *current* entry always works;
//!    a failed upgrade means the entry was replaced since it was read, and the reader reads again.
//! 6. **The registry holds no strong reference to a departed participant.** Strong references
//!    live only in states; an unregister moves its participant out before it returns. Replaced
//!    entries that are still waiting for reclamation (see the module doc of
//!    [`lockfree`](super)) hold only weak references, which keep the participant's allocation
//!    but not the participant: unregister hands back the only strong reference.

use std::fmt;
use std::sync::{Arc as StdArc, Weak};

use bypass_registry::{Consumer, Producer};

use super::sync::{Arc, Mutex, MutexGuard};

/// The participants of a token, behind its slot's lock.
#[derive(Default)]
pub(crate) struct State {
    /// The registered producer: the registry's strong reference.
    pub(crate) producer: Option<StdArc<dyn Producer>>,
    /// The registered consumer: the registry's strong reference.
    pub(crate) consumer: Option<StdArc<dyn Consumer>>,
    /// Set once, when the slot's entry is removed (invariant 2).
    pub(crate) retired: bool,
}

impl State {
    /// Whether no participant is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.producer.is_none() && self.consumer.is_none()
    }
}

/// A token's writer side: the lock that serializes its registers, unregisters and callbacks.
pub(crate) struct Slot {
    state: Mutex<State>,
}

impl Slot {
    /// A new live slot holding `state`.
    pub(crate) fn new(state: State) -> Slot {
        Slot {
            state: Mutex::new(state),
        }
    }

    /// Waits for the token's lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Takes the token's lock if no one holds it.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, State>> {
        self.state.try_lock()
    }
}

/// What readers see of a token: weak references to its participants, as of one instant.
pub(crate) struct Snapshot {
    pub(crate) producer: Option<Weak<dyn Producer>>,
    pub(crate) consumer: Option<Weak<dyn Consumer>>,
}

impl Snapshot {
    /// The participants of `state`, weakly.
    pub(crate) fn of(state: &State) -> Snapshot {
        Snapshot {
            producer: state.producer.as_ref().map(StdArc::downgrade),
            consumer: state.consumer.as_ref().map(StdArc::downgrade),
        }
    }
}

/// The table's value for a token: a snapshot of its participants and the slot to lock for a
/// change. Immutable: a change publishes a new entry (invariant 3).
pub(crate) struct Entry {
    pub(crate) seen: Snapshot,
    pub(crate) slot: Arc<Slot>,
}

impl Entry {
    /// The entry that publishes `state`, the state of `slot`.
    pub(crate) fn of(state: &State, slot: &Arc<Slot>) -> Entry {
        Entry {
            seen: Snapshot::of(state),
            slot: Arc::clone(slot),
        }
    }

    /// Whether this entry names `slot`.
    pub(crate) fn is_of(&self, slot: &Arc<Slot>) -> bool {
        Arc::ptr_eq(&self.slot, slot)
    }

    /// Whether the token had no participant when this entry was published.
    pub(crate) fn is_dormant(&self) -> bool {
        self.seen.producer.is_none() && self.seen.consumer.is_none()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("producer", &self.seen.producer.is_some())
            .field("consumer", &self.seen.consumer.is_some())
            .finish_non_exhaustive()
    }
}
