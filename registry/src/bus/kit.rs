//! The bus conformance kit: the whole bus contract, run against any [`Bus`].
//!
//! Each case is a public function taking a factory of fresh buses; [`CASES`] lists them and
//! [`run_all`] runs them all. In a backend's test suite, [`bus_conformance_tests!`] makes one
//! `#[test]` per case, so a failure names the broken guarantee:
//!
//! ```ignore
//! bypass_registry::bus_conformance_tests!(my_backend::MyBus::new());
//! ```
//!
//! The sequential cases check each rule with [`RecordingDriver`]s and exact callback traces;
//! the concurrent ones race registrations over many rounds and check each device's history
//! with [`check_device_history`]. Cases that could deadlock on a broken backend run under a
//! watchdog and fail instead of hanging.
//!
//! [`bus_conformance_tests!`]: crate::bus_conformance_tests

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use super::contract::{Bus, BusPopulation};
use super::error::{ErrorKind, RegisterError};
use super::id::{ANY, DeviceId, DriverName, IdTable, Key, Pattern};
use super::model::{BusModel, DriverBehaviour};
use super::op::{Op, Outcome, Step};
use super::participant::{BusCallback, BusEvent, Device, Driver};
use super::recorder::{BusHook, BusLog, RecordingDriver};
use super::trace;
use crate::conformance::panic_message;

/// Makes a fresh, empty bus of the backend under test.
pub type BusFactory<'a> = &'a (dyn Fn() -> Arc<dyn Bus> + Sync);

/// One case of the kit.
#[derive(Clone, Copy, Debug)]
pub struct BusCase {
    /// The function's name, which says what it checks.
    pub name: &'static str,
    /// Runs the case; panics with a diagnostic if the backend breaks the contract.
    pub run: fn(BusFactory<'_>),
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the kit, in the order [`run_all`] runs them.
        pub const CASES: &[BusCase] = &[$(BusCase { name: stringify!($name), run: $name }),*];

        /// Makes one `#[test]` per bus conformance case for the backend built by `$make`, plus
        /// a test that the list here is the kit's whole list.
        #[macro_export]
        macro_rules! bus_conformance_tests {
            ($make:expr) => {
                $(
                    #[test]
                    fn $name() {
                        $crate::bus::kit::$name(&|| {
                            ::std::sync::Arc::new($make)
                                as ::std::sync::Arc<dyn $crate::bus::Bus>
                        });
                    }
                )*

                #[test]
                fn bus_conformance_list_is_complete() {
                    let listed: &[&str] = &[$(stringify!($name)),*];
                    let kit: ::std::vec::Vec<&str> =
                        $crate::bus::kit::CASES.iter().map(|case| case.name).collect();
                    assert_eq!(listed, kit.as_slice(), "bus_conformance_tests! must list every case");
                }
            };
        }
    };
}

cases!(
    device_alone_runs_no_callback,
    device_offered_to_drivers_in_registration_order,
    failed_probes_leave_device_unbound,
    driver_probes_unbound_devices_in_device_order,
    patterns_match_as_virtio_id_match,
    invalid_arguments_are_refused_in_order,
    duplicates_are_refused_and_handed_back,
    unregister_device_removes_it_from_its_driver,
    unregister_driver_removes_most_recent_first,
    unregister_driver_does_not_reoffer,
    rescan_offers_unbound_devices_in_order,
    unregister_hands_back_the_only_reference,
    reads_follow_the_state,
    bus_trace_matches_model,
    random_sequences_match_model,
    panicking_probe_is_a_failed_probe,
    panicking_remove_still_unbinds,
    reentrant_call_about_same_device_is_refused,
    reentrant_call_elsewhere_never_deadlocks,
    racing_device_and_driver_bind_exactly_once,
    driver_reload_while_devices_churn,
    no_call_after_return,
    panicking_probes_under_concurrency,
    reads_stay_within_bounds_during_writes,
);

/// Runs every case of the kit on buses made by `make`, panicking at the first failure with the
/// case's name.
pub fn run_all<B: Bus + 'static>(make: impl Fn() -> B + Sync) {
    let factory = move || Arc::new(make()) as Arc<dyn Bus>;
    for case in CASES {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (case.run)(&factory))) {
            panic!(
                "bus conformance case `{}` failed: {}",
                case.name,
                panic_message(&*panic)
            );
        }
    }
}

/// The trace holding every rule of the bus contract; its model output is
/// `tests/data/bus.out` of this crate.
pub const BUS_TRACE: &str = include_str!("../../tests/data/bus.trace");

// ---------------------------------------------------------------------------------------------
// Helpers

fn key(k: u64) -> Key {
    Key::new(k).expect("test keys are non-zero")
}

fn name(n: &str) -> DriverName {
    DriverName::new(n).expect("test names are valid")
}

fn device(k: u64, dev: u32, vendor: u32) -> Arc<Device> {
    Arc::new(Device::new(
        key(k),
        DeviceId::new(dev, vendor).expect("test ids are valid"),
    ))
}

fn table(patterns: &[(u32, u32)]) -> IdTable {
    let patterns: Vec<Pattern> = patterns.iter().map(|&(d, v)| Pattern::new(d, v)).collect();
    IdTable::new(patterns).expect("test tables are not empty")
}

fn driver(n: &str, patterns: &[(u32, u32)], log: &Arc<BusLog>) -> RecordingDriver {
    RecordingDriver::new(name(n), table(patterns), log)
}

/// Registers `driver` under its name, which must work.
fn add(bus: &dyn Bus, driver: RecordingDriver) -> Arc<RecordingDriver> {
    let driver = Arc::new(driver);
    bus.register_driver(driver.name(), driver.clone())
        .unwrap_or_else(|e| panic!("register driver {}: {e}", driver.name()));
    driver
}

fn plug(bus: &dyn Bus, k: u64, dev: u32, vendor: u32) {
    bus.register_device(device(k, dev, vendor))
        .unwrap_or_else(|e| panic!("register device {k}: {e}"));
}

