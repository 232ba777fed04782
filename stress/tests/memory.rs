//! Memory comes back: every real backend, filled and emptied ten times and dropped, returns to
//! its baseline; backends that keep emptied entries or replaced snapshots are caught. The
//! counting allocator counts every thread, so the tests of this binary take turns.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bypass_registry::Registry;
use bypass_registry::broken::{Bug, Sharded, Snapshots};
use bypass_registry::memory::{Footprint, footprint};
use bypass_reports::ViolationKind;
use bypass_strategies::{Backend, Visitor};
use bypass_stress::alloc::{Counting, Heap, Window};
use bypass_stress::runner::{Progress, RunConfig, run_on};
use bypass_stress::scenario::{Faults, Scenario};

#[global_allocator]
static ALLOC: Counting = Counting;

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The footprint of registries made by `make`, filled with `tokens` paired tokens a cycle.
fn measure<R: Registry>(make: impl Fn() -> R, tokens: u64) -> Footprint {
    let window = Window::open();
    assert!(window.installed());
    footprint(make, &Heap(&window), tokens)
}

#[test]
fn every_real_backend_gives_its_memory_back() {
    let _turn = turn();
    struct V;
    impl Visitor for V {
        type Output = Footprint;
        fn visit<R: Registry + Default + 'static>(self) -> Footprint {
            measure(R::default, 2_000)
        }
    }
    for &backend in Backend::ALL {
        let f = backend.visit(V);
        println!("{backend}: {f:?}");
        assert_eq!(f.leak(), None, "{backend}: {f:?}");
        assert!(f.per_token > 0.0, "{backend}: {f:?}");
    }
}

#[test]
fn a_leaked_entry_is_caught() {
    let _turn = turn();
    let f = measure(|| Sharded::new(Bug::LeaksEntry), 300);
    let leak = f
        .leak()
        .expect("an emptied entry never removed grows every cycle");
    assert!(leak.contains("grew by"), "{leak}");
    assert_eq!(measure(|| Sharded::new(Bug::None), 300).leak(), None);
}

#[test]
fn a_leaked_snapshot_is_caught() {
    let _turn = turn();
    let f = measure(|| Snapshots::new(Bug::LeaksSnapshot), 300);
    let leak = f.leak().expect("a snapshot never retired stays live");
    assert!(
        leak.contains("after the registry was emptied and dropped"),
        "{leak}"
    );
    assert_eq!(measure(|| Snapshots::new(Bug::None), 300).leak(), None);
}

#[test]
fn a_stress_run_reports_a_leak_with_its_size() {
    let _turn = turn();
    let config = RunConfig {
        backend: Backend::MutexMap.into(), // unused by run_on
        mode: bypass_reports::RunMode::Checked,
        scenario: Scenario::HotTokens,
        threads: None,
        seed: 3,
        scale: 0.02,
        callback_cost: Duration::ZERO,
        faults: Faults::default(),
        time_cap: None,
        chaos: Some(3),
        memory: true,
    };
    let out = run_on(
        || Sharded::new(Bug::LeaksEntry),
        &config,
        &Progress::default(),
    )
    .unwrap();
    let leak = out
        .violations
        .iter()
        .find(|v| v.kind == ViolationKind::MemoryLeak)
        .expect("a memory-leak violation");
    assert!(leak.message.contains("bytes"), "{leak}");
    assert!(out.result.details.bytes_per_token.is_some());
    let out = run_on(|| Sharded::new(Bug::None), &config, &Progress::default()).unwrap();
    assert_eq!(out.violations, []);
}
