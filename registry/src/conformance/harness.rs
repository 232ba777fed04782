//! The harness: a case, and running cases on a backend; the small helpers the cases share.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::CASES;
use super::watchdog::panic_message;
use crate::participant::Side;
use crate::probe::{EventLog, Probe};
use crate::registry::Registry;
use crate::token::Token;

/// Makes a fresh, empty registry of the backend under test.
pub type Factory<'a> = &'a (dyn Fn() -> Arc<dyn Registry> + Sync);

/// One case of the kit.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The function's name, which says what it checks.
    pub name: &'static str,
    /// Runs the case; panics with a diagnostic if the backend breaks the contract.
    pub run: fn(Factory<'_>),
}

/// Runs every case of the kit on registries made by `make`, panicking at the first failure
/// with the case's name.
pub fn run_all<R: Registry + 'static>(make: impl Fn() -> R + Sync) {
    let factory = move || Arc::new(make()) as Arc<dyn Registry>;
    for case in CASES {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (case.run)(&factory))) {
            panic!(
                "conformance case `{}` failed: {}",
                case.name,
                panic_message(&*panic)
            );
        }
    }
}

pub(super) fn token(id: u64) -> Token {
    Token::new(id).expect("test tokens are non-zero")
}

pub(super) fn probe(side: Side, id: u64, log: &Arc<EventLog>) -> Arc<Probe> {
    Arc::new(Probe::new(side, id, log))
}