fn lines(events: &[BusEvent]) -> Vec<String> {
    events.iter().map(BusEvent::to_string).collect()
}

fn assert_events(what: &str, seen: &[BusEvent], expected: &[&str]) {
    assert_eq!(
        lines(seen),
        expected,
        "{what}: the callbacks that ran (left) differ from the contract (right)"
    );
}

fn population(devices: usize, drivers: usize, bound: usize) -> BusPopulation {
    BusPopulation {
        devices,
        drivers,
        bound,
    }
}

fn expect_panic(what: &str, f: impl FnOnce()) {
    let result = catch_unwind(AssertUnwindSafe(f));
    assert!(
        result.is_err(),
        "{what}: the callback's panic must reach the caller"
    );
}

/// How long a watched case may go without finishing before it is declared deadlocked, in
/// milliseconds. Generous by default: a loaded 2-core CI machine runs many tests at once.
static WATCHDOG_MS: AtomicU64 = AtomicU64::new(60_000);

/// Sets the watchdog limit of the cases that run under it, for this whole process. Lower it in
/// a suite that expects deadlocks, so they fail fast.
pub fn set_watchdog(limit: Duration) {
    WATCHDOG_MS.store(
        limit.as_millis().try_into().unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// Runs `f` on its own thread and fails if it does not finish within the watchdog limit.
fn watched<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let limit = Duration::from_millis(WATCHDOG_MS.load(Ordering::Relaxed));
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("bus conformance: {what}"))
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
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

/// Checks one device's callback history from a concurrent run in which every probe succeeds:
/// a probe only while unbound (never two binds), a remove only while bound and by the driver
/// that bound it (every bind undone once), and, if `gone`, unbound at the end. Returns how many
/// binds it saw.
pub fn check_device_history(key: u64, events: &[BusEvent], gone: bool) -> Result<usize, String> {
    let mut bound: Option<DriverName> = None;
    let mut binds = 0;
    for (i, event) in events.iter().enumerate() {
        match (event.callback, bound) {
            (BusCallback::Probe, None) => {
                bound = Some(event.driver);
                binds += 1;
            }
            (BusCallback::Remove, Some(driver)) if driver == event.driver => bound = None,
            _ => {
                return Err(format!(
                    "device {key}: callback {i} `{event}` while bound to {bound:?}; history {:?}",
                    lines(events)
                ));
            }
        }
    }
    match bound {
        Some(driver) if gone => Err(format!(
            "device {key}: bound to {driver} by its last probe, never removed; history {:?}",
            lines(events)
        )),
        _ => Ok(binds),
    }
}

fn by_key(events: &[BusEvent]) -> BTreeMap<u64, Vec<BusEvent>> {
    let mut map: BTreeMap<u64, Vec<BusEvent>> = BTreeMap::new();
    for event in events {
        map.entry(event.key).or_default().push(*event);
    }
    map
}

/// Runs `ops` on `bus` and the model, each registering driver behaving as given (failing or
/// panicking in probe or remove), failing at the first step where the callbacks, the outcome or
/// the state read back (population, each device's driver, each driver's count) differ.
pub fn assert_faults_match_model(bus: &dyn Bus, ops: &[(Op, DriverBehaviour)]) {
    let log = BusLog::new();
    let mut model = BusModel::new();
    for (i, (op, behaviour)) in ops.iter().enumerate() {
        let outcome = trace::apply_with(bus, &log, op, *behaviour);
        let got = Step {
            op: op.clone(),
            events: log.take(),
            outcome,
        };
        let want = model.apply_with(op, *behaviour);
        assert!(
            got == want,
            "{}: step {} ({behaviour:?}) differs from the model.\nbackend:\n{got}model:\n{want}",
            bus.name(),
            i + 1,
        );
        assert_state_matches(bus, &model, i + 1);
    }
}

/// Replays `ops` on `bus` and the model, failing at the first step where they differ.
pub fn assert_matches_model(bus: &dyn Bus, ops: &[Op]) {
    let with: Vec<(Op, DriverBehaviour)> = ops
        .iter()
        .map(|op| (op.clone(), DriverBehaviour::default()))
        .collect();
    assert_faults_match_model(bus, &with);
}

fn assert_state_matches(bus: &dyn Bus, model: &BusModel, step: usize) {
    let what = || format!("{}: after step {step}", bus.name());
    assert_eq!(
        bus.population(),
        model.population(),
        "{}: population",
        what()
    );
    for k in model.keys() {
        assert!(bus.has_device(k), "{}: device {k} is missing", what());
        assert_eq!(
            bus.driver_of(k),
            model.driver_of(k),
            "{}: driver of {k}",
            what()
        );
    }
    for n in model.names() {
        assert!(bus.has_driver(n), "{}: driver {n} is missing", what());
        assert_eq!(
            bus.bound_count(n),
            model.bound_count(n),
            "{}: bound by {n}",
            what()
        );
    }
}

/// A small deterministic generator, so that a failing case replays the same way.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A random bus operation over few keys, names and ids, so that they collide often.
fn random_op(rng: &mut Lcg) -> Op {
    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    let field = |rng: &mut Lcg| match rng.below(4) {
        0 => ANY,
        n => n as u32,
    };
    match rng.below(10) {
        0..=3 => Op::register_device(rng.below(8), 1 + rng.below(3) as u32, rng.below(3) as u32),
        4 | 5 => Op::unregister_device(rng.below(8)),
        6 | 7 => {
            let patterns: Vec<(u32, u32)> = (0..rng.below(3))
                .map(|_| (field(rng), field(rng)))
                .collect();
            Op::register_driver(NAMES[rng.below(4) as usize], &patterns, rng.below(4) == 0)
        }
        8 => Op::unregister_driver(NAMES[rng.below(4) as usize]),
        _ => Op::Rescan,
    }
}

// ---------------------------------------------------------------------------------------------
// Sequential cases: one rule of the contract each.

/// A device with no driver is registered, unbound, and no callback runs; so is a driver with
/// no device.
pub fn device_alone_runs_no_callback(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    plug(&*bus, 1, 1, 0x1af4);
    assert!(bus.has_device(key(1)) && bus.driver_of(key(1)).is_none());
    add(&*bus, driver("blk", &[(2, ANY)], &log));
    assert_events("lone registrations", &log.take(), &[]);
    assert_eq!(bus.bound_count(name("blk")), Some(0));
    assert_eq!(bus.population(), population(1, 1, 0));
}

/// A new device is offered to the matching drivers in their registration order; the first
/// probe that succeeds binds it and ends the walk.
pub fn device_offered_to_drivers_in_registration_order(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("first", &[(1, ANY)], &log).fail_probe(true));
    add(&*bus, driver("other", &[(2, ANY)], &log));
    add(&*bus, driver("second", &[(1, 0x1af4)], &log));
    add(&*bus, driver("third", &[(ANY, ANY)], &log));
    plug(&*bus, 9, 1, 0x1af4);
    assert_events(
        "device walk",
        &log.take(),
        &["driver first probe 9", "driver second probe 9"],
    );
    assert_eq!(bus.driver_of(key(9)), Some(name("second")));
    assert_eq!(bus.bound_count(name("third")), Some(0));
}

