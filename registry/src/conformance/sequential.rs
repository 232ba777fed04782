//! Sequential cases: one line of the contract each, with exact callback sequences; and whole
//! traces against the model.

use std::any::Any;
use std::sync::Arc;

use super::against_model::{SplitMix, assert_matches_model, random_op};
use super::expected::{
    assert_events, connect_events, disconnect_events, events, rolled_back_events,
};
use super::harness::{Factory, probe, token};
use crate::error::{ErrorKind, RegisterError, UnregisterError};
use crate::op::{Op, Outcome};
use crate::participant::{Callback, Event, Side};
use crate::probe::{self, EventLog, Probe};
use crate::registry::Population;
use crate::token::Token;
use crate::trace;

fn assert_refused_untouched<T>(what: &str, result: Result<(), RegisterError<T>>) -> T {
    match result {
        Err(RegisterError::Duplicate(p)) => p,
        Err(e) => panic!("{what}: expected `duplicate`, got `{}`", e.kind()),
        Ok(()) => panic!("{what}: expected `duplicate`, the registration succeeded"),
    }
}

/// A participant alone under its token is registered, unpaired, and no callback runs.
pub fn register_alone_runs_no_callback(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_producer(token(1), probe(Side::Producer, 1, &log))
        .expect("register a lone producer");
    r.register_consumer(token(2), probe(Side::Consumer, 2, &log))
        .expect("register a lone consumer");
    assert_events("lone registrations", &log.take(), &[]);
    assert!(!r.is_paired(token(1)) && !r.is_paired(token(2)));
    assert!(r.producer(token(1)).is_some() && r.consumer(token(1)).is_none());
    assert!(r.consumer(token(2)).is_some() && r.producer(token(2)).is_none());
    assert_eq!(
        r.population(),
        Population {
            producers: 1,
            consumers: 1
        }
    );
}

/// Producer then consumer: `p.stop, c.stop, p.add_consumer, c.add_producer, c.start, p.start`.
pub fn connect_order_producer_first(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_producer(token(7), probe(Side::Producer, 7, &log))
        .unwrap();
    r.register_consumer(token(7), probe(Side::Consumer, 7, &log))
        .unwrap();
    assert_events("producer first", &log.take(), &connect_events(7));
    assert!(r.is_paired(token(7)));
}

/// Consumer then producer: the same order, the producer's callback first in each stop pair.
pub fn connect_order_consumer_first(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_consumer(token(7), probe(Side::Consumer, 7, &log))
        .unwrap();
    r.register_producer(token(7), probe(Side::Producer, 7, &log))
        .unwrap();
    assert_events("consumer first", &log.take(), &connect_events(7));
    assert!(r.is_paired(token(7)));
}

/// A second participant on a taken side is refused with `duplicate`, handed back, and the
/// registered one is untouched; no callback runs, paired or not.
pub fn duplicate_is_refused_and_untouched(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    let first_p = probe(Side::Producer, 3, &log);
    r.register_producer(token(3), first_p.clone()).unwrap();
    let second_p = probe(Side::Producer, 3, &log);
    let back = assert_refused_untouched(
        "second producer",
        r.register_producer(token(3), second_p.clone()),
    );
    assert!(Arc::ptr_eq(
        &(back as Arc<dyn Any + Send + Sync>)
            .downcast::<Probe>()
            .unwrap(),
        &second_p
    ));
    let kept = r
        .producer(token(3))
        .expect("first producer still registered");
    assert!(
        Arc::ptr_eq(
            &(kept as Arc<dyn Any + Send + Sync>)
                .downcast::<Probe>()
                .unwrap(),
            &first_p
        ),
        "the registered producer was replaced"
    );
    r.register_consumer(token(3), probe(Side::Consumer, 3, &log))
        .unwrap();
    log.take();
    assert_refused_untouched(
        "producer while paired",
        r.register_producer(token(3), probe(Side::Producer, 3, &log)),
    );
    assert_refused_untouched(
        "consumer while paired",
        r.register_consumer(token(3), probe(Side::Consumer, 3, &log)),
    );
    assert_events("duplicates", &log.take(), &[]);
    assert!(r.is_paired(token(3)));
}

/// A zero token is refused with `invalid-token` and no callback runs.
pub fn zero_token_is_invalid(make: Factory<'_>) {
    assert_eq!(
        Token::new(0).map_err(|e| e.kind()),
        Err(ErrorKind::InvalidToken)
    );
    let r = make();
    let log = EventLog::new();
    for op in [
        Op::Register {
            side: Side::Producer,
            token: 0,
            fail_add: false,
        },
        Op::Register {
            side: Side::Consumer,
            token: 0,
            fail_add: false,
        },
        Op::Unregister {
            side: Side::Producer,
            token: 0,
        },
    ] {
        let outcome = probe::apply(&*r, &log, &op);
        assert_eq!(outcome, Outcome::Err(ErrorKind::InvalidToken), "{op}");
    }
    assert_events("zero token", &log.take(), &[]);
    assert_eq!(r.population(), Population::default());
}

