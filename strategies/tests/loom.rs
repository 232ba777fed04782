//! Loom models of the `lockfree` backend: its per-token state word, its participant slots,
//! its split-ordered list and the reclamation of its nodes.
//!
//! Run with `.ci/loom` (`LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p
//! bypass-strategies --test loom --release`). Under `--cfg loom`, `lockfree`'s `sync` facade
//! hands out loom's atomics, `Arc` and cells, so these models explore every interleaving (up to
//! the preemption bound) of the real code: the state word (the token's lock, presence bits and
//! reader count), the participant slots (loom's `UnsafeCell`, so a slot written while a reader
//! clones from it fails the model), the list (insert if absent, claim, mark, unlink, growth
//! from one bucket to two) and the registration path on top.
//!
//! Reclamation is modelled too: the table's collector keeps each unlinked node with the epoch it
//! was retired in and releases it once no guard pinned at or before then is alive; a node
//! whose last count goes there is poisoned, and any later use of it through the list fails the
//! model ("used after the collector released it"). So a missing pin, or a node retired before it
//! was unlinked, is caught, not just a list that loses a token. (Checked by planting an early
//! release: collecting regardless of live guards fails `adjacent_removals_in_one_list`,
//! `removal_of_emptied_node_races_register` and `removal_races_two_registers`.)
//!
//! A writer that finds a token's lock held parks at once under loom, in a modelled parking lot
//! (`lockfree/sync.rs`): a release that fails to wake it leaves it asleep, and loom reports the
//! deadlock. So every model where two writers meet on one token's lock (the register and
//! unregister races below) also checks that each release wakes a parked waiter
//! (`take_wakes_a_parked_waiter` is the smallest such model).
//!
//! The registry's record of "this thread is inside a callback" is one per loom thread under
//! `--cfg loom` (registry's `protocol` module), so callbacks may call the registry here.

#![cfg(loom)]

use std::sync::Arc as StdArc;

use bypass_registry::conformance::{check_token_history, connect_events, disconnect_events};
use bypass_registry::probe::{EventLog, Probe};
use bypass_registry::{Callback, ErrorKind, Population, RegisterError, Registry, Side, Token};
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

/// The last participant of a token leaves and its emptied node is reclaimed while the other
/// side registers: the register is never lost, whether it joined the old node (connect, then
/// disconnect), reused it emptied, or came after the removal (a new node, no callback).
#[test]
fn removal_of_emptied_node_races_register() {
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
                registry.reclaim_empty();
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

/// A lookup races the unregister of the participant it looks up, and the reclamation of the
/// emptied node: it returns that participant (looked up before the unregister took effect) or
/// nothing, never anything else, and nothing once the unregister has returned. The node it
/// reads stays valid while it is pinned, and what it returns after the removal.
#[test]
fn lookup_races_reclaim() {
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
                drop(registry.unregister_consumer(token()).unwrap());
                registry.reclaim_empty();
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
        assert_eq!(registry.population(), population(0, 0));
        // Nothing of the producer is left in the registry, strong or weak (the lookup's clone
        // was dropped with `seen`).
        assert_eq!((StdArc::strong_count(&p), StdArc::weak_count(&p)), (1, 0));
    });
}

