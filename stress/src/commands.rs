//! `bypass run`, `bypass ci` and `bypass compare`.

use std::fs::{self, OpenOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bypass_reports::format;
use bypass_reports::{Operation, RunMode, RunResult, ScenarioKind, Spread};
use bypass_strategies::Backend;
use bypass_stress::Violation;
use bypass_stress::runner::{self, Progress, RunConfig, RunOutput};
use bypass_stress::scenario::{self, Faults, Scenario};
use bypass_stress::{bus, measure, sweep};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{BAD_INPUT, CiArgs, CompareArgs, NO_CAP, RunArgs};
use crate::{ci_report, report_cmd, suite};

/// Prints `error: {message}` and gives the exit status for bad input.
pub(crate) fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(BAD_INPUT)
}

fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(rand::random)
}

/// Runs `config` with a progress bar on a terminal (none otherwise).
fn run_with_progress(config: &RunConfig, label: &str) -> Result<RunOutput, runner::RunError> {
    let progress = Progress::default();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        if std::io::stderr().is_terminal() {
            s.spawn(|| {
                let bar = ProgressBar::new(0);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ops ({per_sec}, {eta} left)",
                    )
                    .expect("a valid template"),
                );
                bar.set_prefix(label.to_string());
                while !done.load(Ordering::Relaxed) {
                    bar.set_length(progress.total.load(Ordering::Relaxed));
                    bar.set_position(progress.done.load(Ordering::Relaxed));
                    thread::sleep(Duration::from_millis(100));
                }
                bar.finish_and_clear();
            });
        }
        let out = bypass_stress::run(config, &progress);
        done.store(true, Ordering::Relaxed);
        out
    })
}

fn print_result(r: &RunResult) {
    println!(
        "{} on {} ({}): {} threads, seed {}, scale {}, fail rate {}, panic rate {}, callback cost {}, chaos {}{}",
        r.scenario,
        r.backend,
        r.mode(),
        r.threads,
        r.seed,
        r.scale,
        r.fail_rate,
        r.panic_rate,
        format::ns(r.callback_cost_ns as f64),
        r.details
            .chaos_seed
            .map_or("off".to_string(), |c| format!("seed {c}")),
        if r.capped {
            format!(", CAPPED ({} operations skipped)", r.skipped_ops)
        } else {
            String::new()
        }
    );
    if let Some(i) = r.details.injected {
        println!(
            "  injected: {} add failures, {} panics",
            i.add_failures, i.panics
        );
    }
    if let Some(b) = r.details.bytes_per_token {
        println!(
            "  memory: {b:.0} bytes per live paired token; given back after emptying and drop"
        );
    }
    println!(
        "  {} operations in {:.3} s: {:.0} ops/s; peak RSS {:.1} MiB; {}",
        r.ops,
        r.elapsed_s,
        r.ops_per_s,
        r.peak_rss_bytes as f64 / (1 << 20) as f64,
        match r.mode() {
            RunMode::Checked => format!("checked in {:.2} s", r.check_s),
            RunMode::Measured => "measured, not checked".to_string(),
        }
    );
    println!(
        "  {:<17} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "operation", "count", "p50", "p99", "p99.9", "max"
    );
    for (kind, p) in &r.latency_ns {
        println!(
            "  {:<17} {:>9} {:>10} {:>10} {:>10} {:>10}",
            kind,
            p.count,
            format::ns(p.p50 as f64),
            format::ns(p.p99 as f64),
            format::ns(p.p999 as f64),
            format::ns(p.max as f64)
        );
    }
    println!(
        "  machine: {} cores, {}, {}",
        r.machine.cores, r.machine.cpu, r.machine.rustc
    );
}

fn print_violations(violations: &[Violation], seed: u64) {
    const SHOWN: usize = 10;
    eprintln!(
        "{} violation(s); reproduce with --seed {seed}:",
        violations.len()
    );
    for v in violations.iter().take(SHOWN) {
        eprintln!("- {v}");
    }
    if violations.len() > SHOWN {
        eprintln!("… and {} more", violations.len() - SHOWN);
    }
}

