//! The bus conformance kit is proved by the buses it rejects: each broken bus breaks one
//! guarantee of the bus contract on purpose, and the kit's case for that guarantee must fail on
//! it, every run. (The backends of `bypass-strategies` pass the same cases.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bypass_registry::bus::Bus;
use bypass_registry::bus::broken::{BrokenBus, BusFlaw};
use bypass_registry::bus::kit::{self, BusFactory};
use bypass_registry::conformance::panic_message;

/// Runs kit case `name` on a bus with `flaw` and returns the kit's failure message.
fn kit_rejects(flaw: BusFlaw, name: &str) -> String {
    let case = kit::CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no kit case {name}"));
    let factory = move || Arc::new(BrokenBus::new(flaw)) as Arc<dyn Bus>;
    let factory: BusFactory<'_> = &factory;
    match catch_unwind(AssertUnwindSafe(|| (case.run)(factory))) {
        Ok(()) => panic!("the kit case `{name}` passed a bus with flaw {flaw:?}"),
        Err(panic) => panic_message(&*panic),
    }
}

#[test]
fn double_probe_is_caught() {
    let msg = kit_rejects(
        BusFlaw::DoubleProbe,
        "device_offered_to_drivers_in_registration_order",
    );
    assert!(msg.contains("differ from the contract"), "{msg}");
    kit_rejects(BusFlaw::DoubleProbe, "bus_trace_matches_model");
}

#[test]
fn oldest_first_removal_is_caught() {
    let msg = kit_rejects(
        BusFlaw::OldestRemovedFirst,
        "unregister_driver_removes_most_recent_first",
    );
    assert!(msg.contains("driver net remove 5"), "{msg}");
    kit_rejects(BusFlaw::OldestRemovedFirst, "bus_trace_matches_model");
}

#[test]
fn reoffering_is_caught() {
    let msg = kit_rejects(BusFlaw::Reoffers, "unregister_driver_does_not_reoffer");
    assert!(msg.contains("differ from the contract"), "{msg}");
    kit_rejects(BusFlaw::Reoffers, "random_sequences_match_model");
}

#[test]
fn lost_binding_is_caught() {
    let msg = kit_rejects(
        BusFlaw::CheckThenAct,
        "racing_device_and_driver_bind_exactly_once",
    );
    assert!(msg.contains("racing registers must probe once"), "{msg}");
}

#[test]
fn panic_ending_the_walk_is_caught() {
    let msg = kit_rejects(BusFlaw::PanicStopsWalk, "panicking_probe_is_a_failed_probe");
    assert!(msg.contains("differ from the contract"), "{msg}");
}

#[test]
fn reentrant_deadlock_is_caught_not_hung() {
    // The deadlock is expected: no need to wait the default minute for it.
    kit::set_watchdog(Duration::from_secs(3));
    let msg = kit_rejects(
        BusFlaw::DeadlocksOnReentry,
        "reentrant_call_about_same_device_is_refused",
    );
    assert!(msg.contains("deadlock suspected"), "{msg}");
}

#[test]
fn every_flaw_passes_the_cases_it_does_not_break() {
    // The broken buses are faithful apart from their flaw: the basic sequential cases pass, so
    // a rejection above is the flaw's doing.
    for flaw in [
        BusFlaw::DoubleProbe,
        BusFlaw::OldestRemovedFirst,
        BusFlaw::Reoffers,
        BusFlaw::CheckThenAct,
        BusFlaw::PanicStopsWalk,
        BusFlaw::DeadlocksOnReentry,
    ] {
        for name in [
            "device_alone_runs_no_callback",
            "failed_probes_leave_device_unbound",
            "duplicates_are_refused_and_handed_back",
            "unregister_device_removes_it_from_its_driver",
            "reads_follow_the_state",
        ] {
            let case = kit::CASES.iter().find(|c| c.name == name).unwrap();
            let factory = move || Arc::new(BrokenBus::new(flaw)) as Arc<dyn Bus>;
            (case.run)(&factory);
        }
    }
}
