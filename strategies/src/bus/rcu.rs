//! `rcu`: the device index and the driver list are immutable snapshots behind [`ArcSwap`]s;
//! readers load them and never wait, writers copy and publish, and a lock per device is held
//! across its probe and remove.
//!
//! # Design
//! Devices are spread over [`BUCKETS`] buckets by a hash of their key. Each bucket holds an
//! immutable map from key to device slot behind an `ArcSwap`, and a writer mutex: a device
//! registration or unregistration copies its bucket's map with the one change and publishes the
//! copy. A read loads the bucket's current map and the slot's binding (a few atomics under a
//! sequence lock that a bind or unbind holds for a few stores): no lock, no wait for a
//! callback. Each publication of a bucket is an arc-swap store, which visits every thread that
//! ever loaded through arc-swap: with thousands of threads, that walk is most of a
//! registration's cost. The driver list is a snapshot as well.
//! The slots, the lock per device and the operations are those of every scalable bus (the
//! private module `bus/scalable.rs`): only the index differs.
//!
//! # What it locks, and for how long
//! - **Nothing for readers**: `driver_of`, `has_device`, `bound_count`, `has_driver` and
//!   `population` load snapshots and atomics only.
//! - **The bucket's writer mutex**: by a device registration or unregistration, for the copy of
//!   its bucket's map, never across a callback. Different buckets are written in parallel.
//! - **The device's lock**: across each probe and remove about the device (its own offer and
//!   remove, and each step of a walk that reaches it). A slow probe holds up the calls about
//!   its device and the walks that reach it, nothing else.
//! - **The driver list's writer mutex**: by `register_driver` and `unregister_driver`, to copy
//!   the list; a leaving driver's gate waits for its probes in flight.
//!
//! # Cost per call
//! - Reads: a multiply-shift hash, one `ArcSwap` load of the bucket and one of the binding, a
//!   hash-map lookup: O(1), no write to a shared cache line.
//! - `register_device` and `unregister_device`: the copy of one bucket's map, O(n / buckets)
//!   (each entry a reference-count increment), one allocation, one `ArcSwap` store (which walks
//!   arc-swap's per-thread debt slots, so it grows with the threads that read at once), plus
//!   the offer or remove as in `sharded`. This is the price of readers that never wait, and it
//!   grows linearly with the population, 1 / [`BUCKETS`] as steep as one copied map.
//! - Walks: as in `sharded`, a list of every device sorted by registration or bind number.
//!
//! Measured figures are in the [`bus`](crate::bus) module docs.
//!
//! # Guarantees
//! Every guarantee of the contract holds, with walks linearizable per device: each step of a
//! walk is made under the device's lock. Reads answer from the snapshots at the instant they
//! load them: during a probe the device reads as registered and unbound, during a remove as
//! bound. A reader may keep an unregistered device's slot alive for the instant of its lookup,
//! but not the device: the slot gives it up under its lock when it is unregistered.
//!
//! # Re-entrancy
//! As in every scalable bus (see `sharded`).
//!
//! # When to choose it
//! Choose it when lookups of "which driver serves device K" dominate (virtio-hotplug: 99% reads
//! over 50,000 devices): reads never wait and never write a shared line. Prefer `sharded` or
//! `lockfree` for registration storms over large populations: each registration here copies a
//! bucket.
//!
//! ```
//! use bypass_registry::bus::trace::{parse, render, replay, replay_model};
//! use bypass_strategies::bus::RcuBus;
//!
//! let ops = parse("register driver net id 1:*\nregister device 5 id 1:0x1af4\n").unwrap();
//! assert_eq!(render(&replay(&RcuBus::new(), &ops)), render(&replay_model(&ops)));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bypass_registry::bus::Key;
use parking_lot::Mutex;

use super::scalable::{DeviceIndex, DeviceSlot, Scalable, delegate_bus};

/// The number of buckets of the device index: a registration copies one, so at 100,000
/// devices it copies about 100 entries; 16 KiB of buckets per bus.
pub const BUCKETS: usize = 1024;

type Map = HashMap<Key, Arc<DeviceSlot>>;

struct Bucket {
    /// Serializes the writers of this bucket; held only for the copy.
    writer: Mutex<()>,
    map: ArcSwap<Map>,
}

/// The device slots in [`BUCKETS`] snapshots.
struct SnapshotIndex(Box<[Bucket]>);

impl SnapshotIndex {
    fn new() -> SnapshotIndex {
        SnapshotIndex(
            (0..BUCKETS)
                .map(|_| Bucket {
                    writer: Mutex::new(()),
                    map: ArcSwap::default(),
                })
                .collect(),
        )
    }

    fn bucket(&self, key: Key) -> &Bucket {
        // Fibonacci hashing: the top bits of the key times 2^64 / φ.
        let hash = key.get().wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.0[(hash >> (64 - BUCKETS.trailing_zeros())) as usize]
    }

    /// Publishes a copy of `key`'s bucket changed by `change`, if it returns true.
    fn update(&self, key: Key, change: impl FnOnce(&mut Map) -> bool) -> bool {
        let bucket = self.bucket(key);
        let _writer = bucket.writer.lock();
        let mut map = Map::clone(&bucket.map.load());
        let changed = change(&mut map);
        if changed {
            bucket.map.store(Arc::new(map));
        }
        changed
    }
}

impl DeviceIndex for SnapshotIndex {
    fn insert(&self, slot: &Arc<DeviceSlot>) -> bool {
        self.update(slot.key(), |map| {
            let vacant = !map.contains_key(&slot.key());
            if vacant {
                map.insert(slot.key(), Arc::clone(slot));
            }
            vacant
        })
    }

    fn remove(&self, key: Key) {
        self.update(key, |map| map.remove(&key).is_some());
    }

    fn read<R>(&self, key: Key, f: impl FnOnce(&Arc<DeviceSlot>) -> R) -> Option<R> {
        self.bucket(key).map.load().get(&key).map(f)
    }

    fn for_each(&self, mut f: impl FnMut(&Arc<DeviceSlot>)) {
        for bucket in &self.0 {
            bucket.map.load().values().for_each(&mut f);
        }
    }
}

/// A bus whose device index and driver list are snapshots: see the [module docs](self).
pub struct RcuBus {
    inner: Scalable<SnapshotIndex>,
}

impl RcuBus {
    /// An empty bus.
    pub fn new() -> RcuBus {
        RcuBus {
            inner: Scalable::new(SnapshotIndex::new()),
        }
    }
}

impl Default for RcuBus {
    fn default() -> RcuBus {
        RcuBus::new()
    }
}

impl fmt::Debug for RcuBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RcuBus").field(&self.inner).finish()
    }
}

delegate_bus!(RcuBus, "rcu");
