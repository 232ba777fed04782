//! Backends for the virtio bus contract of `bypass-registry` ([`bypass_registry::bus::Bus`]).
//!
//! | backend | type | design |
//! |---|---|---|
//! | `mutex-list` | [`MutexListBus`] | the kernel's shape: device and driver lists in registration order, one re-entrant lock held across walks and callbacks, linear scans |
//!
//! Each passes the bus conformance kit (`bypass_registry::bus::kit`, with the `kit` feature).
//!
//! ```
//! use bypass_registry::bus::trace::{parse, render, replay, replay_model};
//! use bypass_strategies::bus::MutexListBus;
//!
//! let ops = parse("register device 5 id 1:0x1af4\nregister driver net id 1:*\nrescan\n").unwrap();
//! assert_eq!(render(&replay(&MutexListBus::new(), &ops)), render(&replay_model(&ops)));
//! ```

pub mod mutex_list;

pub use mutex_list::MutexListBus;
