//! `bypass run`, `bypass ci` and `bypass compare`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bypass_reports::format;
use bypass_reports::{Operation, RunResult, Spread};
use bypass_strategies::Backend;
use bypass_stress::Violation;
use bypass_stress::runner::{self, Progress, RunConfig, RunOutput};
use bypass_stress::scenario::{Faults, Scenario};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{BAD_INPUT, CiArgs, CompareArgs, RunArgs};
use crate::{report_cmd, suite};

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
                        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ops ({per_sec})",
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
        let out = runner::run(config, &progress);
        done.store(true, Ordering::Relaxed);
        out
    })
}

fn print_result(r: &RunResult) {
    println!(
        "{} on {}: {} threads, seed {}, scale {}, fail rate {}, panic rate {}, callback cost {}, chaos {}{}",
        r.scenario,
        r.backend,
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
        "  {} operations in {:.3} s: {:.0} ops/s; peak RSS {:.1} MiB; checked in {:.2} s",
        r.ops,
        r.elapsed_s,
        r.ops_per_s,
        r.peak_rss_bytes as f64 / (1 << 20) as f64,
        r.check_s
    );
    println!(
        "  {:<11} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "operation", "count", "p50", "p99", "p99.9", "max"
    );
    for (kind, p) in &r.latency_ns {
        println!(
            "  {:<11} {:>9} {:>10} {:>10} {:>10} {:>10}",
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

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value).expect("results serialize");
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let seed = seed_or_random(args.seed);
    let config = RunConfig {
        backend: args.backend,
        scenario: args.scenario,
        threads: args.threads,
        seed,
        scale: args.scale,
        callback_cost: args.callback_cost,
        faults: Faults {
            fail_rate: args.fail_rate,
            panic_rate: args.panic_rate,
        },
        time_cap: args.time_cap,
        chaos: args.chaos.map(seed_or_random),
        memory: true,
    };
    eprintln!("seed {seed}");
    let out = match run_with_progress(&config, &format!("{} {}", args.scenario, args.backend)) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    print_result(&out.result);
    if let Some(path) = &args.json {
        if let Err(e) = write_json(path, &out.result) {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    }
    if out.violations.is_empty() {
        println!("  no violations");
        ExitCode::SUCCESS
    } else {
        print_violations(&out.violations, seed);
        ExitCode::FAILURE
    }
}

pub(crate) fn ci(args: &CiArgs) -> ExitCode {
    let seed = seed_or_random(args.seed);
    if args.budget == 0 {
        eprintln!("error: {}", suite::CiError::NoBudget);
        return ExitCode::from(BAD_INPUT);
    }
    let budget = Duration::from_secs(args.budget);
    let started = Instant::now();
    let mut draw = suite::CiDraw::new(seed);
    println!(
        "bypass ci: {} backends x {} scenarios, then fresh seeds until the budget is spent; faults on (fail rate {}, panic rate {}), chaos on; seed {seed}, budget {} s",
        Backend::ALL.len(),
        Scenario::ALL.len(),
        suite::CI_FAULTS.fail_rate,
        suite::CI_FAULTS.panic_rate,
        args.budget
    );
    let mut tally = suite::Tally::default();
    let mut last_status = Instant::now();
    while started.elapsed() < budget {
        let (backend, scenario, run_seed, chaos) = draw.next();
        let cap = budget.saturating_sub(started.elapsed());
        let config = suite::ci_config(backend, scenario, (run_seed, chaos), cap);
        let out = match run_with_progress(&config, &format!("{scenario} {backend}")) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(BAD_INPUT);
            }
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
    }
    println!(
        "checked {} runs, {} calls, {} tokens in {:.1} s: {} with violations",
        tally.runs,
        tally.calls,
        tally.tokens,
        started.elapsed().as_secs_f64(),
        tally.violated
    );
    if tally.violated > 0 {
        return ExitCode::FAILURE;
    }
    if tally.runs < draw.pass_len() as u64 {
        eprintln!(
            "error: {}",
            suite::CiError::TooSmall {
                budget: args.budget,
                covered: tally.runs as usize,
                total: draw.pass_len(),
                spent: started.elapsed(),
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
        ".run-{}-{}-{}.json",
        config.scenario, config.backend, config.seed
    ));
    let mut command = std::process::Command::new(exe);
    command
        .arg("run")
        .args(["--backend", config.backend.name()])
        .args(["--scenario", config.scenario.name()])
        .args(["--seed", &config.seed.to_string()])
        .args(["--scale", &config.scale.to_string()])
        .arg("--json")
        .arg(&json);
    if let Some(cap) = config.time_cap {
        command.args(["--time-cap", &format!("{}ms", cap.as_millis())]);
    }
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

pub(crate) fn compare(args: &CompareArgs) -> ExitCode {
    let seed = seed_or_random(args.seed);
    let started = Instant::now();
    let mut results: Vec<RunResult> = Vec::new();
    let mut violated = 0;
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create `{}`: {e}", args.out.display());
        return ExitCode::from(BAD_INPUT);
    }
    println!(
        "bypass compare{}: {} backends x {} scenarios x {} repeats, seed {seed}, each run in its own process",
        if args.quick { " --quick" } else { "" },
        Backend::ALL.len(),
        Scenario::ALL.len(),
        args.repeat
    );
    let total = u64::from(args.repeat) * (Scenario::ALL.len() * Backend::ALL.len()) as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {wide_bar} {pos}/{len} runs {msg}")
                .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    for repeat in 0..args.repeat {
        for &scenario in Scenario::ALL {
            for &backend in Backend::ALL {
                let config = suite::compare_config(
                    backend,
                    scenario,
                    seed.wrapping_add(u64::from(repeat)),
                    args.quick,
                );
                bar.set_message(format!("{scenario} {backend}"));
                let (result, violations) = match run_isolated(&config, &args.out) {
                    Ok(out) => out,
                    Err(e) => {
                        bar.abandon();
                        eprintln!("error: {e}");
                        return ExitCode::from(BAD_INPUT);
                    }
                };
                bar.inc(1);
                bar.suspend(|| {
                    println!(
                        "  {:<17} {:<11} {:>12.0} ops/s{}{}",
                        result.scenario,
                        result.backend,
                        result.ops_per_s,
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
                violated += usize::from(violations.is_some());
                results.push(result);
            }
        }
    }
    bar.finish_and_clear();
    let path = args.out.join("results.json");
    if let Err(e) = write_json(&path, &results) {
        eprintln!("error: {e}");
        return ExitCode::from(BAD_INPUT);
    }
    print_headline(&results);
    println!(
        "{} runs in {:.0} s; results in {}",
        results.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if let Err(e) = report_cmd::after_compare(args, seed) {
        eprintln!("error: {e}");
        return ExitCode::from(BAD_INPUT);
    }
    if violated == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{violated} runs broke a guarantee");
        ExitCode::FAILURE
    }
}

/// Backend x scenario: median throughput over repeats, and the median p99.9 of registrations.
fn print_headline(results: &[RunResult]) {
    let median = |v: Vec<f64>| Spread::of(v).map_or(f64::NAN, |s| s.median);
    println!("\nthroughput (ops/s, median of repeats) / p99.9 of register:");
    print!("{:<17}", "scenario");
    for b in Backend::ALL {
        print!(" {:>22}", b.name());
    }
    println!();
    for s in Scenario::ALL {
        print!("{:<17}", s.name());
        for b in Backend::ALL {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.backend == b.name() && r.scenario == *s)
                .collect();
            let tput = median(runs.iter().map(|r| r.ops_per_s).collect());
            let p999 = median(
                runs.iter()
                    .filter_map(|r| r.latency_ns.get(&Operation::Register))
                    .map(|p| p.p999 as f64)
                    .collect(),
            );
            let capped = if runs.iter().any(|r| r.capped) {
                "*"
            } else {
                ""
            };
            print!(
                " {:>22}",
                format!("{tput:.0}{capped} / {}", format::ns(p999))
            );
        }
        println!();
    }
    println!("(* capped: the backend ran out of its time cap before finishing the plan)");
}
