//! Runs a bus scenario's plan on a backend's bus, one OS thread per actor, recording every
//! call (start, end, what it returned) and every callback, then checks the history.
//!
//! The run's configuration, progress, output and figures are the registry runner's
//! ([`RunConfig`], [`Progress`], [`RunOutput`], the [`RunResult`](bypass_reports::RunResult)).
//! Between the last two phases, with every thread waiting, the harness reads the bus's counts
//! and each device's driver (the quiet point); after the plan it unregisters whatever is left,
//! and checks that the bus holds nothing.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bypass_registry::bus::op::Outcome;
use bypass_registry::bus::{
    Bus, Device, Driver, ErrorKind, Key, Reentrant, RegisterError, UnregisterError,
};
use bypass_reports::schema::{Operation, RunDetails, ViolationKind};
use bypass_strategies::Backend;
use bypass_strategies::bus::BusVisitor;

use super::checker;
use super::history::{
    BusEnd, BusHistory, BusObserved, BusOpKind, BusOpRecord, DeviceLog, QuietBus, StressDriver,
};
use super::scenario::{self, BusAction, BusActor, BusPlan, Churn};
use crate::measure::{self, Latencies};
use crate::participant::OpScope;
use crate::runner::{
    Figures, Gate, Progress, RunConfig, RunError, RunOutput, open_gate, wait_gate,
};
use crate::violation::Violation;

/// Runs `config`'s bus scenario on `backend`'s bus, checks the history, and returns the
/// figures and violations.
pub fn run(
    backend: Backend,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    struct V<'a>(&'a RunConfig, &'a Progress);
    impl BusVisitor for V<'_> {
        type Output = Result<RunOutput, RunError>;
        fn visit<B: Bus + Default + 'static>(self) -> Result<RunOutput, RunError> {
            run_on(&B::default(), self.0, self.1)
        }
    }
    backend.visit_bus(V(config, progress))
}

/// Runs `config`'s bus scenario on `bus` (whatever `config.backend` says), checks the
/// history, and returns the figures and violations.
pub fn run_on<B: Bus + ?Sized>(
    bus: &B,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    let plan = scenario::plan(config.scenario, config.scale, config.seed, config.faults);
    progress.total.store(plan.ops(), Ordering::Relaxed);
    measure::reset_peak_rss();
    let run = execute(bus, &plan, config, progress)?;
    let check_start = Instant::now();
    // Every device key the run used has its own history checked.
    let devices = run
        .history
        .ops
        .iter()
        .filter(|op| !op.kind.is_walk())
        .map(|op| op.key)
        .collect::<std::collections::HashSet<_>>()
        .len() as u64;
    let violations = checker::check(&plan, run.history);
    let figures = Figures {
        backend: bus.name(),
        threads: run.threads,
        ops: run.ops,
        elapsed: run.elapsed,
        skipped: run.skipped,
        check: check_start.elapsed(),
    };
    Ok(RunOutput {
        result: figures.result(
            config,
            &run.latencies,
            violations.len(),
            RunDetails {
                chaos_seed: config.chaos,
                ..RunDetails::default()
            },
        ),
        violations,
        tokens: devices,
    })
}

struct Executed {
    history: BusHistory,
    latencies: Latencies,
    elapsed: Duration,
    ops: u64,
    skipped: u64,
    threads: usize,
}

/// What one worker thread brings back.
#[derive(Default)]
struct Worker {
    ops: Vec<BusOpRecord>,
    devices: Vec<Arc<Device>>,
    drivers: Vec<Arc<StressDriver>>,
    violations: Vec<Violation>,
    skipped: u64,
}

/// The state one thread needs to make recorded calls.
struct Caller<'a, B: ?Sized> {
    bus: &'a B,
    plan: &'a BusPlan,
    logs: &'a Arc<[DeviceLog]>,
    clock: Instant,
    callback_cost: Duration,
    next_id: u64,
    /// The devices this thread registered and has not unregistered, by key.
    devices: HashMap<u64, Arc<Device>>,
    /// The driver instance this thread registered, by driver, until unregistered.
    drivers: HashMap<usize, Arc<StressDriver>>,
    out: Worker,
}

fn key(k: u64) -> Key {
    Key::new(k).expect("plans use keys from 1")
}

