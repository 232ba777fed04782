//! `sharded`: devices in a [`DashMap`] keyed by key, a lock per device held across its probe and
//! remove, and the driver list as a snapshot that device registrations load without a lock.
//!
//! # Design
//! Each registered device has a slot in a dashmap (a hash map split into shards, each behind
//! its own reader-writer lock). The slot holds the device behind a lock of its own, which every
//! callback about the device runs under, as the kernel's `device_lock` does around probe and
//! remove. The drivers are an immutable list in registration order behind an `ArcSwap`,
//! replaced by `register_driver` and `unregister_driver`. The operations and how each step of a
//! walk is made atomic per device are shared with `rcu` and `lockfree` (the private module
//! `bus/scalable.rs`): only where the slots live differs.
//!
//! # What it locks, and for how long
//! - **dashmap's shard lock**: to look a key up, insert or remove it, and to list the devices
//!   for a walk: a few hash-map operations, never across a callback.
//! - **The device's lock**: by the calls about that device (its register, for its offer; its
//!   unregister, for its remove) and by each step of a walk that reaches it, across that step's
//!   probe or remove. A slow probe holds up the calls about its own device and the walks that
//!   reach it (a `register_driver`, `unregister_driver` or `rescan`), nothing else.
//! - **The driver list's writer mutex**: by `register_driver` and `unregister_driver`, only to
//!   copy the list. A device registration takes no bus-wide lock: it loads the list.
//! - **A leaving driver's gate**: `unregister_driver` waits for the probes by that driver in
//!   flight (and for its own registration walk) before it removes its devices.
//!
//! # Cost per call
//! - `register_device`: a slot allocation, a shard lock for the insert, a `SeqCst` fence, a
//!   load of the driver list, and the offer: the drivers of the list are matched in order,
//!   O(drivers), one probe per matching driver until one binds. Two bus-wide atomic counters
//!   (registration and bind numbers) and two per-thread population counts are written.
//! - `unregister_device`: a lookup, the device's lock, the remove if bound, a shard lock for
//!   the removal: O(1) expected.
//! - `register_driver`: a copy of the driver list, then a list of all devices sorted by
//!   registration number, O(n log n), and a probe of each unbound one it matches.
//! - `unregister_driver`: a copy of the driver list, a scan of all devices for those bound to
//!   it, O(n), sorted by bind number, and a remove of each.
//! - Reads: a lookup (a shared shard lock) and an atomic load; `bound_count` and `has_driver`
//!   search the driver list, O(drivers); `population` sums per-thread counters.
//!
//! Measured with criterion (`bus_device` in `bypass-benches`, one thread, a register then
//! unregister of a device that binds, release build on a loaded 2-core VM, so only the trend
//! counts): see the table in the [`bus`](crate::bus) module docs.
//!
//! # Guarantees
//! Every guarantee of the contract holds, with walks linearizable per device (as the contract
//! allows): each step of a walk is made under the device's lock, so it is one instant of that
//! device's history, but a walk as a whole is not one instant: a device registered during a
//! `register_driver` is either probed by the walk or offered the driver by its own
//! registration, never both; a `rescan` offers the devices it listed. `population` sums
//! counters updated around each call: exact when no call is in flight, otherwise between the
//! counts before and after. The kit's isolation case checks that a blocked probe holds up no
//! other device's registration and no read.
//!
//! # Re-entrancy
//! As in every scalable bus: from a callback, calls about a device whose lock is held by a
//! callback fail with `reentrant` (the device being called back included), and so do
//! `register_driver`, `unregister_driver` and `rescan`; registering a new device and
//! unregistering a device no callback holds work; reads work.
//!
//! # When to choose it
//! Choose it for boot storms and hotplug: registrations of different devices run in parallel,
//! a slow probe holds up only its device, and reads never wait for a callback. Prefer `rcu`
//! when lookups dominate and must not write a shared cache line (a dashmap read takes a shard
//! lock), and a global-lock backend when callbacks call back into the bus for driver changes.
//!
//! ```
//! use std::sync::Arc;
//! use bypass_registry::CallbackError;
//! use bypass_registry::bus::{ANY, Bus, Device, DeviceId, Driver, DriverName, IdTable, Key};
//! use bypass_strategies::bus::ShardedBus;
//!
//! struct Net(IdTable);
//! impl Driver for Net {
//!     fn id_table(&self) -> &IdTable { &self.0 }
//!     fn probe(&self, _: &Device) -> Result<(), CallbackError> { Ok(()) }
//!     fn remove(&self, _: &Device) {}
//! }
//! let bus = ShardedBus::new();
//! let key = Key::new(5).unwrap();
//! bus.register_device(Arc::new(Device::new(key, DeviceId::new(1, 0x1af4).unwrap()))).unwrap();
//! let net = DriverName::new("net").unwrap();
//! bus.register_driver(net, Arc::new(Net(IdTable::one(1, ANY)))).unwrap();
//! assert_eq!(bus.driver_of(key), Some(net));
//! ```

use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::Key;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::scalable::{DeviceIndex, DeviceSlot, Scalable, delegate_bus};

/// The device slots in a dashmap.
#[derive(Default)]
struct ShardIndex(DashMap<Key, Arc<DeviceSlot>>);

impl DeviceIndex for ShardIndex {
    fn insert(&self, slot: &Arc<DeviceSlot>) -> bool {
        match self.0.entry(slot.key()) {
            Entry::Vacant(vacant) => {
                vacant.insert(Arc::clone(slot));
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    fn remove(&self, key: Key) {
        self.0.remove(&key);
    }

    fn read<R>(&self, key: Key, f: impl FnOnce(&Arc<DeviceSlot>) -> R) -> Option<R> {
        self.0.get(&key).map(|entry| f(entry.value()))
    }

    fn for_each(&self, mut f: impl FnMut(&Arc<DeviceSlot>)) {
        self.0.iter().for_each(|entry| f(entry.value()));
    }
}

/// A bus with its devices in a dashmap and a lock per device: see the [module docs](self).
pub struct ShardedBus {
    inner: Scalable<ShardIndex>,
}

impl ShardedBus {
    /// An empty bus.
    pub fn new() -> ShardedBus {
        ShardedBus {
            inner: Scalable::new(ShardIndex::default()),
        }
    }
}

impl Default for ShardedBus {
    fn default() -> ShardedBus {
        ShardedBus::new()
    }
}

impl fmt::Debug for ShardedBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShardedBus").field(&self.inner).finish()
    }
}

delegate_bus!(ShardedBus, "sharded");
