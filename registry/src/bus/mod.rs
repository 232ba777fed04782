//! The virtio bus contract: the second registry of bypass.
//!
//! Where the IRQ bypass registry pairs one producer with one consumer, the bus binds **many
//! devices to one driver**, matched by an id table, as the virtio core of Linux does
//! (`register_virtio_device`, `register_virtio_driver`, a driver's `id_table`, `probe` and
//! `remove`), with the driver core's binding rules as they stand upstream. It is built like the
//! registry:
//!
//! - [`Bus`]: the trait every bus backend implements, with every guarantee in its docs.
//! - [`Device`] (data: a [`Key`], a [`DeviceId`], what the VMM attaches) and [`Driver`] (an
//!   [`IdTable`] of [`Pattern`]s, `probe`, `remove`), registered under a [`DriverName`].
//! - [`protocol`]: probe and remove under `catch_unwind`, the walks in the contract's orders,
//!   and re-entrancy detection, written once. Backends call it.
//! - Typed errors: [`RegisterError`] (handing back the refused device or driver),
//!   [`UnregisterError`], [`Reentrant`], and the validation errors [`InvalidKey`],
//!   [`InvalidId`], [`InvalidName`], each with its trace name ([`ErrorKind`]).
//! - [`op`]: the operations, outcomes and replayed steps, as the model, traces and checkers
//!   name them.
//! - [`model`]: the contract as a plain sequential state machine, the executable spec.
//! - [`trace`]: the replay format of bus lines: parse, replay on a backend or the model, render.
//! - With the `kit` feature (for test suites): `kit`, the conformance kit every bus backend
//!   passes; `recorder`, the recording drivers it uses; and `broken`, buses that each break one
//!   guarantee, to prove the kit.
//!
//! The backends live in `bypass-strategies` (its `bus` module).
//!
//! # Example
//! What every backend prints when a driver whose probes fail is registered before one that
//! takes the device, and the second leaves:
//!
//! ```
//! use bypass_registry::bus::trace::{parse, render, replay_model};
//!
//! let ops = parse("\
//! register driver flaky id 1:* fail-probe
//! register driver net id 1:0x1af4
//! register device 5 id 1:0x1af4
//! unregister driver net
//! ").unwrap();
//! assert_eq!(render(&replay_model(&ops)), "\
//! register driver flaky id 1:* fail-probe
//!   ok
//! register driver net id 1:0x1af4
//!   ok
//! register device 5 id 1:0x1af4
//!   driver flaky probe 5
//!   driver net probe 5
//!   ok
//! unregister driver net
//!   driver net remove 5
//!   ok
//! ");
//! ```

#[cfg(feature = "kit")]
pub mod broken;
mod contract;
mod error;
mod id;
#[cfg(feature = "kit")]
pub mod kit;
pub mod model;
pub mod op;
mod participant;
pub mod protocol;
#[cfg(feature = "kit")]
pub mod recorder;
// Without the kit, the recorder only records `trace::replay`'s callbacks, privately, as the
// registry's probes do.
#[cfg(not(feature = "kit"))]
#[allow(dead_code, unreachable_pub)]
mod recorder;
pub mod trace;

pub use contract::{Bus, BusPopulation, RegisterDeviceResult, RegisterDriverResult};
pub use error::{
    ErrorKind, InvalidId, InvalidKey, InvalidName, Reentrant, RegisterError, UnregisterError,
};
pub use id::{ANY, DeviceId, DriverName, IdTable, Key, MAX_NAME_LEN, Pattern};
pub use participant::{BusCallback, BusEvent, Device, Driver};
