//! The bus's operations, their outcomes and the steps a replay prints: the types that the
//! model, the trace format and the stress checker all name.

use std::fmt;

use super::error::ErrorKind;
use super::id::{ANY, DeviceId, DriverName, IdTable, Key, Pattern};
use super::participant::BusEvent;

/// A number as a trace wrote it: its value and its spelling (decimal, `0x` hex, or `*`), which
/// the replay echoes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number<T> {
    /// The value (`*` is [`ANY`]).
    pub value: T,
    pub(super) text: Box<str>,
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
        crate::op::write_step(f, &self.op, &self.events, &self.outcome)
    }
}
