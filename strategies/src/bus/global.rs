//! The global-lock buses: every call takes one bus-wide lock and runs its walks and callbacks
//! under it, as the Linux driver core's bus lock does for its lists. They differ only in how
//! they store devices and drivers ([`ListStore`](super::mutex_list::ListStore) or
//! [`MapStore`](super::mutex_map::MapStore)), so the locking, the walks and the protocol are
//! written once here.
//!
//! # Locking
//! One [`parking_lot::ReentrantMutex`] guards the state and is held for the whole call, walks
//! and callbacks included: every call is serialized, so the callbacks of different devices never
//! run in parallel, and a slow probe holds up the whole bus (reads included). Each walk is
//! therefore one instant: the whole bus is linearizable, not only each device. The kernel
//! instead takes a lock per device around probe and remove; a scalable backend does the same
//! (see [`bypass_registry::bus::protocol::attach`], whose handles may be device lock guards).
//!
//! The state sits in two `RefCell`s. The devices are borrowed only between callbacks, never
//! across one. The drivers are borrowed (shared) across the probes of an offer, which is sound
//! because nothing changes the driver list while a callback runs: the calls that would are
//! refused from callbacks (below) and other threads wait for the lock.
//!
//! # Re-entrancy
//! The mutex is re-entrant, so a probe or remove that calls back into the bus does not
//! deadlock. From a callback:
//! - registering or unregistering a device works, except the device being called back (at
//!   any depth of nesting), which fails with `reentrant`;
//! - `register_driver`, `unregister_driver` and `rescan` always fail with `reentrant`: their
//!   walks could reach the device being called back, and the driver list stays fixed while a
//!   callback runs;
//! - reads work. During a probe the device reads as registered and unbound; during a remove it
//!   still reads as bound to the driver being called (it is unbound when `remove` returns),
//!   while that driver, if it is leaving, no longer reads as registered.
//!
//! A callback that waits for *another thread* that calls the bus still deadlocks, as in the
//! kernel: a global lock cannot tell.
//!
//! # Panics
//! parking_lot's locks are never poisoned, and no panic escapes while a `RefCell` is mutably
//! borrowed (callbacks run under `catch_unwind` in [`bypass_registry::bus::protocol`]), so a
//! panicking probe or remove leaves the bus usable.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::protocol::{self, BusId, Panics};
use bypass_registry::bus::{
    Bus, BusPopulation, Device, Driver, DriverName, Key, Reentrant, RegisterDeviceResult,
    RegisterDriverResult, RegisterError, UnregisterError,
};
use parking_lot::ReentrantMutex;

/// A driver, as the driver order and a bound device keep it: a bound device can reach its
/// driver after the driver has left the driver order.
pub(crate) type Binding = (DriverName, Arc<dyn Driver>);

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// How a global-lock bus keeps its devices and drivers: [`ListStore`](super::mutex_list::ListStore)
/// or [`MapStore`](super::mutex_map::MapStore).
pub trait Store: sealed::Sealed + Send + 'static {
    /// The backend's name.
    const NAME: &'static str;
    #[doc(hidden)]
    type Devices: Devices;
    #[doc(hidden)]
    type Drivers: Drivers;
}

/// The registered devices of a global-lock bus, each with its registration number (the device
/// order) and its binding. Called with the bus lock held, never across a callback.
#[doc(hidden)]
pub trait Devices: Default + Send + 'static {
    /// Whether a device is registered under `key`.
    fn contains(&self, key: Key) -> bool;
    /// Registers `device` (its key free), unbound, with the next registration number.
    fn insert(&mut self, device: Arc<Device>);
    /// The device under `key` and its binding.
    fn get(&self, key: Key) -> Option<(&Arc<Device>, Option<&Binding>)>;
    /// Unregisters the unbound device under `key`.
    fn remove(&mut self, key: Key);
    /// Binds the registered, unbound device under `key` to `binding`, as the most recent bind.
    fn bind(&mut self, key: Key, binding: Binding);
    /// Unbinds the bound device under `key`.
    fn unbind(&mut self, key: Key);
    /// The registration number the next device will get: a walk's end.
    fn next_seq(&self) -> u64;
    /// The first unbound device at or after registration number `cursor` and before `end`,
    /// moving `cursor` past it.
    fn next_unbound(&self, cursor: &mut u64, end: u64) -> Option<Arc<Device>>;
    /// The device most recently bound to the driver `name`.
    fn last_bound_to(&self, name: DriverName) -> Option<Arc<Device>>;
    /// Drops what is kept for the driver `name`, which has no device left.
    fn forget(&mut self, name: DriverName);
    /// How many devices are bound to the driver `name`.
    fn bound_to(&self, name: DriverName) -> usize;
    /// How many devices are registered, and how many of them are bound.
    fn counts(&self) -> (usize, usize);
}