/// When every matching probe fails, the device stays registered and unbound, and the call
/// returns ok.
pub fn failed_probes_leave_device_unbound(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("x", &[(1, ANY)], &log).fail_probe(true));
    add(&*bus, driver("y", &[(ANY, 5)], &log).fail_probe(true));
    bus.register_device(device(3, 1, 5))
        .expect("register_device returns ok whether or not a driver bound it");
    assert_events(
        "failed probes",
        &log.take(),
        &["driver x probe 3", "driver y probe 3"],
    );
    assert!(bus.has_device(key(3)) && bus.driver_of(key(3)).is_none());
    assert_eq!(bus.population(), population(1, 2, 0));
}

/// A new driver probes every unbound device it matches, in device registration order (not key
/// order), binding each that succeeds; bound and unmatched devices are skipped.
pub fn driver_probes_unbound_devices_in_device_order(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("owner", &[(1, 7)], &log));
    for (k, dev, vendor) in [(30, 1, 1), (10, 1, 7), (20, 2, 1), (40, 1, 2), (5, 1, 3)] {
        plug(&*bus, k, dev, vendor);
    }
    log.take();
    let picky = Arc::new(RecordingDriver::new(
        name("picky"),
        table(&[(1, ANY)]),
        &log,
    ));
    // Refuses device 40 only.
    let refusing = {
        let log = log.clone();
        let inner = picky.clone();
        Arc::new(Refuse40 { inner, _log: log })
    };
    bus.register_driver(name("picky"), refusing).unwrap();
    assert_events(
        "driver walk",
        &log.take(),
        &[
            "driver picky probe 30",
            "driver picky probe 40",
            "driver picky probe 5",
        ],
    );
    assert_eq!(bus.driver_of(key(30)), Some(name("picky")));
    assert_eq!(bus.driver_of(key(10)), Some(name("owner")));
    assert_eq!(bus.driver_of(key(20)), None);
    assert_eq!(bus.driver_of(key(40)), None);
    assert_eq!(bus.driver_of(key(5)), Some(name("picky")));
    assert_eq!(bus.bound_count(name("picky")), Some(2));
}

/// A driver that refuses device 40 and otherwise behaves as `inner`.
struct Refuse40 {
    inner: Arc<RecordingDriver>,
    _log: Arc<BusLog>,
}

impl Driver for Refuse40 {
    fn id_table(&self) -> &IdTable {
        self.inner.id_table()
    }
    fn probe(&self, device: &Device) -> Result<(), crate::CallbackError> {
        self.inner.probe(device)?;
        if device.key().get() == 40 {
            Err(crate::CallbackError::new("not 40"))
        } else {
            Ok(())
        }
    }
    fn remove(&self, device: &Device) {
        self.inner.remove(device);
    }
}

/// A pattern matches when each field is ANY or equal (upstream `virtio_id_match`, not the
/// 2007 inverted vendor test); a table matches when any of its patterns does.
pub fn patterns_match_as_virtio_id_match(make: BusFactory<'_>) {
    let id = DeviceId::new(1, 0x1af4).unwrap();
    for (pattern, matches) in [
        ((1, 0x1af4), true),
        ((1, ANY), true),
        ((ANY, 0x1af4), true),
        ((ANY, ANY), true),
        ((1, 0x1af5), false),
        ((2, 0x1af4), false),
        ((2, ANY), false),
        ((ANY, 7), false),
    ] {
        assert_eq!(
            Pattern::new(pattern.0, pattern.1).matches(id),
            matches,
            "{pattern:?}"
        );
    }
    assert!(table(&[(2, ANY), (ANY, 0x1af4)]).matches(id));
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("vendor-only", &[(ANY, 9)], &log));
    add(&*bus, driver("type-only", &[(3, ANY)], &log));
    add(&*bus, driver("two", &[(4, 4), (5, 5)], &log));
    for (k, dev, vendor) in [
        (1, 3, 9),
        (2, 3, 1),
        (3, 7, 9),
        (4, 5, 5),
        (5, 4, 5),
        (6, 6, 6),
    ] {
        plug(&*bus, k, dev, vendor);
    }
    let got: Vec<Option<DriverName>> = (1..=6).map(|k| bus.driver_of(key(k))).collect();
    let want = [
        Some(name("vendor-only")),
        Some(name("type-only")),
        Some(name("vendor-only")),
        Some(name("two")),
        None,
        None,
    ];
    assert_eq!(got, want, "bindings by pattern");
}

