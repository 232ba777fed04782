//! The conformance kit is proved by the backends it rejects: each backend here breaks one
//! guarantee of the contract on purpose, and the kit's case for that guarantee must fail on it.
//! (The correct backends of `bypass-strategies` pass the same cases.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bypass_registry::broken::{Broken, Flaw};
use bypass_registry::conformance::{self, Factory};
use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterProducerResult, Registry,
    Token, UnregisterError,
};

/// Runs kit case `name` on a backend with `flaw` and returns the kit's failure message.
fn kit_rejects(flaw: Flaw, name: &str) -> String {
    kit_rejects_backend(&move || Arc::new(Broken::new(flaw)), name)
}

/// Runs kit case `name` on the backends `factory` makes and returns the kit's failure message.
fn kit_rejects_backend(factory: Factory<'_>, name: &str) -> String {
    let case = conformance::CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no kit case {name}"));
    let backend = factory().name();
    match catch_unwind(AssertUnwindSafe(|| (case.run)(factory))) {
        Ok(()) => panic!("the kit case `{name}` passed the backend {backend}"),
        Err(panic) => conformance::panic_message(&*panic),
    }
}

#[test]
fn wrong_callback_order_is_caught() {
    let msg = kit_rejects(Flaw::WrongOrder, "connect_order_producer_first");
    assert!(msg.contains("differ from the contract"), "{msg}");
}

#[test]
fn skipped_starts_are_caught() {
    kit_rejects(
        Flaw::SkipStartsOnFailure,
        "producer_add_failure_fails_connect",
    );
    kit_rejects(Flaw::SkipStartsOnFailure, "protocol_trace_matches_model");
}

#[test]
fn missing_rollback_is_caught() {
    kit_rejects(Flaw::NoRollback, "consumer_add_failure_rolls_back");
    kit_rejects(Flaw::NoRollback, "random_sequences_match_model");
}

#[test]
fn kept_reference_is_caught() {
    let msg = kit_rejects(
        Flaw::KeepsRefused,
        "unregister_hands_back_the_only_reference",
    );
    assert!(msg.contains("kept a refused duplicate"), "{msg}");
}

#[test]
fn lost_or_double_pairing_is_caught() {
    let msg = kit_rejects(Flaw::CheckThenAct, "racing_pair_connects_exactly_once");
    assert!(msg.contains("racing registers"), "{msg}");
}

#[test]
fn call_after_unregister_is_caught() {
    // Deterministically: the disconnect must have run when unregister returns.
    kit_rejects(
        Flaw::LateDisconnect,
        "unregister_paired_disconnects_in_order",
    );
    // Under concurrency: the deferred callbacks reach participants already handed back.
    let msg = kit_rejects(Flaw::LateDisconnect, "no_callback_after_unregister_returns");
    assert!(msg.contains("after their unregister returned"), "{msg}");
}

#[test]
fn poisoned_registry_is_caught() {
    kit_rejects(Flaw::PoisonsOnPanic, "panic_in_stop_fails_connect");
}

#[test]
fn reentrant_deadlock_is_caught_not_hung() {
    // The deadlock is expected: no need to wait the default minute for it.
    conformance::set_watchdog(Duration::from_secs(3));
    let msg = kit_rejects(
        Flaw::DeadlocksOnReentry,
        "reentrant_call_for_same_token_is_refused",
    );
    assert!(msg.contains("deadlock suspected"), "{msg}");
}

/// What [`PanicsOnThirdUnregister`] panics with.
const BUG: &str = "unregister_producer panics on its third call";

/// A backend whose third `unregister_producer` panics: a bug the contract does not name, on a
/// backend that otherwise keeps it (one without re-entrancy detection, which no case here needs).
#[derive(Debug)]
struct PanicsOnThirdUnregister {
    inner: Broken,
    unregisters: AtomicUsize,
}

impl Registry for PanicsOnThirdUnregister {
    fn name(&self) -> &'static str {
        "panics-on-third-unregister"
    }
    fn register_producer(&self, token: Token, p: Arc<dyn Producer>) -> RegisterProducerResult {
        self.inner.register_producer(token, p)
    }
    fn register_consumer(&self, token: Token, c: Arc<dyn Consumer>) -> RegisterConsumerResult {
        self.inner.register_consumer(token, c)
    }
    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        assert_ne!(self.unregisters.fetch_add(1, Ordering::Relaxed), 2, "{BUG}");
        self.inner.unregister_producer(token)
    }
    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        self.inner.unregister_consumer(token)
    }
    fn is_paired(&self, token: Token) -> bool {
        self.inner.is_paired(token)
    }
    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.inner.producer(token)
    }
    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.inner.consumer(token)
    }
    fn population(&self) -> Population {
        self.inner.population()
    }
}

#[test]
fn panicking_worker_is_named_at_once_not_as_a_deadlock() {
    // Its partner thread waits for it at a barrier forever: only the panic itself can end the
    // case before the watchdog's limit.
    let limit = Duration::from_secs(3);
    conformance::set_watchdog(limit);
    let started = Instant::now();
    let msg = kit_rejects_backend(
        &|| {
            Arc::new(PanicsOnThirdUnregister {
                inner: Broken::new(Flaw::DeadlocksOnReentry),
                unregisters: AtomicUsize::new(0),
            })
        },
        "no_callback_after_unregister_returns",
    );
    let took = started.elapsed();
    assert!(msg.contains(BUG) && !msg.contains("deadlock"), "{msg}");
    assert!(took < limit / 2, "the panic was reported after {took:?}");
}
