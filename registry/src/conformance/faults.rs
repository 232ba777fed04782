//! Faults: a callback that panics, in each place of the connect and disconnect sequences.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::expected::{
    assert_events, connect_events, disconnect_events, events, rolled_back_events,
};
use super::harness::{Factory, probe, token};
use super::watchdog::{watchdog, within};
use crate::participant::{Callback, Event, Side};
use crate::probe::{EventLog, Probe};

fn expect_panic(what: &str, f: impl FnOnce()) {
    let result = catch_unwind(AssertUnwindSafe(f));
    assert!(
        result.is_err(),
        "{what}: the callback's panic must reach the caller"
    );
}

/// A panic in `stop` fails the connect: both `start`s still run, the new participant is not
/// registered, the panic reaches the caller, and the registry stays usable.
pub fn panic_in_stop_fails_connect(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "panic in stop", move || {
        let log = EventLog::new();
        r.register_consumer(token(1), probe(Side::Consumer, 1, &log))
            .unwrap();
        let bad = Arc::new(Probe::producer(1, &log).panicking_on(Callback::Stop));
        expect_panic("stop panics", || {
            drop(r.register_producer(token(1), bad.clone()))
        });
        use Callback::*;
        let expected: Vec<Event> = events(
            1,
            &[
                (Side::Producer, Stop),
                (Side::Consumer, Stop),
                (Side::Consumer, Start),
                (Side::Producer, Start),
            ],
        );
        assert_events("stop panics", &log.take(), &expected);
        assert!(
            r.producer(token(1)).is_none(),
            "a producer whose stop panicked was registered"
        );
        assert!(r.consumer(token(1)).is_some() && !r.is_paired(token(1)));
        assert_eq!(
            Arc::strong_count(&bad),
            1,
            "the registry kept the panicking producer"
        );
        r.register_producer(token(1), probe(Side::Producer, 1, &log))
            .unwrap();
        assert_events("after the panic", &log.take(), &connect_events(1));
    });
}

/// A panic in `add_producer` fails the connect like an error: the producer's `del_consumer`
/// rolls back, both `start`s run, the consumer is not registered.
pub fn panic_in_add_fails_connect_and_rolls_back(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "panic in add", move || {
        let log = EventLog::new();
        r.register_producer(token(2), probe(Side::Producer, 2, &log))
            .unwrap();
        let bad = Arc::new(Probe::consumer(2, &log).panicking_on(Callback::Add));
        expect_panic("add_producer panics", || {
            drop(r.register_consumer(token(2), bad))
        });
        let expected = rolled_back_events(2);
        assert_events("add panics", &log.take(), &expected);
        assert!(r.consumer(token(2)).is_none() && r.producer(token(2)).is_some());
        r.register_consumer(token(2), probe(Side::Consumer, 2, &log))
            .unwrap();
        assert!(r.is_paired(token(2)));
    });
}

/// A panic in a `start` after both adds succeeded leaves the pair connected; the panic still
/// reaches the caller.
pub fn panic_in_start_keeps_connection(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "panic in start", move || {
        let log = EventLog::new();
        r.register_producer(token(3), probe(Side::Producer, 3, &log))
            .unwrap();
        let c = Arc::new(Probe::consumer(3, &log).panicking_on(Callback::Start));
        expect_panic("start panics", || drop(r.register_consumer(token(3), c)));
        assert_events("start panics", &log.take(), &connect_events(3));
        assert!(
            r.is_paired(token(3)),
            "a connect whose start panicked must stay connected"
        );
        // Its start panics again in the disconnect, which still completes.
        expect_panic("start panics in disconnect", || {
            drop(r.unregister_producer(token(3)))
        });
        assert_events("disconnect after", &log.take(), &disconnect_events(3));
        assert!(r.producer(token(3)).is_none() && r.consumer(token(3)).is_some());
    });
}

/// A panic in a disconnect callback still completes the unregister: every disconnect callback
/// runs, the participant is removed, the panic reaches the caller, the token works afterwards.
pub fn panic_in_disconnect_completes_unregister(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "panic in disconnect", move || {
        let log = EventLog::new();
        let p = Arc::new(Probe::producer(4, &log).panicking_on(Callback::Del));
        r.register_producer(token(4), p.clone()).unwrap();
        r.register_consumer(token(4), probe(Side::Consumer, 4, &log))
            .unwrap();
        log.take();
        expect_panic("del_consumer panics", || {
            drop(r.unregister_consumer(token(4)))
        });
        assert_events(
            "disconnect with a panic",
            &log.take(),
            &disconnect_events(4),
        );
        assert!(
            r.consumer(token(4)).is_none(),
            "the unregister did not complete"
        );
        assert!(r.producer(token(4)).is_some() && !r.is_paired(token(4)));
        r.register_consumer(token(4), probe(Side::Consumer, 4, &log))
            .unwrap();
        assert_events("reconnect", &log.take(), &connect_events(4));
        expect_panic("del_consumer panics again", || {
            drop(r.unregister_producer(token(4)))
        });
        assert!(
            r.producer(token(4)).is_none(),
            "the unregister did not complete"
        );
        assert_eq!(
            Arc::strong_count(&p),
            1,
            "the registry kept the unregistered producer"
        );
    });
}
