//! Loom models of the `lockfree` backend: its per-token state machine and its lock-free table.
//!
//! Run with `.ci/loom` (`LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p
//! bypass-strategies --test loom --release`). Under `--cfg loom`, `lockfree`'s `sync` facade
//! hands out loom's mutex, `Arc` and atomics, so these models explore every interleaving (up to
//! two preemptions a thread) of the real code: the Harris–Michael lists of the table (insert if
//! absent, mark, unlink, the snapshot pointer) and the slot protocol on top (the per-token lock,
//! the retired flag). Two things differ from a normal build: the table has a single bucket, so
//! every token of a model shares one list and the list's races are explored; and epoch
//! reclamation is replaced by keeping every retired node and snapshot until the table is
//! dropped (crossbeam-epoch does not run under loom), so these models check the algorithm's
//! logic, not the timing of frees, which is crossbeam-epoch's.
//!
//! Loom runs its threads as coroutines of one OS thread, so the registry's thread-local record
//! of "this thread is inside a callback" is shared by them. That is sound here because no loom
//! operation happens inside a callback: the probes log to a std mutex and a std atomic, so loom
//! never switches threads between a callback scope's entry and its exit.

#![cfg(loom)]

use std::sync::Arc as StdArc;

use bypass_registry::conformance::{check_token_history, connect_events, disconnect_events};
use bypass_registry::probe::{EventLog, Probe};
use bypass_registry::{Population, Registry, Side, Token};
use bypass_strategies::LockFree;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

fn token() -> Token {
    Token::new(1).unwrap()
}

fn probe(side: Side, log: &StdArc<EventLog>) -> StdArc<Probe> {
    StdArc::new(Probe::new(side, 1, log))
}

fn population(producers: usize, consumers: usize) -> Population {
    Population {
        producers,
        consumers,
    }
}

/// A producer and a consumer of one fresh token register at once: both succeed, and exactly
/// one connect runs, whichever wins the insert of the token's slot.
#[test]
fn racing_pair_connects_exactly_once() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let producer = {
            let (registry, log) = (registry.clone(), log.clone());
            thread::spawn(move || {
                registry
                    .register_producer(token(), probe(Side::Producer, &log))
                    .is_ok()
            })
        };
        let consumer_ok = registry
            .register_consumer(token(), probe(Side::Consumer, &log))
            .is_ok();
        assert!(producer.join().unwrap() && consumer_ok, "both register");
        let lines: Vec<String> = log.take().iter().map(ToString::to_string).collect();
        let connect: Vec<String> = connect_events(1).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines, connect,
            "exactly one connect, in the protocol's order"
        );
        assert!(registry.is_paired(token()));
        assert_eq!(registry.population(), population(1, 1));
    });
}

/// The last participant of a token leaves while the other side registers: the emptied slot is
/// removed, and the register is never lost, whether it joined the old slot (connect, then
/// disconnect) or came after the removal (a new slot, no callback).
#[test]
fn removal_of_emptied_slot_races_register() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let p = probe(Side::Producer, &log);
        registry.register_producer(token(), p.clone()).unwrap();
        let leaver = {
            let (registry, p) = (registry.clone(), p.clone());
            thread::spawn(move || {
                drop(registry.unregister_producer(token()).unwrap());
                p.retire();
            })
        };
        registry
            .register_consumer(token(), probe(Side::Consumer, &log))
            .expect("the register is never lost");
        leaver.join().unwrap();
        let events = log.take();
        let (connects, disconnects) =
            check_token_history(1, &events).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(connects, disconnects, "the producer left: {events:?}");
        assert_eq!(
            p.late_calls(),
            0,
            "a callback reached the producer after it left"
        );
        assert!(registry.producer(token()).is_none());
        assert!(
            registry.consumer(token()).is_some(),
            "the consumer was lost"
        );
        assert!(!registry.is_paired(token()));
        assert_eq!(registry.population(), population(0, 1));
        // The registry holds nothing of the producer: the only references are the test's.
        assert_eq!(StdArc::strong_count(&p), 1);
    });
}

