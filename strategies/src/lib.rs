//! Interchangeable backends for the IRQ bypass registry contract of `bypass-registry`.
//!
//! Every backend implements [`bypass_registry::Registry`] and passes its conformance kit; they
//! differ in what they lock and what each operation costs:
//!
//! | backend | module | design |
//! |---|---|---|
//! | `mutex-list` | [`mutex_list`] | the 2015 kernel: one global mutex, two lists, O(n) scans |
//! | `mutex-map` | [`mutex_map`] | upstream since v6.17: one global mutex, two maps |
//! | `sharded` | [`sharded`] | a dashmap keyed by token; a writer lock per shard, held across callbacks |
//! | `rcu` | [`rcu`] | immutable snapshots (a hash trie per bucket) through arc-swap; lock-free reads |
//! | `lockfree` | [`lockfree`] | a lock-free token table; one lock per token, held across its callbacks only |
//!
//! [`Backend`] names them at run time, for command lines and reports; [`Backend::visit`]
//! hands a generic function the concrete type, so hot loops stay statically dispatched.
//!
//! ```
//! use bypass_registry::trace::{parse, render, replay, replay_model};
//! use bypass_strategies::Backend;
//!
//! let ops = parse("register producer 1\nregister consumer 1\nunregister producer 1\n").unwrap();
//! for backend in Backend::ALL {
//!     let registry = backend.make();
//!     assert_eq!(render(&replay(&*registry, &ops)), render(&replay_model(&ops)));
//! }
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod bus;
mod counter;
pub mod global;
pub mod lockfree;
pub mod mutex_list;
pub mod mutex_map;
pub mod rcu;
pub mod sharded;
mod writer_lock;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bypass_registry::Registry;

pub use lockfree::LockFree;
pub use mutex_list::MutexList;
pub use mutex_map::MutexMap;
pub use rcu::Rcu;
pub use sharded::Sharded;

/// A backend, named as the command line and reports spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// `mutex-list`: [`MutexList`].
    MutexList,
    /// `mutex-map`: [`MutexMap`].
    MutexMap,
    /// `sharded`: [`Sharded`].
    Sharded,
    /// `rcu`: [`Rcu`].
    Rcu,
    /// `lockfree`: [`LockFree`].
    LockFree,
}

/// A generic operation over backends: [`Backend::visit`] calls `visit` with the concrete type.
pub trait Visitor {
    /// What the visit returns.
    type Output;
    /// Runs with `R`, the backend's type.
    fn visit<R: Registry + Default + 'static>(self) -> Self::Output;
}

impl Backend {
    /// Every backend, from the kernel's designs to the scalable ones.
    pub const ALL: &'static [Backend] = &[
        Backend::MutexList,
        Backend::MutexMap,
        Backend::Sharded,
        Backend::Rcu,
        Backend::LockFree,
    ];

    /// The name: `mutex-list`, `mutex-map`, ….
    pub const fn name(self) -> &'static str {
        match self {
            Backend::MutexList => "mutex-list",
            Backend::MutexMap => "mutex-map",
            Backend::Sharded => "sharded",
            Backend::Rcu => "rcu",
            Backend::LockFree => "lockfree",
        }
    }

    /// One line on its design.
    pub const fn description(self) -> &'static str {
        match self {
            Backend::MutexList => {
                "the 2015 kernel design: one global mutex, two lists, O(n) scans per operation"
            }
            Backend::MutexMap => {
                "the upstream kernel design since v6.17: one global mutex, two maps keyed by token"
            }
            Backend::Sharded => {
                "a dashmap keyed by token; a writer lock per shard, held across the callbacks"
            }
            Backend::Rcu => {
                "immutable snapshots (a hash trie per bucket) through arc-swap; readers never wait"
            }
            Backend::LockFree => {
                "a lock-free token table; one lock per token, held across its callbacks only"
            }
        }
    }

    /// Whether every call is serialized behind one global lock, callbacks included: a slow
    /// callback of one token (or device) holds up every other.
    pub const fn is_global_lock(self) -> bool {
        matches!(self, Backend::MutexList | Backend::MutexMap)
    }

    /// Runs `visitor` with this backend's concrete type.
    pub fn visit<V: Visitor>(self, visitor: V) -> V::Output {
        match self {
            Backend::MutexList => visitor.visit::<MutexList>(),
            Backend::MutexMap => visitor.visit::<MutexMap>(),
            Backend::Sharded => visitor.visit::<Sharded>(),
            Backend::Rcu => visitor.visit::<Rcu>(),
            Backend::LockFree => visitor.visit::<LockFree>(),
        }
    }

    /// A new, empty registry of this backend, behind `dyn` (for code off the hot path).
    pub fn make(self) -> Arc<dyn Registry> {
        struct Make;
        impl Visitor for Make {
            type Output = Arc<dyn Registry>;
            fn visit<R: Registry + Default + 'static>(self) -> Arc<dyn Registry> {
                Arc::new(R::default())
            }
        }
        self.visit(Make)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not one of [`Backend::ALL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
        write!(
            f,
            "unknown backend `{}`; valid backends: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(name: &str) -> Result<Backend, UnknownBackend> {
        Backend::ALL
            .iter()
            .copied()
            .find(|b| b.name() == name)
            .ok_or_else(|| UnknownBackend(name.to_string()))
    }
}

/// The README's Rust examples, compiled and run as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