impl<B: Bus + ?Sized> Caller<'_, B> {
    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Makes bus call `call`, its callbacks attributed to it, a callback's panic caught, and
    /// records it; returns what it gave back.
    fn call<T>(
        &mut self,
        key: u64,
        kind: BusOpKind,
        call: impl FnOnce(&B) -> T,
        observe: impl FnOnce(&std::thread::Result<T>) -> BusObserved,
    ) -> std::thread::Result<T> {
        self.next_id += 1;
        let id = self.next_id;
        let invoke = self.now();
        let result = {
            let _scope = OpScope::enter(id);
            catch_unwind(AssertUnwindSafe(|| call(self.bus)))
        };
        let response = self.now();
        let observed = observe(&result);
        self.out.ops.push(BusOpRecord {
            id,
            key,
            kind,
            invoke,
            response,
            observed,
        });
        result
    }

    fn handed_back(&mut self, key: Option<u64>, message: String) {
        self.out
            .violations
            .push(Violation::new(ViolationKind::HandedBack, key, message));
    }

    fn act(&mut self, action: BusAction) {
        match action {
            BusAction::RegisterDevice { key: k, id } => {
                let device = Arc::new(Device::new(key(k), id));
                self.out.devices.push(Arc::clone(&device));
                let mine = Arc::clone(&device);
                let result = self.call(
                    k,
                    BusOpKind::RegisterDevice(id),
                    |bus| bus.register_device(device),
                    outcome_of,
                );
                match result {
                    Ok(Err(refused)) => {
                        if !Arc::ptr_eq(&refused.into_inner(), &mine) {
                            self.handed_back(
                                Some(k),
                                format!("a refused registration of device {k} handed back another device"),
                            );
                        }
                    }
                    _ => {
                        self.devices.insert(k, mine);
                    }
                }
            }
            BusAction::UnregisterDevice { key: k } => {
                let result = self.call(
                    k,
                    BusOpKind::UnregisterDevice,
                    |bus| bus.unregister_device(key(k)),
                    outcome_of,
                );
                if let Ok(Ok(back)) = result {
                    self.logs[k as usize].gone.store(true, Ordering::SeqCst);
                    let mine = self.devices.remove(&k);
                    if !mine.is_some_and(|mine| Arc::ptr_eq(&mine, &back)) {
                        self.handed_back(
                            Some(k),
                            format!("unregister device {k} handed back another device"),
                        );
                    }
                }
            }
            BusAction::RegisterDriver { driver, instance } => {
                let spec = &self.plan.drivers[driver];
                let new = Arc::new(StressDriver::new(
                    instance,
                    spec.name,
                    spec.table.clone(),
                    self.plan.seed,
                    self.plan.faults,
                    self.callback_cost,
                    Arc::clone(self.logs),
                ));
                self.out.drivers.push(Arc::clone(&new));
                let name = spec.name;
                let given: Arc<dyn Driver> = new.clone();
                let result = self.call(
                    0,
                    BusOpKind::RegisterDriver { driver, instance },
                    |bus| bus.register_driver(name, given),
                    outcome_of,
                );
                match result {
                    Ok(Err(refused)) => {
                        if !std::ptr::addr_eq(Arc::as_ptr(&refused.into_inner()), Arc::as_ptr(&new))
                        {
                            self.handed_back(
                                None,
                                format!("a refused registration of driver {name} handed back another driver"),
                            );
                        }
                        new.retire();
                    }
                    _ => {
                        self.drivers.insert(driver, new);
                    }
                }
            }
            BusAction::UnregisterDriver { driver } => {
                let name = self.plan.drivers[driver].name;
                let result = self.call(
                    0,
                    BusOpKind::UnregisterDriver { driver },
                    |bus| bus.unregister_driver(name),
                    outcome_of,
                );
                if let Ok(Ok(back)) = result {
                    match self.drivers.remove(&driver) {
                        Some(mine) if std::ptr::addr_eq(Arc::as_ptr(&back), Arc::as_ptr(&mine)) => {
                            mine.retire();
                        }
                        _ => self.handed_back(
                            None,
                            format!("unregister driver {name} handed back another driver"),
                        ),
                    }
                }
            }
            BusAction::Rescan => {
                let _ = self.call(0, BusOpKind::Rescan, |bus| bus.rescan(), outcome_of);
            }
            BusAction::DriverOf { key: k } => {
                let _ = self.call(
                    k,
                    BusOpKind::DriverOf,
                    |bus| bus.driver_of(key(k)),
                    |r| BusObserved::Driver(*r.as_ref().expect("reads run no callback")),
                );
            }
        }
    }

    /// Adds and removes devices at `churn`'s pace until `stop` is set or its keys run out,
    /// then removes the devices it holds.
    fn churn(&mut self, churn: Churn, stop: &AtomicBool) {
        let start = Instant::now();
        let mut held = std::collections::VecDeque::new();
        for (i, k) in (churn.first..churn.first + churn.keys).enumerate() {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let due = start + Duration::from_nanos(churn.interval_ns * 2 * i as u64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
            self.act(BusAction::RegisterDevice {
                key: k,
                id: churn.id,
            });
            held.push_back(k);
            if held.len() > churn.hold {
                let due = due + Duration::from_nanos(churn.interval_ns);
                thread::sleep(due.saturating_duration_since(Instant::now()));
                let k = held.pop_front().expect("holds more than none");
                self.act(BusAction::UnregisterDevice { key: k });
            }
        }
        for k in held {
            self.act(BusAction::UnregisterDevice { key: k });
        }
    }
}

