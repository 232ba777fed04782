//! Backends for the virtio bus contract of `bypass-registry` ([`bypass_registry::bus::Bus`]):
//! every backend name of [`Backend`] serves a bus too.
//!
//! | backend | type | design |
//! |---|---|---|
//! | `mutex-list` | [`MutexListBus`] | the kernel's shape: device and driver lists in registration order, one re-entrant lock held across walks and callbacks, linear scans |
//! | `mutex-map` | [`MutexMapBus`] | one re-entrant lock held across walks and callbacks; devices by key, unbound devices and each driver's devices in ordered maps |
//! | `sharded` | [`ShardedBus`] | devices in a dashmap, a lock per device held across its probe and remove, the driver list a snapshot |
//! | `rcu` | [`RcuBus`] | device index and driver list as arc-swap snapshots (readers never wait), a lock per device |
//! | `lockfree` | [`LockFreeBus`] | devices in a lock-free map, no bus-wide lock on a device's path, a lock per device |
//!
//! Each passes the bus conformance kit (`bypass_registry::bus::kit`, with the `kit` feature)
//! and the model-based tests. The two global-lock buses serialize every call, callbacks
//! included, so each walk is one instant; the three scalable ones share one design (a lock per
//! device, the private module `bus/scalable.rs`) over three device indexes, with walks
//! linearizable per device, and a slow probe of one device holds up no other device's
//! registration and no read.
//!
//! # Cost of a device registration
//! A device register then unregister, binding to the first of the registered drivers (criterion
//! `bus_device` in `bypass-benches`, one thread, release build on a loaded 2-core VM: take them
//! as orders of magnitude):
//!
//! | live devices (8 drivers) | mutex-list | mutex-map | sharded | rcu | lockfree |
//! |---|---|---|---|---|---|
//! | 1 | 0.21 µs | 0.52 µs | 1.0 µs | 1.5 µs | 1.0 µs |
//! | 100,000 | 3.9 ms | 0.73 µs | 0.74 µs | 4.1 µs | 0.9 ms |
//!
//! `mutex-list` scans its device list; `rcu` copies a bucket of about 100 devices; `lockfree`'s
//! papaya map leaves a tombstone per removal, and one key removed and inserted over and over, as
//! here, fills its probe sequence and makes papaya copy the whole table every few cycles (see
//! its module docs).
//!
//! [`Backend::make_bus`] builds a bus by backend name, for code off the hot path;
//! [`Backend::visit_bus`] hands a generic function the concrete type.
//!
//! ```
//! use bypass_registry::bus::trace::{parse, render, replay, replay_model};
//! use bypass_strategies::Backend;
//!
//! let ops = parse("register device 5 id 1:0x1af4\nregister driver net id 1:*\nrescan\n").unwrap();
//! for backend in Backend::ALL {
//!     let bus = backend.make_bus();
//!     assert_eq!(render(&replay(&*bus, &ops)), render(&replay_model(&ops)), "{backend}");
//! }
//! ```

mod binding;
pub mod global;
pub mod lockfree;
pub mod mutex_list;
pub mod mutex_map;
pub mod rcu;
mod scalable;
pub mod sharded;

use std::sync::Arc;

use bypass_registry::bus::Bus;

use crate::Backend;

pub use global::GlobalBus;
pub use lockfree::LockFreeBus;
pub use mutex_list::{ListStore, MutexListBus};
pub use mutex_map::{MapStore, MutexMapBus};
pub use rcu::RcuBus;
pub use sharded::ShardedBus;

/// A generic operation over bus backends: [`Backend::visit_bus`] calls `visit` with the
/// concrete type.
pub trait BusVisitor {
    /// What the visit returns.
    type Output;
    /// Runs with `B`, the backend's bus type.
    fn visit<B: Bus + Default + 'static>(self) -> Self::Output;
}

impl Backend {
    /// Runs `visitor` with the bus type of this backend.
    pub fn visit_bus<V: BusVisitor>(self, visitor: V) -> V::Output {
        match self {
            Backend::MutexList => visitor.visit::<MutexListBus>(),
            Backend::MutexMap => visitor.visit::<MutexMapBus>(),
            Backend::Sharded => visitor.visit::<ShardedBus>(),
            Backend::Rcu => visitor.visit::<RcuBus>(),
            Backend::LockFree => visitor.visit::<LockFreeBus>(),
        }
    }

    /// A new, empty bus of this backend, behind `dyn` (for code off the hot path).
    pub fn make_bus(self) -> Arc<dyn Bus> {
        struct Make;
        impl BusVisitor for Make {
            type Output = Arc<dyn Bus>;
            fn visit<B: Bus + Default + 'static>(self) -> Arc<dyn Bus> {
                Arc::new(B::default())
            }
        }
        self.visit_bus(Make)
    }
}
