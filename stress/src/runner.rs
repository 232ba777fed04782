//! Runs a scenario's plan on a backend, one OS thread per actor. A checked run records every
//! operation (with its start and end on a common clock, and its outcome), every callback, and
//! the latency of each operation, for the checker; a measured run records only each thread's
//! latency histograms, so that its figures are the registry's rather than the recording's
//! ([`RunMode`]).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bypass_registry::memory::{self, Footprint};
use bypass_registry::op::{Behaviour, Outcome};
use bypass_registry::{CallbackError, Consumer, Producer, Registry, Side, Token};
use bypass_reports::schema::{Injected, Operation, RunDetails, RunMode, RunResult, ViolationKind};
use bypass_strategies::{Backend, Visitor};

use crate::history::{History, Observed, OpKind, OpRecord, PopRecord, QuietState, TokenLog};
use crate::measure::{self, Latencies};
use crate::participant::{Injections, OpScope, Participant, Setting};
use crate::scenario::{self, Action, Faults, Plan, Read, Scenario};
use crate::violation::Violation;
use crate::{alloc, chaos, checker};

/// What a run drives: a backend, or the harness's floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A backend of `bypass-strategies`.
    Backend(Backend),
    /// The plan's inserts and removes on a raw concurrent map with no protocol and no
    /// callbacks ([`Floor`](crate::floor::Floor)): what the harness costs by itself. Registry
    /// scenarios in measured mode only.
    Floor,
}

impl Subject {
    /// The name, as the command line and the results spell it (`floor` for the floor).
    pub fn name(self) -> &'static str {
        match self {
            Subject::Backend(b) => b.name(),
            Subject::Floor => crate::floor::NAME,
        }
    }
}

