//! What the scalable buses (`sharded`, `rcu`, `lockfree`) share: a lock per device held across
//! that device's callbacks, the driver list as an immutable snapshot, and every operation of the
//! contract written once over a [`DeviceIndex`], the one part in which they differ (a dashmap,
//! arc-swap snapshots, a lock-free map).
//!
//! # The pieces
//! - A **device slot** per registered device: its key, its registration number (`seq`, the
//!   device order), a **lock** over the device (`Arc<Device>`, taken out on unregister) and the
//!   generation of the driver list its last offer saw (`seen`) and the driver it is bound to;
//!   and, for readers, that binding as a [`Binding`] (the driver's generation and its name,
//!   under a sequence lock) written only under the lock. The slot is locked
//!   *before* it is inserted in the index, so the device's own offer is the first thing that
//!   happens to it.
//! - A **driver slot** per registered driver: its name, the driver, its `generation` (the
//!   driver list's counter when it registered), a count of its bound devices, and a **gate**
//!   that counts the probes in flight by this driver and closes when it leaves.
//! - The **driver list**: an `ArcSwap` of an immutable `Vec` of driver slots in registration
//!   order, replaced (copied) under a mutex by `register_driver` and `unregister_driver`, and
//!   loaded without any lock by every device registration.
//!
//! # How each step of a walk is made atomic per device
//! Every callback about a device runs under that device's lock, and every change of its binding
//! is made under it, so each step (an offer, one device of a driver's walk, one remove) is one
//! instant in the device's history. The remaining races are settled like this:
//! - **A device and a driver registering at once** (exactly one bind): the device's offer
//!   records the generation of the driver list it loaded in `seen`; the driver's walk, which
//!   takes the device's lock (so after that offer), probes it only if unbound and
//!   `seen < generation`, that is if the offer did not already include this driver. And a walk
//!   that misses a device (inserted after the walk listed the index) misses only devices whose
//!   offer sees the driver: each side writes (the device into the index, the driver into the
//!   list), issues a `SeqCst` fence, then reads the other, so at least one sees the other.
//! - **A driver leaving while one of its probes runs** (no call after return, every bind undone
//!   once): a probe enters the driver's gate first, and binds before it leaves the gate;
//!   `unregister_driver` takes the driver out of the list, closes the gate and waits for the
//!   probes in flight (and the driver's own registration walk) to leave it, then lists the
//!   devices bound to it (a scan of the index) and removes them, most recently bound first (a
//!   bus-wide bind counter numbers the binds).
//! - **A device leaving during a walk**: `unregister_device` takes the device out of its slot
//!   under the lock; a walk that then locks the slot finds it empty and skips it.
//!
//! A walk lists the devices of the index and sorts them by `seq` (or by bind number), so with no
//! concurrent call it follows the contract's orders exactly.
//!
//! # Re-entrancy
//! A thread inside a callback never waits for a lock of the bus, so no re-entrant call can
//! deadlock: from a callback, a call about a device whose lock another callback holds (its own
//! device included) fails with `reentrant`, and `register_driver`, `unregister_driver` and
//! `rescan` always do (their walks take device locks, and `unregister_driver` waits for probes).
//! Registering a new device, and unregistering one that no callback holds, works. Reads always
//! work: during a probe the device reads as registered and unbound, during a remove as still
//! bound.

use std::cmp::Reverse;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};

use arc_swap::ArcSwap;
use bypass_registry::bus::protocol::{self, BusId, Panics};
use bypass_registry::bus::{
    BusPopulation, Device, Driver, DriverName, Key, Reentrant, RegisterDeviceResult,
    RegisterDriverResult, RegisterError, UnregisterError,
};
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::binding::Binding;
use crate::counter::PerThread;

/// Where a scalable bus keeps its device slots, by key. Its operations never call back and
/// never wait for a device lock, so they can be made while holding one.
pub(crate) trait DeviceIndex: Send + Sync {
    /// Inserts `slot` under its key, unless the key is taken; whether it did.
    fn insert(&self, slot: &Arc<DeviceSlot>) -> bool;
    /// Removes the slot under `key` (the caller holds its lock and has emptied it).
    fn remove(&self, key: Key);
    /// Calls `f` with the slot under `key`, if any.
    fn read<R>(&self, key: Key, f: impl FnOnce(&Arc<DeviceSlot>) -> R) -> Option<R>;
    /// Calls `f` with every slot, in no particular order.
    fn for_each(&self, f: impl FnMut(&Arc<DeviceSlot>));
}

