//! The harness: a case, the factory of registries it runs on, and the small helpers the cases
//! share.

use std::sync::Arc;

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

pub(super) fn token(id: u64) -> Token {
    Token::new(id).expect("test tokens are non-zero")
}

pub(super) fn probe(side: Side, id: u64, log: &Arc<EventLog>) -> Arc<Probe> {
    Arc::new(Probe::new(side, id, log))
}