/// A producer registers while the consumer it would pair with unregisters: either it connects
/// and the unregister disconnects it, or it comes after and runs no callback; it stays
/// registered either way, and the consumer is never called after its unregister returned.
#[test]
fn register_races_unregister() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let c = probe(Side::Consumer, &log);
        registry.register_consumer(token(), c.clone()).unwrap();
        let leaver = {
            let (registry, c) = (registry.clone(), c.clone());
            thread::spawn(move || {
                drop(registry.unregister_consumer(token()).unwrap());
                c.retire();
            })
        };
        registry
            .register_producer(token(), probe(Side::Producer, &log))
            .unwrap();
        leaver.join().unwrap();
        let events = log.take();
        let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
        let both: Vec<String> = connect_events(1)
            .iter()
            .chain(disconnect_events(1).iter())
            .map(ToString::to_string)
            .collect();
        assert!(
            lines.is_empty() || lines == both,
            "neither no callback nor a connect then a disconnect: {lines:?}"
        );
        assert_eq!(c.late_calls(), 0);
        assert!(registry.producer(token()).is_some() && registry.consumer(token()).is_none());
        assert_eq!(registry.population(), population(1, 0));
    });
}

/// A producer and a consumer of a token unregister at once: exactly one disconnect, the slot
/// is removed, and neither is called after its unregister returned.
#[test]
fn racing_unregisters_disconnect_exactly_once() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        registry
            .register_producer(token(), probe(Side::Producer, &log))
            .unwrap();
        registry
            .register_consumer(token(), probe(Side::Consumer, &log))
            .unwrap();
        log.take();
        let producer = {
            let registry = registry.clone();
            thread::spawn(move || drop(registry.unregister_producer(token()).unwrap()))
        };
        drop(registry.unregister_consumer(token()).unwrap());
        producer.join().unwrap();
        let lines: Vec<String> = log.take().iter().map(ToString::to_string).collect();
        let disconnect: Vec<String> = disconnect_events(1)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(lines, disconnect);
        assert!(registry.producer(token()).is_none() && registry.consumer(token()).is_none());
        assert_eq!(registry.population(), population(0, 0));
    });
}

/// A lookup races the unregister of the participant it looks up: it returns that participant
/// (looked up before the unregister took effect) or nothing, never anything else, and nothing
/// once the unregister has returned. What it returns stays valid after the removal.
#[test]
fn lookup_races_unregister() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let p = probe(Side::Producer, &log);
        registry.register_producer(token(), p.clone()).unwrap();
        registry
            .register_consumer(token(), probe(Side::Consumer, &log))
            .unwrap();
        let returned = Arc::new(AtomicBool::new(false));
        let leaver = {
            let (registry, returned, p) = (registry.clone(), returned.clone(), p.clone());
            thread::spawn(move || {
                drop(registry.unregister_producer(token()).unwrap());
                p.retire();
                returned.store(true, Ordering::Release);
            })
        };
        let after_return = returned.load(Ordering::Acquire);
        let seen = registry.producer(token());
        let paired = registry.is_paired(token());
        if after_return {
            assert!(
                seen.is_none(),
                "a lookup after unregister returned found the producer"
            );
            assert!(!paired, "paired after unregister returned");
        }
        if let Some(seen) = seen {
            let seen: StdArc<dyn std::any::Any + Send + Sync> = seen;
            let seen = seen.downcast::<Probe>().unwrap();
            assert!(
                StdArc::ptr_eq(&seen, &p),
                "the lookup returned another producer"
            );
            // Still usable after the removal: the lookup holds its own reference.
            assert_eq!(seen.token(), 1);
        }
        leaver.join().unwrap();
        assert!(registry.producer(token()).is_none());
        assert_eq!(p.late_calls(), 0);
        assert_eq!(registry.population(), population(0, 1));
    });
}

