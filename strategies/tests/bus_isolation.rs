//! Bus isolation: on the scalable bus backends, a probe or remove of device A blocked on a
//! channel holds up no other device's registration or unregistration, and no read. No timing
//! is involved: channels order the steps, and a watchdog turns a hang into a failed test.
//!
//! The global-lock backends (`mutex-list`, `mutex-map`) serialize every call, callbacks
//! included, as their docs say, and are skipped ([`Backend::is_global_lock`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bypass_registry::bus::recorder::{BusHook, BusLog, RecordingDriver};
use bypass_registry::bus::{ANY, BusCallback, Device, DeviceId, DriverName, IdTable, Key};
use bypass_strategies::Backend;

/// How long any step may take before the test declares a deadlock.
const WATCHDOG: Duration = Duration::from_secs(30);

/// The other devices registered and unregistered while A is blocked.
const OTHERS: std::ops::RangeInclusive<u64> = 2..=200;

#[test]
fn blocked_probe_holds_up_no_other_device() {
    for &backend in Backend::ALL.iter().filter(|b| !b.is_global_lock()) {
        blocked_callback_holds_up_no_other_device(backend, BusCallback::Probe);
    }
}

#[test]
fn blocked_remove_holds_up_no_other_device() {
    for &backend in Backend::ALL.iter().filter(|b| !b.is_global_lock()) {
        blocked_callback_holds_up_no_other_device(backend, BusCallback::Remove);
    }
}

fn key(k: u64) -> Key {
    Key::new(k).expect("test keys are non-zero")
}

fn device(k: u64) -> Arc<Device> {
    Arc::new(Device::new(key(k), DeviceId::new(1, 1).unwrap()))
}

/// Blocks `at` of device 1, the first time it runs after being armed, until released.
struct Gate {
    at: BusCallback,
    armed: AtomicBool,
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl Gate {
    fn hook(self: &Arc<Gate>) -> BusHook {
        let gate = Arc::clone(self);
        Arc::new(move |_, callback, device| {
            if callback == gate.at
                && device.key() == key(1)
                && gate.armed.swap(false, Ordering::SeqCst)
            {
                let _ = gate.entered.lock().unwrap().send(());
                // Returns when released, or when the test gives up and drops the sender.
                let _ = gate.release.lock().unwrap().recv();
            }
        })
    }
}

/// What the worker saw while A was blocked.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Each other device: registered, bound to `slow`, unregistered.
    others: Vec<(bool, Option<DriverName>, bool)>,
    /// `driver_of(A)` and `has_device(A)`.
    a: (Option<DriverName>, bool),
    /// `bound_count(slow)` with every other device bound.
    bound: Option<usize>,
}

fn blocked_callback_holds_up_no_other_device(backend: Backend, at: BusCallback) {
    let what = format!("{backend}, blocked in the {} of device 1", at.as_str());
    let bus = backend.make_bus();
    let log = BusLog::new();
    let slow = DriverName::new("slow").unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Gate {
        at,
        armed: AtomicBool::new(false),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let driver = RecordingDriver::new(slow, IdTable::one(1, ANY), &log).with_hook(gate.hook());
    bus.register_driver(slow, Arc::new(driver)).unwrap();
    if at == BusCallback::Remove {
        bus.register_device(device(1)).unwrap();
    }
    gate.armed.store(true, Ordering::SeqCst);

    // The call on A whose callback blocks, on its own thread.
    let (a_done_tx, a_done_rx) = mpsc::channel();
    {
        let bus = Arc::clone(&bus);
        thread::spawn(move || {
            let ok = match at {
                BusCallback::Probe => bus.register_device(device(1)).is_ok(),
                BusCallback::Remove => bus.unregister_device(key(1)).is_ok(),
            };
            let _ = a_done_tx.send(ok);
        });
    }
    entered_rx
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("{what}: the callback on A never ran ({e})"));

    // Other devices, and reads of A, while A's callback is blocked.
    let (done_tx, done_rx) = mpsc::channel();
    {
        let bus = Arc::clone(&bus);
        thread::spawn(move || {
            let others = OTHERS
                .map(|k| {
                    let registered = bus.register_device(device(k)).is_ok();
                    (registered, bus.driver_of(key(k)))
                })
                .collect::<Vec<_>>();
            let bound = bus.bound_count(slow);
            let a = (bus.driver_of(key(1)), bus.has_device(key(1)));
            let _ = bus.population();
            let others = OTHERS
                .zip(others)
                .map(|(k, (registered, driver))| {
                    (registered, driver, bus.unregister_device(key(k)).is_ok())
                })
                .collect();
            let _ = done_tx.send(Seen { others, a, bound });
        });
    }
    let seen = match done_rx.recv_timeout(WATCHDOG) {
        Ok(seen) => seen,
        Err(RecvTimeoutError::Timeout) => panic!(
            "{what}: the calls on other devices did not complete within {WATCHDOG:?}: they \
             wait for the blocked callback"
        ),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the worker panicked"),
    };
    // During a probe, A reads as registered and unbound (and not counted); during a remove,
    // as bound.
    let a_bound = (at == BusCallback::Remove).then_some(slow);
    assert_eq!(
        seen,
        Seen {
            others: OTHERS.map(|_| (true, Some(slow), true)).collect(),
            a: (a_bound, true),
            bound: Some(OTHERS.count() + usize::from(a_bound.is_some())),
        },
        "{what}: the calls on other devices and the reads of A"
    );

    // Unblock A: its call completes as if nothing had happened meanwhile.
    release_tx.send(()).expect("the blocked callback waits");
    let ok = a_done_rx
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("{what}: the call on A did not finish once released ({e})"));
    assert!(ok, "{what}: the call on A");
    let lines: Vec<String> = log
        .take()
        .iter()
        .filter(|e| e.key == 1)
        .map(ToString::to_string)
        .collect();
    let expected: &[&str] = match at {
        BusCallback::Probe => &["driver slow probe 1"],
        BusCallback::Remove => &["driver slow probe 1", "driver slow remove 1"],
    };
    assert_eq!(lines, expected, "{what}: the callbacks of A");
    assert_eq!(
        bus.driver_of(key(1)),
        (at == BusCallback::Probe).then_some(slow),
        "{what}: A at the end"
    );
    assert_eq!(bus.has_device(key(1)), at == BusCallback::Probe, "{what}");
}
