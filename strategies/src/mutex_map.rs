//! `mutex-map`: the upstream Linux design since v6.17, one global mutex over two maps.
//!
//! # What it locks
//! One process-wide mutex, held for the whole of every call, callbacks included (see
//! [`crate::global`]): everything is serialized, and a slow or preempted callback stalls every
//! other VM's registrations and lookups.
//!
//! # Cost per operation
//! Two hash maps keyed by token (upstream: two xarrays): each register, unregister and lookup
//! is O(1) expected, whatever the number of registered participants. The cost that remains is
//! the lock: under contention every call waits for all the others, callbacks included.
//!
//! # When to choose it
//! Choose it when registrations are rare or come from one thread (a VMM that wires its devices
//! at boot from one place), when callbacks are fast, and when simplicity and a
//! design identical to the kernel's matter more than parallelism. It is also the reference
//! that other backends are cross-checked against. Do not choose it when many threads register
//! at once (boot storms, parallel restores) or when callbacks can be slow: every call waits for
//! every callback in flight.
//!
//! ```
//! use std::sync::Arc;
//! use bypass_registry::probe::{EventLog, Probe};
//! use bypass_registry::{ErrorKind, Registry, Token};
//! use bypass_strategies::MutexMap;
//!
//! let registry = MutexMap::new();
//! let log = EventLog::new();
//! let t = Token::new(9).unwrap();
//! registry.register_producer(t, Arc::new(Probe::producer(9, &log))).unwrap();
//! let again = registry.register_producer(t, Arc::new(Probe::producer(9, &log)));
//! assert_eq!(again.unwrap_err().kind(), ErrorKind::Duplicate);
//! ```

use crate::global::{GlobalMutex, Maps};

/// The upstream kernel design: one global mutex, two maps keyed by token.
pub type MutexMap = GlobalMutex<Maps>;
