//! The operations of the contract and what they do: the vocabulary the model, the trace
//! format, the conformance kit and the stress checker share.
//!
//! An [`Op`] is one register or unregister call; a [`Step`] is an operation with the callbacks
//! it caused and its [`Outcome`]; a [`Behaviour`] is how a registering participant answers its
//! callbacks (the faults it injects).

use std::fmt;

use crate::error::ErrorKind;
use crate::participant::{Callback, Event, Side};

/// One call of the contract, and one line of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `register SIDE TOKEN [fail-add]`
    Register {
        /// Which side registers.
        side: Side,
        /// The token, possibly zero (refused with `invalid-token`).
        token: u64,
        /// Whether the new participant's `add_*` callback returns an error.
        fail_add: bool,
    },
    /// `unregister SIDE TOKEN`
    Unregister {
        /// Which side unregisters.
        side: Side,
        /// The token.
        token: u64,
    },
}

impl Op {
    /// The token the operation names.
    pub fn token(&self) -> u64 {
        match *self {
            Op::Register { token, .. } | Op::Unregister { token, .. } => token,
        }
    }

    /// The side the operation names.
    pub fn side(&self) -> Side {
        match *self {
            Op::Register { side, .. } | Op::Unregister { side, .. } => side,
        }
    }

    /// How the participant the operation registers behaves as far as the operation says:
    /// failing its add if it is a `fail-add` registration. An unregister registers nobody.
    pub fn behaviour(&self) -> Behaviour {
        match *self {
            Op::Register { fail_add, .. } => Behaviour {
                fail_add,
                panic_on: None,
            },
            Op::Unregister { .. } => Behaviour::default(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Register {
                side,
                token,
                fail_add,
            } => {
                write!(f, "register {side} {token}")?;
                if fail_add {
                    f.write_str(" fail-add")?;
                }
                Ok(())
            }
            Op::Unregister { side, token } => write!(f, "unregister {side} {token}"),
        }
    }
}

/// How an operation ended: `ok` or `err KIND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The call returned an error of this kind.
    Err(ErrorKind),
    /// A callback panicked and the panic reached the caller (`panic`). Traces cannot ask for
    /// panics; the stress harness injects them.
    Panicked,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Err(kind) => write!(f, "err {kind}"),
            Outcome::Panicked => f.write_str("panic"),
        }
    }
}

/// One replayed operation: the callbacks it caused, in order, and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The operation.
    pub op: Op,
    /// The callbacks that ran during it.
    pub events: Vec<Event>,
    /// How it ended.
    pub outcome: Outcome,
}

impl fmt::Display for Step {
    /// The replay output of this step, each line ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_step(f, &self.op, &self.events, &self.outcome)
    }
}

/// A replayed step as a trace prints it, for the registry's steps and the bus's alike: the
/// operation, then each callback and the outcome indented by two spaces, a line each.
pub(crate) fn write_step(
    f: &mut fmt::Formatter<'_>,
    op: &dyn fmt::Display,
    events: &[impl fmt::Display],
    outcome: &dyn fmt::Display,
) -> fmt::Result {
    writeln!(f, "{op}")?;
    for event in events {
        writeln!(f, "  {event}")?;
    }
    writeln!(f, "  {outcome}")
}

/// How a participant behaves when called back: the faults the model knows.
///
/// Traces only express `fail_add`; the stress harness also injects panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Behaviour {
    /// Its `add_*` callback returns an error.
    pub fail_add: bool,
    /// This callback panics, every time it runs (after it is recorded, and before `fail_add`
    /// is considered).
    pub panic_on: Option<Callback>,
}