/// A producer whose `add_consumer` fails: no `add_producer`, both `start`s run, the producer is
/// handed back in `connect-failed` with the callback's error, the consumer stays unpaired.
pub fn producer_add_failure_fails_connect(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_consumer(token(5), probe(Side::Consumer, 5, &log))
        .unwrap();
    let p = Arc::new(Probe::producer(5, &log).failing_add());
    match r.register_producer(token(5), p.clone()) {
        Err(RegisterError::ConnectFailed { participant, error }) => {
            let back = (participant as Arc<dyn Any + Send + Sync>)
                .downcast::<Probe>()
                .unwrap();
            assert!(
                Arc::ptr_eq(&back, &p),
                "connect-failed must hand back the producer"
            );
            assert!(
                error.to_string().contains("refuses"),
                "the callback's error is carried: {error}"
            );
        }
        other => panic!(
            "expected connect-failed, got {:?}",
            other.map_err(|e| e.kind())
        ),
    }
    use Callback::*;
    let expected: Vec<Event> = events(
        5,
        &[
            (Side::Producer, Stop),
            (Side::Consumer, Stop),
            (Side::Producer, Add),
            (Side::Consumer, Start),
            (Side::Producer, Start),
        ],
    );
    assert_events("producer add fails", &log.take(), &expected);
    assert!(
        r.producer(token(5)).is_none(),
        "a failed producer must not be registered"
    );
    assert!(r.consumer(token(5)).is_some() && !r.is_paired(token(5)));
}

/// A consumer whose `add_producer` fails: the producer's `del_consumer` rolls back, both
/// `start`s run, the consumer is not registered, the producer stays unpaired.
pub fn consumer_add_failure_rolls_back(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_producer(token(5), probe(Side::Producer, 5, &log))
        .unwrap();
    let c = Arc::new(Probe::consumer(5, &log).failing_add());
    let err = r.register_consumer(token(5), c).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectFailed);
    let expected = rolled_back_events(5);
    assert_events("consumer add fails", &log.take(), &expected);
    assert!(
        r.consumer(token(5)).is_none(),
        "a failed consumer must not be registered"
    );
    assert!(r.producer(token(5)).is_some() && !r.is_paired(token(5)));
}

/// After a failed connect the token works as before: a good participant connects.
pub fn failed_connect_can_be_retried(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_producer(token(9), probe(Side::Producer, 9, &log))
        .unwrap();
    for _ in 0..3 {
        let bad = Arc::new(Probe::consumer(9, &log).failing_add());
        assert_eq!(
            r.register_consumer(token(9), bad).unwrap_err().kind(),
            ErrorKind::ConnectFailed
        );
    }
    log.take();
    r.register_consumer(token(9), probe(Side::Consumer, 9, &log))
        .unwrap();
    assert_events("retry after failures", &log.take(), &connect_events(9));
    assert!(r.is_paired(token(9)));
}

/// Unregistering either side of a pair runs the disconnect sequence, in the same order.
pub fn unregister_paired_disconnects_in_order(make: Factory<'_>) {
    for side in [Side::Producer, Side::Consumer] {
        let r = make();
        let log = EventLog::new();
        r.register_producer(token(4), probe(Side::Producer, 4, &log))
            .unwrap();
        r.register_consumer(token(4), probe(Side::Consumer, 4, &log))
            .unwrap();
        log.take();
        match side {
            Side::Producer => drop(r.unregister_producer(token(4)).unwrap()),
            Side::Consumer => drop(r.unregister_consumer(token(4)).unwrap()),
        }
        assert_events(
            &format!("unregister the {side}"),
            &log.take(),
            &disconnect_events(4),
        );
        assert!(!r.is_paired(token(4)));
        let other = match side.other() {
            Side::Producer => r.producer(token(4)).is_some(),
            Side::Consumer => r.consumer(token(4)).is_some(),
        };
        assert!(other, "the {} must stay registered", side.other());
    }
}

/// Unregistering an unpaired participant runs no callback.
pub fn unregister_unpaired_runs_no_callback(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    r.register_producer(token(6), probe(Side::Producer, 6, &log))
        .unwrap();
    r.register_consumer(token(8), probe(Side::Consumer, 8, &log))
        .unwrap();
    r.unregister_producer(token(6)).unwrap();
    r.unregister_consumer(token(8)).unwrap();
    assert_events("unpaired unregisters", &log.take(), &[]);
    assert_eq!(r.population(), Population::default());
}

/// Unregistering an empty side fails with `not-registered` and runs no callback, also right
/// after that side was unregistered and while the other side is registered.
pub fn unregister_empty_side_is_not_registered(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    assert_eq!(
        r.unregister_producer(token(2)).err(),
        Some(UnregisterError::NotRegistered)
    );
    assert_eq!(
        r.unregister_consumer(token(2)).err(),
        Some(UnregisterError::NotRegistered)
    );
    r.register_producer(token(2), probe(Side::Producer, 2, &log))
        .unwrap();
    assert_eq!(
        r.unregister_consumer(token(2)).err(),
        Some(UnregisterError::NotRegistered)
    );
    r.unregister_producer(token(2)).unwrap();
    assert_eq!(
        r.unregister_producer(token(2)).err(),
        Some(UnregisterError::NotRegistered)
    );
    assert_events("not-registered", &log.take(), &[]);
}

