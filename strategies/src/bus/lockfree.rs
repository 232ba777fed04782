//! `lockfree`: devices in a lock-free hash map, no bus-wide lock anywhere on a device's
//! registration path, and a lock per device held across its probe and remove only.
//!
//! # Design
//! The device slots live in a [`papaya`] map, a lock-free hash table: looking a key up,
//! inserting and removing one never take a lock (papaya resizes incrementally, and a writer
//! may help move entries). The driver list is an immutable snapshot behind an `ArcSwap`, so a
//! device registration loads it without a lock, and a probe enters its driver's gate with one
//! atomic add. The slots, the lock per device and the operations are those of every scalable
//! bus (the private module `bus/scalable.rs`): only the index differs.
//!
//! # What it locks, and for how long
//! - **Nothing bus-wide on a device's path**: `register_device`, `unregister_device` and the
//!   reads take no lock but the device's own. They write two bus-wide atomic counters (the
//!   registration and bind numbers, which give the contract's orders), the driver's gate and
//!   bound count, and per-thread population counts.
//! - **The device's lock**: across each probe and remove about the device. A slow probe of one
//!   device holds up the calls about that device and the walks that reach it, no other device.
//! - **The driver list's writer mutex** and **a leaving driver's gate**: only in
//!   `register_driver` and `unregister_driver`.
//!
//! # Cost per call
//! - Reads: one papaya lookup (an epoch pin, a probe sequence) and an atomic load: O(1).
//! - `register_device`: a slot allocation, a papaya insert, a `SeqCst` fence, a load of the
//!   driver list and the offer, O(drivers) plus the probes; `unregister_device`: a lookup, the
//!   device's lock, the remove, a papaya removal. O(1) expected, but papaya leaves a tombstone
//!   per removal and resizes (copies the whole table) when a probe sequence fills up: a key
//!   removed and registered again over and over does that every few cycles. Measured (the
//!   `bus` table): 1.0 µs a register+unregister with 1 live device, 0.9 ms with 100,000. This is
//!   the weak point of this backend: a VMM that reuses device keys at a large population should
//!   choose `sharded` until the index is replaced by a table without tombstones (such as the
//!   registry `lockfree` backend's own).
//! - Walks: as in `sharded`, a list of every device sorted by registration or bind number.
//!
//! Measured figures are in the [`bus`](crate::bus) module docs.
//!
//! # Guarantees
//! Every guarantee of the contract holds, with walks linearizable per device: each step of a
//! walk is made under the device's lock. Reads see a device as of their lookup: during a probe
//! as registered and unbound, during a remove as bound.
//!
//! # Re-entrancy
//! As in every scalable bus (see `sharded`).
//!
//! # When to choose it
//! Choose it when devices register and unregister from many threads at once (virtio-boot:
//! thousands of VMs, each from its own thread) and no registration may wait for a shard lock
//! held by another. Prefer `rcu` when reads dominate.
//!
//! ```
//! use bypass_registry::bus::trace::{parse, render, replay, replay_model};
//! use bypass_strategies::bus::LockFreeBus;
//!
//! let ops = parse("register device 5 id 1:0x1af4\nregister driver net id 1:*\n").unwrap();
//! assert_eq!(render(&replay(&LockFreeBus::new(), &ops)), render(&replay_model(&ops)));
//! ```

use std::fmt;
use std::sync::Arc;

use bypass_registry::bus::Key;

use super::scalable::{DeviceIndex, DeviceSlot, Scalable, delegate_bus};

/// The device slots in a papaya map.
#[derive(Default)]
struct LockFreeIndex(papaya::HashMap<Key, Arc<DeviceSlot>>);

impl DeviceIndex for LockFreeIndex {
    fn insert(&self, slot: &Arc<DeviceSlot>) -> bool {
        self.0
            .pin()
            .try_insert(slot.key(), Arc::clone(slot))
            .is_ok()
    }

    fn remove(&self, key: Key) {
        self.0.pin().remove(&key);
    }

    fn read<R>(&self, key: Key, f: impl FnOnce(&Arc<DeviceSlot>) -> R) -> Option<R> {
        self.0.pin().get(&key).map(f)
    }

    fn for_each(&self, mut f: impl FnMut(&Arc<DeviceSlot>)) {
        self.0.pin().iter().for_each(|(_, slot)| f(slot));
    }
}

/// A bus with its devices in a lock-free map and a lock per device: see the
/// [module docs](self).
pub struct LockFreeBus {
    inner: Scalable<LockFreeIndex>,
}

impl LockFreeBus {
    /// An empty bus.
    pub fn new() -> LockFreeBus {
        LockFreeBus {
            inner: Scalable::new(LockFreeIndex::default()),
        }
    }
}

impl Default for LockFreeBus {
    fn default() -> LockFreeBus {
        LockFreeBus::new()
    }
}

impl fmt::Debug for LockFreeBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockFreeBus").field(&self.inner).finish()
    }
}

delegate_bus!(LockFreeBus, "lockfree");