/// The registered drivers of a global-lock bus, in registration order (the driver order).
#[doc(hidden)]
pub trait Drivers: Default + Send + 'static {
    /// The driver registered as `name`.
    fn get(&self, name: DriverName) -> Option<&Binding>;
    /// Registers `binding` (its name free) last in the driver order.
    fn insert(&mut self, binding: Binding);
    /// Unregisters the driver `name`.
    fn remove(&mut self, name: DriverName) -> Option<Arc<dyn Driver>>;
    /// The drivers, in the driver order.
    fn in_order(&self) -> impl Iterator<Item = &Binding>;
    /// How many drivers are registered.
    fn count(&self) -> usize;
}

/// What a store's devices show in `Debug`: how many are registered and bound.
pub(crate) fn debug_devices(devices: &impl Devices, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (registered, bound) = devices.counts();
    f.debug_struct("Devices")
        .field("registered", &registered)
        .field("bound", &bound)
        .finish_non_exhaustive()
}

/// What a store's drivers show in `Debug`: their names, in the driver order.
pub(crate) fn debug_drivers(drivers: &impl Drivers, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let names: Vec<DriverName> = drivers.in_order().map(|(n, _)| *n).collect();
    f.debug_tuple("Drivers").field(&names).finish()
}

struct State<S: Store> {
    devices: RefCell<S::Devices>,
    drivers: RefCell<S::Drivers>,
}

/// A bus behind one global re-entrant mutex, storing its devices and drivers in `S`. Use it as
/// [`MutexListBus`](super::MutexListBus) or [`MutexMapBus`](super::MutexMapBus); see the
/// [module docs](self) for its locking and re-entrancy.
pub struct GlobalBus<S: Store> {
    id: BusId,
    state: ReentrantMutex<State<S>>,
}

impl<S: Store> GlobalBus<S> {
    /// An empty bus.
    pub fn new() -> Self {
        GlobalBus {
            id: BusId::new(),
            state: ReentrantMutex::new(State {
                devices: RefCell::default(),
                drivers: RefCell::default(),
            }),
        }
    }

    /// Offers `device` to the drivers in order and binds it to the first that takes it. The
    /// drivers stay borrowed across the probes: nothing changes them while a callback runs
    /// (those calls are refused from callbacks, and other threads wait for the lock).
    fn offer(&self, state: &State<S>, device: &Device, panics: &mut Panics) {
        let drivers = state.drivers.borrow();
        let candidates = drivers.in_order().map(|(name, d)| (*name, &**d));
        if let Some(name) = protocol::offer(self.id, device, candidates, panics) {
            let binding = drivers
                .get(name)
                .expect("the driver that took it is listed");
            state
                .devices
                .borrow_mut()
                .bind(device.key(), binding.clone());
        }
    }
}

