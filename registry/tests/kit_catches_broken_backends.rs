//! The conformance kit is proved by the backends it rejects: each backend here breaks one
//! guarantee of the contract on purpose, and the kit's case for that guarantee must fail on it.
//! (The correct backends of `bypass-strategies` pass the same cases.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bypass_registry::Registry;
use bypass_registry::broken::{Broken, Flaw};
use bypass_registry::conformance::{self, Factory};

/// Runs kit case `name` on a backend with `flaw` and returns the kit's failure message.
fn kit_rejects(flaw: Flaw, name: &str) -> String {
    let case = conformance::CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no kit case {name}"));
    let factory = move || Arc::new(Broken::new(flaw)) as Arc<dyn Registry>;
    let factory: Factory<'_> = &factory;
    match catch_unwind(AssertUnwindSafe(|| (case.run)(factory))) {
        Ok(()) => panic!("the kit case `{name}` passed a backend with flaw {flaw:?}"),
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
