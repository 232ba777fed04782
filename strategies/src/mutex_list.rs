//! `mutex-list`: the 2015 Linux design, one global mutex over two lists.
//!
//! # What it locks
//! One process-wide mutex, held for the whole of every call, callbacks included (see
//! [`crate::global`]). Everything is serialized: the callbacks of different tokens never run in
//! parallel, and a slow or preempted callback stalls every other VM's registrations and
//! lookups.
//!
//! # Cost per operation
//! Faithful to the original, also in its cost: each register scans the list of its own side
//! for a duplicate and the other side's list for a partner, and each unregister and lookup
//! scans again, so every operation is O(n) in the registered participants, and registering
//! n of them is O(n²) in all. That is what made hosts with thousands of irqfds wait for seconds
//! (174,000 irqfds: a mean wait of 118 ms and a maximum of 11.4 s on 144 cores), and why
//! upstream moved to xarrays in 2025.
//!
//! # When to choose it
//! Choose it only as a reference: to cross-check another backend, or to reproduce the old
//! kernel's behaviour. With more than a few hundred participants, choose
//! [`mutex-map`](crate::mutex_map) at least.
//!
//! ```
//! use std::sync::Arc;
//! use bypass_registry::probe::{EventLog, Probe};
//! use bypass_registry::{Registry, Token};
//! use bypass_strategies::MutexList;
//!
//! let registry = MutexList::new();
//! let log = EventLog::new();
//! let t = Token::new(1).unwrap();
//! registry.register_consumer(t, Arc::new(Probe::consumer(1, &log))).unwrap();
//! registry.register_producer(t, Arc::new(Probe::producer(1, &log))).unwrap();
//! assert!(registry.is_paired(t));
//! assert_eq!(log.take().len(), 6); // stop, stop, add, add, start, start
//! ```

use crate::global::{GlobalMutex, Lists};

/// The 2015 kernel design: one global mutex, two lists, linear scans.
pub type MutexList = GlobalMutex<Lists>;