/// A lookup races an unregister that takes the participant out of its slot (no partner, so no
/// callback: the lock is held only for the take), followed by a register that reuses the
/// emptied slot. The lookup returns the old producer, the new one or nothing; loom's cell checks
/// that the slot is not written (emptied, or given the new producer) while the lookup may still
/// be cloning the old one out of it, and the registry ends holding the new producer only.
/// (Checked by planting a take that does not wait for the readers inside the slot: this model
/// fails with a causality violation on the slot.)
#[test]
fn lookup_races_take_and_reuse() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let (old, new) = (probe(Side::Producer, &log), probe(Side::Producer, &log));
        registry.register_producer(token(), old.clone()).unwrap();
        let churner = {
            let (registry, new) = (registry.clone(), new.clone());
            thread::spawn(move || {
                drop(registry.unregister_producer(token()).unwrap());
                registry.register_producer(token(), new).unwrap();
            })
        };
        let seen = registry.producer(token()).map(|seen| {
            let seen: StdArc<dyn std::any::Any + Send + Sync> = seen;
            seen.downcast::<Probe>().unwrap()
        });
        if let Some(seen) = &seen {
            assert!(
                StdArc::ptr_eq(seen, &old) || StdArc::ptr_eq(seen, &new),
                "the lookup returned neither producer"
            );
        }
        drop(seen);
        churner.join().unwrap();
        assert!(log.take().is_empty(), "no pair, no callback");
        assert_eq!(registry.population(), population(1, 0));
        assert_eq!(
            StdArc::strong_count(&old),
            1,
            "the registry kept the old producer"
        );
        assert_eq!(StdArc::strong_count(&new), 2);
    });
}

/// A consumer registers while the token's producer, alone, unregisters: if the register finds
/// the token's lock held, it parks on the token's word (modelled parking, see `sync.rs`), and
/// the take's release must see the parked flag and wake it; a release that does not would
/// leave the register asleep for ever, which loom reports as a deadlock. (Checked by planting a
/// release that never wakes: this model fails so.) Whatever the order, the consumer ends
/// registered, and connected and disconnected only if it came first.
#[test]
fn take_wakes_a_parked_waiter() {
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
            .unwrap();
        leaver.join().unwrap();
        let events = log.take();
        let (connects, disconnects) =
            check_token_history(1, &events).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(connects, disconnects, "the producer left: {events:?}");
        assert_eq!(p.late_calls(), 0);
        assert!(registry.producer(token()).is_none() && registry.consumer(token()).is_some());
        assert_eq!(registry.population(), population(0, 1));
        assert_eq!(StdArc::strong_count(&p), 1);
    });
}

/// Three threads on one token: its only producer leaves (emptying the node, then reclaiming
/// it) while a consumer and a new producer arrive. Whatever the order, both newcomers end
/// registered and paired, the token's history is whole connects and disconnects that
/// alternate, and the old producer is never called after its unregister returned.
#[test]
fn removal_races_two_registers() {
    // Three threads: at two preemptions this model exceeds loom's bound on the branches of one
    // execution (an open question: no failing interleaving was found, but none was ruled
    // out either); at one it explores completely.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(1);
    builder.check(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let old = probe(Side::Producer, &log);
        registry.register_producer(token(), old.clone()).unwrap();
        let leaver = {
            let (registry, old) = (registry.clone(), old.clone());
            thread::spawn(move || {
                drop(registry.unregister_producer(token()).unwrap());
                old.retire();
                registry.reclaim_empty();
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
        // It tries twice in the race (a loop until the old one leaves would be a spin loop
        // to loom), then once more after the leaver is done, when it must get in.
        let mut leaver = Some(leaver);
        let mut tries = 0;
        while let Err(refused) = registry.register_producer(token(), probe(Side::Producer, &log)) {
            assert_eq!(refused.kind(), ErrorKind::Duplicate);
            tries += 1;
            match tries {
                1 => thread::yield_now(),
                2 => leaver.take().unwrap().join().unwrap(),
                _ => panic!("refused after the old producer left"),
            }
        }
        if let Some(leaver) = leaver {
            leaver.join().unwrap();
        }
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

/// Two adjacent nodes of one list are emptied and reclaimed at once, the Harris–Michael case
/// where one removal's unlink can undo the other's unless the marks are respected: both end up
/// gone, and the tokens work again.
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
            thread::spawn(move || {
                drop(registry.unregister_producer(token()).unwrap());
                registry.reclaim_empty();
            })
        };
        drop(registry.unregister_producer(other).unwrap());
        registry.reclaim_empty();
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

/// A producer whose `add_consumer` fails and a consumer of one fresh token register at once:
/// whichever comes second runs the failed connect and is refused; the other stays registered,
/// unpaired. The connect runs once, rolled back, with both `start`s.
#[test]
fn failed_connect_races_register() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let producer = {
            let (registry, log) = (registry.clone(), log.clone());
            thread::spawn(move || {
                let p = StdArc::new(Probe::producer(1, &log).failing_add());
                registry.register_producer(token(), p).map_err(|e| e.kind())
            })
        };
        let consumer = registry
            .register_consumer(token(), probe(Side::Consumer, &log))
            .map_err(|e| e.kind());
        let producer = producer.join().unwrap();
        let refused = [producer, consumer]
            .iter()
            .filter(|r| **r == Err(ErrorKind::ConnectFailed))
            .count();
        assert_eq!(refused, 1, "producer {producer:?}, consumer {consumer:?}");
        let lines: Vec<String> = log.take().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "producer 1 stop",
                "consumer 1 stop",
                "producer 1 add_consumer",
                "consumer 1 start",
                "producer 1 start"
            ]
        );
        assert!(!registry.is_paired(token()));
        let now = registry.population();
        assert_eq!(now.producers + now.consumers, 1);
        assert_eq!(registry.producer(token()).is_some(), producer.is_ok());
    });
}