/// A zero key is `invalid-key`, a device type 0 or ANY `invalid-id`, a bad name
/// `invalid-name`, an empty table `invalid-id`, checked in that order (key then id; name then
/// table), and no callback runs.
pub fn invalid_arguments_are_refused_in_order(make: BusFactory<'_>) {
    assert_eq!(Key::new(0).unwrap_err().kind(), ErrorKind::InvalidKey);
    for dev in [0, ANY] {
        assert_eq!(
            DeviceId::new(dev, 1).unwrap_err().kind(),
            ErrorKind::InvalidId
        );
    }
    for bad in ["", "Net", "net.0", "a b", "é", &"n".repeat(33)] {
        assert_eq!(
            DriverName::new(bad).unwrap_err().kind(),
            ErrorKind::InvalidName,
            "{bad:?}"
        );
    }
    assert!(DriverName::new(&"n".repeat(32)).is_ok());
    assert_eq!(
        IdTable::new(Vec::new()).unwrap_err().kind(),
        ErrorKind::InvalidId
    );
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("all", &[(ANY, ANY)], &log));
    for (line, kind) in [
        ("register device 0 id 0:1", ErrorKind::InvalidKey),
        ("register device 1 id 0:1", ErrorKind::InvalidId),
        ("register device 1 id *:1", ErrorKind::InvalidId),
        ("register driver BAD", ErrorKind::InvalidName),
        ("register driver good", ErrorKind::InvalidId),
        ("unregister device 0", ErrorKind::InvalidKey),
        ("unregister driver BAD", ErrorKind::InvalidName),
    ] {
        let op = trace::parse(line).unwrap().remove(0);
        assert_eq!(trace::apply(&*bus, &log, &op), Outcome::Err(kind), "{line}");
    }
    assert_events("invalid arguments", &log.take(), &[]);
    assert_eq!(bus.population(), population(0, 1, 0));
}

/// A key or a name in use is refused with `duplicate`, no callback runs, the refused one is
/// handed back and the registered one untouched.
pub fn duplicates_are_refused_and_handed_back(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    let first = add(&*bus, driver("net", &[(1, ANY)], &log));
    plug(&*bus, 1, 1, 1);
    log.take();
    let again = device(1, 1, 2);
    match bus.register_device(again.clone()) {
        Err(RegisterError::Duplicate(back)) => assert!(Arc::ptr_eq(&back, &again)),
        other => panic!(
            "a second device 1: expected duplicate, got {:?}",
            other.map_err(|e| e.kind())
        ),
    }
    let second: Arc<dyn Driver> = Arc::new(driver("net", &[(ANY, ANY)], &log));
    match bus.register_driver(name("net"), second.clone()) {
        Err(RegisterError::Duplicate(back)) => assert!(Arc::ptr_eq(&back, &second)),
        other => panic!(
            "a second net: expected duplicate, got {:?}",
            other.map_err(|e| e.kind())
        ),
    }
    assert_events("duplicates", &log.take(), &[]);
    assert_eq!(bus.driver_of(key(1)), Some(name("net")));
    let kept = bus.unregister_driver(name("net")).unwrap();
    let kept = (kept as Arc<dyn Any + Send + Sync>)
        .downcast::<RecordingDriver>()
        .unwrap();
    assert!(
        Arc::ptr_eq(&kept, &first),
        "the registered driver was replaced"
    );
    assert_eq!(
        Arc::strong_count(&again),
        1,
        "the bus kept a refused device"
    );
    assert_eq!(
        Arc::strong_count(&second),
        1,
        "the bus kept a refused driver"
    );
}

/// Unregistering a bound device runs its driver's `remove` and unbinds it; an unbound one runs
/// no callback; an unknown key is `not-registered`.
pub fn unregister_device_removes_it_from_its_driver(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("net", &[(1, ANY)], &log));
    plug(&*bus, 1, 1, 1);
    plug(&*bus, 2, 2, 1);
    log.take();
    let back = bus.unregister_device(key(1)).unwrap();
    assert_eq!(back.key(), key(1));
    assert_events("bound device leaves", &log.take(), &["driver net remove 1"]);
    bus.unregister_device(key(2)).unwrap();
    assert_events("unbound device leaves", &log.take(), &[]);
    assert_eq!(
        bus.unregister_device(key(1)).unwrap_err().kind(),
        ErrorKind::NotRegistered
    );
    assert_eq!(bus.bound_count(name("net")), Some(0));
    assert_eq!(bus.population(), population(0, 1, 0));
}

/// Unregistering a driver removes it from its devices most recently bound first; they stay
/// registered and unbound; an unknown name is `not-registered`.
pub fn unregister_driver_removes_most_recent_first(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    plug(&*bus, 5, 1, 1);
    plug(&*bus, 3, 1, 1);
    add(&*bus, driver("net", &[(1, ANY)], &log)); // binds 5 then 3
    plug(&*bus, 8, 1, 1); // then 8
    plug(&*bus, 1, 1, 1); // then 1
    log.take();
    bus.unregister_driver(name("net")).unwrap();
    assert_events(
        "driver leaves",
        &log.take(),
        &[
            "driver net remove 1",
            "driver net remove 8",
            "driver net remove 3",
            "driver net remove 5",
        ],
    );
    for k in [5, 3, 8, 1] {
        assert!(
            bus.has_device(key(k)) && bus.driver_of(key(k)).is_none(),
            "device {k}"
        );
    }
    assert_eq!(bus.population(), population(4, 0, 0));
    assert_eq!(
        bus.unregister_driver(name("net"))
            .map(drop)
            .unwrap_err()
            .kind(),
        ErrorKind::NotRegistered
    );
}

/// The devices a leaving driver had bound are not offered to the other drivers; a later
/// register_driver or rescan may bind them.
pub fn unregister_driver_does_not_reoffer(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("net", &[(1, ANY)], &log));
    add(&*bus, driver("spare", &[(1, ANY)], &log));
    plug(&*bus, 1, 1, 1);
    plug(&*bus, 2, 1, 1);
    log.take();
    bus.unregister_driver(name("net")).unwrap();
    assert_events(
        "driver leaves",
        &log.take(),
        &["driver net remove 2", "driver net remove 1"],
    );
    assert_eq!(
        bus.driver_of(key(1)),
        None,
        "device 1 was offered to another driver"
    );
    assert_eq!(bus.bound_count(name("spare")), Some(0));
    add(&*bus, driver("late", &[(1, 1)], &log));
    assert_events(
        "a new driver binds them",
        &log.take(),
        &["driver late probe 1", "driver late probe 2"],
    );
}

