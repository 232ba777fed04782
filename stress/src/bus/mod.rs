//! The virtio bus under stress: the bus workloads (the `Bus` trait's rustdoc in bypass-registry) as scenarios, their runner and
//! the checker of their histories.
//!
//! - [`scenario`]: `virtio-boot`, `driver-reload` and `virtio-hotplug` as plans of actors,
//!   each on its own OS thread, with failing, panicking and slow probes.
//! - [`runner`]: runs a plan on a backend's [`Bus`](bypass_registry::bus::Bus), recording
//!   every call and callback; [`crate::run`] sends bus scenarios here.
//! - the checker (private): each device's history checked on its own against the bus
//!   contract, in parallel.

pub(crate) mod checker;
pub(crate) mod history;
pub mod runner;
pub mod scenario;