/// Silences the panics the probes are told to throw; any other panic is reported as usual.
fn quiet_probe_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planted = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("probe "));
        if !planted {
            default(info);
        }
    }));
}

/// A consumer whose `add_producer` panics registers while a producer of the same fresh token
/// does: the connect fails by the panic, which reaches whichever register ran it; the other
/// participant stays registered, unpaired, and the token still works (its lock is free).
#[test]
fn panic_in_connect_races_register() {
    quiet_probe_panics();
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let consumer = {
            let (registry, log) = (registry.clone(), log.clone());
            thread::spawn(move || {
                let c = StdArc::new(Probe::consumer(1, &log).panicking_on(Callback::Add));
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    registry.register_consumer(token(), c).is_ok()
                }))
            })
        };
        let producer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            registry
                .register_producer(token(), probe(Side::Producer, &log))
                .is_ok()
        }));
        let consumer = consumer.join().unwrap();
        // One register succeeded alone; the other ran the connect and panicked.
        assert!(
            matches!(
                (&producer, &consumer),
                (Ok(true), Err(_)) | (Err(_), Ok(true))
            ),
            "producer {producer:?}, consumer {consumer:?}"
        );
        assert!(!registry.is_paired(token()));
        let now = registry.population();
        assert_eq!(now.producers + now.consumers, 1);
        // Not stuck: the registered side can leave.
        if producer.is_ok() {
            drop(registry.unregister_producer(token()).unwrap());
        } else {
            drop(registry.unregister_consumer(token()).unwrap());
        }
        assert_eq!(registry.population(), population(0, 0));
    });
}

/// Two producers of one token register at once, with a consumer there: exactly one is
/// registered and connected once; the other is refused as a duplicate, handed back with no
/// reference left in the registry.
#[test]
fn two_registers_of_one_side_race() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        registry
            .register_consumer(token(), probe(Side::Consumer, &log))
            .unwrap();
        let (first, second) = (probe(Side::Producer, &log), probe(Side::Producer, &log));
        let racer = {
            let (registry, first) = (registry.clone(), first.clone());
            thread::spawn(move || registry.register_producer(token(), first).is_ok())
        };
        let refused = match registry.register_producer(token(), second.clone()) {
            Ok(()) => None,
            Err(RegisterError::Duplicate(back)) => Some(back),
            Err(e) => panic!("expected `duplicate`, got `{}`", e.kind()),
        };
        let first_ok = racer.join().unwrap();
        assert_ne!(first_ok, refused.is_none(), "exactly one registers");
        drop(refused);
        let lines: Vec<String> = log.take().iter().map(ToString::to_string).collect();
        let connect: Vec<String> = connect_events(1).iter().map(ToString::to_string).collect();
        assert_eq!(lines, connect, "exactly one connect");
        let loser = if first_ok { &second } else { &first };
        assert_eq!(StdArc::strong_count(loser), 1, "the duplicate was kept");
        assert!(registry.is_paired(token()));
        assert_eq!(registry.population(), population(1, 1));
    });
}

