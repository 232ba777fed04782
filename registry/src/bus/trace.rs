//! Bus traces: a sequence of bus operations in text, replayed against a [`Bus`] or the model.
//!
//! One operation a line; `#` starts a comment and blank lines are skipped:
//!
//! ```text
//! register driver net id 1:*              # name, then `id DEVICE:VENDOR`s, `*` = ANY
//! register driver flaky id 1:* fail-probe # every probe by this driver fails
//! register device 5 id 1:0x1af4           # key 5, device 1, vendor 0x1af4
//! unregister driver net
//! unregister device 5
//! rescan
//! ```
//!
//! Numbers are decimal or `0x` hex (a key is a u64, an id field a u32); `*` is ANY. A driver
//! name is any word here, so that a bad one replays as `invalid-name`; a driver line without
//! an `id` replays as an empty table, `invalid-id`. Replaying prints each line as read (comment
//! and extra spaces removed, every word as written), then, indented by two spaces, each
//! callback in order (`driver NAME probe KEY`, `driver NAME remove KEY`, the key in decimal)
//! and last the outcome:
//!
//! ```
//! use bypass_registry::bus::trace::{parse, render, replay_model};
//!
//! let ops = parse("register driver flaky id 1:* fail-probe\nregister driver net id 1:*\n\
//!                  register device 5 id 1:0x1af4\n").unwrap();
//! assert_eq!(render(&replay_model(&ops)), "\
//! register driver flaky id 1:* fail-probe
//!   ok
//! register driver net id 1:*
//!   ok
//! register device 5 id 1:0x1af4
//!   driver flaky probe 5
//!   driver net probe 5
//!   ok
//! ");
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::contract::Bus;
use super::id::ANY;
use super::model::{BusModel, DriverBehaviour};
use super::op::{Checked, IdText, Number, Op, Outcome, Step};
use super::participant::Device;
use super::recorder::{BusLog, RecordingDriver};
use crate::trace::ParseError;

/// Parses a whole bus trace. The first malformed line is an error naming its number, and no
/// operation is returned, so nothing runs.
///
/// ```
/// use bypass_registry::bus::trace::parse;
/// let err = parse("rescan\nregister device 5 id 1\n").unwrap_err();
/// assert_eq!(err.line, 2);
/// assert_eq!(err.to_string(), "line 2: expected `DEVICE:VENDOR`, found `1`");
/// ```
pub fn parse(text: &str) -> Result<Vec<Op>, ParseError> {
    let mut ops = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split_once('#').map_or(raw, |(code, _)| code);
        if let Some(op) = parse_line(line).map_err(|message| ParseError {
            line: index + 1,
            message,
        })? {
            ops.push(op);
        }
    }
    Ok(ops)
}

/// Parses one bus line with its comment removed; `None` for a blank one. A trace mixing bus
/// and bypass lines can tell them apart by their second word (`driver`, `device`, or a line
/// that is `rescan`).
pub fn parse_line(line: &str) -> Result<Option<Op>, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Ok(None);
    };
    let op = match verb {
        "rescan" => Op::Rescan,
        "register" | "unregister" => {
            let register = verb == "register";
            match words.next() {
                Some("driver") => {
                    let name = expect(words.next(), "a driver name")?.to_string();
                    if !register {
                        Op::UnregisterDriver { name }
                    } else {
                        let mut table = Vec::new();
                        let mut fail_probe = false;
                        while let Some(word) = words.next() {
                            match word {
                                "id" if !fail_probe => {
                                    table.push(id(expect(words.next(), "`DEVICE:VENDOR`")?)?)
                                }
                                "fail-probe" if !fail_probe => fail_probe = true,
                                other => {
                                    return Err(format!(
                                        "expected `id`, `fail-probe` or the end of the line, \
                                         found `{other}`"
                                    ));
                                }
                            }
                        }
                        Op::RegisterDriver {
                            name,
                            table,
                            fail_probe,
                        }
                    }
                }
                Some("device") => {
                    let key = key(expect(words.next(), "a key")?)?;
                    if !register {
                        Op::UnregisterDevice { key }
                    } else {
                        match words.next() {
                            Some("id") => {}
                            Some(other) => return Err(format!("expected `id`, found `{other}`")),
                            None => return Err("expected `id` after the key".into()),
                        }
                        let id = id(expect(words.next(), "`DEVICE:VENDOR`")?)?;
                        Op::RegisterDevice { key, id }
                    }
                }
                Some(other) => {
                    return Err(format!("expected `driver` or `device`, found `{other}`"));
                }
                None => return Err(format!("expected `driver` or `device` after `{verb}`")),
            }
        }
        other => {
            return Err(format!(
                "expected `register`, `unregister` or `rescan`, found `{other}`"
            ));
        }
    };
    match words.next() {
        None => Ok(Some(op)),
        Some(extra) => Err(format!("expected the end of the line, found `{extra}`")),
    }
}