/// Unregister hands back the very participant, and the registry keeps no reference to it.
pub fn unregister_hands_back_the_only_reference(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    let p = probe(Side::Producer, 11, &log);
    let c = probe(Side::Consumer, 11, &log);
    r.register_producer(token(11), p.clone()).unwrap();
    r.register_consumer(token(11), c.clone()).unwrap();
    let back_p = r.unregister_producer(token(11)).unwrap();
    let back_p = (back_p as Arc<dyn Any + Send + Sync>)
        .downcast::<Probe>()
        .unwrap();
    assert!(
        Arc::ptr_eq(&back_p, &p),
        "unregister_producer returned another producer"
    );
    drop(back_p);
    assert_eq!(
        Arc::strong_count(&p),
        1,
        "the registry still holds the unregistered producer"
    );
    let back_c = r.unregister_consumer(token(11)).unwrap();
    drop(back_c);
    assert_eq!(
        Arc::strong_count(&c),
        1,
        "the registry still holds the unregistered consumer"
    );
    // Refused registrations are not kept either.
    let dup = probe(Side::Producer, 12, &log);
    r.register_producer(token(12), probe(Side::Producer, 12, &log))
        .unwrap();
    drop(r.register_producer(token(12), dup.clone()).unwrap_err());
    assert_eq!(
        Arc::strong_count(&dup),
        1,
        "the registry kept a refused duplicate"
    );
}

/// `producer`, `consumer`, `is_paired` and `population` report what is registered.
pub fn lookups_follow_the_state(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    let t = token(21);
    assert!(r.producer(t).is_none() && r.consumer(t).is_none() && !r.is_paired(t));
    r.register_consumer(t, probe(Side::Consumer, 21, &log))
        .unwrap();
    assert!(r.consumer(t).is_some() && !r.is_paired(t));
    r.register_producer(t, probe(Side::Producer, 21, &log))
        .unwrap();
    assert!(r.is_paired(t));
    let p = r.producer(t).expect("producer registered");
    let p = (p as Arc<dyn Any + Send + Sync>)
        .downcast::<Probe>()
        .unwrap();
    assert_eq!((p.side(), p.token()), (Side::Producer, 21));
    assert_eq!(
        r.population(),
        Population {
            producers: 1,
            consumers: 1
        }
    );
    r.unregister_consumer(t).unwrap();
    assert!(!r.is_paired(t) && r.consumer(t).is_none() && r.producer(t).is_some());
    assert_eq!(
        r.population(),
        Population {
            producers: 1,
            consumers: 0
        }
    );
}

/// A trace with every case of the contract, including `fail-add` on either side and a zero
/// token. Its model output is checked line by line against the contract in this crate's tests.
pub const PROTOCOL_TRACE: &str = "\
# every case of the contract, in order
register producer 0               # zero token: invalid-token
unregister consumer 0
register producer 1               # alone: no callback
register producer 1               # duplicate
unregister consumer 1             # not-registered
register consumer 1               # connect, producer first
register consumer 1               # duplicate while paired
register producer 1               # duplicate while paired
unregister producer 1             # disconnect
unregister producer 1             # not-registered
register producer 1               # connect, consumer first
unregister consumer 1             # disconnect from the consumer's side
unregister producer 1             # unpaired: no callback
register consumer 2
register producer 2 fail-add      # producer's add fails: no add_producer, starts run
register producer 2               # retry connects
unregister producer 2
register producer 2
register producer 3
register consumer 3 fail-add      # consumer's add fails: rollback del_consumer
register consumer 3
register consumer 4 fail-add      # fail-add on a lone participant does nothing
register producer 4               # ... until it is asked to connect
register producer 5 fail-add
register consumer 5 fail-add      # both fail: only the producer's add runs
unregister consumer 3
unregister consumer 2
unregister producer 2
unregister producer 3
unregister consumer 4
unregister producer 5
";

/// The [`PROTOCOL_TRACE`] gives the same callbacks and outcomes as the model.
pub fn protocol_trace_matches_model(make: Factory<'_>) {
    let ops = trace::parse(PROTOCOL_TRACE).expect("the protocol trace parses");
    assert_matches_model(&*make(), &ops);
}

/// Random operation sequences with `fail-add` participants give the model's callbacks and
/// outcomes at every step.
pub fn random_sequences_match_model(make: Factory<'_>) {
    for seed in 0..20 {
        let mut rng = SplitMix(seed);
        let tokens: Vec<u64> = (0..6).collect();
        let ops: Vec<Op> = (0..200).map(|_| random_op(&mut rng, &tokens)).collect();
        assert_matches_model(&*make(), &ops);
    }
}
