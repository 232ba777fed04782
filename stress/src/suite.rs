//! The suites of `bypass ci` and `bypass compare`: which runs each makes, and how each run is
//! configured. `bypass report` reads them too, to recognise results that `compare` made.

use std::time::Duration;

use bypass_strategies::Backend;
use bypass_stress::runner::RunConfig;
use bypass_stress::scenario::{Faults, Scenario};

/// Every backend over every scenario, backend by backend: the runs of `bypass ci`.
pub(crate) fn ci_runs() -> Vec<(Backend, Scenario)> {
    Backend::ALL
        .iter()
        .flat_map(|&b| Scenario::ALL.iter().map(move |&s| (b, s)))
        .collect()
}

/// The scale of each scenario in `bypass ci`: thousands of operations each (tens of
/// thousands for the lookup path), all 1,024 threads of irqfd-flood; about a minute for every
/// backend and scenario on two cores.
fn ci_scale(scenario: Scenario) -> f64 {
    match scenario {
        Scenario::IrqfdFlood => 0.05,
        Scenario::DeliveryLookup => 0.02,
        // Bus: 100 VMs on their own threads; 500 devices reloaded; 2,500 devices, 25,000 ops.
        Scenario::VirtioBoot => 0.025,
        Scenario::DriverReload => 0.025,
        Scenario::VirtioHotplug => 0.025,
        _ => 0.1,
    }
}

/// A run of a suite: one thread per actor, no callback cost.
fn config(
    (backend, scenario): (Backend, Scenario),
    seed: u64,
    scale: f64,
    faults: Faults,
    time_cap: Option<Duration>,
) -> RunConfig {
    RunConfig {
        backend,
        scenario,
        threads: None,
        seed,
        scale,
        callback_cost: Duration::ZERO,
        faults,
        time_cap,
    }
}

/// A run of `bypass ci`: faults injected, stopped after `cap` (at least 100 ms).
pub(crate) fn ci_config(
    backend: Backend,
    scenario: Scenario,
    seed: u64,
    cap: Duration,
) -> RunConfig {
    let faults = Faults {
        fail_rate: 0.05,
        panic_rate: 0.02,
    };
    let cap = cap.max(Duration::from_millis(100));
    config(
        (backend, scenario),
        seed,
        ci_scale(scenario),
        faults,
        Some(cap),
    )
}

/// The scale of each scenario in `bypass compare`, quick or full.
pub(crate) fn compare_scale(scenario: Scenario, quick: bool) -> f64 {
    let full = match scenario {
        Scenario::DeliveryLookup => 0.5,
        _ => 1.0,
    };
    if quick { full / 4.0 } else { full }
}

/// A backend that is O(n) per operation by design gets at most this long per run; it is
/// reported as capped, never dropped.
fn compare_cap(backend: Backend, quick: bool) -> Option<Duration> {
    (backend == Backend::MutexList).then(|| Duration::from_secs(if quick { 5 } else { 10 }))
}

/// A run of `bypass compare`: no faults.
pub(crate) fn compare_config(
    backend: Backend,
    scenario: Scenario,
    seed: u64,
    quick: bool,
) -> RunConfig {
    let scale = compare_scale(scenario, quick);
    let cap = compare_cap(backend, quick);
    config((backend, scenario), seed, scale, Faults::default(), cap)
}
