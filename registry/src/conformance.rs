//! The conformance kit: the whole contract, run against any backend.
//!
//! Each case is a public function taking a factory of fresh registries; [`CASES`] lists them
//! and [`run_all`] runs them all. In a backend's test suite, [`conformance_tests!`] makes one
//! `#[test]` per case, so a failure names the broken guarantee:
//!
//! ```ignore
//! bypass_registry::conformance_tests!(my_backend::MyRegistry::new());
//! ```
//!
//! The sequential cases check each line of the contract with [`Probe`] participants and exact
//! callback traces; the concurrent ones race registrations, unregistrations and lookups over
//! many rounds, and check the traces with [`check_token_history`]. Cases that could deadlock on
//! a broken backend run under a watchdog and fail instead of hanging.
//!
//! [`conformance_tests!`]: crate::conformance_tests

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use crate::error::{ErrorKind, RegisterError, UnregisterError};
use crate::model::Behaviour;
use crate::participant::{Callback, Event, Side};
use crate::probe::{EventLog, Probe};
use crate::registry::{Population, Registry};
use crate::token::Token;
use crate::trace::{self, Op};

/// Makes a fresh, empty registry of the backend under test.
pub type Factory<'a> = &'a (dyn Fn() -> Arc<dyn Registry> + Sync);

/// One case of the kit.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The function's name, which says what it checks.
    pub name: &'static str,
    /// Runs the case; panics with a diagnostic if the backend breaks the contract.
    pub run: fn(Factory<'_>),
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the kit, in the order [`run_all`] runs them.
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), run: $name }),*];
    };
}

cases!(
    register_alone_runs_no_callback,
    connect_order_producer_first,
    connect_order_consumer_first,
    duplicate_is_refused_and_untouched,
    zero_token_is_invalid,
    producer_add_failure_fails_connect,
    consumer_add_failure_rolls_back,
    failed_connect_can_be_retried,
    unregister_paired_disconnects_in_order,
    unregister_unpaired_runs_no_callback,
    unregister_empty_side_is_not_registered,
    unregister_hands_back_the_only_reference,
    lookups_follow_the_state,
    protocol_trace_matches_model,
    random_sequences_match_model,
    racing_pair_connects_exactly_once,
    register_races_unregister,
    no_callback_after_unregister_returns,
    lookup_races_unregister,
    distinct_tokens_in_parallel_match_model,
    panic_in_stop_fails_connect,
    panic_in_add_fails_connect_and_rolls_back,
    panic_in_start_keeps_connection,
    panic_in_disconnect_completes_unregister,
    reentrant_call_for_same_token_is_refused,
    reentrant_call_for_other_token_never_deadlocks,
);

/// Runs every case of the kit on registries made by `make`, panicking at the first failure
/// with the case's name.
pub fn run_all<R: Registry + 'static>(make: impl Fn() -> R + Sync) {
    let factory = move || Arc::new(make()) as Arc<dyn Registry>;
    for case in CASES {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (case.run)(&factory))) {
            panic!(
                "conformance case `{}` failed: {}",
                case.name,
                panic_message(&*panic)
            );
        }
    }
}

/// Makes one `#[test]` per conformance case for the backend built by `$make`, plus a test that
/// the list here is the kit's whole list.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            register_alone_runs_no_callback,
            connect_order_producer_first,
            connect_order_consumer_first,
            duplicate_is_refused_and_untouched,
            zero_token_is_invalid,
            producer_add_failure_fails_connect,
            consumer_add_failure_rolls_back,
            failed_connect_can_be_retried,
            unregister_paired_disconnects_in_order,
            unregister_unpaired_runs_no_callback,
            unregister_empty_side_is_not_registered,
            unregister_hands_back_the_only_reference,
            lookups_follow_the_state,
            protocol_trace_matches_model,
            random_sequences_match_model,
            racing_pair_connects_exactly_once,
            register_races_unregister,
            no_callback_after_unregister_returns,
            lookup_races_unregister,
            distinct_tokens_in_parallel_match_model,
            panic_in_stop_fails_connect,
            panic_in_add_fails_connect_and_rolls_back,
            panic_in_start_keeps_connection,
            panic_in_disconnect_completes_unregister,
            reentrant_call_for_same_token_is_refused,
            reentrant_call_for_other_token_never_deadlocks,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&|| {
                    ::std::sync::Arc::new($make) as ::std::sync::Arc<dyn $crate::Registry>
                });
            }
        )*

        #[test]
        fn conformance_list_is_complete() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            let kit: ::std::vec::Vec<&str> =
                $crate::conformance::CASES.iter().map(|case| case.name).collect();
            assert_eq!(listed, kit.as_slice(), "conformance_tests! must list every case");
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn token(id: u64) -> Token {
    Token::new(id).expect("test tokens are non-zero")
}

