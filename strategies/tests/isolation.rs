//! Isolation: a callback blocked on token A holds up no register or unregister of a token B
//! that the backend keeps apart from A (another dashmap shard, another snapshot bucket), and no
//! read at all. No timing is involved: channels order the steps, and a watchdog turns a hang
//! into a failed test.
//!
//! Adding a backend is one line: call [`blocked_callback_holds_up_no_other_group`] with its
//! constructor and the function that tells a token's group (its shard, its bucket; for a
//! backend that isolates every token, `|_, t| t.get() as usize`). Backends that hold one lock
//! per group across callbacks also run [`crossed_callbacks_never_deadlock`]: two callbacks of
//! different groups calling into each other's group at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::thread;
use std::time::Duration;

use bypass_registry::conformance::{connect_events, disconnect_events};
use bypass_registry::probe::{EventLog, Hook, Probe};
use bypass_registry::{Callback, ErrorKind, Event, Population, Registry, Token};
use bypass_strategies::{LockFree, Rcu, Sharded};

#[test]
fn sharded() {
    blocked_callback_holds_up_no_other_group(Sharded::new, Sharded::shard_of);
}

#[test]
fn sharded_two_shards() {
    blocked_callback_holds_up_no_other_group(|| Sharded::with_shards(2), Sharded::shard_of);
}

#[test]
fn rcu() {
    blocked_callback_holds_up_no_other_group(Rcu::new, Rcu::bucket_of);
}

#[test]
fn rcu_two_buckets() {
    blocked_callback_holds_up_no_other_group(|| Rcu::with_buckets(2), Rcu::bucket_of);
}

#[test]
fn sharded_crossed_callbacks() {
    crossed_callbacks_never_deadlock(|| Sharded::with_shards(2), Sharded::shard_of);
}

#[test]
fn rcu_crossed_callbacks() {
    crossed_callbacks_never_deadlock(|| Rcu::with_buckets(2), Rcu::bucket_of);
}

/// `lockfree` keeps every token apart: its group is the token itself.
#[test]
fn lockfree() {
    blocked_callback_holds_up_no_other_group(LockFree::new, |_, t| t.get() as usize);
}

/// `lockfree`: while a callback of token A is blocked, thousands of other tokens, from two
/// threads, register, connect, disconnect and unregister (the table's lists growing and
/// shrinking under them), and reads of A return what A was before the blocked call.
#[test]
fn lockfree_blocked_callback_holds_up_only_its_token() {
    for blocked in [
        Blocked::ConnectStop,
        Blocked::ConnectAdd,
        Blocked::DisconnectDel,
    ] {
        only_its_token(Arc::new(LockFree::new()), blocked);
    }
}

/// How long any step may take before the test declares a deadlock.
const WATCHDOG: Duration = Duration::from_secs(30);

/// Where the callback on token A blocks.
#[derive(Clone, Copy, Debug)]
enum Blocked {
    /// In the consumer's `stop`, during a connect.
    ConnectStop,
    /// In the consumer's `add_producer`, during a connect.
    ConnectAdd,
    /// In the consumer's `del_producer`, during a disconnect.
    DisconnectDel,
}

/// For each place a callback can block (a connect's `stop` and `add_*`, a disconnect's
/// `del_*`), on a fresh registry from `make`: blocks a callback of token A, then registers,
/// connects, disconnects and unregisters a token B with `group_of(B) != group_of(A)`, and reads
/// A, all of which must complete while A's callback is still blocked; then unblocks A and
/// checks that every call finished with the right callbacks and state.
pub fn blocked_callback_holds_up_no_other_group<R: Registry + 'static>(
    make: impl Fn() -> R,
    group_of: fn(&R, Token) -> usize,
) {
    for blocked in [
        Blocked::ConnectStop,
        Blocked::ConnectAdd,
        Blocked::DisconnectDel,
    ] {
        run(Arc::new(make()), group_of, blocked);
    }
}

