//! The trait every bus backend implements.

use std::sync::Arc;

use super::error::{Reentrant, RegisterError, UnregisterError};
use super::id::{DriverName, Key};
use super::participant::{Device, Driver};

/// The result of registering a device: on error, the device is handed back.
pub type RegisterDeviceResult = Result<(), RegisterError<Arc<Device>>>;
/// The result of registering a driver: on error, the driver is handed back.
pub type RegisterDriverResult = Result<(), RegisterError<Arc<dyn Driver>>>;

/// How many devices and drivers a bus holds, and how many of the devices are bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusPopulation {
    /// Registered devices.
    pub devices: usize,
    /// Registered drivers.
    pub drivers: usize,
    /// Registered devices bound to a driver.
    pub bound: usize,
}

/// A virtio bus: devices register under a [`Key`], drivers under a [`DriverName`] with an id
/// table, and the bus binds each device to at most one matching driver, many devices to one
/// driver.
///
/// Every bus backend implements this trait and passes the bus conformance kit
/// (`bus::kit`, with the `kit` feature), so a VMM can swap one for another. The guarantees below hold for all
/// of them; [`crate::bus::model`] is the same contract as an executable state machine.
///
/// # Orders
/// Devices are kept in registration order, and so are drivers. With no concurrent call, the
/// callbacks run exactly in the orders below, so a replayed trace prints exactly what the model
/// prints.
///
/// # Operations
/// - **register_device**: a key already registered is refused with
///   [`RegisterError::Duplicate`] (a zero key and a bad id cannot be built: [`Key::new`] and
///   [`crate::bus::DeviceId::new`] refuse them first). Otherwise the device is registered, last in
///   device order, and offered to the drivers in registration order: each driver whose table
///   matches it gets `probe`; the first that succeeds binds it and ends the walk, a failed (or
///   panicking) probe lets the next matching driver try. The call returns `Ok` whether or not a
///   driver bound it.
/// - **register_driver**: a name already registered is refused with
///   [`RegisterError::Duplicate`] (a bad name and an empty table cannot be built). Otherwise the
///   driver is registered, last in driver order, and every **unbound** device that it matches
///   gets `probe`, in device order; each success binds that device to it. Bound devices are
///   skipped. Returns `Ok`.
/// - **unregister_device**: no device under the key is [`UnregisterError::NotRegistered`].
///   If bound, its driver's `remove` runs. The device is removed and handed back; the bus keeps
///   no reference to it.
/// - **unregister_driver**: no driver under the name is [`UnregisterError::NotRegistered`].
///   The driver first leaves the driver order (no device binds to it any more), then `remove`
///   runs for each device bound to it, **most recently bound first**. Those devices stay
///   registered and unbound, and are **not** offered to other drivers now: a later
///   `register_driver` or `rescan` may bind them. The driver is handed back.
/// - **rescan**: every unbound device, in device order, is offered to the drivers as in
///   `register_device`.
/// - **Reads** (`driver_of`, `bound_count`, `has_device`, `has_driver`, `population`) never run
///   a callback.
///
/// # Concurrency
/// - **Linearizable per device**: a call about one device takes effect at one instant between
///   its start and its return, its callbacks included. A walk (`register_driver`,
///   `unregister_driver`, `rescan`) acts on each device at one instant within the call, as if
///   alone: each device's history, seen alone, is some sequential order of the calls that
///   respects real time. `population` is exact while no call is in flight, and otherwise
///   between the counts before and after the calls in flight.
/// - **Exactly one bind**: a device and a matching driver registering at the same time end
///   with one probe of the device by that driver (when it is the only matching driver), never
///   zero, never two.
/// - **Per-device exclusion**: the callbacks about one device never overlap; a probe never
///   interleaves with a remove of the same device.
/// - **Every bind is undone once**: each successful `probe(d)` is followed by exactly one
///   `remove(d)` by the same driver, before the `unregister_device` or `unregister_driver`
///   that unbinds it returns.
/// - **No call after return**: once `unregister_driver` has returned, that driver is never
///   called again; once `unregister_device` has returned, no callback is made about that device.
/// - **Different devices**: each backend documents whether it probes different devices in
///   parallel (scalable backends, which lock per device) or one at a time (global-lock
///   backends).
///
/// # Faults
/// - A **panicking probe** counts as a failed probe: the walk goes on (next driver, next
///   device), the bus ends consistent, and the first panic then reaches the caller. A
///   panicking `remove` still unbinds the device.
/// - A **re-entrant call** (a probe or remove calling into the same bus) never deadlocks. A
///   call about the device being called back, or unregistering the driver being called, fails
///   with `reentrant`; registering or unregistering another device or driver, and `rescan`,
///   works or fails with `reentrant`, as the backend documents. Reads always work.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use bypass_registry::CallbackError;
/// use bypass_registry::bus::{ANY, Bus, Device, DeviceId, Driver, DriverName, IdTable, Key};
///
/// struct Net(IdTable);
/// impl Driver for Net {
///     fn id_table(&self) -> &IdTable { &self.0 }
///     fn probe(&self, _: &Device) -> Result<(), CallbackError> { Ok(()) }
///     fn remove(&self, _: &Device) {}
/// }
///
/// fn boot(bus: &impl Bus) {
///     let net = DriverName::new("virtio_net").unwrap();
///     bus.register_driver(net, Arc::new(Net(IdTable::one(1, ANY)))).unwrap();
///     let key = Key::new(5).unwrap();
///     bus.register_device(Arc::new(Device::new(key, DeviceId::new(1, 0x1af4).unwrap()))).unwrap();
///     assert_eq!(bus.driver_of(key), Some(net));
///     let _device = bus.unregister_device(key).unwrap();
///     assert_eq!(bus.bound_count(net), Some(0));
/// }
/// ```
pub trait Bus: Send + Sync {
    /// The backend's name, as the command line and reports spell it (`mutex-list`, …).
    fn name(&self) -> &'static str;

    /// Registers `device` under its key and offers it to the drivers.
    fn register_device(&self, device: Arc<Device>) -> RegisterDeviceResult;

    /// Unregisters the device under `key`, removing it from its driver first if bound, and
    /// hands it back.
    fn unregister_device(&self, key: Key) -> Result<Arc<Device>, UnregisterError>;

    /// Registers `driver` under `name` and offers it every unbound device it matches.
    fn register_driver(&self, name: DriverName, driver: Arc<dyn Driver>) -> RegisterDriverResult;

    /// Unregisters the driver under `name`, removing it from each of its devices, most
    /// recently bound first, and hands it back.
    fn unregister_driver(&self, name: DriverName) -> Result<Arc<dyn Driver>, UnregisterError>;

    /// Offers every unbound device, in device order, to the drivers.
    fn rescan(&self) -> Result<(), Reentrant>;

    /// The name of the driver the device under `key` is bound to, if it is registered and
    /// bound.
    fn driver_of(&self, key: Key) -> Option<DriverName>;

    /// How many devices the driver under `name` has bound, if it is registered.
    fn bound_count(&self, name: DriverName) -> Option<usize>;

    /// Whether a device is registered under `key`.
    fn has_device(&self, key: Key) -> bool;

    /// Whether a driver is registered under `name`.
    fn has_driver(&self, name: DriverName) -> bool;

    /// How many devices and drivers are registered, and how many devices are bound.
    fn population(&self) -> BusPopulation;
}
