//! The kernel's bus, as the Linux driver core builds it: devices and drivers in two lists in
//! registration order, walked linearly, behind one lock held for the whole call.
//!
//! # Locking
//! One [`parking_lot::ReentrantMutex`] guards the state and is held for the whole call, walks
//! and callbacks included: every call is serialized, so the callbacks of different devices never
//! run in parallel, and a slow probe holds up the whole bus (reads included). The kernel instead
//! takes a lock per device around probe and remove; a scalable backend does the same (see
//! [`bypass_registry::bus::protocol::attach`], whose handles may be device lock guards).
//!
//! The state sits in two `RefCell`s. The devices are borrowed only between callbacks, never
//! across one. The drivers are borrowed (shared) across the probes of an offer, which is sound
//! because nothing changes the driver list while a callback runs: the calls that would are
//! refused from callbacks (below) and other threads wait for the lock.
//!
//! # Costs
//! Looking a device up by key is a linear scan of the device list, as is unbinding it from its
//! driver's list of bound devices; a walk over the devices is linear in their number.
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
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::protocol::{self, BusId, Panics};
use bypass_registry::bus::{
    Bus, BusPopulation, Device, Driver, DriverName, Key, Reentrant, RegisterDeviceResult,
    RegisterDriverResult, RegisterError, UnregisterError,
};
use parking_lot::ReentrantMutex;

/// A bound driver, as a device entry keeps it: bound devices can reach it after it has left
/// the driver list.
type Binding = (DriverName, Arc<dyn Driver>);

struct DeviceEntry {
    /// The registration number: the device order.
    seq: u64,
    device: Arc<Device>,
    driver: Option<Binding>,
}

#[derive(Default)]
struct Devices {
    /// In registration order (increasing `seq`).
    list: Vec<DeviceEntry>,
    next_seq: u64,
    bound: usize,
    /// Each registered (or leaving) driver's devices, in the order they were bound.
    binds: HashMap<DriverName, Vec<Key>>,
}

impl Devices {
    fn position(&self, key: Key) -> Option<usize> {
        self.list.iter().position(|e| e.device.key() == key)
    }

    fn entry_mut(&mut self, key: Key) -> &mut DeviceEntry {
        let index = self
            .position(key)
            .expect("a device being called back stays registered");
        &mut self.list[index]
    }

    fn bind(&mut self, key: Key, binding: Binding) {
        self.binds.entry(binding.0).or_default().push(key);
        self.entry_mut(key).driver = Some(binding);
        self.bound += 1;
    }
}

#[derive(Default)]
struct State {
    devices: RefCell<Devices>,
    /// In registration order.
    drivers: RefCell<Vec<Binding>>,
}

/// A bus behind one global re-entrant mutex, with linear lists: the kernel's design. See the
/// [module docs](self) for its locking, costs and re-entrancy.
pub struct MutexListBus {
    id: BusId,
    state: ReentrantMutex<State>,
}

impl MutexListBus {
    /// An empty bus.
    pub fn new() -> MutexListBus {
        MutexListBus {
            id: BusId::new(),
            state: ReentrantMutex::new(State::default()),
        }
    }

    /// The next unbound device after `cursor` in device order, registered before `end`.
    fn next_unbound(state: &State, cursor: &mut u64, end: u64) -> Option<Arc<Device>> {
        let devices = state.devices.borrow();
        let start = devices.list.partition_point(|e| e.seq < *cursor);
        let entry = devices.list[start..]
            .iter()
            .take_while(|e| e.seq < end)
            .find(|e| e.driver.is_none())?;
        *cursor = entry.seq + 1;
        Some(Arc::clone(&entry.device))
    }

    /// Offers `device` to the drivers in order and binds it to the first that takes it.
    fn offer(&self, state: &State, device: &Device, panics: &mut Panics) {
        let drivers = state.drivers.borrow();
        let candidates = drivers.iter().map(|(name, d)| (*name, &**d));
        if let Some(name) = protocol::offer(self.id, device, candidates, panics) {
            let driver = drivers.iter().find(|(n, _)| *n == name).map(|(_, d)| d);
            let driver = Arc::clone(driver.expect("the driver that took it is listed"));
            state
                .devices
                .borrow_mut()
                .bind(device.key(), (name, driver));
        }
    }
}

impl Default for MutexListBus {
    fn default() -> MutexListBus {
        MutexListBus::new()
    }
}

