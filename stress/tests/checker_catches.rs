//! The checker is proved by the broken backends it catches. Each backend here breaks one
//! guarantee on purpose; a stress run on it must report that violation. The same runs on the
//! real backends report none.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use bypass_registry::protocol::{self, RegistryId};
use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterError, RegisterProducerResult,
    Registry, Token, UnregisterError,
};
use bypass_strategies::Backend;
use bypass_stress::runner::{Progress, RunConfig, run, run_on};
use bypass_stress::scenario::{Faults, Scenario};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    /// Now and then registers the second participant of a token without connecting.
    LosesPairing,
    /// Runs the disconnect after unregister has returned, from another thread.
    CallsAfterUnregister,
    /// Registers before connecting and runs callbacks outside its lock, so a connect and a
    /// disconnect of one token can interleave.
    Interleaves,
}

type Slot = (Option<Arc<dyn Producer>>, Option<Arc<dyn Consumer>>);

struct Broken {
    flaw: Flaw,
    id: RegistryId,
    state: Mutex<HashMap<Token, Slot>>,
    calls: AtomicU64,
}

impl Broken {
    fn new(flaw: Flaw) -> Broken {
        Broken {
            flaw,
            id: RegistryId::new(),
            state: Mutex::default(),
            calls: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Token, Slot>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this connect is the one in twenty that the flaw skips.
    fn skip_connect(&self) -> bool {
        self.flaw == Flaw::LosesPairing && self.calls.fetch_add(1, Ordering::Relaxed) % 20 == 7
    }

    fn disconnect(&self, token: Token, p: Arc<dyn Producer>, c: Arc<dyn Consumer>) {
        match self.flaw {
            Flaw::CallsAfterUnregister => {
                let id = self.id;
                thread::spawn(move || {
                    thread::sleep(Duration::from_micros(200));
                    protocol::disconnect(id, token, &*p, &*c).finish(());
                });
            }
            _ => protocol::disconnect(self.id, token, &*p, &*c).finish(()),
        }
    }
}

impl Registry for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn register_producer(&self, token: Token, p: Arc<dyn Producer>) -> RegisterProducerResult {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        if slot.0.is_some() {
            return Err(RegisterError::Duplicate(p));
        }
        let Some(c) = slot.1.clone() else {
            slot.0 = Some(p);
            return Ok(());
        };
        if self.skip_connect() {
            slot.0 = Some(p);
            return Ok(());
        }
        if self.flaw == Flaw::Interleaves {
            slot.0 = Some(p.clone());
            drop(state);
            let result = protocol::connect(self.id, token, &*p, &*c).commit(p, drop);
            if result.is_err() {
                self.lock().entry(token).or_default().0 = None;
            }
            return result;
        }
        protocol::connect(self.id, token, &*p, &*c).commit(p, |p| slot.0 = Some(p))
    }

    fn register_consumer(&self, token: Token, c: Arc<dyn Consumer>) -> RegisterConsumerResult {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        if slot.1.is_some() {
            return Err(RegisterError::Duplicate(c));
        }
        let Some(p) = slot.0.clone() else {
            slot.1 = Some(c);
            return Ok(());
        };
        if self.skip_connect() {
            slot.1 = Some(c);
            return Ok(());
        }
        if self.flaw == Flaw::Interleaves {
            slot.1 = Some(c.clone());
            drop(state);
            let result = protocol::connect(self.id, token, &*p, &*c).commit(c, drop);
            if result.is_err() {
                self.lock().entry(token).or_default().1 = None;
            }
            return result;
        }
        protocol::connect(self.id, token, &*p, &*c).commit(c, |c| slot.1 = Some(c))
    }

    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        let p = slot.0.take().ok_or(UnregisterError::NotRegistered)?;
        if let Some(c) = slot.1.clone() {
            if self.flaw == Flaw::Interleaves {
                drop(state);
            }
            self.disconnect(token, p.clone(), c);
        }
        Ok(p)
    }

    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        let c = slot.1.take().ok_or(UnregisterError::NotRegistered)?;
        if let Some(p) = slot.0.clone() {
            if self.flaw == Flaw::Interleaves {
                drop(state);
            }
            self.disconnect(token, p, c.clone());
        }
        Ok(c)
    }

    fn is_paired(&self, token: Token) -> bool {
        self.lock()
            .get(&token)
            .is_some_and(|s| s.0.is_some() && s.1.is_some())
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.lock().get(&token).and_then(|s| s.0.clone())
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.lock().get(&token).and_then(|s| s.1.clone())
    }

    fn population(&self) -> Population {
        let state = self.lock();
        Population {
            producers: state.values().filter(|s| s.0.is_some()).count(),
            consumers: state.values().filter(|s| s.1.is_some()).count(),
        }
    }
}