/// `rescan` offers every unbound device, in device order, to the drivers in driver order, as a
/// new device is offered; bound devices are skipped.
pub fn rescan_offers_unbound_devices_in_order(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    add(&*bus, driver("gone", &[(1, ANY)], &log));
    add(&*bus, driver("fails", &[(ANY, ANY)], &log).fail_probe(true));
    add(&*bus, driver("net", &[(1, 2)], &log));
    plug(&*bus, 4, 1, 1);
    plug(&*bus, 2, 2, 2);
    plug(&*bus, 6, 1, 2);
    add(&*bus, driver("blk", &[(2, ANY)], &log));
    assert_eq!(bus.population(), population(3, 4, 3));
    bus.unregister_driver(name("gone")).unwrap();
    log.take();
    bus.rescan().unwrap();
    assert_events(
        "rescan",
        &log.take(),
        &[
            "driver fails probe 4",
            "driver fails probe 6",
            "driver net probe 6",
        ],
    );
    assert_eq!(bus.driver_of(key(6)), Some(name("net")));
    assert_eq!(bus.driver_of(key(4)), None);
    bus.rescan().unwrap();
    assert_events("second rescan", &log.take(), &["driver fails probe 4"]);
}

/// Unregister hands back the very device or driver, and the bus keeps no reference to it.
pub fn unregister_hands_back_the_only_reference(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    let net = add(&*bus, driver("net", &[(1, ANY)], &log));
    let dev = device(1, 1, 1);
    bus.register_device(dev.clone()).unwrap();
    plug(&*bus, 2, 1, 1);
    let back = bus.unregister_device(key(1)).unwrap();
    assert!(
        Arc::ptr_eq(&back, &dev),
        "unregister_device returned another device"
    );
    drop(back);
    assert_eq!(
        Arc::strong_count(&dev),
        1,
        "the bus still holds the unregistered device"
    );
    let back = bus.unregister_driver(name("net")).unwrap();
    drop(back);
    assert_eq!(
        Arc::strong_count(&net),
        1,
        "the bus still holds the unregistered driver"
    );
}

/// The reads report what is registered and bound.
pub fn reads_follow_the_state(make: BusFactory<'_>) {
    let bus = make();
    let log = BusLog::new();
    assert!(!bus.has_device(key(1)) && !bus.has_driver(name("net")));
    assert_eq!(bus.bound_count(name("net")), None);
    assert_eq!(bus.population(), BusPopulation::default());
    add(&*bus, driver("net", &[(1, ANY)], &log));
    plug(&*bus, 1, 1, 1);
    plug(&*bus, 2, 1, 1);
    plug(&*bus, 3, 2, 1);
    assert!(bus.has_driver(name("net")) && bus.has_device(key(3)));
    assert_eq!(bus.bound_count(name("net")), Some(2));
    assert_eq!(bus.driver_of(key(2)), Some(name("net")));
    assert_eq!(bus.driver_of(key(3)), None);
    assert_eq!(bus.population(), population(3, 1, 2));
    bus.unregister_device(key(1)).unwrap();
    assert_eq!(bus.bound_count(name("net")), Some(1));
    assert_eq!(bus.population(), population(2, 1, 1));
}

/// The bus trace, holding every rule, gives the same callbacks and outcomes as the model.
pub fn bus_trace_matches_model(make: BusFactory<'_>) {
    let ops = trace::parse(BUS_TRACE).expect("the bus trace parses");
    assert_matches_model(&*make(), &ops);
}

/// Random sequences over few keys, names and ids match the model step by step.
pub fn random_sequences_match_model(make: BusFactory<'_>) {
    for seed in 0..20 {
        let mut rng = Lcg(seed);
        let ops: Vec<Op> = (0..150).map(|_| random_op(&mut rng)).collect();
        assert_matches_model(&*make(), &ops);
    }
}

// ---------------------------------------------------------------------------------------------
// Faults.

/// A panicking probe is a failed probe: the walk goes on (next driver, next device), the bus
/// ends consistent, then the panic reaches the caller.
pub fn panicking_probe_is_a_failed_probe(make: BusFactory<'_>) {
    let bus = make();
    watched("panicking probe", move || {
        let log = BusLog::new();
        let bad = add(
            &*bus,
            driver("bad", &[(1, ANY)], &log).panicking_on(Some(BusCallback::Probe)),
        );
        add(&*bus, driver("good", &[(1, 1)], &log));
        expect_panic("probe panics in a device walk", || {
            drop(bus.register_device(device(1, 1, 1)))
        });
        assert_events(
            "device walk",
            &log.take(),
            &["driver bad probe 1", "driver good probe 1"],
        );
        assert_eq!(bus.driver_of(key(1)), Some(name("good")));
        bus.unregister_driver(name("good")).unwrap();
        plug_quietly(&*bus, 2);
        log.take();
        expect_panic("probe panics in rescan", || {
            let _ = bus.rescan();
        });
        assert_events(
            "rescan",
            &log.take(),
            &["driver bad probe 1", "driver bad probe 2"],
        );
        expect_panic("probe panics in a driver walk", || {
            drop(bus.register_driver(
                name("second"),
                Arc::new(
                    driver("second", &[(ANY, ANY)], &log).panicking_on(Some(BusCallback::Probe)),
                ),
            ))
        });
        assert_events(
            "driver walk",
            &log.take(),
            &["driver second probe 1", "driver second probe 2"],
        );
        assert!(
            bus.has_driver(name("second")),
            "the walk's driver stays registered"
        );
        assert_eq!(bus.population(), population(2, 2, 0));
        drop(bus.unregister_driver(name("bad")).unwrap());
        assert_eq!(
            Arc::strong_count(&bad),
            1,
            "the bus kept the panicking driver"
        );
        add(&*bus, driver("fine", &[(1, ANY)], &log));
        assert_eq!(bus.population(), population(2, 2, 2));
    });
}