impl fmt::Debug for MutexListBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexListBus")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Bus for MutexListBus {
    fn name(&self) -> &'static str {
        "mutex-list"
    }

    fn register_device(&self, device: Arc<Device>) -> RegisterDeviceResult {
        let key = device.key();
        if self.id.in_callback_about(key) {
            return Err(RegisterError::Reentrant(device));
        }
        let state = self.state.lock();
        {
            let mut devices = state.devices.borrow_mut();
            if devices.position(key).is_some() {
                return Err(RegisterError::Duplicate(device));
            }
            let seq = devices.next_seq;
            devices.next_seq += 1;
            devices.list.push(DeviceEntry {
                seq,
                device: Arc::clone(&device),
                driver: None,
            });
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
            let entry = &devices.list[devices
                .position(key)
                .ok_or(UnregisterError::NotRegistered)?];
            (Arc::clone(&entry.device), entry.driver.clone())
        };
        let mut panics = Panics::new();
        if let Some((name, driver)) = &binding {
            protocol::remove(self.id, *name, &**driver, &device, &mut panics);
        }
        {
            let mut devices = state.devices.borrow_mut();
            let index = devices
                .position(key)
                .expect("the leaving device stays registered");
            devices.list.remove(index);
            if let Some((name, _)) = binding {
                devices.bound -= 1;
                let binds = devices.binds.get_mut(&name).expect("its driver has a list");
                let at = binds
                    .iter()
                    .position(|&k| k == key)
                    .expect("listed when bound");
                binds.remove(at);
            }
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
            if drivers.iter().any(|(n, _)| *n == name) {
                return Err(RegisterError::Duplicate(driver));
            }
            drivers.push((name, Arc::clone(&driver)));
        }
        let (mut cursor, end) = (0, state.devices.borrow().next_seq);
        let mut panics = Panics::new();
        protocol::attach(
            self.id,
            name,
            &*driver,
            || Self::next_unbound(&state, &mut cursor, end),
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
        let driver = {
            let mut drivers = state.drivers.borrow_mut();
            let index = drivers
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or(UnregisterError::NotRegistered)?;
            drivers.remove(index).1
        };
        let mut panics = Panics::new();
        protocol::detach(
            self.id,
            name,
            &*driver,
            || {
                let mut devices = state.devices.borrow_mut();
                let key = devices.binds.get_mut(&name)?.pop()?;
                Some(Arc::clone(&devices.entry_mut(key).device))
            },
            |device| {
                let mut devices = state.devices.borrow_mut();
                devices.entry_mut(device.key()).driver = None;
                devices.bound -= 1;
            },
            &mut panics,
        );
        state.devices.borrow_mut().binds.remove(&name);
        drop(state);
        Ok(panics.resume(driver))
    }

    fn rescan(&self) -> Result<(), Reentrant> {
        if self.id.in_callback() {
            return Err(Reentrant);
        }
        let state = self.state.lock();
        let (mut cursor, end) = (0, state.devices.borrow().next_seq);
        let mut panics = Panics::new();
        while let Some(device) = Self::next_unbound(&state, &mut cursor, end) {
            self.offer(&state, &device, &mut panics);
        }
        drop(state);
        panics.resume(Ok(()))
    }

    fn driver_of(&self, key: Key) -> Option<DriverName> {
        let state = self.state.lock();
        let devices = state.devices.borrow();
        let index = devices.position(key)?;
        devices.list[index].driver.as_ref().map(|(name, _)| *name)
    }

    fn bound_count(&self, name: DriverName) -> Option<usize> {
        let state = self.state.lock();
        if !state.drivers.borrow().iter().any(|(n, _)| *n == name) {
            return None;
        }
        Some(state.devices.borrow().binds.get(&name).map_or(0, Vec::len))
    }

    fn has_device(&self, key: Key) -> bool {
        let state = self.state.lock();
        state.devices.borrow().position(key).is_some()
    }

    fn has_driver(&self, name: DriverName) -> bool {
        let state = self.state.lock();
        state.drivers.borrow().iter().any(|(n, _)| *n == name)
    }

    fn population(&self) -> BusPopulation {
        let state = self.state.lock();
        let devices = state.devices.borrow();
        BusPopulation {
            devices: devices.list.len(),
            drivers: state.drivers.borrow().len(),
            bound: devices.bound,
        }
    }
}
