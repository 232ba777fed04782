//! A token's state and the snapshot readers see of it: the per-token state machine of
//! [`lockfree`](super), built on the table's [`Node`](super::table::Node)s.
//!
//! # The two halves of a token
//! - The **state** ([`State`]) is the token's writer side: the strong references to its
//!   participants, behind the token's lock (in its node). Registers and unregisters of the token
//!   take the lock and hold it across their callbacks; nothing else ever takes it.
//! - The **snapshot** ([`Snapshot`]) is the token's reader side: an immutable copy of the
//!   state, with weak references, that the node points to. A change publishes a new snapshot;
//!   reads load the pointer and never touch the lock.
//!
//! # Life cycle of a token's node
//! ```text
//!             get_or_insert(state)           publish(state), under the lock
//!  (absent) ─────────────────▶ live ◀──────────────────────────────────┐
//!     ▲       a new node, its    │  a participant arrives or leaves,  │
//!     │       first participant  │  one stays ────────────────────────┘
//!     │       already in it      │
//!     │                          │ the last participant leaves, under the lock:
//!     │                          ▼ retired = true, then the node is removed
//!     └──────────────────── retired ─── (freed once no reader or writer holds it)
//!        a later register inserts a new node; a retired node never comes back
//! ```
//!
//! # Invariants
//! The table and the states keep these at every instant; the comments in
//! [`LockFree`](super::LockFree)'s operations name the ones each step relies on.
//!
//! 1. **One live node per token.** The table holds at most one node per token, and it is not
//!    retired. A node enters the table only through `get_or_insert`, which succeeds only when the
//!    token has no node, and it leaves only through `remove`, under its lock, right after
//!    `retired` is set.
//! 2. **A retired node stays retired.** `retired` is set once, under the lock, in the critical
//!    section that removes the node, and only when the state is empty; it is never cleared, and a
//!    removed node is never inserted again. So a writer that holds the lock of a node it found in
//!    the table and sees `retired == false` knows the node is the token's live one (invariant 1),
//!    and that no one else changes it while the lock is held (invariant 3). A writer that sees
//!    `retired == true` starts over from the table: the removal it lost to has completed, so it
//!    cannot find the same node again. That is why removing an emptied node never loses a
//!    concurrent register of the same token: the register either got the lock before the removal
//!    (and the node was not empty, so it was not removed), or it finds no node, or a newer one,
//!    and starts from there.
//! 3. **Only the lock holder changes a live node.** `publish` and `remove` of a node happen only
//!    under its lock; `get_or_insert` cannot touch an existing node. The state is therefore the
//!    truth, and the snapshot its copy, published after each change.
//! 4. **A live node is never empty.** A node is inserted with its first participant, and the
//!    operation that takes the last one out removes it. So a locked live node with no participant
//!    of one side has one of the other: a register that finds its side free has a partner.
//! 5. **The snapshot never names a dead participant.** The current snapshot's weak references are
//!    to participants that the state holds (a register stores the strong reference before it
//!    publishes) or that an unregister still holds on its stack until it has published the
//!    snapshot without them, or removed the node. So upgrading a weak reference of the *current*
//!    snapshot of a live node always works; a failed upgrade means the snapshot was replaced, or
//!    the node removed, since it was read, and the reader reads again.
//! 6. **The registry holds no strong reference to a departed participant.** Strong references
//!    live only in states; an unregister moves its participant out before it returns. Replaced
//!    snapshots and removed nodes that are still waiting for reclamation (see the table module)
//!    hold only weak references, which keep the participant's allocation but not the
//!    participant: unregister hands back the only strong reference.

use std::sync::{Arc, Weak};

use bypass_registry::pair::{Hold, Pair, Strong};

/// The participants of a token, behind its node's lock.
#[derive(Default)]
pub(crate) struct State {
    /// The registered participants: the registry's strong references.
    pub(crate) pair: Pair<Strong>,
    /// Set once, when the node is removed (invariant 2).
    pub(crate) retired: bool,
}

impl State {
    /// Whether no participant is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.pair.is_empty()
    }

    /// What readers see of this state: its participants, weakly.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Pair {
            producer: self.pair.producer.as_ref().map(Arc::downgrade),
            consumer: self.pair.consumer.as_ref().map(Arc::downgrade),
        }
    }
}

/// A [`Hold`] of weak references: what a snapshot keeps of each participant.
pub(crate) struct Seen;

impl Hold for Seen {
    type Of<T: ?Sized + 'static> = Option<Weak<T>>;
}

/// What readers see of a token: weak references to its participants, as of one instant.
pub(crate) type Snapshot = Pair<Seen>;