fn probe(side: Side, id: u64, log: &Arc<EventLog>) -> Arc<Probe> {
    Arc::new(Probe::new(side, id, log))
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn lines(events: &[Event]) -> Vec<String> {
    events.iter().map(Event::to_string).collect()
}

/// The callbacks `calls` (side, callback) of `token`, as events.
pub fn events(token: u64, calls: &[(Side, Callback)]) -> Vec<Event> {
    calls
        .iter()
        .map(|&(side, callback)| Event {
            side,
            token,
            callback,
        })
        .collect()
}

/// The six callbacks of a successful connect of `token`.
pub fn connect_events(token: u64) -> Vec<Event> {
    use Callback::*;
    use Side::*;
    events(
        token,
        &[
            (Producer, Stop),
            (Consumer, Stop),
            (Producer, Add),
            (Consumer, Add),
            (Consumer, Start),
            (Producer, Start),
        ],
    )
}

/// The seven callbacks of a connect of `token` that the consumer refused: the producer's
/// `del_consumer` rolls back its add, and both `start`s still run.
pub fn rolled_back_events(token: u64) -> Vec<Event> {
    use Callback::*;
    use Side::*;
    events(
        token,
        &[
            (Producer, Stop),
            (Consumer, Stop),
            (Producer, Add),
            (Consumer, Add),
            (Producer, Del),
            (Consumer, Start),
            (Producer, Start),
        ],
    )
}

/// The six callbacks of a disconnect of `token`.
pub fn disconnect_events(token: u64) -> Vec<Event> {
    use Callback::*;
    use Side::*;
    events(
        token,
        &[
            (Producer, Stop),
            (Consumer, Stop),
            (Consumer, Del),
            (Producer, Del),
            (Consumer, Start),
            (Producer, Start),
        ],
    )
}

fn assert_events(what: &str, seen: &[Event], expected: &[Event]) {
    assert_eq!(
        lines(seen),
        lines(expected),
        "{what}: the callbacks that ran (left) differ from the contract (right)"
    );
}

fn assert_refused_untouched<T>(what: &str, result: Result<(), RegisterError<T>>) -> T {
    match result {
        Err(RegisterError::Duplicate(p)) => p,
        Err(e) => panic!("{what}: expected `duplicate`, got `{}`", e.kind()),
        Ok(()) => panic!("{what}: expected `duplicate`, the registration succeeded"),
    }
}

/// Runs `f` on its own thread and fails if it does not finish within `limit`: a deadlocked
/// backend fails the case instead of hanging the test run.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("conformance: {what}"))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("spawn a conformance thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            value
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: no progress after {limit:?}: deadlock suspected"),
    }
}

/// How long a watched case may go without finishing before it is declared deadlocked, in
/// milliseconds. Generous by default: a loaded 2-core CI machine runs many tests at once.
static WATCHDOG_MS: AtomicU64 = AtomicU64::new(60_000);