/// Registers device `k` of id 1:1 while a panicking driver is registered: the panic is
/// expected and swallowed.
fn plug_quietly(bus: &dyn Bus, k: u64) {
    let _ = catch_unwind(AssertUnwindSafe(|| bus.register_device(device(k, 1, 1))));
    assert!(bus.has_device(key(k)));
}

/// A panicking remove still unbinds: the unregister completes, then the panic reaches the
/// caller.
pub fn panicking_remove_still_unbinds(make: BusFactory<'_>) {
    let bus = make();
    watched("panicking remove", move || {
        let log = BusLog::new();
        let bad = add(
            &*bus,
            driver("bad", &[(1, ANY)], &log).panicking_on(Some(BusCallback::Remove)),
        );
        for k in 1..=3 {
            plug(&*bus, k, 1, 1);
        }
        log.take();
        plug(&*bus, 4, 1, 1);
        expect_panic("remove panics in unregister_device", || {
            drop(bus.unregister_device(key(4)))
        });
        assert!(!bus.has_device(key(4)), "the unregister did not complete");
        expect_panic("remove panics in unregister_driver", || {
            drop(bus.unregister_driver(name("bad")))
        });
        assert_events(
            "removes",
            &log.take(),
            &[
                "driver bad probe 4",
                "driver bad remove 4",
                "driver bad remove 3",
                "driver bad remove 2",
                "driver bad remove 1",
            ],
        );
        assert!(!bus.has_driver(name("bad")));
        assert_eq!(bus.population(), population(3, 0, 0));
        assert_eq!(
            Arc::strong_count(&bad),
            1,
            "the bus kept the unregistered driver"
        );
        add(&*bus, driver("good", &[(1, ANY)], &log));
        assert_eq!(bus.population(), population(3, 1, 3));
    });
}

/// Runs `hook` in `callback` of a driver `me` matching 1:*, with the bus reachable; returns
/// what the hook recorded.
fn with_reentrant_hook(
    bus: &Arc<dyn Bus>,
    hook: impl Fn(&dyn Bus, &Device, &Mutex<Vec<String>>) + Send + Sync + 'static,
    callback: BusCallback,
) -> (BusHook, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let weak = Arc::downgrade(bus);
    let out = seen.clone();
    let hook: BusHook = Arc::new(move |_driver, cb, device| {
        if cb != callback {
            return;
        }
        if let Some(bus) = weak.upgrade() {
            hook(&*bus, device, &out);
        }
    });
    (hook, seen)
}

/// From a probe or remove, a call about the same device, or unregistering the driver being
/// called, fails with `reentrant`, never a deadlock; reads work.
pub fn reentrant_call_about_same_device_is_refused(make: BusFactory<'_>) {
    for callback in [BusCallback::Probe, BusCallback::Remove] {
        let bus = make();
        let (hook, seen) = with_reentrant_hook(
            &bus,
            |bus, device, out| {
                let mut out = out.lock().unwrap();
                let again = Arc::new(Device::new(device.key(), device.id()));
                out.push(format!(
                    "register same device: {:?}",
                    bus.register_device(again).map_err(|e| e.kind())
                ));
                out.push(format!(
                    "unregister same device: {:?}",
                    bus.unregister_device(device.key())
                        .map(drop)
                        .map_err(|e| e.kind())
                ));
                out.push(format!(
                    "unregister own driver: {:?}",
                    bus.unregister_driver(name("me"))
                        .map(drop)
                        .map_err(|e| e.kind())
                ));
                // Reads return; what they see is the backend's to document.
                let _ = (
                    bus.driver_of(device.key()),
                    bus.has_device(device.key()),
                    bus.bound_count(name("me")),
                    bus.has_driver(name("me")),
                    bus.population(),
                );
            },
            callback,
        );
        let b = bus.clone();
        watched("re-entrant call, same device", move || {
            let log = BusLog::new();
            add(&*b, driver("me", &[(1, ANY)], &log).with_hook(hook));
            plug(&*b, 1, 1, 1);
            drop(b.unregister_device(key(1)).unwrap());
            assert_events(
                "re-entrant",
                &log.take(),
                &["driver me probe 1", "driver me remove 1"],
            );
            assert!(b.has_driver(name("me")) && !b.has_device(key(1)));
        });
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            3,
            "the hook ran once in {}: {seen:?}",
            callback.as_str()
        );
        for line in seen.iter() {
            assert!(
                line.ends_with("Err(Reentrant)"),
                "from {}: a call about the same device or driver must fail with reentrant: {line}",
                callback.as_str()
            );
        }
    }
}

