//! The two kinds of bus participant: a [`Device`], plain data the VMM registers, and a
//! [`Driver`], whose `probe` and `remove` the bus calls.

use std::any::Any;
use std::fmt;

use super::id::{DeviceId, DriverName, IdTable, Key};
use crate::participant::CallbackError;

/// A device on the bus: its [`Key`], its [`DeviceId`] and whatever the VMM attaches for the
/// driver to read (its config space, its queues).
///
/// A device has no callbacks: the bus only reads its key and id, and hands it to a driver's
/// `probe` and `remove`. It is registered as an `Arc<Device>` and handed back by
/// `unregister_device`; the bus keeps no reference to it after that.
///
/// ```
/// use bypass_registry::bus::{Device, DeviceId, Key};
///
/// struct NetConfig { mac: [u8; 6] }
/// let id = DeviceId::new(1, 0x1af4).unwrap();
/// let dev = Device::with_data(Key::new(5).unwrap(), id, NetConfig { mac: [2, 0, 0, 0, 0, 1] });
/// assert_eq!(dev.key().get(), 5);
/// assert_eq!(dev.data::<NetConfig>().unwrap().mac[5], 1);
/// assert!(dev.data::<u32>().is_none());
/// ```
pub struct Device {
    key: Key,
    id: DeviceId,
    data: Box<dyn Any + Send + Sync>,
}

impl Device {
    /// A device with no data attached.
    pub fn new(key: Key, id: DeviceId) -> Device {
        Device::with_data(key, id, ())
    }

    /// A device carrying `data`, which drivers read with [`Device::data`].
    pub fn with_data(key: Key, id: DeviceId, data: impl Any + Send + Sync) -> Device {
        Device {
            key,
            id,
            data: Box::new(data),
        }
    }

    /// The key it is registered under.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Its id, which drivers' id tables match.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// The attached data, if it is a `T`.
    pub fn data<T: Any>(&self) -> Option<&T> {
        self.data.downcast_ref()
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A driver: it serves the devices its [`IdTable`] matches.
///
/// The bus calls `probe` to offer it a matching, unbound device, and `remove` to take back a
/// device it bound (when the device or the driver is unregistered). The callbacks about one
/// device never overlap; callbacks about different devices may run in parallel on a scalable
/// backend. A callback may call into the bus: about its own device, or to unregister its own
/// driver, it gets `reentrant`, never a deadlock.
///
/// `Driver: Any`, so the `Arc<dyn Driver>` that `unregister_driver` hands back can be turned into
/// the concrete type again.
///
/// ```
/// use bypass_registry::CallbackError;
/// use bypass_registry::bus::{ANY, Device, Driver, IdTable};
///
/// struct VirtioNet { table: IdTable }
/// impl Driver for VirtioNet {
///     fn id_table(&self) -> &IdTable { &self.table }
///     fn probe(&self, device: &Device) -> Result<(), CallbackError> {
///         if device.id().vendor() == 0x1af4 { Ok(()) } else { Err(CallbackError::new("not ours")) }
///     }
///     fn remove(&self, _device: &Device) {}
/// }
/// let net = VirtioNet { table: IdTable::one(1, ANY) };
/// assert_eq!(net.id_table().patterns().len(), 1);
/// ```
pub trait Driver: Any + Send + Sync {
    /// The devices this driver serves. The bus reads it when it matches devices; it must stay
    /// the same while the driver is registered.
    fn id_table(&self) -> &IdTable;
    /// Take `device`: `Ok` binds it to this driver; an error (or a panic) leaves it unbound
    /// and lets the next matching driver try.
    fn probe(&self, device: &Device) -> Result<(), CallbackError>;
    /// Release `device`, which this driver bound. It is unbound when this returns (or panics).
    fn remove(&self, device: &Device);
}

/// One of a driver's two callbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BusCallback {
    /// `probe`
    Probe,
    /// `remove`
    Remove,
}

impl BusCallback {
    /// `"probe"` or `"remove"`, as traces print it.
    pub const fn as_str(self) -> &'static str {
        match self {
            BusCallback::Probe => "probe",
            BusCallback::Remove => "remove",
        }
    }
}

/// A callback that ran: which driver, which callback, about which device. Its `Display` is a
/// trace callback line, such as `driver net probe 5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BusEvent {
    /// The driver called.
    pub driver: DriverName,
    /// The callback.
    pub callback: BusCallback,
    /// The key of the device it was about.
    pub key: u64,
}

impl fmt::Display for BusEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "driver {} {} {}",
            self.driver,
            self.callback.as_str(),
            self.key
        )
    }
}
