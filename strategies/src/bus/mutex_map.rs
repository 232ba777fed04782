//! `mutex-map`: one re-entrant lock held for the whole call, as in `mutex-list`, with the
//! devices indexed by key and the unbound devices indexed in device order, so no call scans the
//! device list.
//!
//! # Design
//! - Devices: a `HashMap` from key to entry (its registration number, the device, its binding
//!   and bind number); an ordered map of the **unbound** devices by registration number, which
//!   the walks of `register_driver` and `rescan` follow (they never visit a bound device); and
//!   for each driver an ordered map of its devices by bind number, which `unregister_driver`
//!   walks backwards (most recently bound first).
//! - Drivers: an ordered map by registration number (the driver order), and a `HashMap` from
//!   name to registration number.
//!
//! The id tables are not indexed: a driver walk visits every unbound device and matches it.
//! An index by id would have to keep patterns with ANY apart and merge several lists back into
//! device order; unbound devices are few in practice (most bind on registration), which makes
//! the simpler index enough.
//!
//! # What it locks, and for how long
//! One [`parking_lot::ReentrantMutex`], for the whole of every call, callbacks included, as in
//! `mutex-list`: every call is serialized, a slow probe holds up the whole bus, reads included,
//! and the callbacks of different devices never run in parallel. Each walk is therefore one
//! instant: the whole bus is linearizable, not only each device.
//!
//! # Cost per call
//! - `register_device`: a hash insert and an ordered insert (O(log n)), then the offer,
//!   O(drivers) plus the probes.
//! - `unregister_device`: a hash removal and an ordered removal, O(log n), plus the remove.
//! - `register_driver` and `rescan`: O(u log n) for u unbound devices, plus the probes.
//! - `unregister_driver`: O(b log n) for its b devices, plus the removes.
//! - Reads: a hash lookup, O(1), under the lock.
//!
//! Measured figures are in the [`bus`](crate::bus) module docs.
//!
//! # Re-entrancy
//! As in `mutex-list`: from a callback, registering and unregistering devices works, except the
//! device being called back (`reentrant`); `register_driver`, `unregister_driver` and `rescan`
//! fail with `reentrant`; reads work.
//!
//! # When to choose it
//! When calls are rare and callbacks must see a bus that stands still (every call is one
//! instant), at any population: unlike `mutex-list`, no call grows linearly with the number of
//! devices. It does not scale with threads: choose a scalable bus for storms.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::protocol::{self, BusId, Panics};
use bypass_registry::bus::{
    Bus, BusPopulation, Device, Driver, DriverName, Key, Reentrant, RegisterDeviceResult,
    RegisterDriverResult, RegisterError, UnregisterError,
};
use parking_lot::ReentrantMutex;

/// A driver, as the driver order and a bound device keep it.
type Binding = (DriverName, Arc<dyn Driver>);

struct Entry {
    /// The registration number: the device order.
    seq: u64,
    device: Arc<Device>,
    /// The driver and the bind number.
    driver: Option<(Binding, u64)>,
}

#[derive(Default)]
struct Devices {
    by_key: HashMap<Key, Entry>,
    /// The unbound devices by registration number.
    unbound: BTreeMap<u64, Key>,
    /// Each registered (or leaving) driver's devices by bind number.
    binds: HashMap<DriverName, BTreeMap<u64, Key>>,
    next_seq: u64,
    next_bind: u64,
    bound: usize,
}

impl Devices {
    fn entry_mut(&mut self, key: Key) -> &mut Entry {
        self.by_key
            .get_mut(&key)
            .expect("a device being called back stays registered")
    }

    fn bind(&mut self, key: Key, binding: Binding) {
        let bind = self.next_bind;
        self.next_bind += 1;
        self.binds.entry(binding.0).or_default().insert(bind, key);
        let entry = self.entry_mut(key);
        entry.driver = Some((binding, bind));
        let seq = entry.seq;
        self.unbound.remove(&seq);
        self.bound += 1;
    }

    fn unbind(&mut self, key: Key) {
        let entry = self.entry_mut(key);
        let ((name, _), bind) = entry.driver.take().expect("unbinding a bound device");
        let seq = entry.seq;
        self.unbound.insert(seq, key);
        if let Some(binds) = self.binds.get_mut(&name) {
            binds.remove(&bind);
        }
        self.bound -= 1;
    }

    /// The next unbound device from `cursor` in device order, registered before `end`.
    fn next_unbound(&self, cursor: &mut u64, end: u64) -> Option<Arc<Device>> {
        let (&seq, key) = self.unbound.range(*cursor..end).next()?;
        *cursor = seq + 1;
        Some(Arc::clone(&self.by_key[key].device))
    }
}