fn token(id: u64) -> Token {
    Token::new(id).expect("test tokens are non-zero")
}

/// Blocks one callback until released, the first time it runs after being armed.
struct Gate {
    at: Callback,
    armed: AtomicBool,
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Gate {
    fn hook(self: &Arc<Gate>) -> Hook {
        let gate = Arc::clone(self);
        Arc::new(move |_: &Probe, callback| {
            if callback == gate.at && gate.armed.swap(false, Ordering::SeqCst) {
                let _ = gate.entered.lock().unwrap().send(());
                // Returns when released, or when the test gives up and drops the sender.
                let _ = gate.release.lock().unwrap().recv();
            }
        })
    }
}

/// What the worker on token B saw while A was blocked.
#[derive(Debug, PartialEq)]
struct Seen {
    register_producer: Result<(), ErrorKind>,
    register_consumer: Result<(), ErrorKind>,
    paired: bool,
    unregister_consumer: Result<(), ErrorKind>,
    unregister_producer: Result<(), ErrorKind>,
}

/// The call on token A whose callback is blocked, on a thread of its own.
struct BlockedA {
    release: Sender<()>,
    done: Receiver<Result<(), ErrorKind>>,
}

impl BlockedA {
    /// Registers A's producer (and, to block a disconnect, its consumer), starts the call on A
    /// whose `blocked` callback waits for [`BlockedA::release`], and returns once it does.
    fn start<R: Registry + 'static>(
        r: &Arc<R>,
        a: Token,
        blocked: Blocked,
        log: &Arc<EventLog>,
        what: &str,
    ) -> BlockedA {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let gate = Arc::new(Gate {
            at: match blocked {
                Blocked::ConnectStop => Callback::Stop,
                Blocked::ConnectAdd => Callback::Add,
                Blocked::DisconnectDel => Callback::Del,
            },
            armed: AtomicBool::new(false),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        let consumer_a = Arc::new(Probe::consumer(1, log).with_hook(gate.hook()));
        r.register_producer(a, Arc::new(Probe::producer(1, log)))
            .expect("register producer A");
        if let Blocked::DisconnectDel = blocked {
            r.register_consumer(a, consumer_a.clone())
                .expect("connect A");
        }
        gate.armed.store(true, Ordering::SeqCst);

        // The call on A whose callback blocks, on its own thread.
        let (a_done_tx, a_done_rx) = mpsc::channel();
        {
            let r = Arc::clone(r);
            thread::spawn(move || {
                let outcome = match blocked {
                    Blocked::ConnectStop | Blocked::ConnectAdd => {
                        r.register_consumer(a, consumer_a).map_err(|e| e.kind())
                    }
                    Blocked::DisconnectDel => {
                        r.unregister_producer(a).map(drop).map_err(|e| e.kind())
                    }
                };
                let _ = a_done_tx.send(outcome);
            });
        }
        entered_rx
            .recv_timeout(WATCHDOG)
            .unwrap_or_else(|e| panic!("{what}: the callback on A never ran ({e})"));
        BlockedA {
            release: release_tx,
            done: a_done_rx,
        }
    }

    /// Unblocks A's callback; its call must then complete as if nothing had happened meanwhile.
    fn release(self, what: &str) {
        self.release
            .send(())
            .expect("the blocked callback waits for release");
        let outcome = self
            .done
            .recv_timeout(WATCHDOG)
            .unwrap_or_else(|e| panic!("{what}: the call on A did not finish once released ({e})"));
        assert_eq!(outcome, Ok(()), "{what}: the call on A");
    }
}

fn run<R: Registry + 'static>(r: Arc<R>, group_of: fn(&R, Token) -> usize, blocked: Blocked) {
    let name = r.name();
    let a = token(1);
    let b = (2..)
        .map(token)
        .find(|&t| group_of(&r, t) != group_of(&r, a))
        .expect("some token is in another group than token 1");
    let (group_a, group_b) = (group_of(&r, a), group_of(&r, b));
    // Invariant: B is in another group than A, so none of its calls may wait for A's callbacks.
    assert_ne!(group_a, group_b);
    let what = format!("{name}, blocked in {blocked:?} of token {a} (group {group_a})");

    let log = EventLog::new();
    let blocked_a = BlockedA::start(&r, a, blocked, &log, &what);

    // Everything on B, and reads of A, while A's callback is blocked.
    let (b_done_tx, b_done_rx) = mpsc::channel();
    {
        let (r, log) = (Arc::clone(&r), Arc::clone(&log));
        let id = b.get();
        thread::spawn(move || {
            let register_producer = r
                .register_producer(b, Arc::new(Probe::producer(id, &log)))
                .map_err(|e| e.kind());
            let register_consumer = r
                .register_consumer(b, Arc::new(Probe::consumer(id, &log)))
                .map_err(|e| e.kind());
            let paired = r.is_paired(b);
            let unregister_consumer = r.unregister_consumer(b).map(drop).map_err(|e| e.kind());
            let unregister_producer = r.unregister_producer(b).map(drop).map_err(|e| e.kind());
            // Reads of A itself: whichever side of the blocked call they see, they must return.
            let _ = (r.is_paired(a), r.producer(a), r.consumer(a), r.population());
            let _ = b_done_tx.send(Seen {
                register_producer,
                register_consumer,
                paired,
                unregister_consumer,
                unregister_producer,
            });
        });
    }
    let seen = match b_done_rx.recv_timeout(WATCHDOG) {
        Ok(seen) => seen,
        Err(RecvTimeoutError::Timeout) => panic!(
            "{what}: the calls on token {b} (group {group_b}) did not complete within \
             {WATCHDOG:?}: they wait for the blocked callback"
        ),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the worker on token {b} panicked"),
    };
    assert_eq!(
        seen,
        Seen {
            register_producer: Ok(()),
            register_consumer: Ok(()),
            paired: true,
            unregister_consumer: Ok(()),
            unregister_producer: Ok(()),
        },
        "{what}: the calls on token {b}"
    );

    // Unblock A: its call completes as if nothing had happened meanwhile.
    blocked_a.release(&what);

    let events = log.take();
    let of = |id: u64| -> Vec<Event> { events.iter().copied().filter(|e| e.token == id).collect() };
    assert_eq!(
        of(b.get()),
        [connect_events(b.get()), disconnect_events(b.get())].concat(),
        "{what}: the callbacks of token {b}"
    );
    let (expected_a, population) = match blocked {
        Blocked::ConnectStop | Blocked::ConnectAdd => (
            connect_events(1),
            Population {
                producers: 1,
                consumers: 1,
            },
        ),
        Blocked::DisconnectDel => (
            [connect_events(1), disconnect_events(1)].concat(),
            Population {
                producers: 0,
                consumers: 1,
            },
        ),
    };
    assert_eq!(of(1), expected_a, "{what}: the callbacks of token A");
    assert_eq!(
        r.is_paired(a),
        population.producers == 1,
        "{what}: the state of A"
    );
    assert!(r.consumer(a).is_some(), "{what}: consumer A is registered");
    assert_eq!(r.population(), population, "{what}: the population");
}

/// The tokens `lockfree_blocked_callback_holds_up_only_its_token` works on besides A: small
/// consecutive ids and address-shaped ones (64-byte aligned), each worker its own half.
fn other_tokens(worker: u64) -> impl Iterator<Item = Token> {
    let ids = (2..2_050u64).filter(move |id| id % 2 == worker);
    let addresses = (0..2_048u64)
        .filter(move |i| i % 2 == worker)
        .map(|i| 0x1_0000 + i * 64);
    ids.chain(addresses).map(token)
}

fn only_its_token(r: Arc<LockFree>, blocked: Blocked) {
    let a = token(1);
    let what = format!("lockfree, blocked in {blocked:?} of token {a}");
    let log = EventLog::new();
    let blocked_a = BlockedA::start(&r, a, blocked, &log, &what);

    // What reads of A must say while its call is blocked: A as it was before that call.
    let connected_before = matches!(blocked, Blocked::DisconnectDel);
    let read_a = move |r: &LockFree| {
        (
            r.is_paired(a),
            r.producer(a).is_some(),
            r.consumer(a).is_some(),
        )
    };
    let before = (connected_before, true, connected_before);
    assert_eq!(read_a(&r), before, "{what}: reads of A while it is blocked");

    // Two workers, thousands of tokens each, while A stays blocked; half of the tokens keep
    // their producer, so the table fills up meanwhile.
    let (done_tx, done_rx) = mpsc::channel();
    for worker in 0..2u64 {
        let (r, log, done_tx) = (Arc::clone(&r), Arc::clone(&log), done_tx.clone());
        thread::spawn(move || {
            let mut failures = Vec::new();
            for t in other_tokens(worker) {
                let id = t.get();
                let mut check = |step: &str, ok: bool| {
                    if !ok {
                        failures.push(format!("token {t}: {step}"));
                    }
                };
                check(
                    "register producer",
                    r.register_producer(t, Arc::new(Probe::producer(id, &log)))
                        .is_ok(),
                );
                check(
                    "register consumer",
                    r.register_consumer(t, Arc::new(Probe::consumer(id, &log)))
                        .is_ok(),
                );
                check("paired", r.is_paired(t));
                check(
                    "lookups",
                    r.producer(t).is_some() && r.consumer(t).is_some(),
                );
                check("unregister consumer", r.unregister_consumer(t).is_ok());
                if id % 4 != 0 {
                    check("unregister producer", r.unregister_producer(t).is_ok());
                }
                // Reads of A, from every worker, all along.
                check("reads of A", read_a(&r) == before);
            }
            let _ = done_tx.send(failures);
        });
    }
    for _ in 0..2 {
        match done_rx.recv_timeout(WATCHDOG) {
            Ok(failures) => assert!(failures.is_empty(), "{what}: {failures:?}"),
            Err(RecvTimeoutError::Timeout) => panic!(
                "{what}: the calls on other tokens did not complete within {WATCHDOG:?}: they \
                 wait for the blocked callback"
            ),
            Err(RecvTimeoutError::Disconnected) => panic!("{what}: a worker panicked"),
        }
    }
    assert_eq!(read_a(&r), before, "{what}: reads of A after the workers");

    blocked_a.release(&what);

    let events = log.take();
    let mut by_token: std::collections::BTreeMap<u64, Vec<Event>> = Default::default();
    for event in &events {
        by_token.entry(event.token).or_default().push(*event);
    }
    let expected_a = match blocked {
        Blocked::ConnectStop | Blocked::ConnectAdd => connect_events(1),
        Blocked::DisconnectDel => [connect_events(1), disconnect_events(1)].concat(),
    };
    assert_eq!(
        by_token.remove(&1).unwrap_or_default(),
        expected_a,
        "{what}: token A"
    );
    let others: Vec<Token> = (0..2).flat_map(other_tokens).collect();
    assert_eq!(
        by_token.len(),
        others.len(),
        "{what}: tokens with callbacks"
    );
    for t in &others {
        assert_eq!(
            by_token.get(&t.get()).map(Vec::as_slice),
            Some(
                [connect_events(t.get()), disconnect_events(t.get())]
                    .concat()
                    .as_slice()
            ),
            "{what}: the callbacks of token {t}"
        );
    }
    let kept = others.iter().filter(|t| t.get() % 4 == 0).count();
    let paired_a = !connected_before;
    assert_eq!(
        r.population(),
        Population {
            producers: kept + usize::from(paired_a),
            consumers: 1,
        },
        "{what}: the population"
    );
    assert_eq!(r.is_paired(a), paired_a, "{what}: the state of A");
}

/// A register made from inside a callback: its token and its outcome.
type NestedCall = (Token, Result<(), ErrorKind>);

/// The lock-order case, for backends whose groups hold several tokens: the callbacks of A and
/// of B (another group) run at once, and each registers a token of the *other's* group. With
/// one lock per group held across callbacks, two threads each waiting for the other's lock
/// would deadlock; each call must instead work or fail with `reentrant`, and the registry must
/// agree with what it returned.
pub fn crossed_callbacks_never_deadlock<R: Registry + 'static>(
    make: impl Fn() -> R,
    group_of: fn(&R, Token) -> usize,
) {
    let r = Arc::new(make());
    let name = r.name();
    let a = token(1);
    let other_group = |of: Token, not: &[Token]| {
        (2..100_000)
            .map(token)
            .find(|&t| group_of(&r, t) == group_of(&r, of) && !not.contains(&t))
    };
    let b = (2..)
        .map(token)
        .find(|&t| group_of(&r, t) != group_of(&r, a))
        .expect("some token is in another group than token 1");
    let into_a = other_group(a, &[a, b]).expect("a second token in A's group");
    let into_b = other_group(b, &[a, b, into_a]).expect("a second token in B's group");
    let what = format!(
        "{name}: A={a} (group {}) and B={b} (group {})",
        group_of(&r, a),
        group_of(&r, b)
    );

    let log = EventLog::new();
    let barrier = Arc::new(Barrier::new(2));
    let outcomes: Arc<Mutex<Vec<NestedCall>>> = Arc::default();
    // In A's add_producer, register a producer in B's group, and vice versa, both at once.
    let hook = |target: Token| -> Hook {
        let (weak, barrier, outcomes) = (Arc::downgrade(&r), barrier.clone(), outcomes.clone());
        let log = log.clone();
        let armed = AtomicBool::new(true);
        Arc::new(move |_: &Probe, callback| {
            let Some(r) = Weak::upgrade(&weak) else {
                return;
            };
            if callback == Callback::Add && armed.swap(false, Ordering::SeqCst) {
                barrier.wait();
                let outcome = r
                    .register_producer(target, Arc::new(Probe::producer(target.get(), &log)))
                    .map_err(|e| e.kind());
                outcomes.lock().unwrap().push((target, outcome));
            }
        })
    };
    let mut threads = Vec::new();
    let (done_tx, done_rx) = mpsc::channel();
    for (own, target) in [(a, into_b), (b, into_a)] {
        r.register_producer(own, Arc::new(Probe::producer(own.get(), &log)))
            .expect("register a producer");
        let consumer = Arc::new(Probe::consumer(own.get(), &log).with_hook(hook(target)));
        let (r, done_tx) = (Arc::clone(&r), done_tx.clone());
        threads.push(thread::spawn(move || {
            let outcome = r.register_consumer(own, consumer).map_err(|e| e.kind());
            let _ = done_tx.send((own, outcome));
        }));
    }
    for _ in 0..2 {
        let (own, outcome) = done_rx.recv_timeout(WATCHDOG).unwrap_or_else(|_| {
            panic!("{what}: callbacks calling into each other's group deadlocked")
        });
        assert_eq!(outcome, Ok(()), "{what}: the connect of {own}");
    }
    for thread in threads {
        thread.join().expect("a connect thread panicked");
    }
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), 2, "{what}: both nested calls ran");
    for &(target, outcome) in outcomes.iter() {
        match outcome {
            Ok(()) => assert!(
                r.producer(target).is_some(),
                "{what}: the nested register of {target} returned ok, nothing is registered"
            ),
            Err(ErrorKind::Reentrant) => assert!(
                r.producer(target).is_none(),
                "{what}: the nested register of {target} was refused, yet registered"
            ),
            Err(kind) => panic!("{what}: the nested register of {target} failed with `{kind}`"),
        }
    }
    assert!(
        r.is_paired(a) && r.is_paired(b),
        "{what}: both pairs connected"
    );
}