impl From<Backend> for Subject {
    fn from(backend: Backend) -> Subject {
        Subject::Backend(backend)
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Subject {
    type Err = String;
    /// A backend's name, or `floor`.
    fn from_str(name: &str) -> Result<Subject, String> {
        if name == crate::floor::NAME {
            return Ok(Subject::Floor);
        }
        name.parse()
            .map(Subject::Backend)
            .map_err(|e| format!("{e}, or {}", crate::floor::NAME))
    }
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The backend, or the floor.
    pub backend: Subject,
    /// What the run records: everything for the checker, or latencies only.
    pub mode: RunMode,
    /// The scenario.
    pub scenario: Scenario,
    /// OS threads; `None` is one per actor (VM, vCPU, device) of the scenario.
    pub threads: Option<usize>,
    /// The seed of the plan.
    pub seed: u64,
    /// Size relative to the contract's workloads (docs/registry.md).
    pub scale: f64,
    /// How long each callback busy-waits.
    pub callback_cost: Duration,
    /// Injected faults. Checked runs only.
    pub faults: Faults,
    /// Stop starting new operations after this long (the rest of the plan is skipped and the
    /// run is reported as capped).
    pub time_cap: Option<Duration>,
    /// The seed of the random yields and spins injected inside callbacks and between each
    /// thread's calls, to widen race windows; `None` injects none. Checked runs only.
    pub chaos: Option<u64>,
    /// After the run, measure whether a fresh registry gives its memory back
    /// ([`bypass_registry::memory`]); needs the counting allocator ([`crate::alloc`]) installed,
    /// and is skipped without it. Checked runs only.
    pub memory: bool,
}

/// Paired tokens each fill of the memory check registers.
const MEMORY_TOKENS: u64 = 2_000;

/// A run's figures and what the checker found.
#[derive(Debug)]
pub struct RunOutput {
    /// The figures.
    pub result: RunResult,
    /// Every broken guarantee, with a trace where one can be extracted.
    pub violations: Vec<Violation>,
    /// Tokens whose histories the checker verified.
    pub tokens: u64,
}

/// Progress shared with the thread that draws the bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Operations done so far.
    pub done: AtomicU64,
    /// Operations in the plan.
    pub total: AtomicU64,
}

/// Why a run could not be made.
#[derive(Debug)]
pub enum RunError {
    /// The machine refused to start one of the threads.
    Spawn {
        /// Threads asked for.
        threads: usize,
        /// Threads started before the refusal.
        started: usize,
        /// The system's error.
        error: std::io::Error,
    },
    /// The configuration asks for what no run makes (why, in words).
    Unsupported(&'static str),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn {
                threads,
                started,
                error,
            } => write!(
                f,
                "this machine could start only {started} of the {threads} threads asked for ({error}); ask for fewer with --threads"
            ),
            RunError::Unsupported(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `config`'s registry scenario on `backend`, checks the history if the run is checked,
/// and returns the figures and violations ([`crate::run`] takes any scenario and the floor).
pub fn run(
    backend: Backend,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    struct V<'a>(&'a RunConfig, &'a Progress);
    impl Visitor for V<'_> {
        type Output = Result<RunOutput, RunError>;
        fn visit<R: Registry + Default + 'static>(self) -> Result<RunOutput, RunError> {
            run_on(R::default, self.0, self.1)
        }
    }
    backend.visit(V(config, progress))
}

/// Runs `config`'s scenario on a registry made by `make` (whatever `config.backend` says).
/// Checked, it checks the history, measures the memory of fresh ones if `config.memory` says
/// so, and returns the figures and violations; measured, it returns the figures alone.
pub fn run_on<R: Registry>(
    make: impl Fn() -> R,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    match config.mode {
        RunMode::Checked => run_checked(make, config, progress),
        RunMode::Measured => run_measured(make(), config, progress),
    }
}

/// A measured run of `config` on `registry`: latencies and counts, no history, no faults,
/// chaos or memory check.
fn run_measured<R: Registry>(
    registry: R,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    let plan = scenario::plan(
        config.scenario,
        config.scale,
        config.seed,
        Faults::default(),
    );
    progress.total.store(plan.ops(), Ordering::Relaxed);
    measure::reset_peak_rss();
    let cost = config.callback_cost;
    // Each thread's participants, made before the clock starts and registered under every
    // token it registers.
    let driven = drive(&plan, config, progress, |_| Timer {
        registry: &registry,
        producer: Arc::new(Quiet(cost)),
        consumer: Arc::new(Quiet(cost)),
    })?;
    let mut latencies = Latencies::new();
    let mut skipped = 0;
    for (_, thread_latencies, thread_skipped) in &driven.workers {
        latencies.merge(thread_latencies);
        skipped += thread_skipped;
    }
    let figures = Figures {
        backend: registry.name(),
        threads: driven.threads,
        ops: latencies.count(),
        elapsed: driven.elapsed,
        skipped,
        check: Duration::ZERO,
    };
    let measured = RunConfig {
        faults: Faults::default(),
        chaos: None,
        ..config.clone()
    };
    Ok(RunOutput {
        result: figures.result(&measured, &latencies, 0, RunDetails::default()),
        violations: Vec::new(),
        tokens: 0,
    })
}

/// A checked run of `config` on a registry made by `make`.
fn run_checked<R: Registry>(
    make: impl Fn() -> R,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    let plan = scenario::plan(config.scenario, config.scale, config.seed, config.faults);
    progress.total.store(plan.ops(), Ordering::Relaxed);
    measure::reset_peak_rss();
    let registry = make();
    let run = execute(&registry, &plan, config, progress)?;
    let backend = registry.name().to_string();
    drop(registry);
    let tokens = run.history.quiet.len() as u64;
    let check_start = Instant::now();
    let mut violations = checker::check(run.history);
    let check = check_start.elapsed();
    let footprint = config.memory.then(|| memory_check(&make)).flatten();
    if let Some(leak) = footprint.as_ref().and_then(Footprint::leak) {
        violations.push(Violation::new(ViolationKind::MemoryLeak, None, leak));
    }
    let figures = Figures {
        backend: &backend,
        threads: run.threads,
        ops: run.ops,
        elapsed: run.elapsed,
        skipped: run.skipped,
        check,
    };
    let details = RunDetails {
        chaos_seed: config.chaos,
        injected: Some(run.injected),
        bytes_per_token: footprint.map(|f| f.per_token),
        mode: None,
    };
    Ok(RunOutput {
        result: figures.result(config, &run.latencies, violations.len(), details),
        violations,
        tokens,
    })
}

/// Measures registries made by `make` with the counting allocator, if it is installed.
fn memory_check<R: Registry>(make: impl Fn() -> R) -> Option<Footprint> {
    let window = alloc::Window::open();
    window
        .installed()
        .then(|| memory::footprint(make, &alloc::Heap(&window), MEMORY_TOKENS))
}

/// What a run measured, of either registry: what its [`RunResult`] is made of.
pub(crate) struct Figures<'a> {
    pub(crate) backend: &'a str,
    pub(crate) threads: usize,
    /// Operations of the plan made.
    pub(crate) ops: u64,
    /// Wall time of the plan.
    pub(crate) elapsed: Duration,
    /// Operations of the plan skipped by the time cap.
    pub(crate) skipped: u64,
    /// Time the checker took.
    pub(crate) check: Duration,
}

