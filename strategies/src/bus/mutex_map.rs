//! `mutex-map`: one re-entrant lock held for the whole call, as in `mutex-list` (the
//! global-lock bus of the private module `bus/global.rs`, over [`MapStore`]), with the devices
//! indexed by key and the unbound devices indexed in device order, so no call scans the device
//! list.
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
//! One re-entrant mutex, for the whole of every call, callbacks included, as in `mutex-list`:
//! every call is serialized, a slow probe holds up the whole bus, reads included, and the
//! callbacks of different devices never run in parallel. Each walk is therefore one instant:
//! the whole bus is linearizable, not only each device.
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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::{Device, Driver, DriverName, Key};

use super::global::{self, Binding, GlobalBus, Sealed};

/// A bus behind one global re-entrant mutex, with maps: see the [module docs](self).
pub type MutexMapBus = GlobalBus<MapStore>;

/// Devices by key with ordered indexes of the unbound devices and of each driver's devices, and
/// drivers in an ordered map: the storage of [`MutexMapBus`].
#[derive(Debug)]
pub struct MapStore;

impl Sealed for MapStore {}

impl global::Store for MapStore {
    const NAME: &'static str = "mutex-map";
    type Devices = Devices;
    type Drivers = Drivers;
}

struct Entry {
    /// The registration number: the device order.
    seq: u64,
    device: Arc<Device>,
    /// The driver and the bind number.
    driver: Option<(Binding, u64)>,
}

#[doc(hidden)]
#[derive(Default)]
pub struct Devices {
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
}

impl global::Devices for Devices {
    fn contains(&self, key: Key) -> bool {
        self.by_key.contains_key(&key)
    }

    fn insert(&mut self, device: Arc<Device>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = device.key();
        self.unbound.insert(seq, key);
        let entry = Entry {
            seq,
            device,
            driver: None,
        };
        self.by_key.insert(key, entry);
    }

    fn get(&self, key: Key) -> Option<(&Arc<Device>, Option<&Binding>)> {
        let entry = self.by_key.get(&key)?;
        Some((&entry.device, entry.driver.as_ref().map(|(b, _)| b)))
    }

    fn remove(&mut self, key: Key) {
        let entry = self
            .by_key
            .remove(&key)
            .expect("the leaving device stays registered");
        self.unbound.remove(&entry.seq);
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

    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn next_unbound(&self, cursor: &mut u64, end: u64) -> Option<Arc<Device>> {
        let (&seq, key) = self.unbound.range(*cursor..end).next()?;
        *cursor = seq + 1;
        Some(Arc::clone(&self.by_key[key].device))
    }

    fn last_bound_to(&self, name: DriverName) -> Option<Arc<Device>> {
        let (_, key) = self.binds.get(&name)?.last_key_value()?;
        Some(Arc::clone(&self.by_key[key].device))
    }

    fn forget(&mut self, name: DriverName) {
        self.binds.remove(&name);
    }

    fn bound_to(&self, name: DriverName) -> usize {
        self.binds.get(&name).map_or(0, BTreeMap::len)
    }

    fn counts(&self) -> (usize, usize) {
        (self.by_key.len(), self.bound)
    }
}

/// The drivers, by registration number (the driver order) and by name.
#[doc(hidden)]
#[derive(Default)]
pub struct Drivers {
    order: BTreeMap<u64, Binding>,
    by_name: HashMap<DriverName, u64>,
    next_seq: u64,
}

impl global::Drivers for Drivers {
    fn get(&self, name: DriverName) -> Option<&Binding> {
        self.order.get(self.by_name.get(&name)?)
    }

    fn insert(&mut self, binding: Binding) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_name.insert(binding.0, seq);
        self.order.insert(seq, binding);
    }

    fn remove(&mut self, name: DriverName) -> Option<Arc<dyn Driver>> {
        let seq = self.by_name.remove(&name)?;
        Some(self.order.remove(&seq).expect("listed by name").1)
    }

    fn in_order(&self) -> impl Iterator<Item = &Binding> {
        self.order.values()
    }

    fn count(&self) -> usize {
        self.order.len()
    }
}

impl fmt::Debug for Devices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        global::debug_devices(self, f)
    }
}

impl fmt::Debug for Drivers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        global::debug_drivers(self, f)
    }
}