/// One registered device.
pub(crate) struct DeviceSlot {
    key: Key,
    /// The registration number: the device order.
    seq: u64,
    /// Held across every callback about the device and every change of its binding.
    state: Mutex<DeviceState>,
    /// The driver it is bound to, for readers; written only under `state`'s lock.
    binding: Binding,
    /// When it was bound (the bus's bind counter); written under the lock before `binding`.
    bind_seq: AtomicU64,
}

impl DeviceSlot {
    /// The key the device is registered under.
    pub(crate) fn key(&self) -> Key {
        self.key
    }
}

struct DeviceState {
    /// `None` once unregistered: the bus keeps no reference to a device it handed back.
    device: Option<Arc<Device>>,
    /// The generation of the driver list the device was last offered to.
    seen: u64,
    /// The driver it is bound to.
    driver: Option<Arc<DriverSlot>>,
}

/// A device locked by this thread, as the walks of [`protocol`] take it.
struct Locked<'a> {
    slot: &'a Arc<DeviceSlot>,
    state: MutexGuard<'a, DeviceState>,
}

impl Deref for Locked<'_> {
    type Target = Device;
    fn deref(&self) -> &Device {
        self.state
            .device
            .as_deref()
            .expect("a walk hands out registered devices only")
    }
}

/// One registered driver.
struct DriverSlot {
    name: DriverName,
    driver: Arc<dyn Driver>,
    /// The driver list's generation when it registered: unique to this registration of the
    /// driver, never 0.
    generation: u64,
    gate: Gate,
    bound: PerThread,
}

/// The probes in flight by one driver, and whether it is leaving.
struct Gate {
    /// The number of passes out, plus [`CLOSED`] once the driver is leaving.
    state: AtomicUsize,
    lock: Mutex<()>,
    drained: Condvar,
}

const CLOSED: usize = 1 << (usize::BITS - 1);

/// Leave to probe by a driver; binds made while it is held are seen by its unregister.
struct Pass<'a>(&'a Gate);

impl Gate {
    fn new() -> Gate {
        Gate {
            state: AtomicUsize::new(0),
            lock: Mutex::new(()),
            drained: Condvar::new(),
        }
    }

    /// A pass, unless the driver is leaving. One atomic add.
    fn enter(&self) -> Option<Pass<'_>> {
        // Counted in first; if the gate is closed, dropping the pass counts it out again (and
        // wakes the unregister if it was the last).
        let pass = Pass(self);
        (self.state.fetch_add(1, Ordering::AcqRel) & CLOSED == 0).then_some(pass)
    }

    /// Closes the gate and waits until every pass is given back.
    fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut lock = self.lock.lock();
        while self.state.load(Ordering::Acquire) != CLOSED {
            self.drained.wait(&mut lock);
        }
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.0.state.fetch_sub(1, Ordering::AcqRel) == CLOSED + 1 {
            // The last pass out of a closed gate: wake the unregister (under the lock, so the
            // wake-up cannot fall between its check and its wait).
            let _lock = self.0.lock.lock();
            self.0.drained.notify_all();
        }
    }
}

/// The registered drivers, in registration order.
#[derive(Default)]
struct DriverList {
    /// The last generation given to a driver.
    generation: u64,
    drivers: Vec<Arc<DriverSlot>>,
}

/// A bus with a lock per device and a snapshot of the driver list, over the index `I`.
pub(crate) struct Scalable<I> {
    id: BusId,
    index: I,
    drivers: ArcSwap<DriverList>,
    /// Serializes the changes of `drivers`; held for a copy of the list, never across a walk.
    driver_writer: Mutex<()>,
    next_seq: AtomicU64,
    next_bind: AtomicU64,
    devices: PerThread,
    bound: PerThread,
}