/// From a probe, registering and unregistering other devices and drivers, and rescan, work or
/// fail with `reentrant`, never deadlock, and the state agrees with what they returned.
pub fn reentrant_call_elsewhere_never_deadlocks(make: BusFactory<'_>) {
    let bus = make();
    let (hook, seen) = with_reentrant_hook(
        &bus,
        |bus, device, out| {
            if device.key() != key(1) {
                return;
            }
            let log = BusLog::new();
            let mut out = out.lock().unwrap();
            let outcomes = [
                bus.register_device(self::device(2, 1, 1))
                    .map_err(|e| e.kind()),
                bus.unregister_device(key(3))
                    .map(drop)
                    .map_err(|e| e.kind()),
                bus.register_driver(name("new"), Arc::new(driver("new", &[(9, 9)], &log)))
                    .map_err(|e| e.kind()),
                bus.unregister_driver(name("other"))
                    .map(drop)
                    .map_err(|e| e.kind()),
                bus.rescan().map_err(|e| e.kind()),
            ];
            out.extend(outcomes.iter().map(|o| format!("{o:?}")));
        },
        BusCallback::Probe,
    );
    let b = bus.clone();
    watched("re-entrant call, elsewhere", move || {
        let log = BusLog::new();
        add(&*b, driver("other", &[(3, ANY)], &log));
        plug(&*b, 3, 3, 3);
        add(&*b, driver("me", &[(1, ANY)], &log).with_hook(hook));
        plug(&*b, 1, 1, 1);
        assert_eq!(b.driver_of(key(1)), Some(name("me")));
    });
    let seen = seen.lock().unwrap();
    let expect = [
        "device 2 registered",
        "device 3 gone",
        "driver new registered",
        "driver other gone",
        "rescan",
    ];
    let state = [
        bus.has_device(key(2)),
        !bus.has_device(key(3)),
        bus.has_driver(name("new")),
        !bus.has_driver(name("other")),
        true,
    ];
    assert_eq!(seen.len(), 5, "{seen:?}");
    for ((outcome, what), done) in seen.iter().zip(expect).zip(state) {
        match outcome.as_str() {
            "Ok(())" => assert!(done, "{what}: returned ok but the state disagrees"),
            "Err(Reentrant)" => {
                assert!(what == "rescan" || !done, "{what}: refused but done anyway")
            }
            other => {
                panic!("{what}: a re-entrant call may work or fail with reentrant, not {other}")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent cases.

/// A device and the only matching driver registering at the same time end with exactly one
/// probe and the device bound, never zero, never two.
pub fn racing_device_and_driver_bind_exactly_once(make: BusFactory<'_>) {
    let buses: Vec<Arc<dyn Bus>> = (0..300).map(|_| make()).collect();
    watched("racing device and driver", move || {
        for (round, bus) in (0u64..).zip(buses) {
            let log = BusLog::new();
            let barrier = Barrier::new(2);
            thread::scope(|s| {
                s.spawn(|| {
                    barrier.wait();
                    plug(&*bus, 1 + round, 1, 1);
                });
                s.spawn(|| {
                    barrier.wait();
                    add(&*bus, driver("net", &[(1, ANY)], &log));
                });
            });
            let events = log.take();
            assert_eq!(
                lines(&events),
                [format!("driver net probe {}", 1 + round)],
                "round {round}: racing registers must probe once"
            );
            assert_eq!(
                bus.driver_of(key(1 + round)),
                Some(name("net")),
                "round {round}"
            );
        }
    });
}

/// What [`churn`] saw.
struct Churned {
    log: Arc<BusLog>,
    retired: Vec<Arc<RecordingDriver>>,
    keys: Vec<u64>,
}

/// Devices register and unregister on two threads while a driver is reloaded (unregistered and
/// registered again under a new name) on a third, then everything is unregistered.
fn churn(bus: Arc<dyn Bus>, what: &str) -> Churned {
    let log = BusLog::new();
    let retired = Mutex::new(Vec::new());
    let next_key = AtomicU64::new(1);
    let reloads = AtomicUsize::new(0);
    let current = Mutex::new(add(&*bus, driver("net-0", &[(1, ANY)], &log)));
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut mine = Vec::new();
                for i in 0..400 {
                    let k = next_key.fetch_add(1, Ordering::Relaxed);
                    plug(&*bus, k, 1, 1);
                    mine.push(k);
                    if i % 3 != 0 {
                        let k = mine.remove(0);
                        drop(bus.unregister_device(key(k)).unwrap());
                        log.device_gone(k);
                    }
                }
                for k in mine {
                    drop(bus.unregister_device(key(k)).unwrap());
                    log.device_gone(k);
                }
            });
        }
        s.spawn(|| {
            for generation in 1..=30 {
                let old = current.lock().unwrap().name();
                drop(bus.unregister_driver(old).unwrap());
                let old = std::mem::replace(
                    &mut *current.lock().unwrap(),
                    add(
                        &*bus,
                        driver(&format!("net-{generation}"), &[(1, ANY)], &log),
                    ),
                );
                old.retire();
                retired.lock().unwrap().push(old);
                reloads.fetch_add(1, Ordering::Relaxed);
                thread::yield_now();
            }
        });
    });
    let last = current.into_inner().unwrap();
    drop(bus.unregister_driver(last.name()).unwrap());
    last.retire();
    let mut retired = retired.into_inner().unwrap();
    retired.push(last);
    assert_eq!(
        bus.population(),
        BusPopulation::default(),
        "{what}: everything was unregistered"
    );
    // A backend that defers callbacks past the return would make them show up later: give them
    // time to, before counting (this waits; it asserts no timing).
    thread::sleep(Duration::from_millis(50));
    Churned {
        log,
        retired,
        keys: (1..next_key.load(Ordering::Relaxed)).collect(),
    }
}

