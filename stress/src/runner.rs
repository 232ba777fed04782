//! Runs a scenario's plan on a backend, one OS thread per actor, recording every operation
//! (with its start and end on a common clock, and its outcome), every callback, and the
//! latency of each operation.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bypass_registry::op::{Behaviour, Outcome};
use bypass_registry::{Registry, Side, Token};
use bypass_reports::schema::{Operation, RunResult, ScenarioKind, ViolationKind};
use bypass_strategies::{Backend, Visitor};

use crate::checker;
use crate::history::{History, Observed, OpKind, OpRecord, QuietState, TokenLog};
use crate::measure::{self, Latencies};
use crate::participant::{OpScope, Participant};
use crate::scenario::{self, Action, Faults, Plan, Scenario};
use crate::violation::Violation;

/// What to run and how.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The backend.
    pub backend: Backend,
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
    /// Injected faults.
    pub faults: Faults,
    /// Stop starting new operations after this long (the rest of the plan is skipped and the
    /// run is reported as capped).
    pub time_cap: Option<Duration>,
}

/// A run's figures and what the checker found.
#[derive(Debug)]
pub struct RunOutput {
    /// The figures.
    pub result: RunResult,
    /// Every broken guarantee, with a trace where one can be extracted.
    pub violations: Vec<Violation>,
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
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `config` on its backend, checks the history, and returns the figures and violations.
pub fn run(config: &RunConfig, progress: &Progress) -> Result<RunOutput, RunError> {
    if config.scenario.kind() == ScenarioKind::Bus {
        return crate::bus::runner::run(config, progress);
    }
    struct V<'a>(&'a RunConfig, &'a Progress);
    impl Visitor for V<'_> {
        type Output = Result<RunOutput, RunError>;
        fn visit<R: Registry + Default + 'static>(self) -> Result<RunOutput, RunError> {
            run_on(&R::default(), self.0, self.1)
        }
    }
    config.backend.visit(V(config, progress))
}

/// Runs `config`'s scenario on `registry` (whatever `config.backend` says), checks the
/// history, and returns the figures and violations.
pub fn run_on<R: Registry>(
    registry: &R,
    config: &RunConfig,
    progress: &Progress,
) -> Result<RunOutput, RunError> {
    let plan = scenario::plan(config.scenario, config.scale, config.seed, config.faults);
    progress.total.store(plan.ops(), Ordering::Relaxed);
    measure::reset_peak_rss();
    let run = execute(registry, &plan, config, progress)?;
    let check_start = Instant::now();
    let violations = checker::check(run.history);
    let figures = Figures {
        backend: registry.name(),
        threads: run.threads,
        ops: run.ops,
        elapsed: run.elapsed,
        skipped: run.skipped,
        check: check_start.elapsed(),
    };
    Ok(RunOutput {
        result: figures.result(config, &run.latencies, violations.len()),
        violations,
    })
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
        }
    }
}

struct Executed {
    history: History,
    latencies: Latencies,
    elapsed: Duration,
    ops: u64,
    skipped: u64,
    threads: usize,
}

/// What one worker thread brings back.
struct Worker {
    ops: Vec<OpRecord>,
    latencies: Latencies,
    participants: Vec<Arc<Participant>>,
    violations: Vec<Violation>,
    skipped: u64,
}

/// The state one thread needs to make recorded calls.
struct Caller<'a, R> {
    registry: &'a R,
    logs: &'a [Arc<TokenLog>],
    touched: &'a [AtomicBool],
    clock: Instant,
    callback_cost: Duration,
    next_id: u64,
    ops: Vec<OpRecord>,
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

