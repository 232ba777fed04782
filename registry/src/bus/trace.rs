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

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::contract::Bus;
use super::error::ErrorKind;
use super::id::{ANY, DeviceId, DriverName, IdTable, Key, Pattern};
use super::model::{BusModel, DriverBehaviour};
use super::participant::{BusEvent, Device};
use super::recorder::{BusLog, RecordingDriver};
use crate::trace::ParseError;

/// A number as a trace wrote it: its value and its spelling (decimal, `0x` hex, or `*`), which
/// the replay echoes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number<T> {
    /// The value (`*` is [`ANY`]).
    pub value: T,
    text: Box<str>,
}

impl<T> Number<T> {
    /// How the trace wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Number<u64> {
    /// A key, spelled in decimal.
    pub fn key(value: u64) -> Number<u64> {
        Number {
            value,
            text: value.to_string().into(),
        }
    }
}

impl Number<u32> {
    /// An id field, spelled in decimal, or `*` for [`ANY`].
    pub fn field(value: u32) -> Number<u32> {
        let text = if value == ANY {
            "*".into()
        } else {
            value.to_string().into()
        };
        Number { value, text }
    }
}

impl<T> fmt::Display for Number<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An id as a trace wrote it: `DEVICE:VENDOR`.
pub type IdText = (Number<u32>, Number<u32>);

/// One line of a bus trace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `register driver NAME [id D:V]… [fail-probe]`
    RegisterDriver {
        /// The name, possibly invalid (refused with `invalid-name`).
        name: String,
        /// The id table, possibly empty (refused with `invalid-id`).
        table: Vec<IdText>,
        /// Whether every probe by this driver fails.
        fail_probe: bool,
    },
    /// `register device KEY id D:V`
    RegisterDevice {
        /// The key, possibly zero (refused with `invalid-key`).
        key: Number<u64>,
        /// The id, possibly invalid (refused with `invalid-id`).
        id: IdText,
    },
    /// `unregister driver NAME`
    UnregisterDriver {
        /// The name.
        name: String,
    },
    /// `unregister device KEY`
    UnregisterDevice {
        /// The key.
        key: Number<u64>,
    },
    /// `rescan`
    Rescan,
}

impl Op {
    /// `register driver NAME` with `patterns` (`(device, vendor)`, [`ANY`] written `*`).
    pub fn register_driver(name: &str, patterns: &[(u32, u32)], fail_probe: bool) -> Op {
        Op::RegisterDriver {
            name: name.to_string(),
            table: patterns
                .iter()
                .map(|&(d, v)| (Number::field(d), Number::field(v)))
                .collect(),
            fail_probe,
        }
    }

    /// `register device KEY id DEVICE:VENDOR`.
    pub fn register_device(key: u64, device: u32, vendor: u32) -> Op {
        Op::RegisterDevice {
            key: Number::key(key),
            id: (Number::field(device), Number::field(vendor)),
        }
    }

    /// `unregister driver NAME`.
    pub fn unregister_driver(name: &str) -> Op {
        Op::UnregisterDriver {
            name: name.to_string(),
        }
    }

    /// `unregister device KEY`.
    pub fn unregister_device(key: u64) -> Op {
        Op::UnregisterDevice {
            key: Number::key(key),
        }
    }

    /// The operation with its arguments validated, in the contract's order (key, then id; name,
    /// then table), or the kind of the first check that fails.
    pub fn check(&self) -> Result<Checked, ErrorKind> {
        Ok(match self {
            Op::RegisterDriver {
                name,
                table,
                fail_probe,
            } => {
                let name = DriverName::new(name).map_err(|e| e.kind())?;
                let patterns: Vec<Pattern> = table
                    .iter()
                    .map(|(d, v)| Pattern::new(d.value, v.value))
                    .collect();
                let table = IdTable::new(patterns).map_err(|e| e.kind())?;
                Checked::RegisterDriver(name, table, *fail_probe)
            }
            Op::RegisterDevice { key, id } => {
                let key = Key::new(key.value).map_err(|e| e.kind())?;
                let id = DeviceId::new(id.0.value, id.1.value).map_err(|e| e.kind())?;
                Checked::RegisterDevice(key, id)
            }
            Op::UnregisterDriver { name } => {
                Checked::UnregisterDriver(DriverName::new(name).map_err(|e| e.kind())?)
            }
            Op::UnregisterDevice { key } => {
                Checked::UnregisterDevice(Key::new(key.value).map_err(|e| e.kind())?)
            }
            Op::Rescan => Checked::Rescan,
        })
    }
}

/// An [`Op`] whose arguments are valid: what reaches the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Register a driver: name, table, whether its probes fail.
    RegisterDriver(DriverName, IdTable, bool),
    /// Register a device.
    RegisterDevice(Key, DeviceId),
    /// Unregister a driver.
    UnregisterDriver(DriverName),
    /// Unregister a device.
    UnregisterDevice(Key),
    /// Rescan.
    Rescan,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::RegisterDriver {
                name,
                table,
                fail_probe,
            } => {
                write!(f, "register driver {name}")?;
                for (d, v) in table {
                    write!(f, " id {d}:{v}")?;
                }
                if *fail_probe {
                    f.write_str(" fail-probe")?;
                }
                Ok(())
            }
            Op::RegisterDevice { key, id: (d, v) } => {
                write!(f, "register device {key} id {d}:{v}")
            }
            Op::UnregisterDriver { name } => write!(f, "unregister driver {name}"),
            Op::UnregisterDevice { key } => write!(f, "unregister device {key}"),
            Op::Rescan => f.write_str("rescan"),
        }
    }
}

/// How an operation ended: `ok`, `err KIND`, or `panic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The call returned an error of this kind.
    Err(ErrorKind),
    /// A callback panicked and the panic reached the caller (`panic`). Traces cannot ask for
    /// panics; tests inject them.
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
    pub events: Vec<BusEvent>,
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