impl Figures<'_> {
    pub(crate) fn result(
        &self,
        config: &RunConfig,
        latencies: &Latencies,
        violations: usize,
        details: RunDetails,
    ) -> RunResult {
        let elapsed_s = self.elapsed.as_secs_f64();
        RunResult {
            backend: self.backend.to_string(),
            scenario: config.scenario,
            threads: self.threads,
            seed: config.seed,
            scale: config.scale,
            ops: self.ops,
            elapsed_s,
            ops_per_s: if elapsed_s > 0.0 {
                self.ops as f64 / elapsed_s
            } else {
                0.0
            },
            latency_ns: latencies.summary(),
            violations,
            peak_rss_bytes: measure::peak_rss_bytes(),
            machine: measure::machine(),
            capped: self.skipped > 0,
            skipped_ops: self.skipped,
            callback_cost_ns: config
                .callback_cost
                .as_nanos()
                .try_into()
                .unwrap_or(u64::MAX),
            fail_rate: config.faults.fail_rate,
            panic_rate: config.faults.panic_rate,
            check_s: self.check.as_secs_f64(),
            details: RunDetails {
                mode: Some(config.mode),
                ..details
            },
        }
    }
}

struct Executed {
    history: History,
    injected: Injected,
    latencies: Latencies,
    elapsed: Duration,
    ops: u64,
    skipped: u64,
    threads: usize,
}

/// The state one thread needs to make recorded calls.
struct Caller<'a, R> {
    registry: &'a R,
    logs: &'a [Arc<TokenLog>],
    touched: &'a [AtomicBool],
    clock: Instant,
    setting: &'a Setting,
    next_id: u64,
    ops: Vec<OpRecord>,
    pops: Vec<PopRecord>,
    participants: Vec<Arc<Participant>>,
    violations: Vec<Violation>,
}

/// Makes registry call `id`, its callbacks attributed to it, a callback's panic caught.
fn attributed<T>(id: u64, call: impl FnOnce() -> T) -> std::thread::Result<T> {
    let _scope = OpScope::enter(id);
    catch_unwind(AssertUnwindSafe(call))
}

fn token(id: u64) -> Token {
    Token::new(id).expect("plans use tokens from 1")
}

fn same_object(a: &(dyn Any + Send + Sync), b: &Participant) -> bool {
    std::ptr::addr_eq(a as *const (dyn Any + Send + Sync), b as *const Participant)
}

/// What a `producer(t)`/`consumer(t)` returned, or an unregister handed back: a participant of
/// this run, of `side` and token `t`.
fn identify(found: Arc<dyn Any + Send + Sync>, side: Side, t: u64) -> Result<Arc<Participant>, ()> {
    found
        .downcast::<Participant>()
        .ok()
        .filter(|p| p.side == side && p.token == t)
        .ok_or(())
}

