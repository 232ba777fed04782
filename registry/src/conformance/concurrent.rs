//! Concurrent cases: registrations, unregistrations and lookups racing over many rounds, their
//! callback histories checked per token.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use super::against_model::{SplitMix, assert_matches_model, random_op};
use super::expected::{
    assert_events, by_token, check_token_history, connect_events, disconnect_events,
};
use super::harness::{Factory, probe, token};
use super::watchdog::{scope, watchdog, within};
use crate::op::Op;
use crate::participant::Side;
use crate::probe::{EventLog, Probe};
use crate::registry::Population;

/// A producer and a consumer of one token registering at the same instant connect exactly once;
/// unregistering both at once disconnects exactly once.
pub fn racing_pair_connects_exactly_once(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "racing pair", move || {
        let log = EventLog::new();
        let barrier = Barrier::new(2);
        for round in 1..=300u64 {
            scope(|s| {
                s.spawn(|| {
                    barrier.wait();
                    r.register_producer(token(round), probe(Side::Producer, round, &log))
                        .expect("racing producer registers");
                });
                barrier.wait();
                r.register_consumer(token(round), probe(Side::Consumer, round, &log))
                    .expect("racing consumer registers");
            });
            assert_events(
                &format!("round {round}: racing registers"),
                &log.take(),
                &connect_events(round),
            );
            assert!(r.is_paired(token(round)));
            scope(|s| {
                s.spawn(|| {
                    barrier.wait();
                    r.unregister_producer(token(round))
                        .expect("producer unregisters");
                });
                barrier.wait();
                r.unregister_consumer(token(round))
                    .expect("consumer unregisters");
            });
            assert_events(
                &format!("round {round}: racing unregisters"),
                &log.take(),
                &disconnect_events(round),
            );
            assert_eq!(r.population(), Population::default());
        }
    });
}

/// Producers and consumers of a few tokens register and unregister in a loop on four threads;
/// every token's history is whole connect/disconnect sequences that alternate.
pub fn register_races_unregister(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "register races unregister", move || {
        let log = EventLog::new();
        let tokens = [1u64, 2, 3];
        scope(|s| {
            for (i, side) in [
                Side::Producer,
                Side::Consumer,
                Side::Producer,
                Side::Consumer,
            ]
            .into_iter()
            .enumerate()
            {
                let (r, log) = (&r, &log);
                // Two threads per side: they also race each other (duplicate, not-registered).
                s.spawn(move || {
                    let mut rng = SplitMix(i as u64);
                    for _ in 0..2_000 {
                        let id = tokens[rng.below(3) as usize];
                        let t = token(id);
                        let _ = match side {
                            Side::Producer => r
                                .register_producer(t, probe(side, id, log))
                                .map_err(|e| e.kind()),
                            Side::Consumer => r
                                .register_consumer(t, probe(side, id, log))
                                .map_err(|e| e.kind()),
                        };
                        let _ = match side {
                            Side::Producer => r.unregister_producer(t).map(drop),
                            Side::Consumer => r.unregister_consumer(t).map(drop),
                        };
                    }
                });
            }
        });
        let events = log.take();
        for (id, history) in by_token(&events) {
            let (connects, disconnects) =
                check_token_history(id, &history).unwrap_or_else(|e| panic!("{e}"));
            let paired = usize::from(r.is_paired(token(id)));
            assert_eq!(
                connects,
                disconnects + paired,
                "token {id}: connects and disconnects do not balance with the final state"
            );
        }
        // Leave nothing behind.
        for id in tokens {
            let _ = r.unregister_producer(token(id));
            let _ = r.unregister_consumer(token(id));
        }
        assert_eq!(r.population(), Population::default());
    });
}

