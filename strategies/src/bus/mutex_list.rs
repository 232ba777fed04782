//! `mutex-list`: the kernel's bus, as the Linux driver core builds it: devices and drivers in
//! two lists in registration order, walked linearly, behind one lock held for the whole call
//! (the global-lock bus of the private module `bus/global.rs`, with its locking, re-entrancy
//! and panics, over [`ListStore`]).
//!
//! # Costs
//! Looking a device up by key is a linear scan of the device list, as is unbinding it from its
//! driver's list of bound devices; a walk over the devices is linear in their number.
//!
//! # When to choose it
//! As a reference: it is the kernel's shape, the simplest to check against the contract. Its
//! scans make every call O(devices): choose `mutex-map` for the same semantics at any
//! population.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::{Device, Driver, DriverName, Key};

use super::global::{self, Binding, GlobalBus, Sealed};

/// A bus behind one global re-entrant mutex, with linear lists: the kernel's design. See the
/// [module docs](self) for its costs.
pub type MutexListBus = GlobalBus<ListStore>;

/// Devices and drivers in lists in registration order, scanned linearly: the storage of
/// [`MutexListBus`].
#[derive(Debug)]
pub struct ListStore;

impl Sealed for ListStore {}

impl global::Store for ListStore {
    const NAME: &'static str = "mutex-list";
    type Devices = Devices;
    type Drivers = Drivers;
}

struct DeviceEntry {
    /// The registration number: the device order.
    seq: u64,
    device: Arc<Device>,
    driver: Option<Binding>,
}

#[doc(hidden)]
#[derive(Default)]
pub struct Devices {
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
}

impl global::Devices for Devices {
    fn contains(&self, key: Key) -> bool {
        self.position(key).is_some()
    }

    fn insert(&mut self, device: Arc<Device>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.list.push(DeviceEntry {
            seq,
            device,
            driver: None,
        });
    }

    fn get(&self, key: Key) -> Option<(&Arc<Device>, Option<&Binding>)> {
        let entry = &self.list[self.position(key)?];
        Some((&entry.device, entry.driver.as_ref()))
    }

    fn remove(&mut self, key: Key) {
        let index = self
            .position(key)
            .expect("the leaving device stays registered");
        self.list.remove(index);
    }

    fn bind(&mut self, key: Key, binding: Binding) {
        self.binds.entry(binding.0).or_default().push(key);
        self.entry_mut(key).driver = Some(binding);
        self.bound += 1;
    }

    fn unbind(&mut self, key: Key) {
        let (name, _) = self
            .entry_mut(key)
            .driver
            .take()
            .expect("unbinding a bound device");
        self.bound -= 1;
        let binds = self.binds.get_mut(&name).expect("its driver has a list");
        // From the end: a leaving driver unbinds its most recent device first.
        let at = binds
            .iter()
            .rposition(|&k| k == key)
            .expect("listed when bound");
        binds.remove(at);
    }

    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn next_unbound(&self, cursor: &mut u64, end: u64) -> Option<Arc<Device>> {
        let start = self.list.partition_point(|e| e.seq < *cursor);
        let entry = self.list[start..]
            .iter()
            .take_while(|e| e.seq < end)
            .find(|e| e.driver.is_none())?;
        *cursor = entry.seq + 1;
        Some(Arc::clone(&entry.device))
    }

    fn last_bound_to(&self, name: DriverName) -> Option<Arc<Device>> {
        let key = *self.binds.get(&name)?.last()?;
        Some(Arc::clone(&self.list[self.position(key)?].device))
    }

    fn forget(&mut self, name: DriverName) {
        self.binds.remove(&name);
    }

    fn bound_to(&self, name: DriverName) -> usize {
        self.binds.get(&name).map_or(0, Vec::len)
    }

    fn counts(&self) -> (usize, usize) {
        (self.list.len(), self.bound)
    }
}

/// The drivers in registration order.
#[doc(hidden)]
#[derive(Default)]
pub struct Drivers(Vec<Binding>);

impl global::Drivers for Drivers {
    fn get(&self, name: DriverName) -> Option<&Binding> {
        self.0.iter().find(|(n, _)| *n == name)
    }

    fn insert(&mut self, binding: Binding) {
        self.0.push(binding);
    }

    fn remove(&mut self, name: DriverName) -> Option<Arc<dyn Driver>> {
        let index = self.0.iter().position(|(n, _)| *n == name)?;
        Some(self.0.remove(index).1)
    }

    fn in_order(&self) -> impl Iterator<Item = &Binding> {
        self.0.iter()
    }

    fn count(&self) -> usize {
        self.0.len()
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