impl<R: Registry> Caller<'_, R> {
    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Records call `id` on token `t`, started at `invoke` and returning now; returns its
    /// latency.
    fn record(
        &mut self,
        (id, t, invoke): (u64, u64, u64),
        kind: OpKind,
        observed: Observed,
    ) -> u64 {
        self.record_full(OpRecord {
            id,
            token: t,
            kind,
            behaviour: Behaviour::default(),
            invoke,
            response: 0,
            observed,
            handed: None,
        })
    }

    fn record_full(&mut self, mut op: OpRecord) -> u64 {
        op.response = self.now();
        self.ops.push(op);
        op.response - op.invoke
    }

    /// A fresh call id and the time it starts.
    fn start(&mut self) -> (u64, u64) {
        self.next_id += 1;
        (self.next_id, self.now())
    }

    /// Runs `action`; returns its latency kind and nanoseconds.
    fn call(&mut self, action: Action) -> (Operation, u64) {
        match action {
            Action::Register {
                side,
                token: t,
                behaviour,
            } => (Operation::Register, self.register(side, t, behaviour)),
            Action::Unregister { side, token: t } => {
                (Operation::Unregister, self.unregister(side, t))
            }
            Action::Lookup { token: t } => {
                let ns = self.read(t, Read::IsPaired).1 + self.read(t, Read::Who(Side::Producer)).1;
                (Operation::Lookup, ns)
            }
            Action::Read { token: t, read } => (Operation::Lookup, self.read(t, read).1),
            Action::Population => {
                let invoke = self.now();
                let population = self.registry.population();
                let response = self.now();
                self.pops.push(PopRecord {
                    invoke,
                    response,
                    population,
                });
                (Operation::Lookup, response - invoke)
            }
        }
    }

    fn register(&mut self, side: Side, t: u64, behaviour: Behaviour) -> u64 {
        self.touched[t as usize].store(true, Ordering::Relaxed);
        let (id, invoke) = self.start();
        let p = Arc::new(Participant::new(
            (side, t, id),
            behaviour,
            self.setting,
            self.logs[t as usize].clone(),
        ));
        self.participants.push(p.clone());
        let result = attributed(id, || match side {
            Side::Producer => self
                .registry
                .register_producer(token(t), p.clone())
                .map_err(|e| (e.kind(), e.into_participant() as Arc<dyn Any + Send + Sync>)),
            Side::Consumer => self
                .registry
                .register_consumer(token(t), p.clone())
                .map_err(|e| (e.kind(), e.into_participant() as Arc<dyn Any + Send + Sync>)),
        });
        let outcome = match result {
            Ok(Ok(())) => Outcome::Ok,
            Ok(Err((kind, back))) => {
                if !same_object(&*back, &p) {
                    self.violations.push(Violation::new(
                        ViolationKind::HandedBack,
                        Some(t),
                        format!("a refused {side} registration handed back another participant"),
                    ));
                }
                drop(back);
                p.retire();
                Outcome::Err(kind)
            }
            Err(_) => Outcome::Panicked,
        };
        self.record_full(OpRecord {
            id,
            token: t,
            kind: OpKind::Register(side),
            behaviour,
            invoke,
            response: 0,
            observed: Observed::Outcome(outcome),
            handed: None,
        })
    }

    fn unregister(&mut self, side: Side, t: u64) -> u64 {
        let (id, invoke) = self.start();
        let result = attributed(id, || match side {
            Side::Producer => self
                .registry
                .unregister_producer(token(t))
                .map(|p| p as Arc<dyn Any + Send + Sync>),
            Side::Consumer => self
                .registry
                .unregister_consumer(token(t))
                .map(|c| c as Arc<dyn Any + Send + Sync>),
        });
        let mut handed = None;
        let outcome = match result {
            Ok(Ok(back)) => {
                match identify(back, side, t) {
                    Ok(p) => {
                        p.handed_back.fetch_add(1, Ordering::SeqCst);
                        p.retire();
                        handed = Some(p.id);
                    }
                    Err(()) => self.violations.push(Violation::new(
                        ViolationKind::HandedBack,
                        Some(t),
                        format!(
                            "unregister {side} {t} handed back a participant of another token or side"
                        ),
                    )),
                }
                Outcome::Ok
            }
            Ok(Err(e)) => Outcome::Err(e.kind()),
            Err(_) => Outcome::Panicked,
        };
        self.record_full(OpRecord {
            id,
            token: t,
            kind: OpKind::Unregister(side),
            behaviour: Behaviour::default(),
            invoke,
            response: 0,
            observed: Observed::Outcome(outcome),
            handed,
        })
    }

    /// Makes `read` of token `t`; returns what it observed and its latency.
    fn read(&mut self, t: u64, read: Read) -> (Observed, u64) {
        let (id, invoke) = self.start();
        let (kind, observed) = match read {
            Read::IsPaired => (
                OpKind::IsPaired,
                Observed::Bool(self.registry.is_paired(token(t))),
            ),
            Read::Who(side) => {
                let found = match side {
                    Side::Producer => self
                        .registry
                        .producer(token(t))
                        .map(|p| p as Arc<dyn Any + Send + Sync>),
                    Side::Consumer => self
                        .registry
                        .consumer(token(t))
                        .map(|c| c as Arc<dyn Any + Send + Sync>),
                };
                let who = found.map(|found| match identify(found, side, t) {
                    Ok(p) => p.id,
                    Err(()) => {
                        self.violations.push(Violation::new(
                            ViolationKind::Lookup,
                            Some(t),
                            format!("{side}({t}) returned a participant of another token or side"),
                        ));
                        // No registration has this id: the checker reports the read too.
                        0
                    }
                });
                (OpKind::Who(side), Observed::Who(who))
            }
        };
        (observed, self.record((id, t, invoke), kind, observed))
    }
}