#[derive(Default)]
struct Drivers {
    /// By registration number: the driver order.
    order: BTreeMap<u64, Binding>,
    by_name: HashMap<DriverName, u64>,
    next_seq: u64,
}

#[derive(Default)]
struct State {
    devices: RefCell<Devices>,
    drivers: RefCell<Drivers>,
}

/// A bus behind one global re-entrant mutex, with maps: see the [module docs](self).
pub struct MutexMapBus {
    id: BusId,
    state: ReentrantMutex<State>,
}

impl MutexMapBus {
    /// An empty bus.
    pub fn new() -> MutexMapBus {
        MutexMapBus {
            id: BusId::new(),
            state: ReentrantMutex::new(State::default()),
        }
    }

    /// Offers `device` to the drivers in order and binds it to the first that takes it. The
    /// drivers stay borrowed across the probes: nothing changes them while a callback runs
    /// (those calls are refused from callbacks, and other threads wait for the lock).
    fn offer(&self, state: &State, device: &Device, panics: &mut Panics) {
        let drivers = state.drivers.borrow();
        let candidates = drivers.order.values().map(|(name, d)| (*name, &**d));
        if let Some(name) = protocol::offer(self.id, device, candidates, panics) {
            let binding = drivers.order[&drivers.by_name[&name]].clone();
            state.devices.borrow_mut().bind(device.key(), binding);
        }
    }
}

impl Default for MutexMapBus {
    fn default() -> MutexMapBus {
        MutexMapBus::new()
    }
}

impl fmt::Debug for MutexMapBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexMapBus")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Bus for MutexMapBus {
    fn name(&self) -> &'static str {
        "mutex-map"
    }

    fn register_device(&self, device: Arc<Device>) -> RegisterDeviceResult {
        let key = device.key();
        if self.id.in_callback_about(key) {
            return Err(RegisterError::Reentrant(device));
        }
        let state = self.state.lock();
        {
            let mut devices = state.devices.borrow_mut();
            if devices.by_key.contains_key(&key) {
                return Err(RegisterError::Duplicate(device));
            }
            let seq = devices.next_seq;
            devices.next_seq += 1;
            devices.unbound.insert(seq, key);
            let device = Arc::clone(&device);
            let entry = Entry {
                seq,
                device,
                driver: None,
            };
            devices.by_key.insert(key, entry);
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
            let entry = devices
                .by_key
                .get(&key)
                .ok_or(UnregisterError::NotRegistered)?;
            let binding = entry.driver.as_ref().map(|(binding, _)| binding.clone());
            (Arc::clone(&entry.device), binding)
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
            let entry = devices
                .by_key
                .remove(&key)
                .expect("the leaving device stays registered");
            devices.unbound.remove(&entry.seq);
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
            if drivers.by_name.contains_key(&name) {
                return Err(RegisterError::Duplicate(driver));
            }
            let seq = drivers.next_seq;
            drivers.next_seq += 1;
            drivers.by_name.insert(name, seq);
            drivers.order.insert(seq, (name, Arc::clone(&driver)));
        }
        let (mut cursor, end) = (0, state.devices.borrow().next_seq);
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
        let driver = {
            let mut drivers = state.drivers.borrow_mut();
            let seq = drivers
                .by_name
                .remove(&name)
                .ok_or(UnregisterError::NotRegistered)?;
            drivers.order.remove(&seq).expect("listed by name").1
        };
        let mut panics = Panics::new();
        protocol::detach(
            self.id,
            name,
            &*driver,
            || {
                let mut devices = state.devices.borrow_mut();
                let (_, key) = devices.binds.get_mut(&name)?.last_key_value()?;
                let key = *key;
                Some(Arc::clone(&devices.entry_mut(key).device))
            },
            |device| state.devices.borrow_mut().unbind(device.key()),
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
        let (binding, _) = devices.by_key.get(&key)?.driver.as_ref()?;
        Some(binding.0)
    }

    fn bound_count(&self, name: DriverName) -> Option<usize> {
        let state = self.state.lock();
        if !state.drivers.borrow().by_name.contains_key(&name) {
            return None;
        }
        Some(
            state
                .devices
                .borrow()
                .binds
                .get(&name)
                .map_or(0, BTreeMap::len),
        )
    }

    fn has_device(&self, key: Key) -> bool {
        let state = self.state.lock();
        state.devices.borrow().by_key.contains_key(&key)
    }

    fn has_driver(&self, name: DriverName) -> bool {
        let state = self.state.lock();
        state.drivers.borrow().by_name.contains_key(&name)
    }

    fn population(&self) -> BusPopulation {
        let state = self.state.lock();
        let devices = state.devices.borrow();
        BusPopulation {
            devices: devices.by_key.len(),
            drivers: state.drivers.borrow().order.len(),
            bound: devices.bound,
        }
    }
}
