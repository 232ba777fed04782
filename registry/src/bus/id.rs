//! What devices and drivers are known by: the [`Key`] a device is registered under, its
//! [`DeviceId`], the [`Pattern`]s of a driver's [`IdTable`] that match it, and the
//! [`DriverName`] a driver is registered under. Each constructor validates, so a value of
//! these types is always one the bus accepts.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use super::error::{InvalidId, InvalidKey, InvalidName};

/// The key a device is registered under, chosen by the caller (a VMM numbers its devices, or
/// uses the address of its own device object). Never zero: [`Key::new`] refuses `0` with
/// `invalid-key`.
///
/// ```
/// use bypass_registry::bus::{ErrorKind, Key};
/// assert_eq!(Key::new(5).unwrap().get(), 5);
/// assert_eq!(Key::new(0).unwrap_err().kind(), ErrorKind::InvalidKey);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(NonZeroU64);

impl Key {
    /// A key from a number; `0` is refused.
    pub const fn new(key: u64) -> Result<Key, InvalidKey> {
        match NonZeroU64::new(key) {
            Some(key) => Ok(Key(key)),
            None => Err(InvalidKey),
        }
    }

    /// The number, never zero.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The value of a pattern field that matches any value (`*` in traces; upstream's
/// `VIRTIO_DEV_ANY_ID`, `0xffffffff`).
pub const ANY: u32 = u32::MAX;

/// What a device is: its type (`device`: 1 is net, 2 is block, …) and its `vendor`.
///
/// `device` is never 0 (upstream ends id tables with it) nor [`ANY`]: [`DeviceId::new`]
/// refuses both with `invalid-id`. `vendor` may be any `u32`.
///
/// ```
/// use bypass_registry::bus::{ANY, DeviceId, ErrorKind};
/// let net = DeviceId::new(1, 0x1af4).unwrap();
/// assert_eq!((net.device(), net.vendor()), (1, 0x1af4));
/// assert_eq!(DeviceId::new(0, 1).unwrap_err().kind(), ErrorKind::InvalidId);
/// assert_eq!(DeviceId::new(ANY, 1).unwrap_err().kind(), ErrorKind::InvalidId);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId {
    device: u32,
    vendor: u32,
}

impl DeviceId {
    /// The id `device:vendor`; a `device` of 0 or [`ANY`] is refused.
    pub const fn new(device: u32, vendor: u32) -> Result<DeviceId, InvalidId> {
        if device == 0 || device == ANY {
            Err(InvalidId)
        } else {
            Ok(DeviceId { device, vendor })
        }
    }

    /// The device type, in `1..=0xfffffffe`.
    pub const fn device(self) -> u32 {
        self.device
    }

    /// The vendor.
    pub const fn vendor(self) -> u32 {
        self.vendor
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.device, self.vendor)
    }
}

/// One entry of a driver's id table: each field a value or [`ANY`].
///
/// It matches a device when `device` is ANY or equals the device's type, and `vendor` is ANY or
/// equals its vendor (upstream `virtio_id_match`; the 2007 matcher inverted the vendor test).
///
/// ```
/// use bypass_registry::bus::{ANY, DeviceId, Pattern};
/// let dev = DeviceId::new(1, 0x1af4).unwrap();
/// assert!(Pattern::new(1, ANY).matches(dev));
/// assert!(Pattern::new(ANY, 0x1af4).matches(dev));
/// assert!(!Pattern::new(1, 7).matches(dev));
/// assert!(!Pattern::new(2, ANY).matches(dev));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    /// The device type to match, or [`ANY`].
    pub device: u32,
    /// The vendor to match, or [`ANY`].
    pub vendor: u32,
}

impl Pattern {
    /// The pattern `device:vendor`, each field a value or [`ANY`].
    pub const fn new(device: u32, vendor: u32) -> Pattern {
        Pattern { device, vendor }
    }

    /// Whether this pattern matches `id`.
    pub const fn matches(self, id: DeviceId) -> bool {
        (self.device == ANY || self.device == id.device)
            && (self.vendor == ANY || self.vendor == id.vendor)
    }
}

/// A driver's id table: one or more [`Pattern`]s. An empty table is refused with `invalid-id`.
///
/// ```
/// use bypass_registry::bus::{ANY, DeviceId, ErrorKind, IdTable, Pattern};
/// let table = IdTable::new(vec![Pattern::new(1, ANY), Pattern::new(3, 0x1af4)]).unwrap();
/// assert!(table.matches(DeviceId::new(1, 9).unwrap()));
/// assert!(table.matches(DeviceId::new(3, 0x1af4).unwrap()));
/// assert!(!table.matches(DeviceId::new(3, 9).unwrap()));
/// assert_eq!(IdTable::new(vec![]).unwrap_err().kind(), ErrorKind::InvalidId);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdTable(Box<[Pattern]>);

impl IdTable {
    /// A table of `patterns`, which must not be empty.
    pub fn new(patterns: impl Into<Box<[Pattern]>>) -> Result<IdTable, InvalidId> {
        let patterns = patterns.into();
        if patterns.is_empty() {
            Err(InvalidId)
        } else {
            Ok(IdTable(patterns))
        }
    }

    /// A table of one pattern.
    pub fn one(device: u32, vendor: u32) -> IdTable {
        IdTable(Box::new([Pattern::new(device, vendor)]))
    }

    /// The patterns, never empty.
    pub fn patterns(&self) -> &[Pattern] {
        &self.0
    }

    /// Whether any pattern matches `id`.
    pub fn matches(&self, id: DeviceId) -> bool {
        self.0.iter().any(|p| p.matches(id))
    }
}

/// The most bytes a [`DriverName`] holds.
pub const MAX_NAME_LEN: usize = 32;

/// The unique name a driver is registered under: 1 to 32 of `a-z 0-9 _ -`. Any other name is
/// refused with `invalid-name`.
///
/// It is stored inline and is `Copy`, so the bus's reads return it without allocating.
///
/// ```
/// use bypass_registry::bus::{DriverName, ErrorKind};
/// assert_eq!(DriverName::new("virtio_net-2").unwrap().as_str(), "virtio_net-2");
/// for bad in ["", "Net", "net 1", "n#", &"x".repeat(33)] {
///     assert_eq!(DriverName::new(bad).unwrap_err().kind(), ErrorKind::InvalidName, "{bad}");
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriverName {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
}

impl DriverName {
    /// The name `name`, if valid.
    pub fn new(name: &str) -> Result<DriverName, InvalidName> {
        let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.bytes().all(valid) {
            return Err(InvalidName);
        }
        let mut bytes = [0; MAX_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(DriverName {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Invariant: `new` copied only ASCII bytes.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("names are ASCII")
    }
}

impl fmt::Debug for DriverName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DriverName({:?})", self.as_str())
    }
}

impl fmt::Display for DriverName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DriverName {
    type Err = InvalidName;
    fn from_str(name: &str) -> Result<DriverName, InvalidName> {
        DriverName::new(name)
    }
}
