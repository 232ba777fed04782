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
use std::sync::Arc;

use crate::model::Model;
use crate::op::{Op, Step};
use crate::participant::Side;
use crate::probe::{self, EventLog};
use crate::registry::Registry;

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
        if let Some(op) = parse_line(index + 1, raw)? {
            ops.push((index + 1, op));
        }
    }
    Ok(ops)
}

/// The longest trace line, in bytes: an operation takes under 50, so a longer line is not a
/// trace (a reader can stop there instead of holding an unbounded line).
pub const MAX_LINE_BYTES: usize = 4096;

/// Parses line `number` (from 1) of a trace, as [`parse`] does each line: `None` for a blank
/// or comment-only line. A UTF-8 byte-order mark at the start of line 1 is skipped; a line
/// longer than [`MAX_LINE_BYTES`] is an error. For readers that stream a trace line by line.
///
/// ```
/// use bypass_registry::trace::parse_line;
/// assert!(parse_line(1, "\u{feff}register producer 7 # a comment").unwrap().is_some());
/// assert_eq!(parse_line(2, "   # only a comment"), Ok(None));
/// assert_eq!(parse_line(3, "register").unwrap_err().line, 3);
/// ```
pub fn parse_line(number: usize, raw: &str) -> Result<Option<Op>, ParseError> {
    let error = |message| ParseError {
        line: number,
        message,
    };
    if raw.len() > MAX_LINE_BYTES {
        return Err(error(format!(
            "the line is longer than {MAX_LINE_BYTES} bytes: not a trace line"
        )));
    }
    let raw = match number {
        1 => raw.strip_prefix('\u{feff}').unwrap_or(raw),
        _ => raw,
    };
    let code = raw.split_once('#').map_or(raw, |(code, _)| code);
    parse_code(code).map_err(error)
}

/// Parses one line with its comment removed; `None` for a blank one.
fn parse_code(line: &str) -> Result<Option<Op>, String> {
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

/// Replays `ops` on `registry` with participants that record each callback they receive,
/// recording each step.
pub fn replay<R: Registry + ?Sized>(registry: &R, ops: &[Op]) -> Vec<Step> {
    let replayer = Replayer::default();
    ops.iter().map(|op| replayer.step(registry, op)).collect()
}

/// [`replay`] one operation at a time, for a trace that is streamed: keeps the log that the
/// participants of every step record their callbacks into (those registered earlier record
/// there too), so use one `Replayer` per registry for the whole trace.
#[derive(Debug, Default)]
pub struct Replayer {
    log: Arc<EventLog>,
}

impl Replayer {
    /// Applies `op` on `registry` with participants that record each callback they receive,
    /// and returns the step.
    pub fn step<R: Registry + ?Sized>(&self, registry: &R, op: &Op) -> Step {
        let outcome = probe::apply(registry, &self.log, op);
        Step {
            op: *op,
            events: self.log.take(),
            outcome,
        }
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