/// Three threads on one token: its only producer leaves (emptying and removing the slot) while
/// a consumer and a new producer arrive. Whatever the order, both newcomers end registered and
/// paired, the token's history is whole connects and disconnects that alternate, and the old
/// producer is never called after its unregister returned.
#[test]
fn removal_races_two_registers() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let old = probe(Side::Producer, &log);
        registry.register_producer(token(), old.clone()).unwrap();
        let leaver = {
            let (registry, old) = (registry.clone(), old.clone());
            thread::spawn(move || {
                drop(registry.unregister_producer(token()).unwrap());
                old.retire();
            })
        };
        let consumer = {
            let (registry, log) = (registry.clone(), log.clone());
            thread::spawn(move || {
                registry
                    .register_consumer(token(), probe(Side::Consumer, &log))
                    .expect("the consumer is never lost");
            })
        };
        // The new producer can only be refused as a duplicate of the old one, before it left.
        let mut newcomer = probe(Side::Producer, &log);
        while let Err(refused) = registry.register_producer(token(), newcomer) {
            assert_eq!(refused.kind(), bypass_registry::ErrorKind::Duplicate);
            newcomer = probe(Side::Producer, &log);
            thread::yield_now();
        }
        leaver.join().unwrap();
        consumer.join().unwrap();
        let events = log.take();
        let (connects, disconnects) =
            check_token_history(1, &events).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(connects, disconnects + 1, "paired at the end: {events:?}");
        assert_eq!(old.late_calls(), 0);
        assert!(registry.is_paired(token()));
        assert_eq!(registry.population(), population(1, 1));
    });
}

/// Two tokens in one list (under loom the table has a single bucket): one token is inserted and
/// removed while the other is inserted. Both inserts land, the removal unlinks only its node,
/// and lookups agree with the registry's state at the end.
#[test]
fn neighbours_in_one_list() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let other = Token::new(2).unwrap();
        let churner = {
            let (registry, log) = (registry.clone(), log.clone());
            thread::spawn(move || {
                registry
                    .register_producer(token(), probe(Side::Producer, &log))
                    .unwrap();
                drop(registry.unregister_producer(token()).unwrap());
            })
        };
        registry
            .register_consumer(other, StdArc::new(Probe::new(Side::Consumer, 2, &log)))
            .unwrap();
        churner.join().unwrap();
        assert!(log.take().is_empty(), "no pair, no callback");
        assert!(registry.producer(token()).is_none());
        assert!(registry.consumer(other).is_some());
        assert_eq!(registry.population(), population(0, 1));
        // The list still works: both tokens can be registered again or removed.
        registry
            .register_producer(token(), probe(Side::Producer, &log))
            .unwrap();
        drop(registry.unregister_consumer(other).unwrap());
        assert!(registry.producer(token()).is_some() && registry.consumer(other).is_none());
    });
}

/// Two adjacent nodes of one list are removed at once, the Harris–Michael case where one
/// removal's unlink can undo the other's unless the marks are respected: both end up gone.
#[test]
fn adjacent_removals_in_one_list() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let other = Token::new(2).unwrap();
        registry
            .register_producer(token(), probe(Side::Producer, &log))
            .unwrap();
        registry
            .register_producer(other, StdArc::new(Probe::new(Side::Producer, 2, &log)))
            .unwrap();
        let remover = {
            let registry = registry.clone();
            thread::spawn(move || drop(registry.unregister_producer(token()).unwrap()))
        };
        drop(registry.unregister_producer(other).unwrap());
        remover.join().unwrap();
        assert!(registry.producer(token()).is_none() && registry.producer(other).is_none());
        assert_eq!(registry.population(), population(0, 0));
        // Neither removed node comes back, and the list takes new nodes.
        registry
            .register_producer(other, StdArc::new(Probe::new(Side::Producer, 2, &log)))
            .unwrap();
        assert!(registry.producer(other).is_some() && registry.producer(token()).is_none());
    });
}