/// Holds the threads until all are started: then `Go`, or `Abort` if one could not be.
#[derive(Debug)]
pub(crate) enum Gate {
    Wait,
    Go,
    Abort,
}

pub(crate) fn wait_gate(gate: &(Mutex<Gate>, Condvar)) -> bool {
    let mut state = gate.0.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        match *state {
            Gate::Wait => state = gate.1.wait(state).unwrap_or_else(PoisonError::into_inner),
            Gate::Go => return true,
            Gate::Abort => return false,
        }
    }
}

pub(crate) fn open_gate(gate: &(Mutex<Gate>, Condvar), to: Gate) {
    *gate.0.lock().unwrap_or_else(PoisonError::into_inner) = to;
    gate.1.notify_all();
}

/// What a thread of a run does with each action of its plan.
trait Driver {
    /// Makes `action`; returns its latency kind and nanoseconds.
    fn call(&mut self, action: Action) -> (Operation, u64);
}

impl<R: Registry> Driver for Caller<'_, R> {
    fn call(&mut self, action: Action) -> (Operation, u64) {
        Caller::call(self, action)
    }
}

/// A participant of a measured run: its callbacks busy-wait the run's callback cost and
/// record nothing.
#[derive(Debug, Default)]
pub(crate) struct Quiet(pub(crate) Duration);

impl Quiet {
    fn spend(&self) {
        if !self.0.is_zero() {
            let start = Instant::now();
            while start.elapsed() < self.0 {
                std::hint::spin_loop();
            }
        }
    }
}

impl Producer for Quiet {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        self.spend();
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {
        self.spend();
    }
    fn stop(&self) {
        self.spend();
    }
    fn start(&self) {
        self.spend();
    }
}

impl Consumer for Quiet {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        self.spend();
        Ok(())
    }
    fn del_producer(&self, _: &dyn Producer) {
        self.spend();
    }
    fn stop(&self) {
        self.spend();
    }
    fn start(&self) {
        self.spend();
    }
}

/// One thread of a measured run: its calls timed, nothing else recorded; refusals and
/// lookups' answers dropped.
struct Timer<'a, R> {
    registry: &'a R,
    producer: Arc<dyn Producer>,
    consumer: Arc<dyn Consumer>,
}

impl<R: Registry> Driver for Timer<'_, R> {
    fn call(&mut self, action: Action) -> (Operation, u64) {
        let registry = self.registry;
        let start = Instant::now();
        let kind = match action {
            Action::Register {
                side: Side::Producer,
                token: t,
                ..
            } => {
                let _ = registry.register_producer(token(t), self.producer.clone());
                Operation::Register
            }
            Action::Register {
                side: Side::Consumer,
                token: t,
                ..
            } => {
                let _ = registry.register_consumer(token(t), self.consumer.clone());
                Operation::Register
            }
            Action::Unregister { side, token: t } => {
                match side {
                    Side::Producer => drop(registry.unregister_producer(token(t))),
                    Side::Consumer => drop(registry.unregister_consumer(token(t))),
                }
                Operation::Unregister
            }
            Action::Lookup { token: t } => {
                std::hint::black_box(registry.is_paired(token(t)));
                drop(std::hint::black_box(registry.producer(token(t))));
                Operation::Lookup
            }
            Action::Read { token: t, read } => {
                match read {
                    Read::IsPaired => drop(std::hint::black_box(registry.is_paired(token(t)))),
                    Read::Who(Side::Producer) => {
                        drop(std::hint::black_box(registry.producer(token(t))))
                    }
                    Read::Who(Side::Consumer) => {
                        drop(std::hint::black_box(registry.consumer(token(t))))
                    }
                }
                Operation::Lookup
            }
            Action::Population => {
                std::hint::black_box(registry.population());
                Operation::Lookup
            }
        };
        (kind, start.elapsed().as_nanos() as u64)
    }
}

/// The kind of operation `action` is, as its latency is recorded.
fn operation(action: Action) -> Operation {
    match action {
        Action::Register { .. } => Operation::Register,
        Action::Unregister { .. } => Operation::Unregister,
        Action::Lookup { .. } | Action::Read { .. } | Action::Population => Operation::Lookup,
    }
}