impl<I: DeviceIndex> Scalable<I> {
    /// An empty bus over `index`.
    pub(crate) fn new(index: I) -> Scalable<I> {
        Scalable {
            id: BusId::new(),
            index,
            drivers: ArcSwap::default(),
            driver_writer: Mutex::new(()),
            next_seq: AtomicU64::new(0),
            next_bind: AtomicU64::new(0),
            devices: PerThread::new(),
            bound: PerThread::new(),
        }
    }

    /// Locks `slot`: from a callback only if it is free (never wait there), otherwise waiting.
    fn lock<'a>(&self, slot: &'a DeviceSlot) -> Option<MutexGuard<'a, DeviceState>> {
        if self.id.in_callback() {
            slot.state.try_lock()
        } else {
            Some(slot.state.lock())
        }
    }

    /// Every registered device, in device order.
    fn devices_in_order(&self) -> Vec<Arc<DeviceSlot>> {
        let mut slots = Vec::new();
        self.index.for_each(|slot| slots.push(Arc::clone(slot)));
        slots.sort_unstable_by_key(|slot| slot.seq);
        slots
    }

    /// Offers the locked, unbound device in `slot` to the drivers in order, binding it to the
    /// first whose probe succeeds.
    fn offer(&self, slot: &DeviceSlot, state: &mut DeviceState, panics: &mut Panics) {
        // Pairs with the fence of `register_driver`: see the module docs.
        fence(Ordering::SeqCst);
        let list = self.drivers.load();
        state.seen = list.generation;
        let device = state
            .device
            .as_deref()
            .expect("an offered device is registered");
        for driver in &list.drivers {
            if !driver.driver.id_table().matches(device.id()) {
                continue;
            }
            let Some(_pass) = driver.gate.enter() else {
                continue; // it left after the load: as if the offer came after its unregister
            };
            if protocol::probe(self.id, driver.name, &*driver.driver, device, panics) {
                self.bind(slot, state, driver);
                return;
            }
        }
    }

    /// Records that `slot`, locked (`state`), is bound to `driver` (whose pass the caller
    /// holds).
    fn bind(&self, slot: &DeviceSlot, state: &mut DeviceState, driver: &Arc<DriverSlot>) {
        let seq = self.next_bind.fetch_add(1, Ordering::Relaxed);
        slot.bind_seq.store(seq, Ordering::Relaxed);
        slot.binding.set(Some((driver.name, driver.generation)));
        state.driver = Some(Arc::clone(driver));
        driver.bound.increment();
        self.bound.increment();
    }

    /// Records that `slot`, locked (`state`), is unbound.
    fn unbind(&self, slot: &DeviceSlot, state: &mut DeviceState) {
        if let Some(driver) = state.driver.take() {
            slot.binding.set(None);
            driver.bound.decrement();
            self.bound.decrement();
        }
    }

    /// Whether `slot` is bound to `driver`, as of now: no lock.
    fn is_bound_to(slot: &DeviceSlot, driver: &DriverSlot) -> bool {
        slot.binding.generation() == driver.generation
    }

    pub(crate) fn register_device(&self, device: Arc<Device>) -> RegisterDeviceResult {
        let key = device.key();
        if self.id.in_callback_about(key) {
            return Err(RegisterError::Reentrant(device));
        }
        let slot = Arc::new(DeviceSlot {
            key,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(DeviceState {
                device: None,
                seen: 0,
                driver: None,
            }),
            binding: Binding::default(),
            bind_seq: AtomicU64::new(0),
        });
        // Locked before it is visible: its own offer comes first.
        let mut state = slot.state.lock();
        if !self.index.insert(&slot) {
            return Err(RegisterError::Duplicate(device));
        }
        self.devices.increment();
        state.device = Some(device);
        let mut panics = Panics::new();
        self.offer(&slot, &mut state, &mut panics);
        drop(state);
        panics.resume(Ok(()))
    }

    pub(crate) fn unregister_device(&self, key: Key) -> Result<Arc<Device>, UnregisterError> {
        if self.id.in_callback_about(key) {
            return Err(UnregisterError::Reentrant);
        }
        let slot = self
            .index
            .read(key, Arc::clone)
            .ok_or(UnregisterError::NotRegistered)?;
        let mut state = self.lock(&slot).ok_or(UnregisterError::Reentrant)?;
        let Some(device) = state.device.take() else {
            // Unregistered by another call between the lookup and the lock.
            return Err(UnregisterError::NotRegistered);
        };
        let mut panics = Panics::new();
        if let Some(driver) = state.driver.clone() {
            protocol::remove(self.id, driver.name, &*driver.driver, &device, &mut panics);
            self.unbind(&slot, &mut state);
        }
        self.index.remove(key);
        self.devices.decrement();
        drop(state);
        Ok(panics.resume(device))
    }

    pub(crate) fn register_driver(
        &self,
        name: DriverName,
        driver: Arc<dyn Driver>,
    ) -> RegisterDriverResult {
        if self.id.in_callback() {
            return Err(RegisterError::Reentrant(driver));
        }
        let slot = {
            let _writer = self.driver_writer.lock();
            let list = self.drivers.load();
            if list.drivers.iter().any(|d| d.name == name) {
                return Err(RegisterError::Duplicate(driver));
            }
            let generation = list.generation + 1;
            let slot = Arc::new(DriverSlot {
                name,
                driver,
                generation,
                gate: Gate::new(),
                bound: PerThread::new(),
            });
            let mut drivers = Vec::with_capacity(list.drivers.len() + 1);
            drivers.extend(list.drivers.iter().cloned());
            drivers.push(Arc::clone(&slot));
            self.drivers.store(Arc::new(DriverList {
                generation,
                drivers,
            }));
            slot
        };
        // Its walk holds one pass: an unregister of it waits for the walk to end.
        let Some(_pass) = slot.gate.enter() else {
            return Ok(()); // already unregistered by another thread
        };
        // Pairs with the fence of `offer`: see the module docs.
        fence(Ordering::SeqCst);
        let devices = self.devices_in_order();
        let mut walk = devices.iter();
        let mut panics = Panics::new();
        protocol::attach(
            self.id,
            name,
            &*slot.driver,
            || {
                walk.find_map(|device| {
                    // A device bound now is skipped without its lock: that instant is this
                    // walk's step for it (only its lock holder binds or unbinds it).
                    if device.binding.is_bound() {
                        return None;
                    }
                    let state = device.state.lock();
                    let offered = state.device.is_some()
                        && state.driver.is_none()
                        && state.seen < slot.generation;
                    offered.then_some(Locked {
                        slot: device,
                        state,
                    })
                })
            },
            |mut locked| self.bind(locked.slot, &mut locked.state, &slot),
            &mut panics,
        );
        panics.resume(Ok(()))
    }

    pub(crate) fn unregister_driver(
        &self,
        name: DriverName,
    ) -> Result<Arc<dyn Driver>, UnregisterError> {
        if self.id.in_callback() {
            return Err(UnregisterError::Reentrant);
        }
        let slot = {
            let _writer = self.driver_writer.lock();
            let list = self.drivers.load();
            let slot = list
                .drivers
                .iter()
                .find(|d| d.name == name)
                .cloned()
                .ok_or(UnregisterError::NotRegistered)?;
            let drivers = list
                .drivers
                .iter()
                .filter(|d| !Arc::ptr_eq(d, &slot))
                .cloned()
                .collect();
            self.drivers.store(Arc::new(DriverList {
                generation: list.generation,
                drivers,
            }));
            slot
        };
        // No probe by it is in flight once this returns, and none starts: its binds are final.
        slot.gate.close();
        let mut bound = Vec::new();
        self.index.for_each(|device| {
            if Self::is_bound_to(device, &slot) {
                bound.push((device.bind_seq.load(Ordering::Relaxed), Arc::clone(device)));
            }
        });
        bound.sort_unstable_by_key(|&(seq, _)| Reverse(seq));
        let mut walk = bound.iter();
        let mut panics = Panics::new();
        protocol::detach(
            self.id,
            name,
            &*slot.driver,
            || {
                walk.find_map(|(_, device)| {
                    let state = device.state.lock();
                    // Unless unregistered (and so unbound) meanwhile.
                    Self::is_bound_to(device, &slot).then_some(Locked {
                        slot: device,
                        state,
                    })
                })
            },
            |mut locked| self.unbind(locked.slot, &mut locked.state),
            &mut panics,
        );
        let driver = Arc::clone(&slot.driver);
        drop(slot);
        Ok(panics.resume(driver))
    }

    pub(crate) fn rescan(&self) -> Result<(), Reentrant> {
        if self.id.in_callback() {
            return Err(Reentrant);
        }
        let mut panics = Panics::new();
        for slot in self.devices_in_order() {
            let mut state = slot.state.lock();
            if state.device.is_some() && state.driver.is_none() {
                self.offer(&slot, &mut state, &mut panics);
            }
        }
        panics.resume(Ok(()))
    }

    pub(crate) fn driver_of(&self, key: Key) -> Option<DriverName> {
        self.index.read(key, |slot| slot.binding.name()).flatten()
    }

    pub(crate) fn bound_count(&self, name: DriverName) -> Option<usize> {
        let list = self.drivers.load();
        let driver = list.drivers.iter().find(|d| d.name == name)?;
        Some(driver.bound.get())
    }

    pub(crate) fn has_device(&self, key: Key) -> bool {
        self.index.read(key, |_| ()).is_some()
    }

    pub(crate) fn has_driver(&self, name: DriverName) -> bool {
        self.drivers.load().drivers.iter().any(|d| d.name == name)
    }

    pub(crate) fn population(&self) -> BusPopulation {
        BusPopulation {
            devices: self.devices.get(),
            drivers: self.drivers.load().drivers.len(),
            bound: self.bound.get(),
        }
    }
}

