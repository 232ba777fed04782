//! What a run records: every registry call with its start, end and outcome, every callback
//! with the call it ran in, and the state the run ends in. The runner writes it, the checker
//! reads it.

use std::sync::{Arc, Mutex, PoisonError};

use bypass_registry::op::{Behaviour, Outcome};
use bypass_registry::{Callback, Population, Side};

use crate::violation::Violation;

/// What kind of call an operation record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Register(Side),
    Unregister(Side),
    /// `is_paired`
    IsPaired,
    /// `producer(t)` / `consumer(t)`: who is registered on that side.
    Who(Side),
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A register or unregister: its outcome.
    Outcome(Outcome),
    /// `is_paired`.
    Bool(bool),
    /// `producer` or `consumer`: the id of the participant returned (the id of the call that
    /// registered it), if any.
    Who(Option<u64>),
}

/// One registry call as it happened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpRecord {
    pub(crate) id: u64,
    pub(crate) token: u64,
    pub(crate) kind: OpKind,
    pub(crate) behaviour: Behaviour,
    /// Nanoseconds since the run's clock started, before the call.
    pub(crate) invoke: u64,
    /// Nanoseconds since the run's clock started, after the return.
    pub(crate) response: u64,
    pub(crate) observed: Observed,
    /// For an unregister: the id of the participant it handed back.
    pub(crate) handed: Option<u64>,
}

/// One `population()` call as it happened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PopRecord {
    pub(crate) invoke: u64,
    pub(crate) response: u64,
    pub(crate) population: Population,
}

/// One callback as recorded: during which call (0 if none), on which side, which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) op: u64,
    pub(crate) side: Side,
    pub(crate) callback: Callback,
}

/// The callbacks of one token, in the order they ran. Per-token exclusion makes this order
/// the backend's; the lock is uncontended unless the backend breaks exclusion.
#[derive(Debug, Default)]
pub(crate) struct TokenLog(Mutex<Vec<Recorded>>);

impl TokenLog {
    pub(crate) fn push(&self, event: Recorded) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    pub(crate) fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A token's pairing state, read with no call in flight: `is_paired`, and whether each side
/// is registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuietState {
    pub(crate) token: u64,
    pub(crate) paired: bool,
    pub(crate) producer: bool,
    pub(crate) consumer: bool,
}

/// What became of one participant once every token was unregistered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParticipantEnd {
    pub(crate) side: Side,
    pub(crate) token: u64,
    /// Callbacks that reached it after the registry had handed it back.
    pub(crate) late_calls: u32,
    /// How many unregisters handed it back.
    pub(crate) handed_back: u32,
    /// Whether anything but the harness still holds it.
    pub(crate) still_held: bool,
}

/// Everything a run recorded, for the checker.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Every registry call on a token, the final reads and the teardown included.
    pub(crate) ops: Vec<OpRecord>,
    /// Every `population()` call.
    pub(crate) pops: Vec<PopRecord>,
    /// `logs[t]`: token `t`'s callbacks.
    pub(crate) logs: Vec<Arc<TokenLog>>,
    /// Broken guarantees seen during a call: a participant handed back or looked up that was
    /// not the one registered.
    pub(crate) violations: Vec<Violation>,
    /// Each token's pairing state once the plan was done, before the teardown.
    pub(crate) quiet: Vec<QuietState>,
    /// Every participant the plan registered, after the teardown.
    pub(crate) participants: Vec<ParticipantEnd>,
    /// What the registry counts after the teardown.
    pub(crate) left: Population,
}