/// A driver reloaded while its devices register and unregister: every device's callbacks are
/// whole probe/remove pairs by one driver, never overlapping, and every bind is undone once.
pub fn driver_reload_while_devices_churn(make: BusFactory<'_>) {
    let bus = make();
    watched("driver reload while devices churn", move || {
        let churned = churn(bus, "reload");
        assert_eq!(
            churned.log.overlaps(),
            0,
            "callbacks about one device overlapped"
        );
        let histories = by_key(&churned.log.take());
        let mut binds = 0;
        for k in &churned.keys {
            let events = histories.get(k).map_or(&[][..], Vec::as_slice);
            binds += check_device_history(*k, events, true).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(binds > 0, "no device was ever bound");
    });
}

/// Once `unregister_driver` has returned, the driver is never called again; once
/// `unregister_device` has returned, no callback is made about the device.
pub fn no_call_after_return(make: BusFactory<'_>) {
    let bus = make();
    watched("no call after return", move || {
        let churned = churn(bus, "late calls");
        let late: usize = churned.retired.iter().map(|d| d.late_calls()).sum();
        assert_eq!(
            late, 0,
            "{late} callbacks reached drivers after their unregister returned"
        );
        assert_eq!(
            churned.log.late_calls(),
            0,
            "callbacks were made about devices after their unregister returned"
        );
    });
}

/// Devices register concurrently while the first matching driver panics in every probe: each
/// registration's panic reaches its caller, each device ends bound to the next driver, and the
/// bus stays consistent.
pub fn panicking_probes_under_concurrency(make: BusFactory<'_>) {
    let bus = make();
    watched("panicking probes under concurrency", move || {
        let log = BusLog::new();
        add(
            &*bus,
            driver("bad", &[(1, ANY)], &log).panicking_on(Some(BusCallback::Probe)),
        );
        add(&*bus, driver("good", &[(1, ANY)], &log));
        thread::scope(|s| {
            for t in 0..3u64 {
                let bus = &bus;
                s.spawn(move || {
                    for i in 0..200 {
                        let k = 1 + t * 1_000 + i;
                        expect_panic("bad probe", || drop(bus.register_device(device(k, 1, 1))));
                        assert_eq!(bus.driver_of(key(k)), Some(name("good")), "device {k}");
                    }
                });
            }
        });
        assert_eq!(bus.population(), population(600, 2, 600));
        assert_eq!(bus.bound_count(name("good")), Some(600));
        assert_eq!(log.overlaps(), 0, "callbacks about one device overlapped");
    });
}

/// Counts of calls begun and returned, for the bounds of a concurrent read.
#[derive(Default)]
struct InFlight {
    begun: AtomicUsize,
    returned: AtomicUsize,
}

impl InFlight {
    fn run<T>(&self, call: impl FnOnce() -> T) -> T {
        self.begun.fetch_add(1, Ordering::SeqCst);
        let value = call();
        self.returned.fetch_add(1, Ordering::SeqCst);
        value
    }
}

/// Reads made while devices register and unregister and their driver is reloaded stay within
/// bounds: each count of `population` lies between what the calls returned before the read
/// began and what the calls begun before it ended allow, `bound` never exceeds `devices`' upper
/// bound, and `driver_of` names a driver that probed the device successfully (it was bound to
/// it at some instant).
pub fn reads_stay_within_bounds_during_writes(make: BusFactory<'_>) {
    let bus = make();
    watched("reads during writes", move || {
        let log = BusLog::new();
        let (registers, unregisters, drivers_in, drivers_out) = (
            InFlight::default(),
            InFlight::default(),
            InFlight::default(),
            InFlight::default(),
        );
        drivers_in.run(|| add(&*bus, driver("net-0", &[(1, ANY)], &log)));
        let writing = AtomicUsize::new(3);
        let next_key = AtomicU64::new(1);
        let seen: Mutex<Vec<(u64, DriverName)>> = Mutex::default();
        let reads = AtomicUsize::new(0);
        let start = Barrier::new(4);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    start.wait();
                    let mut mine = Vec::new();
                    for i in 0..300 {
                        let k = next_key.fetch_add(1, Ordering::SeqCst);
                        registers.run(|| plug(&*bus, k, 1, 1));
                        mine.push(k);
                        if i % 2 == 0 {
                            let k = mine.remove(0);
                            unregisters.run(|| drop(bus.unregister_device(key(k)).unwrap()));
                        }
                    }
                    for k in mine {
                        unregisters.run(|| drop(bus.unregister_device(key(k)).unwrap()));
                    }
                    writing.fetch_sub(1, Ordering::SeqCst);
                });
            }
            s.spawn(|| {
                start.wait();
                for generation in 1..=20 {
                    let old = name(&format!("net-{}", generation - 1));
                    drivers_out.run(|| drop(bus.unregister_driver(old).unwrap()));
                    let new = driver(&format!("net-{generation}"), &[(1, ANY)], &log);
                    drivers_in.run(|| add(&*bus, new));
                    thread::yield_now();
                }
                writing.fetch_sub(1, Ordering::SeqCst);
            });
            s.spawn(|| {
                start.wait();
                // Until the writers are done, and once more after.
                let mut last = false;
                while !last {
                    last = writing.load(Ordering::SeqCst) == 0;
                    // Returned counts first, begun counts last: the widest window.
                    let (reg_done, unreg_done) = (
                        registers.returned.load(Ordering::SeqCst),
                        unregisters.returned.load(Ordering::SeqCst),
                    );
                    let (drv_done, undrv_done) = (
                        drivers_in.returned.load(Ordering::SeqCst),
                        drivers_out.returned.load(Ordering::SeqCst),
                    );
                    let got = bus.population();
                    let k = 1 + reads.fetch_add(1, Ordering::Relaxed) as u64
                        % next_key.load(Ordering::SeqCst);
                    if let Some(driver) = bus.driver_of(key(k)) {
                        seen.lock().unwrap().push((k, driver));
                    }
                    let devices = (
                        reg_done as isize - unregisters.begun.load(Ordering::SeqCst) as isize,
                        registers.begun.load(Ordering::SeqCst) - unreg_done,
                    );
                    let drivers = (
                        drv_done as isize - drivers_out.begun.load(Ordering::SeqCst) as isize,
                        drivers_in.begun.load(Ordering::SeqCst) - undrv_done,
                    );
                    let within = |n: usize, (lo, hi): (isize, usize)| n as isize >= lo && n <= hi;
                    assert!(
                        within(got.devices, devices),
                        "devices {} outside {devices:?}",
                        got.devices
                    );
                    assert!(
                        within(got.drivers, drivers),
                        "drivers {} outside {drivers:?}",
                        got.drivers
                    );
                    assert!(
                        got.bound <= devices.1,
                        "bound {} above the devices' upper bound {}",
                        got.bound,
                        devices.1
                    );
                }
            });
        });
        let events = log.take();
        let seen = seen.into_inner().unwrap();
        for (k, driver) in seen {
            let probe = BusEvent {
                driver,
                callback: BusCallback::Probe,
                key: k,
            };
            assert!(
                events.contains(&probe),
                "driver_of({k}) named {driver}, which never bound it"
            );
        }
        let drivers = bus.population().drivers;
        assert_eq!(
            bus.population(),
            population(0, drivers, 0),
            "everything but the last driver was unregistered"
        );
    });
}
