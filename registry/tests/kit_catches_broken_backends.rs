//! The conformance kit is proved by the backends it rejects: each backend here breaks one
//! guarantee of the contract on purpose, and the kit's case for that guarantee must fail on it.
//! (The correct backends of `bypass-strategies` pass the same cases.)

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use bypass_registry::conformance::{self, Factory};
use bypass_registry::{
    CallbackError, Consumer, Population, Producer, RegisterConsumerResult, RegisterError,
    RegisterProducerResult, Registry, Token, UnregisterError,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flaw {
    /// Calls the consumer's `stop` before the producer's.
    WrongOrder,
    /// Skips the `start`s when the connect fails.
    SkipStartsOnFailure,
    /// Does not call `del_consumer` when the consumer's add fails.
    NoRollback,
    /// Keeps a reference to a participant refused as a duplicate.
    KeepsRefused,
    /// Checks for a partner and inserts in two critical sections, and runs callbacks outside
    /// the lock: racing registrations lose a pairing or connect twice.
    CheckThenAct,
    /// Returns from unregister before the disconnect callbacks have run.
    LateDisconnect,
    /// Lets a callback's panic unwind through its (std, poisoning) lock.
    PoisonsOnPanic,
    /// Takes its lock again from a callback: a re-entrant call deadlocks.
    DeadlocksOnReentry,
}

type Slot = (Option<Arc<dyn Producer>>, Option<Arc<dyn Consumer>>);

struct Flawed {
    flaw: Flaw,
    state: Mutex<HashMap<Token, Slot>>,
    kept: Mutex<Vec<Arc<dyn Producer>>>,
}

impl Flawed {
    fn new(flaw: Flaw) -> Flawed {
        Flawed {
            flaw,
            state: Mutex::default(),
            kept: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Token, Slot>> {
        match self.flaw {
            Flaw::PoisonsOnPanic => self.state.lock().expect("poisoned by a callback's panic"),
            _ => self.state.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    fn connect(&self, p: &dyn Producer, c: &dyn Consumer) -> Result<(), CallbackError> {
        if self.flaw == Flaw::WrongOrder {
            c.stop();
            p.stop();
        } else {
            p.stop();
            c.stop();
        }
        let result = p.add_consumer(c).and_then(|()| {
            c.add_producer(p).inspect_err(|_| {
                if self.flaw != Flaw::NoRollback {
                    p.del_consumer(c);
                }
            })
        });
        if result.is_ok() || self.flaw != Flaw::SkipStartsOnFailure {
            c.start();
            p.start();
        }
        result
    }
}

fn disconnect(p: &dyn Producer, c: &dyn Consumer) {
    p.stop();
    c.stop();
    c.del_producer(p);
    p.del_consumer(c);
    c.start();
    p.start();
}

impl Registry for Flawed {
    fn name(&self) -> &'static str {
        "flawed"
    }

    fn register_producer(&self, token: Token, p: Arc<dyn Producer>) -> RegisterProducerResult {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        if slot.0.is_some() {
            if self.flaw == Flaw::KeepsRefused {
                self.kept.lock().unwrap().push(p.clone());
            }
            return Err(RegisterError::Duplicate(p));
        }
        let partner = slot.1.clone();
        if self.flaw == Flaw::CheckThenAct {
            drop(state);
            thread::yield_now();
            if let Some(c) = &partner {
                self.connect(&*p, &**c)
                    .map_err(|error| RegisterError::ConnectFailed {
                        participant: p.clone(),
                        error,
                    })?;
            }
            self.lock().entry(token).or_default().0 = Some(p);
            return Ok(());
        }
        if let Some(c) = &partner {
            if let Err(error) = self.connect(&*p, &**c) {
                return Err(RegisterError::ConnectFailed {
                    participant: p,
                    error,
                });
            }
        }
        state.entry(token).or_default().0 = Some(p);
        Ok(())
    }

    fn register_consumer(&self, token: Token, c: Arc<dyn Consumer>) -> RegisterConsumerResult {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        if slot.1.is_some() {
            return Err(RegisterError::Duplicate(c));
        }
        let partner = slot.0.clone();
        if self.flaw == Flaw::CheckThenAct {
            drop(state);
            thread::yield_now();
            if let Some(p) = &partner {
                self.connect(&**p, &*c)
                    .map_err(|error| RegisterError::ConnectFailed {
                        participant: c.clone(),
                        error,
                    })?;
            }
            self.lock().entry(token).or_default().1 = Some(c);
            return Ok(());
        }
        if let Some(p) = &partner {
            if let Err(error) = self.connect(&**p, &*c) {
                return Err(RegisterError::ConnectFailed {
                    participant: c,
                    error,
                });
            }
        }
        state.entry(token).or_default().1 = Some(c);
        Ok(())
    }

    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        let p = slot.0.take().ok_or(UnregisterError::NotRegistered)?;
        if let Some(c) = slot.1.clone() {
            if self.flaw == Flaw::LateDisconnect {
                let late = p.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(1));
                    disconnect(&*late, &*c);
                });
            } else {
                disconnect(&*p, &*c);
            }
        }
        Ok(p)
    }

    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        let mut state = self.lock();
        let slot = state.entry(token).or_default();
        let c = slot.1.take().ok_or(UnregisterError::NotRegistered)?;
        if let Some(p) = slot.0.clone() {
            if self.flaw == Flaw::LateDisconnect {
                let late = c.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(1));
                    disconnect(&*p, &*late);
                });
            } else {
                disconnect(&*p, &*c);
            }
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

/// Runs kit case `name` on a backend with `flaw` and returns the kit's failure message.
fn kit_rejects(flaw: Flaw, name: &str) -> String {
    let case = conformance::CASES
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no kit case {name}"));
    let factory = move || Arc::new(Flawed::new(flaw)) as Arc<dyn Registry>;
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