impl<I> fmt::Debug for Scalable<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scalable")
            .field("id", &self.id)
            .field("devices", &self.devices.get())
            .field("bound", &self.bound.get())
            .finish_non_exhaustive()
    }
}

/// Implements [`Bus`](bypass_registry::bus::Bus) for a newtype over [`Scalable`] (its field
/// `inner`), under the backend name `$name`.
macro_rules! delegate_bus {
    ($ty:ty, $name:literal) => {
        impl ::bypass_registry::bus::Bus for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn register_device(
                &self,
                device: ::std::sync::Arc<::bypass_registry::bus::Device>,
            ) -> ::bypass_registry::bus::RegisterDeviceResult {
                self.inner.register_device(device)
            }
            fn unregister_device(
                &self,
                key: ::bypass_registry::bus::Key,
            ) -> ::std::result::Result<
                ::std::sync::Arc<::bypass_registry::bus::Device>,
                ::bypass_registry::bus::UnregisterError,
            > {
                self.inner.unregister_device(key)
            }
            fn register_driver(
                &self,
                name: ::bypass_registry::bus::DriverName,
                driver: ::std::sync::Arc<dyn ::bypass_registry::bus::Driver>,
            ) -> ::bypass_registry::bus::RegisterDriverResult {
                self.inner.register_driver(name, driver)
            }
            fn unregister_driver(
                &self,
                name: ::bypass_registry::bus::DriverName,
            ) -> ::std::result::Result<
                ::std::sync::Arc<dyn ::bypass_registry::bus::Driver>,
                ::bypass_registry::bus::UnregisterError,
            > {
                self.inner.unregister_driver(name)
            }
            fn rescan(&self) -> ::std::result::Result<(), ::bypass_registry::bus::Reentrant> {
                self.inner.rescan()
            }
            fn driver_of(
                &self,
                key: ::bypass_registry::bus::Key,
            ) -> ::std::option::Option<::bypass_registry::bus::DriverName> {
                self.inner.driver_of(key)
            }
            fn bound_count(
                &self,
                name: ::bypass_registry::bus::DriverName,
            ) -> ::std::option::Option<usize> {
                self.inner.bound_count(name)
            }
            fn has_device(&self, key: ::bypass_registry::bus::Key) -> bool {
                self.inner.has_device(key)
            }
            fn has_driver(&self, name: ::bypass_registry::bus::DriverName) -> bool {
                self.inner.has_driver(name)
            }
            fn population(&self) -> ::bypass_registry::bus::BusPopulation {
                self.inner.population()
            }
        }
    };
}
pub(crate) use delegate_bus;