/// What [`drive`] brings back: per thread its driver, latencies and skipped operations.
struct Driven<D> {
    workers: Vec<(D, Latencies, u64)>,
    elapsed: Duration,
    threads: usize,
}

/// Runs `plan` on OS threads, one per actor unless `config.threads` says otherwise, each
/// calling through the driver `make` gives it (made before the clock starts), phase by phase
/// behind a barrier; times the plan from the start barrier to the last thread's end.
fn drive<D: Driver + Send>(
    plan: &Plan,
    config: &RunConfig,
    progress: &Progress,
    make: impl Fn(usize) -> D + Sync,
) -> Result<Driven<D>, RunError> {
    let phases = plan.actors.first().map_or(0, Vec::len);
    assert!(
        plan.actors.iter().all(|a| a.len() == phases),
        "every actor of a plan has the same phases"
    );
    let threads = config
        .threads
        .unwrap_or(plan.actors.len())
        .clamp(1, plan.actors.len().max(1));
    let barrier = Barrier::new(threads + 1);
    let gate = (Mutex::new(Gate::Wait), Condvar::new());
    let mut spawn_error = None;
    let deadline = config.time_cap.map(|cap| (cap, AtomicBool::new(false)));
    let mut workers = Vec::with_capacity(threads);
    let mut elapsed = Duration::ZERO;
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (barrier, deadline, gate, make) = (&barrier, &deadline, &gate, &make);
            let mine: Vec<&Vec<Vec<Action>>> =
                plan.actors.iter().skip(i).step_by(threads).collect();
            let handle = thread::Builder::new()
                .name(format!("bypass-{i}"))
                // Plans need little stack; 1,024 threads of the default 2 MiB would not.
                .stack_size(256 * 1024)
                .spawn_scoped(s, move || {
                    if !wait_gate(gate) {
                        return None;
                    }
                    chaos::seed_thread(config.chaos, i as u64);
                    let mut driver = make(i);
                    // The histograms of the kinds this thread makes, made before the clock
                    // starts.
                    let mut kinds: Vec<Operation> = Vec::new();
                    for &action in mine.iter().flat_map(|actor| actor.iter().flatten()) {
                        if !kinds.contains(&operation(action)) {
                            kinds.push(operation(action));
                        }
                    }
                    let mut latencies = Latencies::with(&kinds);
                    let mut skipped = 0;
                    let mut pending = 0;
                    barrier.wait();
                    let started = Instant::now();
                    for phase in 0..phases {
                        for actor in &mine {
                            for &action in &actor[phase] {
                                if let Some((cap, hit)) = deadline {
                                    if hit.load(Ordering::Relaxed) || started.elapsed() > *cap {
                                        hit.store(true, Ordering::Relaxed);
                                        skipped += 1;
                                        continue;
                                    }
                                }
                                chaos::pause();
                                let (kind, ns) = driver.call(action);
                                latencies.record(kind, ns);
                                pending += 1;
                                if pending == 256 {
                                    progress.done.fetch_add(pending, Ordering::Relaxed);
                                    pending = 0;
                                }
                            }
                        }
                        barrier.wait();
                    }
                    progress.done.fetch_add(pending, Ordering::Relaxed);
                    Some((driver, latencies, skipped))
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
        for _ in 0..phases {
            barrier.wait();
        }
        elapsed = start.elapsed();
        for handle in handles {
            match handle.join() {
                Ok(w) => workers.extend(w),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    match spawn_error {
        Some(error) => Err(error),
        None => Ok(Driven {
            workers,
            elapsed,
            threads,
        }),
    }
}

fn execute<R: Registry>(
    registry: &R,
    plan: &Plan,
    config: &RunConfig,
    progress: &Progress,
) -> Result<Executed, RunError> {
    let logs: Vec<Arc<TokenLog>> = (0..=plan.tokens).map(|_| Arc::default()).collect();
    let touched: Vec<AtomicBool> = (0..=plan.tokens).map(|_| AtomicBool::new(false)).collect();
    let clock = Instant::now();
    let setting = Setting {
        cost: config.callback_cost,
        injections: Arc::new(Injections::default()),
    };
    let driven = drive(plan, config, progress, |i| Caller {
        registry,
        logs: &logs,
        touched: &touched,
        clock,
        setting: &setting,
        next_id: (i as u64 + 1) << 40,
        ops: Vec::new(),
        pops: Vec::new(),
        participants: Vec::new(),
        violations: Vec::new(),
    })?;
    let (threads, elapsed) = (driven.threads, driven.elapsed);
    let mut latencies = Latencies::new();
    let mut history = History::default();
    let mut participants = Vec::new();
    let mut skipped = 0;
    for (caller, thread_latencies, thread_skipped) in driven.workers {
        latencies.merge(&thread_latencies);
        history.ops.extend(caller.ops);
        history.pops.extend(caller.pops);
        history.violations.extend(caller.violations);
        participants.extend(caller.participants);
        skipped += thread_skipped;
    }
    let ops = latencies.count();

    // Quiet now: read each token's pairing state, then tear down, both recorded in the
    // history for the checker.
    chaos::seed_thread(None, 0);
    let mut caller = Caller {
        registry,
        logs: &logs,
        touched: &touched,
        clock,
        setting: &setting,
        next_id: (threads as u64 + 1) << 40,
        ops: Vec::new(),
        pops: Vec::new(),
        participants: Vec::new(),
        violations: Vec::new(),
    };
    for t in (1..=plan.tokens).filter(|&t| touched[t as usize].load(Ordering::Relaxed)) {
        history.quiet.push(quiet_reads(&mut caller, t));
        caller.call(Action::Unregister {
            side: Side::Producer,
            token: t,
        });
        caller.call(Action::Unregister {
            side: Side::Consumer,
            token: t,
        });
    }
    history.ops.extend(caller.ops);
    history.violations.extend(caller.violations);
    history.left = registry.population();
    let injected = setting.injections.counted();
    history.participants = participants.iter().map(Participant::end).collect();
    history.logs = logs;
    Ok(Executed {
        history,
        injected,
        latencies,
        elapsed,
        ops,
        skipped,
        threads,
    })
}

/// Reads `t`'s pairing state, with no call in flight, recording the reads in the history.
fn quiet_reads<R: Registry>(caller: &mut Caller<'_, R>, t: u64) -> QuietState {
    let Observed::Bool(paired) = caller.read(t, Read::IsPaired).0 else {
        unreachable!("is_paired observes a bool")
    };
    let mut has = |side| caller.read(t, Read::Who(side)).0 != Observed::Who(None);
    QuietState {
        token: t,
        paired,
        producer: has(Side::Producer),
        consumer: has(Side::Consumer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(backend: Subject) -> RunConfig {
        RunConfig {
            backend,
            mode: RunMode::Measured,
            scenario: Scenario::BootStorm,
            threads: Some(4),
            seed: 3,
            scale: 0.02,
            callback_cost: Duration::ZERO,
            faults: Faults::default(),
            time_cap: None,
            chaos: None,
            memory: false,
        }
    }

    #[test]
    fn a_measured_run_gives_figures_and_no_history() {
        let config = measured(Backend::Sharded.into());
        let plan = scenario::plan(config.scenario, config.scale, config.seed, config.faults);
        let out = crate::run(&config, &Progress::default()).unwrap();
        let r = &out.result;
        assert_eq!(r.mode(), RunMode::Measured);
        assert_eq!(r.ops, plan.ops(), "every operation of the plan is counted");
        assert!(r.ops_per_s > 0.0 && r.elapsed_s > 0.0);
        assert!(r.latency_ns[&Operation::Register].count > 0);
        assert_eq!(out.tokens, 0, "no history: no token's was checked");
        assert_eq!(r.check_s, 0.0);
        assert!(out.violations.is_empty() && r.violations == 0);
        assert_eq!(r.details.bytes_per_token, None, "no memory check");

        let floor = crate::run(&measured(Subject::Floor), &Progress::default()).unwrap();
        assert_eq!(floor.result.backend, "floor");
        assert_eq!(floor.result.ops, r.ops);
    }

    #[test]
    fn the_floor_is_measured_on_registry_scenarios_only() {
        let checked = RunConfig {
            mode: RunMode::Checked,
            ..measured(Subject::Floor)
        };
        assert!(matches!(
            crate::run(&checked, &Progress::default()),
            Err(RunError::Unsupported(_))
        ));
        let bus = RunConfig {
            scenario: Scenario::VirtioBoot,
            ..measured(Backend::MutexMap.into())
        };
        assert!(matches!(
            crate::run(&bus, &Progress::default()),
            Err(RunError::Unsupported(_))
        ));
    }
}
