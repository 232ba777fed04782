//! A participant the registry gives up may call the registry from its `Drop`, on every backend:
//!
//! - when a callback's panic fails a connect or interrupts a disconnect, the refused or
//!   unregistered participant is dropped once the backend's lock is released, so a `Drop` that
//!   calls the registry for the same token does not deadlock on its own thread's lock;
//! - a registry call from a thread-local's destructor (a participant owned by a thread-local,
//!   dropped as the thread exits) works, instead of aborting the process.
//!
//! A deadlock would hang, so each case runs on its own thread and a watchdog fails the test
//! after a timeout.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bypass_registry::{CallbackError, Consumer, ErrorKind, Producer, Registry, Token};
use bypass_strategies::Backend;

/// How long a case may take before it counts as a deadlock.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `case` on its own thread; fails if it panics or does not finish in time.
fn with_watchdog(what: &str, case: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        case();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(WATCHDOG) {
        Ok(()) => worker.join().expect("the case's thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: deadlocked (no answer in {WATCHDOG:?})")
        }
    }
}

fn token() -> Token {
    Token::new(1).unwrap()
}

/// What a participant calls from its `Drop`.
#[derive(Clone, Copy)]
enum OnDrop {
    /// `unregister_consumer` of its token.
    UnregisterConsumer,
    /// `register_producer` of a fresh producer on its token.
    RegisterProducer,
}

/// A participant (producer or consumer) whose chosen callback panics and whose `Drop` calls
/// the registry for its own token, recording the outcome.
struct Dropper {
    registry: Arc<dyn Registry>,
    panic_in_add: bool,
    panic_in_del: bool,
    on_drop: OnDrop,
    outcome: Arc<Mutex<Option<Result<(), ErrorKind>>>>,
}

impl Drop for Dropper {
    fn drop(&mut self) {
        let outcome = match self.on_drop {
            OnDrop::UnregisterConsumer => self
                .registry
                .unregister_consumer(token())
                .map(drop)
                .map_err(|e| e.kind()),
            OnDrop::RegisterProducer => self
                .registry
                .register_producer(token(), Arc::new(Plain))
                .map_err(|e| e.kind()),
        };
        *self.outcome.lock().unwrap() = Some(outcome);
    }
}

impl Producer for Dropper {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        assert!(!self.panic_in_add, "add_consumer panics");
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {
        assert!(!self.panic_in_del, "del_consumer panics");
    }
}

/// A participant that accepts everything.
struct Plain;

impl Producer for Plain {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {}
}

impl Consumer for Plain {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_producer(&self, _: &dyn Producer) {}
}

/// A producer whose connect panics is refused and dropped; its `Drop` unregisters the consumer
/// it failed to connect to. Before the fix, the drop ran under the token's lock (lockfree) or
/// the shard's writer lock (sharded, rcu) and waited for it forever.
#[test]
fn producer_refused_by_a_panic_may_call_the_registry_when_dropped() {
    for &backend in Backend::ALL {
        with_watchdog(backend.name(), move || {
            let registry = backend.make();
            registry
                .register_consumer(token(), Arc::new(Plain))
                .unwrap();
            let outcome = Arc::new(Mutex::new(None));
            let producer = Arc::new(Dropper {
                registry: Arc::clone(&registry),
                panic_in_add: true,
                panic_in_del: false,
                on_drop: OnDrop::UnregisterConsumer,
                outcome: Arc::clone(&outcome),
            });
            let register = catch_unwind(AssertUnwindSafe(|| {
                registry.register_producer(token(), producer)
            }));
            assert!(
                register.is_err(),
                "{backend}: the add's panic reaches the caller"
            );
            assert_eq!(
                *outcome.lock().unwrap(),
                Some(Ok(())),
                "{backend}: the refused producer's drop unregistered the consumer"
            );
            assert!(registry.consumer(token()).is_none() && registry.producer(token()).is_none());
        });
    }
}

/// A producer whose disconnect panics is still unregistered, and dropped as the panic unwinds;
/// its `Drop` registers a new producer on the same token. Before the fix, sharded and rcu
/// dropped it under the shard's writer lock and deadlocked.
#[test]
fn producer_unregistered_by_a_panicking_disconnect_may_call_the_registry_when_dropped() {
    for &backend in Backend::ALL {
        with_watchdog(backend.name(), move || {
            let registry = backend.make();
            let outcome = Arc::new(Mutex::new(None));
            let producer = Arc::new(Dropper {
                registry: Arc::clone(&registry),
                panic_in_add: false,
                panic_in_del: true,
                on_drop: OnDrop::RegisterProducer,
                outcome: Arc::clone(&outcome),
            });
            registry.register_producer(token(), producer).unwrap();
            registry
                .register_consumer(token(), Arc::new(Plain))
                .unwrap();
            let unregister =
                catch_unwind(AssertUnwindSafe(|| registry.unregister_producer(token())));
            assert!(
                unregister.is_err(),
                "{backend}: the del's panic reaches the caller"
            );
            assert_eq!(
                *outcome.lock().unwrap(),
                Some(Ok(())),
                "{backend}: the unregistered producer's drop registered a new one"
            );
            assert!(
                registry.is_paired(token()),
                "{backend}: the new producer connected"
            );
        });
    }
}

/// Full cycles done from thread-local destructors, over all backends.
static CYCLES_FROM_TLS: AtomicUsize = AtomicUsize::new(0);

/// Owned by a thread-local: registers, connects, disconnects and unregisters a pair on every
/// backend when the thread's thread-locals are destroyed.
struct CyclesOnExit(Vec<Arc<dyn Registry>>);

impl Drop for CyclesOnExit {
    fn drop(&mut self) {
        for registry in &self.0 {
            let t = token();
            registry.register_producer(t, Arc::new(Plain)).unwrap();
            registry.register_consumer(t, Arc::new(Plain)).unwrap();
            assert!(registry.is_paired(t));
            registry.unregister_consumer(t).unwrap();
            registry.unregister_producer(t).unwrap();
            CYCLES_FROM_TLS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static FIRST: RefCell<Option<CyclesOnExit>> = const { RefCell::new(None) };
    static LAST: RefCell<Option<CyclesOnExit>> = const { RefCell::new(None) };
}

/// Before the fix, the registry's re-entrancy record was a thread-local with a destructor, and
/// any registry call after it was destroyed panicked inside a thread-local destructor, which
/// aborts the process. Two owners, one set before the thread's first registry call and one
/// after, so that one of them is destroyed after everything the registry's first call set up,
/// whichever order the platform destroys thread-locals in.
#[test]
fn registry_calls_from_thread_local_destructors_work() {
    let make = || CyclesOnExit(Backend::ALL.iter().map(|b| b.make()).collect());
    let (first, last) = (make(), make());
    with_watchdog("thread-local destructors", move || {
        let worker = thread::spawn(move || {
            FIRST.with(|f| *f.borrow_mut() = Some(first));
            // The thread's first registry calls: they set up whatever thread-locals they use.
            for registry in &last.0 {
                registry
                    .register_producer(token(), Arc::new(Plain))
                    .unwrap();
                registry.unregister_producer(token()).unwrap();
            }
            LAST.with(|l| *l.borrow_mut() = Some(last));
        });
        worker.join().expect("the thread exits cleanly");
    });
    assert_eq!(
        CYCLES_FROM_TLS.load(Ordering::Relaxed),
        2 * Backend::ALL.len(),
        "every backend ran a full cycle from each destructor"
    );
}