/// An error of a bus call, with its trace kind.
trait HasKind {
    fn error_kind(&self) -> ErrorKind;
}

impl<T> HasKind for RegisterError<T> {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}

impl HasKind for UnregisterError {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}

impl HasKind for Reentrant {
    fn error_kind(&self) -> ErrorKind {
        self.kind()
    }
}

/// What a call that returns `Ok` or an error, or panics, returned.
fn outcome_of<T, E: HasKind>(r: &std::thread::Result<Result<T, E>>) -> BusObserved {
    BusObserved::Outcome(match r {
        Ok(Ok(_)) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Err(e.error_kind()),
        Err(_) => Outcome::Panicked,
    })
}

/// The latency key of a call.
fn operation(kind: BusOpKind) -> Operation {
    match kind {
        BusOpKind::RegisterDevice(_) => Operation::RegisterDevice,
        BusOpKind::UnregisterDevice => Operation::UnregisterDevice,
        BusOpKind::RegisterDriver { .. } => Operation::RegisterDriver,
        BusOpKind::UnregisterDriver { .. } => Operation::UnregisterDriver,
        BusOpKind::Rescan => Operation::Rescan,
        BusOpKind::DriverOf => Operation::Lookup,
    }
}

fn execute<B: Bus + ?Sized>(
    bus: &B,
    plan: &BusPlan,
    config: &RunConfig,
    progress: &Progress,
) -> Result<Executed, RunError> {
    let logs: Arc<[DeviceLog]> = (0..=plan.keys).map(|_| DeviceLog::default()).collect();
    let phases = plan.phases();
    assert!(
        plan.actors.iter().all(|a| a.phases.len() == phases),
        "every actor of a plan has the same phases"
    );
    let threads = config
        .threads
        .unwrap_or(plan.actors.len())
        .clamp(1, plan.actors.len().max(1));
    // The quiet point: between the last two phases, with every thread waiting.
    let quiet_after = phases.checked_sub(2);
    let barrier = Barrier::new(threads + 1);
    let gate = (Mutex::new(Gate::Wait), Condvar::new());
    // Set when the first actor has finished each phase: the churners' signal to stop.
    let lead_done: Vec<AtomicBool> = (0..phases).map(|_| AtomicBool::new(false)).collect();
    let clock = Instant::now();
    let deadline = config.time_cap.map(|cap| (cap, AtomicBool::new(false)));
    let skipped_total = AtomicU64::new(0);
    let mut spawn_error = None;
    let mut workers: Vec<Worker> = Vec::with_capacity(threads);
    let mut elapsed = Duration::ZERO;
    let mut quiet = QuietBus::default();
    let mut quiet_ops = Vec::new();
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (logs, barrier, gate, lead_done, deadline, skipped_total) = (
                &logs,
                &barrier,
                &gate,
                &lead_done,
                &deadline,
                &skipped_total,
            );
            let mine: Vec<(usize, &BusActor)> = plan
                .actors
                .iter()
                .enumerate()
                .skip(i)
                .step_by(threads)
                .collect();
            let handle = thread::Builder::new()
                .name(format!("bypass-bus-{i}"))
                // Plans need little stack; 4,000 threads of the default 2 MiB would not.
                .stack_size(256 * 1024)
                .spawn_scoped(s, move || {
                    if !wait_gate(gate) {
                        return None;
                    }
                    crate::chaos::seed_thread(config.chaos, i as u64);
                    let mut caller = Caller {
                        bus,
                        plan,
                        logs,
                        clock,
                        callback_cost: config.callback_cost,
                        next_id: (i as u64 + 1) << 40,
                        devices: HashMap::new(),
                        drivers: HashMap::new(),
                        out: Worker::default(),
                    };
                    let capped = || {
                        deadline.as_ref().is_some_and(|(cap, hit)| {
                            let over = hit.load(Ordering::Relaxed) || clock.elapsed() > *cap;
                            hit.store(over, Ordering::Relaxed);
                            over
                        })
                    };
                    barrier.wait();
                    for (phase, lead) in lead_done.iter().enumerate() {
                        let mut done = 0;
                        for &(index, actor) in &mine {
                            for &action in &actor.phases[phase] {
                                if capped() {
                                    caller.out.skipped += 1;
                                    continue;
                                }
                                crate::chaos::pause();
                                caller.act(action);
                                done += 1;
                                if done % 256 == 0 {
                                    progress.done.fetch_add(256, Ordering::Relaxed);
                                }
                            }
                            if let Some(churn) = actor.churn.filter(|c| c.phase == phase) {
                                caller.churn(churn, lead);
                            }
                            if index == 0 {
                                lead.store(true, Ordering::Release);
                            }
                        }
                        progress.done.fetch_add(done % 256, Ordering::Relaxed);
                        barrier.wait();
                        if Some(phase) == quiet_after {
                            barrier.wait();
                        }
                    }
                    skipped_total.fetch_add(caller.out.skipped, Ordering::Relaxed);
                    Some(caller.out)
                });
            match handle {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    spawn_error = Some(RunError::Spawn {
                        threads,
                        started: i,
                        error,
                    });
                    open_gate(gate, Gate::Abort);
                    return;
                }
            }
        }
        open_gate(&gate, Gate::Go);
        barrier.wait();
        let start = Instant::now();
        let mut quiet_time = Duration::ZERO;
        for phase in 0..phases {
            barrier.wait();
            if Some(phase) == quiet_after {
                let quiet_start = Instant::now();
                (quiet, quiet_ops) = quiet_reads(bus, plan, logs.clone(), clock, threads);
                quiet_time = quiet_start.elapsed();
                barrier.wait();
            }
        }
        elapsed = start.elapsed().saturating_sub(quiet_time);
        for handle in handles {
            match handle.join() {
                Ok(w) => workers.extend(w),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    if let Some(error) = spawn_error {
        return Err(error);
    }

    let mut latencies = Latencies::new();
    let mut history = BusHistory::default();
    let mut devices = Vec::new();
    let mut drivers = Vec::new();
    let mut skipped = 0;
    for w in workers {
        for op in &w.ops {
            latencies.record(operation(op.kind), op.response - op.invoke);
        }
        history.ops.extend(w.ops);
        history.violations.extend(w.violations);
        devices.extend(w.devices);
        drivers.extend(w.drivers);
        skipped += w.skipped;
    }
    let ops = latencies.count();
    history.ops.extend(quiet_ops);
    history.quiet = Some(quiet);

    // Quiet again: unregister what the plan left (a capped run leaves some), recorded.
    let mut caller = Caller {
        bus,
        plan,
        logs: &logs,
        clock,
        callback_cost: config.callback_cost,
        next_id: (threads as u64 + 2) << 40,
        devices: devices
            .iter()
            .map(|d| (d.key().get(), Arc::clone(d)))
            .collect(),
        drivers: HashMap::new(),
        out: Worker::default(),
    };
    for k in 1..=plan.keys {
        if bus.has_device(key(k)) {
            caller.act(BusAction::UnregisterDevice { key: k });
        }
    }
    for (driver, spec) in plan.drivers.iter().enumerate() {
        if bus.has_driver(spec.name) {
            // The instance registered last under this name is the one the bus holds.
            if let Some(d) = drivers.iter().rev().find(|d| d.name == spec.name) {
                caller.drivers.insert(driver, Arc::clone(d));
            }
            caller.act(BusAction::UnregisterDriver { driver });
        }
    }
    history.ops.extend(caller.out.ops);
    history.violations.extend(caller.out.violations);
    drop(caller.devices);
    drop(caller.drivers);
    history.end = BusEnd {
        left: bus.population(),
        devices_held: devices.iter().filter(|d| Arc::strong_count(d) > 1).count(),
        drivers_held: drivers.iter().filter(|d| Arc::strong_count(d) > 1).count(),
        late_driver_calls: drivers
            .iter()
            .map(|d| u64::from(d.late.load(Ordering::SeqCst)))
            .sum(),
    };
    history.logs = Some(logs);
    Ok(Executed {
        history,
        latencies,
        elapsed,
        ops,
        skipped: skipped.max(skipped_total.load(Ordering::Relaxed)),
        threads,
    })
}

/// At the quiet point: the population, each registered driver's count and each device's
/// driver, the reads recorded for the checker.
fn quiet_reads<B: Bus + ?Sized>(
    bus: &B,
    plan: &BusPlan,
    logs: Arc<[DeviceLog]>,
    clock: Instant,
    threads: usize,
) -> (QuietBus, Vec<BusOpRecord>) {
    let mut caller = Caller {
        bus,
        plan,
        logs: &logs,
        clock,
        callback_cost: Duration::ZERO,
        next_id: (threads as u64 + 1) << 40,
        devices: HashMap::new(),
        drivers: HashMap::new(),
        out: Worker::default(),
    };
    let mut quiet = QuietBus {
        population: bus.population(),
        bound_counts: plan
            .drivers
            .iter()
            .filter_map(|d| Some((d.name, bus.bound_count(d.name)?)))
            .collect(),
        named: HashMap::new(),
    };
    for k in 1..=plan.keys {
        caller.act(BusAction::DriverOf { key: k });
    }
    for op in &caller.out.ops {
        if let BusObserved::Driver(Some(name)) = op.observed {
            *quiet.named.entry(name).or_default() += 1;
        }
    }
    (quiet, caller.out.ops)
}