/// Once unregister has returned, the participant is never called again, even while the other
/// side of its token registers and unregisters on another thread.
pub fn no_callback_after_unregister_returns(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "no callback after unregister", move || {
        let log = EventLog::new();
        let retired: Mutex<Vec<Arc<Probe>>> = Mutex::new(Vec::new());
        let barrier = Barrier::new(2);
        scope(|s| {
            for side in [Side::Producer, Side::Consumer] {
                let (r, log, retired, barrier) = (&r, &log, &retired, &barrier);
                s.spawn(move || {
                    for round in 0..2_000 {
                        let p = probe(side, 1, log);
                        // Half the rounds start together, so that the two sides meet and
                        // race their unregisters; the others drift freely.
                        if round % 2 == 0 {
                            barrier.wait();
                        }
                        let registered = match side {
                            Side::Producer => r.register_producer(token(1), p.clone()).is_ok(),
                            Side::Consumer => r.register_consumer(token(1), p.clone()).is_ok(),
                        };
                        if round % 2 == 0 {
                            barrier.wait();
                        }
                        if registered {
                            match side {
                                Side::Producer => drop(r.unregister_producer(token(1)).unwrap()),
                                Side::Consumer => drop(r.unregister_consumer(token(1)).unwrap()),
                            }
                        }
                        p.retire();
                        retired.lock().unwrap().push(p);
                    }
                });
            }
        });
        // A backend that defers callbacks past the return would make them show up later:
        // give them time to, before counting (this waits; it asserts no timing).
        thread::sleep(Duration::from_millis(50));
        let late: usize = retired.lock().unwrap().iter().map(|p| p.late_calls()).sum();
        assert_eq!(
            late, 0,
            "{late} callbacks reached participants after their unregister returned"
        );
        let wrong: usize = retired
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.wrong_partner_calls())
            .sum();
        assert_eq!(
            wrong, 0,
            "{wrong} add/del callbacks named a partner of another token or side"
        );
        check_token_history(1, &log.take()).unwrap_or_else(|e| panic!("{e}"));
    });
}

/// Lookups racing registrations never see a participant of another token or side, and what
/// they return stays usable after it is unregistered.
pub fn lookup_races_unregister(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "lookup races unregister", move || {
        let log = EventLog::new();
        let done = std::sync::atomic::AtomicBool::new(false);
        scope(|s| {
            let reader = s.spawn(|| {
                let mut seen = 0u64;
                while !done.load(Ordering::Relaxed) {
                    for id in 1..=4u64 {
                        if let Some(p) = r.producer(token(id)) {
                            let p = (p as Arc<dyn Any + Send + Sync>)
                                .downcast::<Probe>()
                                .unwrap();
                            assert_eq!(
                                (p.side(), p.token()),
                                (Side::Producer, id),
                                "producer(t) returned another participant"
                            );
                            seen += 1;
                        }
                        if let Some(c) = r.consumer(token(id)) {
                            let c = (c as Arc<dyn Any + Send + Sync>)
                                .downcast::<Probe>()
                                .unwrap();
                            assert_eq!(
                                (c.side(), c.token()),
                                (Side::Consumer, id),
                                "consumer(t) returned another participant"
                            );
                        }
                        let _ = r.is_paired(token(id));
                    }
                }
                seen
            });
            for round in 0..2_000u64 {
                let id = 1 + round % 4;
                r.register_producer(token(id), probe(Side::Producer, id, &log))
                    .unwrap();
                r.register_consumer(token(id), probe(Side::Consumer, id, &log))
                    .unwrap();
                r.unregister_producer(token(id)).unwrap();
                r.unregister_consumer(token(id)).unwrap();
            }
            done.store(true, Ordering::Relaxed);
            reader.join().expect("the reader saw a wrong participant");
        });
        assert_eq!(r.population(), Population::default());
    });
}

/// Threads working on disjoint tokens each see exactly what the model predicts for their own
/// operations, whatever the others do at the same time.
pub fn distinct_tokens_in_parallel_match_model(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "distinct tokens in parallel", move || {
        scope(|s| {
            for t in 0..4u64 {
                let r = &r;
                s.spawn(move || {
                    let mut rng = SplitMix(100 + t);
                    let tokens: Vec<u64> = (0..8).map(|k| 1 + t * 100 + k).collect();
                    let ops: Vec<Op> = (0..1_500).map(|_| random_op(&mut rng, &tokens)).collect();
                    assert_matches_model(&**r, &ops);
                });
            }
        });
    });
}

