//! Traces: a sequence of registrations in text, replayed against a backend or the model.
//!
//! A trace has one operation a line; `#` starts a comment and blank lines are skipped:
//!
//! ```text
//! register producer 7
//! register consumer 7 fail-add      # this participant's add_* callback returns an error
//! unregister producer 7
//! ```
//!
//! Replaying prints each operation as read, then, indented by two spaces, each callback in the
//! order it ran and last the outcome (`ok` or `err KIND`):
//!
//! ```
//! use bypass_registry::trace::{parse, render, replay_model};
//!
//! let ops = parse("register producer 7\nregister consumer 7\n").unwrap();
//! assert_eq!(render(&replay_model(&ops)), "\
//! register producer 7
//!   ok
//! register consumer 7
//!   producer 7 stop
//!   consumer 7 stop
//!   producer 7 add_consumer
//!   consumer 7 add_producer
//!   consumer 7 start
//!   producer 7 start
//!   ok
//! ");
//! ```

use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::error::ErrorKind;
use crate::model::{Behaviour, Model};
use crate::participant::{Event, Side};
use crate::probe::{EventLog, Probe};
use crate::registry::Registry;
use crate::token::Token;

/// One line of a trace.
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
        writeln!(f, "{}", self.op)?;
        for event in &self.events {
            writeln!(f, "  {event}")?;
        }
        writeln!(f, "  {}", self.outcome)
    }
}

/// A malformed trace line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line number, from 1.
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl Error for ParseError {}

/// Parses a whole trace. The first malformed line is an error naming its number, and no
/// operation is returned, so nothing runs.
///
/// ```
/// use bypass_registry::trace::parse;
/// let err = parse("register producer 1\nregister producr 2\n").unwrap_err();
/// assert_eq!(err.line, 2);
/// assert!(err.to_string().starts_with("line 2: expected `producer` or `consumer`"));
/// ```
pub fn parse(text: &str) -> Result<Vec<Op>, ParseError> {
    Ok(parse_numbered(text)?
        .into_iter()
        .map(|(_, op)| op)
        .collect())
}

/// Like [`parse`], keeping each operation's line number (from 1), so that a difference found
/// when replaying can be reported against the input.
pub fn parse_numbered(text: &str) -> Result<Vec<(usize, Op)>, ParseError> {
    let mut ops = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split_once('#').map_or(raw, |(code, _)| code);
        if let Some(op) = parse_line(line).map_err(|message| ParseError {
            line: index + 1,
            message,
        })? {
            ops.push((index + 1, op));
        }
    }
    Ok(ops)
}

/// Parses one line with its comment removed; `None` for a blank one.
fn parse_line(line: &str) -> Result<Option<Op>, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Ok(None);
    };
    let register = match verb {
        "register" => true,
        "unregister" => false,
        other => {
            return Err(format!(
                "expected `register` or `unregister`, found `{other}`"
            ));
        }
    };
    let side = match words.next() {
        Some("producer") => Side::Producer,
        Some("consumer") => Side::Consumer,
        Some(other) => {
            return Err(format!(
                "expected `producer` or `consumer`, found `{other}`"
            ));
        }
        None => return Err(format!("expected `producer` or `consumer` after `{verb}`")),
    };
    let token = match words.next() {
        Some(word) if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => word
            .parse::<u64>()
            .map_err(|_| format!("token `{word}` does not fit in a u64"))?,
        Some(word) => return Err(format!("expected a token (a decimal u64), found `{word}`")),
        None => return Err(format!("expected a token (a decimal u64) after `{side}`")),
    };
    let fail_add = match words.next() {
        None => false,
        Some("fail-add") if register => true,
        Some("fail-add") => return Err("`fail-add` is only allowed on register lines".into()),
        Some(other) if register => {
            return Err(format!(
                "expected `fail-add` or the end of the line, found `{other}`"
            ));
        }
        Some(other) => return Err(format!("expected the end of the line, found `{other}`")),
    };
    if let Some(extra) = words.next() {
        return Err(format!("expected the end of the line, found `{extra}`"));
    }
    Ok(Some(if register {
        Op::Register {
            side,
            token,
            fail_add,
        }
    } else {
        Op::Unregister { side, token }
    }))
}

/// The replay output of `steps`.
pub fn render(steps: &[Step]) -> String {
    steps.iter().map(Step::to_string).collect()
}

/// Replays `ops` on `registry` with [`Probe`] participants, recording each step.
pub fn replay<R: Registry + ?Sized>(registry: &R, ops: &[Op]) -> Vec<Step> {
    let log = EventLog::new();
    ops.iter()
        .map(|op| {
            let outcome = apply(registry, &log, op);
            Step {
                op: *op,
                events: log.take(),
                outcome,
            }
        })
        .collect()
}

/// Runs one operation on `registry`, its probes logging into `log`.
pub fn apply<R: Registry + ?Sized>(registry: &R, log: &Arc<EventLog>, op: &Op) -> Outcome {
    let behaviour = match *op {
        Op::Register { fail_add, .. } => Behaviour {
            fail_add,
            panic_on: None,
        },
        Op::Unregister { .. } => Behaviour::default(),
    };
    apply_with(registry, log, op, behaviour)
}

/// Like [`apply`], the registering probe behaving as `behaviour` (which overrides the
/// operation's `fail_add`). A panic that reaches the caller is caught and reported as
/// [`Outcome::Panicked`].
pub fn apply_with<R: Registry + ?Sized>(
    registry: &R,
    log: &Arc<EventLog>,
    op: &Op,
    behaviour: Behaviour,
) -> Outcome {
    let token = match Token::new(op.token()) {
        Ok(token) => token,
        Err(e) => return Outcome::Err(e.kind()),
    };
    let call = || match *op {
        Op::Register {
            side, token: id, ..
        } => {
            let mut probe = Probe::new(side, id, log).fail_add(behaviour.fail_add);
            if let Some(callback) = behaviour.panic_on {
                probe = probe.panicking_on(callback);
            }
            let probe = Arc::new(probe);
            match side {
                Side::Producer => registry
                    .register_producer(token, probe)
                    .map_err(|e| e.kind()),
                Side::Consumer => registry
                    .register_consumer(token, probe)
                    .map_err(|e| e.kind()),
            }
        }
        Op::Unregister { side, .. } => match side {
            Side::Producer => registry.unregister_producer(token).map(drop),
            Side::Consumer => registry.unregister_consumer(token).map(drop),
        }
        .map_err(|e| e.kind()),
    };
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(kind)) => Outcome::Err(kind),
        Err(_) => Outcome::Panicked,
    }
}

/// Replays `ops` on the sequential [`Model`]: what every backend must print.
pub fn replay_model(ops: &[Op]) -> Vec<Step> {
    let mut model = Model::new();
    ops.iter().map(|op| model.apply(op)).collect()
}

/// The index of the first step where `a` and `b` differ, if any (a missing step counts).
pub fn first_difference(a: &[Step], b: &[Step]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}