/// A callback unregisters another token whose lock another thread holds: the call only tries
/// that lock (waiting could close a cycle of callbacks), so it gets `reentrant` or goes
/// through; it never waits and never deadlocks, and exactly one of the two unregisters gets
/// the producer unless the callback's was refused.
#[test]
fn reentrant_call_tries_another_tokens_lock() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let two = Token::new(2).unwrap();
        registry
            .register_producer(two, StdArc::new(Probe::producer(2, &log)))
            .unwrap();
        registry
            .register_producer(token(), probe(Side::Producer, &log))
            .unwrap();
        let inner = StdArc::new(std::sync::Mutex::new(None));
        let hook: bypass_registry::probe::Hook = {
            let (registry, inner) = (registry.clone(), inner.clone());
            StdArc::new(move |_: &Probe, callback| {
                if callback == Callback::Add {
                    let outcome = registry
                        .unregister_producer(two)
                        .map(drop)
                        .map_err(|e| e.kind());
                    *inner.lock().unwrap() = Some(outcome);
                }
            })
        };
        let other = {
            let registry = registry.clone();
            thread::spawn(move || {
                registry
                    .unregister_producer(two)
                    .map(drop)
                    .map_err(|e| e.kind())
            })
        };
        let c = StdArc::new(Probe::consumer(1, &log).with_hook(hook));
        registry.register_consumer(token(), c).unwrap();
        let other = other.join().unwrap();
        let inner = inner.lock().unwrap().take().expect("the hook ran");
        match inner {
            Ok(()) => assert_eq!(other, Err(ErrorKind::NotRegistered)),
            Err(ErrorKind::Reentrant | ErrorKind::NotRegistered) => assert_eq!(other, Ok(())),
            Err(kind) => panic!("the callback's unregister got `{kind}`"),
        }
        assert!(registry.producer(two).is_none() && registry.is_paired(token()));
        // Break the cycle registry -> consumer -> hook -> registry.
        drop(registry.unregister_consumer(token()).unwrap());
    });
}

/// Two writers meet a bucket that nobody has initialized: the table has grown from one bucket
/// to two (three nodes in bucket 0), and two fresh tokens of bucket 1 register at once. One
/// writer claims the bucket and inserts its sentinel; the other, finding it claimed, inserts
/// its node from bucket 0's sentinel meanwhile. Both nodes land, once each, in split order:
/// every token is found afterwards, through the new sentinel, and can pair and leave. (Under
/// loom the table's hash has a fixed seed: tokens 1, 6 and 10 hash to bucket 0, 2 and 3 to
/// bucket 1.)
#[test]
fn two_writers_meet_an_uninitialized_bucket() {
    loom::model(|| {
        let registry = Arc::new(LockFree::new());
        let log = EventLog::new();
        let tok = |n| Token::new(n).unwrap();
        let producer = |n, log: &StdArc<EventLog>| StdArc::new(Probe::new(Side::Producer, n, log));
        for n in [1, 6, 10] {
            registry
                .register_producer(tok(n), producer(n, &log))
                .unwrap();
        }
        let other = {
            let (registry, log) = (registry.clone(), log.clone());
            thread::spawn(move || {
                registry
                    .register_producer(tok(3), producer(3, &log))
                    .unwrap();
            })
        };
        registry
            .register_producer(tok(2), producer(2, &log))
            .unwrap();
        other.join().unwrap();
        for n in [1, 2, 3, 6, 10] {
            assert!(registry.producer(tok(n)).is_some(), "token {n} lost");
        }
        assert_eq!(registry.population(), population(5, 0));
        for n in [2, 3] {
            registry
                .register_consumer(tok(n), StdArc::new(Probe::new(Side::Consumer, n, &log)))
                .unwrap();
            assert!(registry.is_paired(tok(n)));
            drop(registry.unregister_producer(tok(n)).unwrap());
            drop(registry.unregister_consumer(tok(n)).unwrap());
        }
        assert_eq!(registry.population(), population(3, 0));
    });
}