/// Sixty-four threads make every kind of call on four tokens at once: both sides' register and
/// unregister, `is_paired`, `producer`, `consumer` and `population`, so that each token goes
/// through every state (empty, producer only, consumer only, paired) while reads are in flight.
/// Every token's callbacks are whole connect and disconnect sequences that alternate and
/// balance with the final state; a lookup returns only a participant of its token and side;
/// `population` never counts more of a side than the four tokens can hold plus the registers
/// and unregisters in flight during the read (its contract: between the counts before and
/// after the calls in flight; a backend may count a participant a little before or after the
/// instant it is seen); the registry ends empty.
pub fn hot_tokens_take_every_call(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "hot tokens", move || {
        let log = EventLog::new();
        const TOKENS: u64 = 4;
        // Registers and unregisters started and finished so far: those in flight during a
        // read of the population were started before it ended and not finished before it began.
        let (started, finished) = (AtomicU64::new(0), AtomicU64::new(0));
        scope(|s| {
            for thread in 0..64u64 {
                let (r, log, started, finished) = (&r, &log, &started, &finished);
                s.spawn(move || {
                    let mut rng = SplitMix(1_000 + thread);
                    for _ in 0..300 {
                        let id = 1 + rng.below(TOKENS);
                        let t = token(id);
                        let side = if rng.below(2) == 0 {
                            Side::Producer
                        } else {
                            Side::Consumer
                        };
                        let op = rng.below(8);
                        if op < 4 {
                            started.fetch_add(1, Ordering::SeqCst);
                        }
                        match op {
                            0 | 1 => {
                                let _ = match side {
                                    Side::Producer => r
                                        .register_producer(t, probe(side, id, log))
                                        .map_err(|e| e.kind()),
                                    Side::Consumer => r
                                        .register_consumer(t, probe(side, id, log))
                                        .map_err(|e| e.kind()),
                                };
                            }
                            2 | 3 => {
                                let _ = match side {
                                    Side::Producer => r.unregister_producer(t).map(drop),
                                    Side::Consumer => r.unregister_consumer(t).map(drop),
                                };
                            }
                            4 => {
                                let _ = r.is_paired(t);
                            }
                            5 | 6 => {
                                let found = match side {
                                    Side::Producer => {
                                        r.producer(t).map(|p| p as Arc<dyn Any + Send + Sync>)
                                    }
                                    Side::Consumer => {
                                        r.consumer(t).map(|c| c as Arc<dyn Any + Send + Sync>)
                                    }
                                };
                                if let Some(found) = found {
                                    let p = found.downcast::<Probe>().expect("a probe of the kit");
                                    assert_eq!(
                                        (p.side(), p.token()),
                                        (side, id),
                                        "{side}({id}) returned another participant"
                                    );
                                }
                            }
                            _ => {
                                let done_before = finished.load(Ordering::SeqCst);
                                let n = r.population();
                                let in_flight = started.load(Ordering::SeqCst) - done_before;
                                let most = TOKENS + in_flight;
                                assert!(
                                    n.producers as u64 <= most && n.consumers as u64 <= most,
                                    "population {n:?} counts more of a side than {TOKENS} tokens \
                                     hold with {in_flight} registers and unregisters in flight"
                                );
                            }
                        }
                        if op < 4 {
                            finished.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        let events = log.take();
        let mut registered = Population::default();
        let histories = by_token(&events);
        for id in 1..=TOKENS {
            let history = histories.get(&id).map_or(&[][..], Vec::as_slice);
            let (connects, disconnects) =
                check_token_history(id, history).unwrap_or_else(|e| panic!("{e}"));
            let (p, c) = (r.producer(token(id)), r.consumer(token(id)));
            registered.producers += usize::from(p.is_some());
            registered.consumers += usize::from(c.is_some());
            assert_eq!(
                r.is_paired(token(id)),
                p.is_some() && c.is_some(),
                "token {id}: at rest, is_paired disagrees with the registered sides"
            );
            assert_eq!(
                connects,
                disconnects + usize::from(r.is_paired(token(id))),
                "token {id}: connects and disconnects do not balance with the final state"
            );
        }
        assert_eq!(r.population(), registered, "population at rest");
        for id in 1..=TOKENS {
            let _ = r.unregister_producer(token(id));
            let _ = r.unregister_consumer(token(id));
        }
        assert_eq!(r.population(), Population::default());
    });
}