fn expect<'a>(word: Option<&'a str>, what: &str) -> Result<&'a str, String> {
    word.ok_or_else(|| format!("expected {what}, found the end of the line"))
}

/// A decimal or `0x` hex number that fits in a `u64`.
fn number(word: &str) -> Option<u64> {
    match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) => word.parse().ok(),
        None => None,
    }
}

fn key(word: &str) -> Result<Number<u64>, String> {
    let value = number(word)
        .ok_or_else(|| format!("expected a key (a decimal or 0x hex u64), found `{word}`"))?;
    Ok(Number {
        value,
        text: word.into(),
    })
}

fn id(word: &str) -> Result<IdText, String> {
    let (device, vendor) = word
        .split_once(':')
        .ok_or_else(|| format!("expected `DEVICE:VENDOR`, found `{word}`"))?;
    let field = |text: &str| {
        let value = if text == "*" {
            Some(ANY)
        } else {
            number(text).and_then(|n| u32::try_from(n).ok())
        };
        value
            .map(|value| Number {
                value,
                text: text.into(),
            })
            .ok_or_else(|| {
                format!("expected an id field (a decimal or 0x hex u32, or `*`), found `{text}`")
            })
    };
    Ok((field(device)?, field(vendor)?))
}

/// The replay output of `steps`.
pub fn render(steps: &[Step]) -> String {
    steps.iter().map(Step::to_string).collect()
}

/// Replays `ops` on `bus` with recording drivers, recording each step.
pub fn replay<B: Bus + ?Sized>(bus: &B, ops: &[Op]) -> Vec<Step> {
    let replayer = Replayer::default();
    ops.iter().map(|op| replayer.step(bus, op)).collect()
}

/// [`replay`] one operation at a time, for a trace that is streamed: keeps the log that the
/// drivers of every step record their callbacks into (those registered earlier record there
/// too), so use one `Replayer` per bus for the whole trace.
#[derive(Debug, Default)]
pub struct Replayer {
    log: Arc<BusLog>,
}

impl Replayer {
    /// Applies `op` on `bus` with drivers that record each callback they receive, and returns
    /// the step.
    pub fn step<B: Bus + ?Sized>(&self, bus: &B, op: &Op) -> Step {
        let outcome = apply(bus, &self.log, op);
        Step {
            op: op.clone(),
            events: self.log.take(),
            outcome,
        }
    }
}

/// Runs one operation on `bus`, its drivers logging into `log`.
pub fn apply<B: Bus + ?Sized>(bus: &B, log: &Arc<BusLog>, op: &Op) -> Outcome {
    apply_with(bus, log, op, DriverBehaviour::default())
}

/// Like [`apply`], a registering driver also behaving as `behaviour` (its `fail_probe` or the
/// operation's makes its probes fail). A panic that reaches the caller is caught and reported
/// as [`Outcome::Panicked`].
pub fn apply_with<B: Bus + ?Sized>(
    bus: &B,
    log: &Arc<BusLog>,
    op: &Op,
    behaviour: DriverBehaviour,
) -> Outcome {
    let checked = match op.check() {
        Ok(checked) => checked,
        Err(kind) => return Outcome::Err(kind),
    };
    let call = || match checked {
        Checked::RegisterDriver(name, table, fail_probe) => {
            let driver = RecordingDriver::new(name, table, log)
                .fail_probe(fail_probe || behaviour.fail_probe)
                .panicking_on(behaviour.panic_on);
            bus.register_driver(name, Arc::new(driver))
                .map_err(|e| e.kind())
        }
        Checked::RegisterDevice(key, id) => bus
            .register_device(Arc::new(Device::new(key, id)))
            .map_err(|e| e.kind()),
        Checked::UnregisterDriver(name) => {
            bus.unregister_driver(name).map(drop).map_err(|e| e.kind())
        }
        Checked::UnregisterDevice(key) => {
            bus.unregister_device(key).map(drop).map_err(|e| e.kind())
        }
        Checked::Rescan => bus.rescan().map_err(|e| e.kind()),
    };
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(kind)) => Outcome::Err(kind),
        Err(_) => Outcome::Panicked,
    }
}

/// Replays `ops` on the sequential [`BusModel`]: what every backend must print.
pub fn replay_model(ops: &[Op]) -> Vec<Step> {
    let mut model = BusModel::new();
    ops.iter().map(|op| model.apply(op)).collect()
}

/// The index of the first step where `a` and `b` differ, if any (a missing step counts).
pub fn first_difference(a: &[Step], b: &[Step]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}