/// Creates the folder `path` is in, if need be.
fn create_parent(path: &Path) -> Result<(), String> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))
        }
        None => Ok(()),
    }
}

/// Checks, before any work, that `path` can be written: its folder is created if need be, and
/// the file opened for writing without touching what it holds. The error names `path` as the
/// user gave it.
pub(crate) fn check_output_file(path: &Path) -> Result<(), String> {
    create_parent(path)?;
    let existed = path.exists();
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    if !existed {
        let _ = fs::remove_file(path);
    }
    Ok(())
}

/// Checks, before any work, that files can be written into `dir` (created if need be). The
/// error names `dir` as the user gave it.
pub(crate) fn check_output_dir(dir: &Path) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot write into `{}`: {e}", dir.display());
    fs::create_dir_all(dir).map_err(cannot)?;
    let probe = dir.join(format!(".bypass-write-check-{}", std::process::id()));
    fs::write(&probe, b"").map_err(cannot)?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically: into a temporary file next to it, then
/// renamed over it, so that a reader (or an interruption) never sees half a file.
pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).expect("results serialize") + "\n";
    write_atomically(path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file and a rename; errors name `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    create_parent(path)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            format!("cannot write `{}`: {e}", path.display())
        })
}

/// What a run is estimated to need per operation of its plan: the plan, the recorded history
/// and its callbacks. Measured: 0.3 KiB (delivery-lookup) to 0.85 KiB (irqfd-flood).
const BYTES_PER_OP: f64 = 1024.0;
/// What a run needs besides: the binary, the threads' stacks, the allocator.
const BASE_BYTES: f64 = (64 << 20) as f64;

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1u64 << 30) as f64)
}

/// The size of a scenario's plan, of either registry.
struct PlanSize {
    ops: u64,
    actors: usize,
}

fn plan_size(scenario: Scenario, scale: f64, seed: u64, faults: Faults) -> PlanSize {
    match scenario.kind() {
        ScenarioKind::Registry => {
            let plan = scenario::plan(scenario, scale, seed, faults);
            PlanSize {
                ops: plan.ops(),
                actors: plan.actors.len(),
            }
        }
        ScenarioKind::Bus => {
            let plan = bus::scenario::plan(scenario, scale, seed, faults);
            PlanSize {
                ops: plan.ops(),
                actors: plan.actors.len(),
            }
        }
    }
}

/// Refuses, before any work, a run that cannot be made as asked: more threads than the
/// scenario has actors, or (above scale 1) more memory than the machine has to give.
fn check_feasible(config: &RunConfig) -> Result<(), String> {
    if config.threads.is_none() && config.scale <= 1.0 {
        return Ok(());
    }
    // Sizes grow linearly with the scale: a plan at scale 1 at most tells the rest.
    let probe_scale = config.scale.min(1.0);
    let mut plan = plan_size(config.scenario, probe_scale, config.seed, config.faults);
    if config.scale > probe_scale {
        let ops_per_scale = plan.ops as f64 / probe_scale;
        let need = BASE_BYTES + ops_per_scale * config.scale * BYTES_PER_OP;
        let memory = measure::machine().memory_bytes as f64;
        let allowed = memory * 0.75;
        if memory > 0.0 && need > allowed {
            let largest = (allowed - BASE_BYTES) / (ops_per_scale * BYTES_PER_OP);
            return Err(format!(
                "--scale {} of {} would need about {} (1 KiB for each of its {} operations, plus 64 MiB), more than three quarters of this machine's {} of memory; the largest scale that fits is about {:.1}",
                config.scale,
                config.scenario,
                gib(need),
                format::si(ops_per_scale * config.scale),
                gib(memory),
                largest.max(0.0)
            ));
        }
    }
    if let Some(threads) = config.threads {
        if threads > plan.actors && config.scale > probe_scale {
            plan = plan_size(config.scenario, config.scale, config.seed, config.faults);
        }
        let actors = plan.actors;
        if threads > actors {
            return Err(format!(
                "--threads {threads} is more than {} can use at scale {}: it has {actors} actors (VMs, vCPUs, devices), one a thread; use --threads {actors} or fewer",
                config.scenario, config.scale
            ));
        }
    }
    Ok(())
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let seed = seed_or_random(args.seed);
    let measured = args.mode == RunMode::Measured;
    if measured && (args.chaos.is_some() || args.fail_rate > 0.0 || args.panic_rate > 0.0) {
        return bad_input(
            "--chaos, --fail-rate and --panic-rate need a checked run (--mode checked): a measured run records nothing to check them by",
        );
    }
    let config = RunConfig {
        backend: args.backend,
        mode: args.mode,
        scenario: args.scenario,
        threads: args.threads,
        seed,
        scale: args.scale,
        callback_cost: args.callback_cost,
        faults: Faults {
            fail_rate: args.fail_rate,
            panic_rate: args.panic_rate,
        },
        time_cap: args.time_cap.0,
        chaos: args.chaos.map(seed_or_random),
        memory: !measured,
    };
    if let Some(path) = &args.json {
        if let Err(e) = check_output_file(path) {
            return bad_input(e);
        }
    }
    if let Err(e) = check_feasible(&config) {
        return bad_input(e);
    }
    eprintln!("seed {seed}");
    let out = match run_with_progress(&config, &format!("{} {}", args.scenario, args.backend)) {
        Ok(out) => out,
        Err(e) => return bad_input(e),
    };
    print_result(&out.result);
    if let Some(path) = &args.json {
        if let Err(e) = write_json(path, &out.result) {
            return bad_input(e);
        }
    }
    if config.mode == RunMode::Measured {
        println!("  measured: latencies and counts only, nothing checked");
        ExitCode::SUCCESS
    } else if out.violations.is_empty() {
        println!("  no violations");
        ExitCode::SUCCESS
    } else {
        print_violations(&out.violations, seed);
        ExitCode::FAILURE
    }
}

pub(crate) fn ci(args: &CiArgs) -> ExitCode {
    for path in [&args.json, &args.junit].into_iter().flatten() {
        if let Err(e) = check_output_file(path) {
            return bad_input(e);
        }
    }
    let seed = seed_or_random(args.seed);
    let budget = args.budget;
    let started = Instant::now();
    let mut draw = suite::CiDraw::new(seed, &args.backend, &args.scenario);
    let (backends, scenarios) = draw.covers();
    println!(
        "bypass ci: {backends} backends x {scenarios} scenarios, then fresh seeds until the budget is spent; faults on (fail rate {}, panic rate {}), chaos on; seed {seed}, budget {:.0} s",
        suite::CI_FAULTS.fail_rate,
        suite::CI_FAULTS.panic_rate,
        budget.as_secs_f64()
    );
    let mut tally = suite::Tally::default();
    let mut outputs: Vec<RunOutput> = Vec::new();
    let mut last_status = Instant::now();
    while started.elapsed() < budget {
        let (backend, scenario, run_seed, chaos) = draw.next();
        let cap = budget.saturating_sub(started.elapsed());
        let config = suite::ci_config(backend, scenario, (run_seed, chaos), cap);
        let out = match run_with_progress(&config, &format!("{scenario} {backend}")) {
            Ok(out) => out,
            Err(e) => return bad_input(e),
        };
        let r = &out.result;
        tally.runs += 1;
        tally.calls += r.ops;
        tally.tokens += out.tokens;
        let first_pass = tally.runs <= draw.pass_len() as u64;
        if first_pass || !out.violations.is_empty() {
            println!(
                "{:<17} {:<11} {:>5} threads {:>8} ops {:>8.2} s {:>11.0} ops/s  {}{}",
                r.scenario,
                r.backend,
                r.threads,
                r.ops,
                r.elapsed_s,
                r.ops_per_s,
                if out.violations.is_empty() {
                    "ok"
                } else {
                    "VIOLATED"
                },
                if r.capped { " (capped)" } else { "" }
            );
        }
        if !out.violations.is_empty() {
            tally.violated += 1;
            eprintln!("reproduce with: {}", suite::run_command(&config));
            print_violations(&out.violations, run_seed);
        }
        if !first_pass && last_status.elapsed() >= Duration::from_secs(15) {
            last_status = Instant::now();
            println!(
                "  ... {} runs, {} calls, {} tokens checked in {:.0} s",
                tally.runs,
                tally.calls,
                tally.tokens,
                started.elapsed().as_secs_f64()
            );
        }
        outputs.push(out);
    }
    let elapsed = started.elapsed();
    println!(
        "checked {} runs, {} calls, {} tokens in {:.1} s: {} with violations",
        tally.runs,
        tally.calls,
        tally.tokens,
        elapsed.as_secs_f64(),
        tally.violated
    );
    let suite = ci_report::CiSuite {
        seed,
        budget,
        elapsed,
        runs: &outputs,
    };
    if let Some(path) = &args.json {
        if let Err(e) = write_json(path, &suite.json()) {
            return bad_input(e);
        }
    }
    if let Some(path) = &args.junit {
        if let Err(e) = write_atomically(path, suite.junit().as_bytes()) {
            return bad_input(e);
        }
    }
    if tally.violated > 0 {
        return ExitCode::FAILURE;
    }
    if tally.runs < draw.pass_len() as u64 {
        eprintln!(
            "error: {}",
            suite::CiError::TooSmall {
                budget,
                covered: tally.runs as usize,
                total: draw.pass_len(),
                spent: elapsed,
            }
        );
        return ExitCode::from(BAD_INPUT);
    }
    ExitCode::SUCCESS
}

/// Runs `config` in a child `bypass run` process, so that no run inherits another's state
/// (allocator arenas, arc-swap's per-thread slots, epoch garbage, peak RSS). Returns the result
/// and, if the run broke a guarantee, what the child printed about it.
fn run_isolated(config: &RunConfig, dir: &Path) -> Result<(RunResult, Option<String>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bypass binary: {e}"))?;
    let json = dir.join(format!(
        ".run-{}-{}-{}-{}.json",
        config.scenario, config.backend, config.mode, config.seed
    ));
    let mut command = std::process::Command::new(exe);
    command
        .arg("run")
        .args(["--backend", config.backend.name()])
        .args(["--mode", config.mode.name()])
        .args(["--scenario", config.scenario.name()])
        .args(["--seed", &config.seed.to_string()])
        .args(["--scale", &config.scale.to_string()])
        .arg("--json")
        .arg(&json);
    // No cap is said explicitly: `bypass run` caps at a minute by default.
    match config.time_cap {
        Some(cap) => command.args(["--time-cap", &format!("{}ms", cap.as_millis())]),
        None => command.args(["--time-cap", NO_CAP]),
    };
    let output = command
        .output()
        .map_err(|e| format!("cannot start `bypass run`: {e}"))?;
    let violated = match output.status.code() {
        Some(0) => None,
        Some(1) => Some(String::from_utf8_lossy(&output.stderr).into_owned()),
        _ => {
            return Err(format!(
                "`bypass run` for {} on {} failed ({}): {}",
                config.scenario,
                config.backend,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    };
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("cannot read `{}`: {e}", json.display()))?;
    let _ = std::fs::remove_file(&json);
    let result = serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not a run result: {e}", json.display()))?;
    Ok((result, violated))
}

/// Whether `result` is the run `config` would make: same backend, scenario, seed, scale and
/// options.
fn is_run_of(result: &RunResult, config: &RunConfig) -> bool {
    result.backend == config.backend.name()
        && result.mode() == config.mode
        && result.scenario == config.scenario
        && result.seed == config.seed
        && (result.scale - config.scale).abs() < 1e-9
        && Duration::from_nanos(result.callback_cost_ns) == config.callback_cost
        && result.fail_rate == config.faults.fail_rate
        && result.panic_rate == config.faults.panic_rate
}

/// For `--resume`: the results already in `path` (none if there is no file), or why they
/// cannot be used.
fn previous_results(path: &Path) -> Result<Vec<RunResult>, String> {
    if !path.exists() {
        eprintln!(
            "note: no `{}` to resume from: running the whole suite",
            path.display()
        );
        return Ok(Vec::new());
    }
    bypass_reports::read_results(path)
        .map_err(|e| format!("cannot resume: {e} (move it away, or run without --resume)"))
}

pub(crate) fn compare(args: &CompareArgs) -> ExitCode {
    if let Err(e) = check_output_dir(&args.out) {
        return bad_input(e);
    }
    let path = args.out.join("results.json");
    let mut previous = if args.resume {
        match previous_results(&path) {
            Ok(previous) => previous,
            Err(e) => return bad_input(e),
        }
    } else {
        Vec::new()
    };
    // Resuming without a seed continues the suite that is there: its first run is repeat 0.
    let seed = match (args.seed, previous.first()) {
        (Some(seed), _) => seed,
        (None, Some(first)) => first.seed,
        (None, None) => rand::random(),
    };
    let started = Instant::now();
    let suite = suite::compare_suite(args.quick, args.repeat, seed);
    let mut slots: Vec<Option<RunResult>> = suite
        .iter()
        .map(|config| {
            let i = previous.iter().position(|r| is_run_of(r, config))?;
            Some(previous.swap_remove(i))
        })
        .collect();
    let kept = slots.iter().flatten().count();
    println!(
        "bypass compare{}: {} backends and the floor x {} scenarios x {} measured repeats, then one checked run per backend and registry scenario (bus scenarios: checked repeats); seed {seed}, each run in its own process",
        if args.quick { " --quick" } else { "" },
        Backend::ALL.len(),
        Scenario::ALL.len(),
        args.repeat
    );
    if args.resume {
        println!(
            "resuming: {kept} of {} runs kept from {}{}; {} to run",
            suite.len(),
            path.display(),
            if previous.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} dropped (another backend, scenario, scale, seed or options)",
                    previous.len()
                )
            },
            suite.len() - kept
        );
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new((suite.len() - kept) as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {pos}/{len} runs, {eta} left  {msg}",
            )
            .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    for (i, config) in suite.iter().enumerate() {
        if slots[i].is_some() {
            continue;
        }
        bar.set_message(format!(
            "{} {} {}",
            config.scenario, config.backend, config.mode
        ));
        let (result, violations) = match run_isolated(config, &args.out) {
            Ok(out) => out,
            Err(e) => {
                bar.abandon();
                return bad_input(e);
            }
        };
        bar.inc(1);
        bar.suspend(|| {
            println!(
                "  {:<17} {:<11} {:<8} {:>8} ops/s{}{}",
                result.scenario,
                result.backend,
                result.mode(),
                format::si(result.ops_per_s),
                if result.capped { "  (capped)" } else { "" },
                if violations.is_some() {
                    "  VIOLATED"
                } else {
                    ""
                }
            );
            if let Some(text) = &violations {
                eprint!("{text}");
            }
        });
        slots[i] = Some(result);
        // After every run, so that an interruption loses at most the run in flight.
        let done: Vec<&RunResult> = slots.iter().flatten().collect();
        if let Err(e) = write_json(&path, &done) {
            bar.abandon();
            return bad_input(e);
        }
    }
    bar.finish_and_clear();
    if let Err(e) = sweep_once(args) {
        return bad_input(e);
    }
    let results: Vec<RunResult> = slots.into_iter().flatten().collect();
    // Kept runs count too: a resumed suite fails as the whole suite would.
    let violated = results.iter().filter(|r| r.violations > 0).count();
    if let Err(e) = write_json(&path, &results) {
        return bad_input(e);
    }
    print_headline(&bypass_reports::figure_runs(&results));
    println!(
        "\n{} runs in {:.0} s; results in {}",
        results.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if let Err(e) = report_cmd::after_compare(args, seed) {
        return bad_input(e);
    }
    if violated == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{violated} runs broke a guarantee");
        ExitCode::FAILURE
    }
}

/// The sweep of `bypass compare` ([`sweep`]), written to `DIR/sweep.json`; with `--resume`, one
/// already there is kept.
fn sweep_once(args: &CompareArgs) -> Result<(), String> {
    let path = args.out.join("sweep.json");
    if args.resume && bypass_reports::read_sweep(&path).is_ok() {
        println!("sweep: kept {}", path.display());
        return Ok(());
    }
    let config = sweep::SweepConfig::compare(args.quick);
    println!(
        "sweep: connect+disconnect cycles straight on each backend and the floor, at {:?} live tokens and {:?} threads, {} samples of {} ms a point",
        sweep::POPULATIONS,
        sweep::THREADS,
        config.samples,
        config.sample.as_millis()
    );
    let started = Instant::now();
    let sweep = sweep::sweep(Backend::ALL, &config);
    for left_out in &sweep.left_out {
        println!("  left out: {left_out}");
    }
    println!("  {:.0} s", started.elapsed().as_secs_f64());
    write_json(&path, &sweep)
}

/// One headline table: `scenarios` that ran down, backends across, each cell `cell` of the
/// runs of that backend and scenario (`—` where it has none). Nothing if none of `scenarios`
/// ran.
fn print_table(
    results: &[RunResult],
    scenarios: impl Iterator<Item = Scenario>,
    title: &str,
    cell: impl Fn(&[&RunResult]) -> Option<String>,
) {
    const SCENARIO: usize = 17;
    let ran: Vec<Scenario> = scenarios
        .filter(|s| results.iter().any(|r| r.scenario == *s))
        .collect();
    if ran.is_empty() {
        return;
    }
    let width = Backend::ALL
        .iter()
        .map(|b| b.name().len())
        .max()
        .unwrap_or(0)
        .max(9);
    println!("\n{title}");
    print!("{:<SCENARIO$}", "scenario");
    for b in Backend::ALL {
        print!(" {:>width$}", b.name());
    }
    println!();
    for s in ran {
        print!("{:<SCENARIO$}", s.name());
        for b in Backend::ALL {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.backend == b.name() && r.scenario == s)
                .collect();
            print!(" {:>width$}", cell(&runs).unwrap_or_else(|| "—".into()));
        }
        println!();
    }
}

/// Backend x scenario: median throughput over repeats, then the median p99.9 of registrations:
/// `register` for the registry's scenarios, `register-device` for the bus's, as tables that
/// fit 100 columns.
fn print_headline(results: &[RunResult]) {
    let capped = |runs: &[&RunResult]| {
        if runs.iter().any(|r| r.capped) {
            "*"
        } else {
            ""
        }
    };
    print_table(
        results,
        Scenario::ALL.iter().copied(),
        "throughput (operations a second, median of repeats):",
        |runs| {
            let tput = Spread::of(runs.iter().map(|r| r.ops_per_s))?.median;
            Some(format!("{}{}", format::si(tput), capped(runs)))
        },
    );
    for (kind, op) in [
        (ScenarioKind::Registry, Operation::Register),
        (ScenarioKind::Bus, Operation::RegisterDevice),
    ] {
        print_table(
            results,
            Scenario::of_kind(kind),
            &format!("{op} latency, p99.9 (median of repeats):"),
            |runs| {
                let p999 = Spread::of(
                    runs.iter()
                        .filter_map(|r| r.latency_ns.get(&op))
                        .filter(|p| p.count > 0)
                        .map(|p| p.p999 as f64),
                )?
                .median;
                Some(format!("{}{}", format::ns(p999), capped(runs)))
            },
        );
    }
    if results.iter().any(|r| r.capped) {
        println!("* capped: the backend ran out of its time cap before finishing the plan");
    }
}