impl<S: Store> Default for GlobalBus<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Store> fmt::Debug for GlobalBus<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::NAME)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Bus for GlobalBus<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn register_device(&self, device: Arc<Device>) -> RegisterDeviceResult {
        let key = device.key();
        if self.id.in_callback_about(key) {
            return Err(RegisterError::Reentrant(device));
        }
        let state = self.state.lock();
        {
            let mut devices = state.devices.borrow_mut();
            if devices.contains(key) {
                return Err(RegisterError::Duplicate(device));
            }
            devices.insert(Arc::clone(&device));
        }
        let mut panics = Panics::new();
        self.offer(&state, &device, &mut panics);
        drop(device);
        drop(state);
        panics.resume(Ok(()))
    }

    fn unregister_device(&self, key: Key) -> Result<Arc<Device>, UnregisterError> {
        if self.id.in_callback_about(key) {
            return Err(UnregisterError::Reentrant);
        }
        let state = self.state.lock();
        let (device, binding) = {
            let devices = state.devices.borrow();
            let (device, binding) = devices.get(key).ok_or(UnregisterError::NotRegistered)?;
            (Arc::clone(device), binding.cloned())
        };
        let mut panics = Panics::new();
        if let Some((name, driver)) = &binding {
            protocol::remove(self.id, *name, &**driver, &device, &mut panics);
        }
        {
            let mut devices = state.devices.borrow_mut();
            if binding.is_some() {
                devices.unbind(key);
            }
            devices.remove(key);
        }
        drop(state);
        Ok(panics.resume(device))
    }

    fn register_driver(&self, name: DriverName, driver: Arc<dyn Driver>) -> RegisterDriverResult {
        if self.id.in_callback() {
            return Err(RegisterError::Reentrant(driver));
        }
        let state = self.state.lock();
        {
            let mut drivers = state.drivers.borrow_mut();
            if drivers.get(name).is_some() {
                return Err(RegisterError::Duplicate(driver));
            }
            drivers.insert((name, Arc::clone(&driver)));
        }
        let (mut cursor, end) = (0, state.devices.borrow().next_seq());
        let mut panics = Panics::new();
        protocol::attach(
            self.id,
            name,
            &*driver,
            || state.devices.borrow().next_unbound(&mut cursor, end),
            |device| {
                let binding = (name, Arc::clone(&driver));
                state.devices.borrow_mut().bind(device.key(), binding);
            },
            &mut panics,
        );
        drop(state);
        panics.resume(Ok(()))
    }

    fn unregister_driver(&self, name: DriverName) -> Result<Arc<dyn Driver>, UnregisterError> {
        if self.id.in_callback() {
            return Err(UnregisterError::Reentrant);
        }
        let state = self.state.lock();
        let driver = state
            .drivers
            .borrow_mut()
            .remove(name)
            .ok_or(UnregisterError::NotRegistered)?;
        let mut panics = Panics::new();
        protocol::detach(
            self.id,
            name,
            &*driver,
            || state.devices.borrow().last_bound_to(name),
            |device| state.devices.borrow_mut().unbind(device.key()),
            &mut panics,
        );
        state.devices.borrow_mut().forget(name);
        drop(state);
        Ok(panics.resume(driver))
    }

    fn rescan(&self) -> Result<(), Reentrant> {
        if self.id.in_callback() {
            return Err(Reentrant);
        }
        let state = self.state.lock();
        let (mut cursor, end) = (0, state.devices.borrow().next_seq());
        let mut panics = Panics::new();
        loop {
            let next = state.devices.borrow().next_unbound(&mut cursor, end);
            let Some(device) = next else { break };
            self.offer(&state, &device, &mut panics);
        }
        drop(state);
        panics.resume(Ok(()))
    }

    fn driver_of(&self, key: Key) -> Option<DriverName> {
        let state = self.state.lock();
        let devices = state.devices.borrow();
        let (_, binding) = devices.get(key)?;
        binding.map(|(name, _)| *name)
    }

    fn bound_count(&self, name: DriverName) -> Option<usize> {
        let state = self.state.lock();
        state.drivers.borrow().get(name)?;
        Some(state.devices.borrow().bound_to(name))
    }

    fn has_device(&self, key: Key) -> bool {
        let state = self.state.lock();
        state.devices.borrow().contains(key)
    }

    fn has_driver(&self, name: DriverName) -> bool {
        let state = self.state.lock();
        state.drivers.borrow().get(name).is_some()
    }

    fn population(&self) -> BusPopulation {
        let state = self.state.lock();
        let (devices, bound) = state.devices.borrow().counts();
        BusPopulation {
            devices,
            drivers: state.drivers.borrow().count(),
            bound,
        }
    }
}