/// Scenarios where both sides of a token meet and leave from different threads.
fn config(scenario: Scenario, callback_cost: Duration) -> RunConfig {
    RunConfig {
        backend: Backend::MutexMap, // unused by run_on, which is given the backend
        scenario,
        threads: Some(8),
        seed: 42,
        scale: 0.02,
        callback_cost,
        faults: Faults::default(),
        time_cap: None,
    }
}

fn kinds_found(flaw: Flaw, scenario: Scenario, callback_cost: Duration) -> Vec<&'static str> {
    let out = run_on(
        &Broken::new(flaw),
        &config(scenario, callback_cost),
        &Progress::default(),
    )
    .expect("the run starts");
    let mut kinds: Vec<&str> = out.violations.iter().map(|v| v.kind).collect();
    kinds.dedup();
    assert_eq!(out.result.violations, out.violations.len());
    kinds
}

#[test]
fn a_lost_pairing_is_caught() {
    let kinds = kinds_found(Flaw::LosesPairing, Scenario::IrqfdFlood, Duration::ZERO);
    assert!(kinds.contains(&"linearizability"), "{kinds:?}");
}

#[test]
fn a_call_after_unregister_is_caught() {
    let kinds = kinds_found(
        Flaw::CallsAfterUnregister,
        Scenario::RestoreStorm,
        Duration::ZERO,
    );
    // Run-wide (the participant was already handed back) and per token (outside any call).
    assert!(kinds.contains(&"call-after-return"), "{kinds:?}");
    assert!(kinds.contains(&"stray-callback"), "{kinds:?}");
}

#[test]
fn interleaved_connect_and_disconnect_are_caught() {
    // Slow callbacks widen the window in which the two sequences overlap.
    let kinds = kinds_found(
        Flaw::Interleaves,
        Scenario::HotplugLoop,
        Duration::from_micros(20),
    );
    assert!(
        kinds.contains(&"exclusion") || kinds.contains(&"linearizability"),
        "{kinds:?}"
    );
}

#[test]
fn a_violation_comes_with_a_replayable_trace() {
    let out = run_on(
        &Broken::new(Flaw::LosesPairing),
        &config(Scenario::IrqfdFlood, Duration::ZERO),
        &Progress::default(),
    )
    .unwrap();
    let v = out
        .violations
        .iter()
        .find(|v| v.kind == "linearizability")
        .expect("a linearizability violation");
    let trace = v.trace.as_deref().expect("a trace");
    // The trace parses as a replay trace, and the model's output for it differs from what
    // the broken backend did.
    let ops = bypass_registry::trace::parse(trace).expect("the trace is in the replay format");
    assert!(!ops.is_empty());
    assert!(v.to_string().contains("bypass replay"), "{v}");
}

#[test]
fn every_real_backend_passes_every_scenario_with_faults() {
    for &backend in Backend::ALL {
        for &scenario in Scenario::ALL {
            let config = RunConfig {
                backend,
                scale: 0.01,
                faults: Faults {
                    fail_rate: 0.05,
                    panic_rate: 0.02,
                },
                ..config(scenario, Duration::ZERO)
            };
            let out = run(&config, &Progress::default()).expect("the run starts");
            assert!(
                out.violations.is_empty(),
                "{backend} on {scenario}: {}",
                out.violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            assert!(out.result.ops > 0);
        }
    }
}
