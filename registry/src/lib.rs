//! The IRQ bypass registry contract.
//!
//! Linux connects interrupt producers (a VFIO device's MSI-X vector) to consumers (a KVM irqfd)
//! through the IRQ bypass manager: both register under a shared token, and when both are
//! present the manager runs `stop → add → start` on them; on unregister, `stop → del → start`.
//! This crate is that contract for Rust VMMs, written so that backends can be swapped:
//!
//! - [`Registry`]: the trait every backend implements, with every guarantee in its docs.
//! - [`Producer`] and [`Consumer`]: the participants and their callbacks; [`Token`]: what pairs
//!   them, never zero.
//! - [`protocol`]: the connect and disconnect sequences, written once, with rollback, the
//!   always-run `start`s, panic handling and re-entrancy detection.
//! - [`registration`]: register and unregister, written once on top of it; a backend says
//!   only how it finds, locks and changes a token's [`pair`] (producer and consumer, chosen
//!   by a [`pair::Role`]).
//! - Typed errors: [`RegisterError`] (handing back the refused participant),
//!   [`UnregisterError`], [`InvalidToken`], each with its trace name ([`ErrorKind`]).
//! - [`op`]: the operations ([`op::Op`]), their outcomes and the faults a participant injects,
//!   as the model, traces and checkers name them.
//! - [`model`]: the contract as a plain sequential state machine, the executable spec.
//! - [`trace`]: the replay format: parse a trace, replay it on a backend or the model, render.
//! - [`memory`]: whether a registry gives its memory back, read from a meter of live bytes.
//!
//! With the `kit` feature, for the test suites of backends and of the tools that check them:
//! `conformance`, the kit every backend passes; `probe`, the recording participants it uses;
//! `broken`, backends that each break one guarantee, to prove the kit and the stress checker
//! catch it. A backend's crate enables it in its dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! bypass-registry = { version = "0.1", features = ["kit"] }
//! ```
//!
//! The backends themselves live in `bypass-strategies`.
//!
//! # Example
//! A backend-independent replay: what every backend must print for a producer and a consumer
//! meeting under token 7.
//!
//! ```
//! use bypass_registry::trace::{parse, render, replay_model};
//!
//! let ops = parse("register consumer 7\nregister producer 7 fail-add\n").unwrap();
//! assert_eq!(render(&replay_model(&ops)), "\
//! register consumer 7
//!   ok
//! register producer 7 fail-add
//!   producer 7 stop
//!   consumer 7 stop
//!   producer 7 add_consumer
//!   consumer 7 start
//!   producer 7 start
//!   err connect-failed
//! ");
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "kit")]
pub mod broken;
pub mod bus;
#[cfg(feature = "kit")]
pub mod conformance;
mod error;
pub mod memory;
pub mod model;
pub mod op;
pub mod pair;
mod participant;
#[cfg(feature = "kit")]
pub mod probe;
// Without the kit, the probes only record `trace::replay`'s callbacks, privately: what only
// the kit uses is unused then, and what it exports unreachable.
#[cfg(not(feature = "kit"))]
#[allow(dead_code, unreachable_pub)]
mod probe;
pub mod protocol;
pub mod registration;
mod registry;
mod token;
pub mod trace;

pub use error::{ErrorKind, InvalidToken, RegisterError, UnregisterError};
pub use participant::{Callback, CallbackError, Consumer, Event, Producer, Side};
pub use registry::{Population, RegisterConsumerResult, RegisterProducerResult, Registry};
pub use token::Token;