/// Sets the watchdog limit for the cases that run under it (all whose backend could deadlock),
/// for this whole process. Lower it in a suite that expects deadlocks, so they fail fast.
pub fn set_watchdog(limit: Duration) {
    WATCHDOG_MS.store(
        limit.as_millis().try_into().unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

fn watchdog() -> Duration {
    Duration::from_millis(WATCHDOG_MS.load(Ordering::Relaxed))
}

/// Checks one token's callback history from concurrent runs where no callback fails or
/// panics: whole connect and disconnect sequences, never interleaved, alternating and starting
/// with a connect. Returns how many connects and disconnects it saw.
pub fn check_token_history(token: u64, events: &[Event]) -> Result<(usize, usize), String> {
    let connect = connect_events(token);
    let disconnect = disconnect_events(token);
    let mut connected = false;
    let (mut connects, mut disconnects) = (0, 0);
    for (index, block) in events.chunks(6).enumerate() {
        let expected = if connected { &disconnect } else { &connect };
        if block != expected.as_slice() {
            return Err(format!(
                "token {token}: callbacks {}..{} are {:?}, expected the {} sequence {:?}",
                index * 6,
                index * 6 + block.len(),
                lines(block),
                if connected { "disconnect" } else { "connect" },
                lines(expected)
            ));
        }
        if connected {
            disconnects += 1;
        } else {
            connects += 1;
        }
        connected = !connected;
    }
    Ok((connects, disconnects))
}

fn by_token(events: &[Event]) -> BTreeMap<u64, Vec<Event>> {
    let mut map: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    for event in events {
        map.entry(event.token).or_default().push(*event);
    }
    map
}

/// A small deterministic generator, so that a failing case replays the same way.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random operation on one of `tokens` (given as their ids), with `fail-add` now and then.
fn random_op(rng: &mut SplitMix, tokens: &[u64]) -> Op {
    let token = tokens[rng.below(tokens.len() as u64) as usize];
    let side = if rng.below(2) == 0 {
        Side::Producer
    } else {
        Side::Consumer
    };
    if rng.below(2) == 0 {
        Op::Register {
            side,
            token,
            fail_add: rng.below(6) == 0,
        }
    } else {
        Op::Unregister { side, token }
    }
}

/// Runs `ops` on `registry` and the model, each registering participant behaving as given
/// (failing its add, panicking in a callback), failing at the first step where the callbacks or
/// the outcome differ. Panics that reach the caller are caught and compared as outcomes.
pub fn assert_faults_match_model(registry: &dyn Registry, ops: &[(Op, Behaviour)]) {
    let log = EventLog::new();
    let mut model = crate::model::Model::new();
    for (i, &(op, behaviour)) in ops.iter().enumerate() {
        let outcome = trace::apply_with(registry, &log, &op, behaviour);
        let got = trace::Step {
            op,
            events: log.take(),
            outcome,
        };
        let want = model.apply_with(&op, behaviour);
        assert!(
            got == want,
            "{}: step {} ({behaviour:?}) differs from the model.\nbackend:\n{got}model:\n{want}",
            registry.name(),
            i + 1,
        );
    }
}

/// Replays `ops` on `registry` and the model, failing at the first step where they differ.
pub fn assert_matches_model(registry: &dyn Registry, ops: &[Op]) {
    let got = trace::replay(registry, ops);
    let want = trace::replay_model(ops);
    if let Some(i) = trace::first_difference(&got, &want) {
        panic!(
            "{}: step {} differs from the model.\nbackend:\n{}model:\n{}",
            registry.name(),
            i + 1,
            got.get(i).map_or("(missing)\n".into(), ToString::to_string),
            want.get(i)
                .map_or("(missing)\n".into(), ToString::to_string),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sequential cases: one line of the contract each.

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
        let outcome = trace::apply(&*r, &log, &op);
        assert_eq!(
            outcome,
            trace::Outcome::Err(ErrorKind::InvalidToken),
            "{op}"
        );
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

// ---------------------------------------------------------------------------------------------
// Concurrent cases.

/// A producer and a consumer of one token registering at the same instant connect exactly once;
/// unregistering both at once disconnects exactly once.
pub fn racing_pair_connects_exactly_once(make: Factory<'_>) {
    let r = make();
    within(watchdog(), "racing pair", move || {
        let log = EventLog::new();
        let barrier = Barrier::new(2);
        for round in 1..=300u64 {
            thread::scope(|s| {
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
            thread::scope(|s| {
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
        thread::scope(|s| {
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
        thread::scope(|s| {
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
        thread::scope(|s| {
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
        thread::scope(|s| {
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

// ---------------------------------------------------------------------------------------------
// Faults.

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

/// A callback calling into the registry for its own token gets `reentrant`, never a deadlock,
/// and its read calls return.
pub fn reentrant_call_for_same_token_is_refused(make: Factory<'_>) {
    let r = make();
    let results: Arc<Mutex<Vec<String>>> = Arc::default();
    let weak = Arc::downgrade(&r);
    let seen = results.clone();
    let hook: crate::probe::Hook = Arc::new(move |probe: &Probe, callback| {
        let Some(r) = weak.upgrade() else { return };
        if callback != Callback::Stop || probe.side() != Side::Consumer {
            return;
        }
        let t = token(probe.token());
        let log = EventLog::new();
        let mut out = seen.lock().unwrap();
        out.push(format!(
            "register producer: {:?}",
            r.register_producer(t, probe_arc(Side::Producer, 1, &log))
                .map_err(|e| e.kind())
        ));
        out.push(format!(
            "register consumer: {:?}",
            r.register_consumer(t, probe_arc(Side::Consumer, 1, &log))
                .map_err(|e| e.kind())
        ));
        out.push(format!(
            "unregister producer: {:?}",
            r.unregister_producer(t).map(drop).map_err(|e| e.kind())
        ));
        out.push(format!(
            "unregister consumer: {:?}",
            r.unregister_consumer(t).map(drop).map_err(|e| e.kind())
        ));
        // Reads must return; their value is the backend's to document.
        let _ = (
            r.is_paired(t),
            r.producer(t).is_some(),
            r.consumer(t).is_some(),
            r.population(),
        );
    });
    let r2 = r.clone();
    within(watchdog(), "re-entrant call, same token", move || {
        let log = EventLog::new();
        r2.register_producer(token(1), probe(Side::Producer, 1, &log))
            .unwrap();
        r2.register_consumer(
            token(1),
            Arc::new(Probe::consumer(1, &log).with_hook(hook.clone())),
        )
        .unwrap();
        drop(r2.unregister_producer(token(1)).unwrap());
        assert!(r2.consumer(token(1)).is_some());
    });
    let results = results.lock().unwrap();
    assert_eq!(
        results.len(),
        8,
        "the hook ran during connect and disconnect: {results:?}"
    );
    for line in results.iter() {
        assert!(
            line.ends_with("Err(Reentrant)"),
            "a same-token call from a callback must fail with reentrant: {line}"
        );
    }
}

fn probe_arc(side: Side, id: u64, log: &Arc<EventLog>) -> Arc<Probe> {
    probe(side, id, log)
}

/// A callback calling into the registry for another token either works or gets `reentrant`,
/// never a deadlock, and the registry's state agrees with what the call returned.
pub fn reentrant_call_for_other_token_never_deadlocks(make: Factory<'_>) {
    let r = make();
    let outcomes: Arc<Mutex<Vec<Result<(), ErrorKind>>>> = Arc::default();
    let weak = Arc::downgrade(&r);
    let seen = outcomes.clone();
    let hook: crate::probe::Hook = Arc::new(move |probe: &Probe, callback| {
        let Some(r) = weak.upgrade() else { return };
        if callback != Callback::Add || probe.side() != Side::Consumer {
            return;
        }
        let log = EventLog::new();
        // Another token, possibly in the same shard or bucket as this one.
        for other in [probe.token() + 1, probe.token() + 1_000_003] {
            let result = r
                .register_producer(token(other), probe_arc(Side::Producer, other, &log))
                .map_err(|e| e.kind());
            seen.lock().unwrap().push(result);
            let _ = r.is_paired(token(other));
        }
    });
    let r2 = r.clone();
    within(watchdog(), "re-entrant call, other token", move || {
        let log = EventLog::new();
        r2.register_producer(token(1), probe(Side::Producer, 1, &log))
            .unwrap();
        r2.register_consumer(
            token(1),
            Arc::new(Probe::consumer(1, &log).with_hook(hook.clone())),
        )
        .unwrap();
    });
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), 2);
    for (other, outcome) in [2u64, 1_000_004].into_iter().zip(outcomes.iter()) {
        match outcome {
            Ok(()) => assert!(
                r.producer(token(other)).is_some(),
                "token {other}: the re-entrant register returned ok but nothing is registered"
            ),
            Err(ErrorKind::Reentrant) => assert!(
                r.producer(token(other)).is_none(),
                "token {other}: refused but registered"
            ),
            Err(kind) => panic!(
                "token {other}: a re-entrant register may work or fail with reentrant, not `{kind}`"
            ),
        }
    }
    assert!(r.is_paired(token(1)));
}