impl<R: Registry> Caller<'_, R> {
    fn now(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    fn record(
        &mut self,
        id: u64,
        token: u64,
        kind: OpKind,
        behaviour: Behaviour,
        invoke: u64,
        observed: Observed,
    ) -> u64 {
        let response = self.now();
        self.ops.push(OpRecord {
            id,
            token,
            kind,
            behaviour,
            invoke,
            response,
            observed,
        });
        response - invoke
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Runs `action`; returns its latency kind and nanoseconds.
    fn call(&mut self, action: Action) -> (Operation, u64) {
        match action {
            Action::Register {
                side,
                token: t,
                behaviour,
            } => {
                self.touched[t as usize].store(true, Ordering::Relaxed);
                let p = Arc::new(Participant::new(
                    side,
                    t,
                    behaviour,
                    self.callback_cost,
                    self.logs[t as usize].clone(),
                ));
                self.participants.push(p.clone());
                let id = self.next_id();
                let invoke = self.now();
                let result = attributed(id, || match side {
                    Side::Producer => self
                        .registry
                        .register_producer(token(t), p.clone())
                        .map_err(|e| {
                            (e.kind(), e.into_participant() as Arc<dyn Any + Send + Sync>)
                        }),
                    Side::Consumer => self
                        .registry
                        .register_consumer(token(t), p.clone())
                        .map_err(|e| {
                            (e.kind(), e.into_participant() as Arc<dyn Any + Send + Sync>)
                        }),
                });
                let outcome = match result {
                    Ok(Ok(())) => Outcome::Ok,
                    Ok(Err((kind, back))) => {
                        if !same_object(&*back, &p) {
                            self.violations.push(Violation::new(
                                ViolationKind::HandedBack,
                                Some(t),
                                format!(
                                    "a refused {side} registration handed back another participant"
                                ),
                            ));
                        }
                        drop(back);
                        p.retire();
                        Outcome::Err(kind)
                    }
                    Err(_) => Outcome::Panicked,
                };
                let ns = self.record(
                    id,
                    t,
                    OpKind::Register(side),
                    behaviour,
                    invoke,
                    Observed::Outcome(outcome),
                );
                (Operation::Register, ns)
            }
            Action::Unregister { side, token: t } => {
                let id = self.next_id();
                let invoke = self.now();
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
                let outcome = match result {
                    Ok(Ok(back)) => {
                        match back.downcast::<Participant>() {
                            Ok(p) if p.side == side && p.token == t => {
                                p.handed_back.fetch_add(1, Ordering::SeqCst);
                                p.retire();
                            }
                            _ => self.violations.push(Violation::new(
                                ViolationKind::HandedBack,
                                Some(t),
                                format!("unregister {side} {t} handed back a participant of another token or side"),
                            )),
                        }
                        Outcome::Ok
                    }
                    Ok(Err(e)) => Outcome::Err(e.kind()),
                    Err(_) => Outcome::Panicked,
                };
                let ns = self.record(
                    id,
                    t,
                    OpKind::Unregister(side),
                    Behaviour::default(),
                    invoke,
                    Observed::Outcome(outcome),
                );
                (Operation::Unregister, ns)
            }
            Action::Lookup { token: t } => {
                let (id, invoke) = (self.next_id(), self.now());
                let paired = self.registry.is_paired(token(t));
                let ns1 = self.record(
                    id,
                    t,
                    OpKind::IsPaired,
                    Behaviour::default(),
                    invoke,
                    Observed::Bool(paired),
                );
                let (id, invoke) = (self.next_id(), self.now());
                let producer = self.registry.producer(token(t));
                let found = producer.is_some();
                if let Some(p) = producer {
                    let p = p as Arc<dyn Any + Send + Sync>;
                    let ok = p
                        .downcast::<Participant>()
                        .is_ok_and(|p| p.side == Side::Producer && p.token == t);
                    if !ok {
                        self.violations.push(Violation::new(
                            ViolationKind::Lookup,
                            Some(t),
                            format!(
                                "producer({t}) returned a participant of another token or side"
                            ),
                        ));
                    }
                }
                let ns2 = self.record(
                    id,
                    t,
                    OpKind::Has(Side::Producer),
                    Behaviour::default(),
                    invoke,
                    Observed::Bool(found),
                );
                (Operation::Lookup, ns1 + ns2)
            }
        }
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

fn execute<R: Registry>(
    registry: &R,
    plan: &Plan,
    config: &RunConfig,
    progress: &Progress,
) -> Result<Executed, RunError> {
    let logs: Vec<Arc<TokenLog>> = (0..=plan.tokens).map(|_| Arc::default()).collect();
    let touched: Vec<AtomicBool> = (0..=plan.tokens).map(|_| AtomicBool::new(false)).collect();
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
    let finished = AtomicUsize::new(0);
    let clock = Instant::now();
    let deadline = config.time_cap.map(|cap| (cap, AtomicBool::new(false)));
    let mut workers: Vec<Worker> = Vec::with_capacity(threads);
    let mut elapsed = Duration::ZERO;
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let (logs, touched, barrier, finished, deadline, gate) =
                (&logs, &touched, &barrier, &finished, &deadline, &gate);
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
                    let mut caller = Caller {
                        registry,
                        logs,
                        touched,
                        clock,
                        callback_cost: config.callback_cost,
                        next_id: (i as u64 + 1) << 40,
                        ops: Vec::new(),
                        participants: Vec::new(),
                        violations: Vec::new(),
                    };
                    let mut latencies = Latencies::new();
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
                                let (kind, ns) = caller.call(action);
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
                    finished.fetch_add(1, Ordering::Release);
                    Some(Worker {
                        ops: caller.ops,
                        latencies,
                        participants: caller.participants,
                        violations: caller.violations,
                        skipped,
                    })
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
    if let Some(error) = spawn_error {
        return Err(error);
    }

    let mut latencies = Latencies::new();
    let mut history = History::default();
    let mut participants = Vec::new();
    let mut skipped = 0;
    for w in workers {
        latencies.merge(&w.latencies);
        history.ops.extend(w.ops);
        history.violations.extend(w.violations);
        participants.extend(w.participants);
        skipped += w.skipped;
    }
    let ops = latencies.count();

    // Quiet now: read each token's pairing state, then tear down, both recorded in the
    // history for the checker.
    let mut caller = Caller {
        registry,
        logs: &logs,
        touched: &touched,
        clock,
        callback_cost: config.callback_cost,
        next_id: (threads as u64 + 1) << 40,
        ops: Vec::new(),
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
    history.participants = participants.iter().map(Participant::end).collect();
    history.logs = logs;
    Ok(Executed {
        history,
        latencies,
        elapsed,
        ops,
        skipped,
        threads,
    })
}

/// Reads `t`'s pairing state, with no call in flight, recording the reads in the history.
fn quiet_reads<R: Registry>(caller: &mut Caller<'_, R>, t: u64) -> QuietState {
    let mut read = |kind: OpKind| {
        let (id, invoke) = (caller.next_id(), caller.now());
        let value = match kind {
            OpKind::IsPaired => caller.registry.is_paired(token(t)),
            OpKind::Has(Side::Producer) => caller.registry.producer(token(t)).is_some(),
            OpKind::Has(Side::Consumer) => caller.registry.consumer(token(t)).is_some(),
            _ => unreachable!("reads only"),
        };
        caller.record(
            id,
            t,
            kind,
            Behaviour::default(),
            invoke,
            Observed::Bool(value),
        );
        value
    };
    QuietState {
        token: t,
        paired: read(OpKind::IsPaired),
        producer: read(OpKind::Has(Side::Producer)),
        consumer: read(OpKind::Has(Side::Consumer)),
    }
}
