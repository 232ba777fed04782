//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use bypass_reports::RunMode;
use bypass_strategies::Backend;
use bypass_stress::runner::Subject;
use bypass_stress::scenario::{self, Scenario};
use clap::{Args, Parser, Subcommand};

/// IRQ bypass registry backends: replay traces against them, stress and compare them.
///
/// Backends implement the registry contract (register/unregister of producers and consumers
/// under a shared token, with the stop → add → start callback protocol): docs/registry.md in
/// the repository, and the `Registry` trait's rustdoc (`cargo doc --open -p bypass-registry`).
/// `bypass list` names the backends and the stress scenarios.
#[derive(Debug, Parser)]
#[command(name = "bypass", version, about, long_about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the backends and the stress scenarios, one a line with a short description.
    List(ListArgs),
    /// Run a trace of registrations and print every callback and outcome.
    ///
    /// A trace has one operation a line: `register producer|consumer TOKEN [fail-add]` or
    /// `unregister producer|consumer TOKEN`; `#` starts a comment. The output repeats each
    /// operation, then, indented, each callback in the order it ran and the outcome (`ok` or
    /// `err KIND`).
    ///
    /// A trace may also hold virtio bus lines: `register driver NAME id DEVICE:VENDOR…
    /// [fail-probe]` (`*` matches any), `register device KEY id DEVICE:VENDOR`,
    /// `unregister driver NAME`, `unregister device KEY` and `rescan`. Bus lines run on the
    /// backend's bus and bypass lines on its IRQ bypass registry, each compared with its own
    /// model.
    ///
    /// With `--backend all` (the default) the trace runs on every backend and on the
    /// sequential model; the model's output is printed, and the exit status is 1 if any
    /// backend differs, naming the first trace line where it does. Exit status 2: the trace
    /// is malformed (nothing runs), the file cannot be read, or the backend is unknown. A
    /// line longer than 4,096 bytes or binary input (a NUL byte, text that is not UTF-8) is
    /// malformed; a leading UTF-8 byte-order mark is skipped. An empty trace is not an error:
    /// it prints a note and exits 0.
    ///
    /// The trace is streamed, each line run on every backend and the model as it is read:
    /// memory holds the registries' state, never the trace.
    Replay(ReplayArgs),
    /// Stress one backend with one scenario, check every guarantee, and report the figures.
    ///
    /// Checked (the default `--mode`): every operation and callback is recorded; after the
    /// run the checker verifies the callback protocol, per-token exclusion, exactly one
    /// connect per pairing, no call after unregister returned, nothing leaked, and
    /// linearizability against the sequential model. Measured (`--mode measured`): only
    /// latencies and counts, for figures that are the registry's rather than the recording's;
    /// nothing is checked. Exit status 1 if any guarantee was broken (the violations, the seed
    /// and a replayable trace are printed); 2 for bad arguments.
    Run(RunArgs),
    /// Every backend over every scenario at a reduced size, with faults and chaos injected,
    /// then fresh seeds until the time budget is spent; exit status 1 on any violation (each
    /// printed with the command that repeats its run and a trace for `bypass replay`), 2 if
    /// the budget is too small for one pass. This is what CI runs.
    Ci(CiArgs),
    /// The main job: every backend over the scenario suite, results written to
    /// `DIR/results.json`, the headline table printed, and the report written to
    /// `DIR/report.html` (as `bypass report` would).
    Compare(CompareArgs),
    /// Write the report of a `bypass compare` run: the backend to choose for each kind of
    /// workload, the headline table, charts, the machine and the command that reproduces it.
    ///
    /// Reads the results and, where present, criterion's estimates (`cargo bench -p
    /// bypass-benches`); writes `DIR/report.md`, `DIR/report.html` (one self-contained page)
    /// and the charts as `DIR/*.svg`. Missing criterion data only leaves its charts empty.
    /// Exit status 2: the results file is missing or is not results, or DIR cannot be written.
    Report(ReportArgs),
}

/// The exit status for bad input: bad arguments, a malformed or unreadable file, a directory
/// that cannot be written.
pub(crate) const BAD_INPUT: u8 = 2;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print only the backend names, one a line (for scripts).
    #[arg(long)]
    pub(crate) backends: bool,
}

/// Which backends a command runs: one, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendChoice {
    All,
    One(Backend),
}

fn parse_backend_choice(name: &str) -> Result<BackendChoice, String> {
    if name == "all" {
        return Ok(BackendChoice::All);
    }
    name.parse()
        .map(BackendChoice::One)
        .map_err(|e| format!("{e}, or all"))
}

fn parse_backend(name: &str) -> Result<Backend, String> {
    name.parse().map_err(|e| format!("{e}"))
}

fn parse_subject(name: &str) -> Result<Subject, String> {
    name.parse()
}

fn parse_mode(name: &str) -> Result<RunMode, String> {
    name.parse().map_err(|e| format!("{e}"))
}

fn parse_scenario(name: &str) -> Result<Scenario, String> {
    name.parse().map_err(|e| format!("{e}"))
}

/// A number of the kind `what` names (e.g. "a thread count"), as `T`: a message that says
/// what was expected instead of Rust's parse error, and a word on negative numbers.
fn parse_number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    let text = text.trim();
    text.parse().map_err(|_| {
        if text.starts_with('-') && text[1..].parse::<f64>().is_ok() {
            format!("`{text}` is negative: expected {what}")
        } else {
            format!("`{text}` is not {what}")
        }
    })
}

/// A share in `0..=1`.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = parse_number(text, "a number")?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is outside 0..1"))
    }
}

/// The largest `--scale`; the memory estimate of `bypass run` refuses smaller ones that do not
/// fit the machine.
const MAX_SCALE: f64 = 100.0;

/// A positive, finite factor.
fn parse_scale(text: &str) -> Result<f64, String> {
    let scale: f64 = parse_number(text, "a number")?;
    if scale.is_finite() && scale > 0.0 && scale <= MAX_SCALE {
        Ok(scale)
    } else {
        Err(format!("{text} is not a scale in (0, {MAX_SCALE}]"))
    }
}

/// At least one thread, and no more than the harness will try to start.
fn parse_threads(text: &str) -> Result<usize, String> {
    match parse_number::<usize>(text, "a thread count (a whole number from 1)")? {
        0 => Err("a run needs at least one thread".into()),
        n if n > MAX_THREADS => Err(format!(
            "{n} threads is more than {MAX_THREADS}, the most a run may start"
        )),
        n => Ok(n),
    }
}

fn parse_seed(text: &str) -> Result<u64, String> {
    parse_number(
        text,
        "a seed (a whole number from 0 to 18446744073709551615)",
    )
}

fn parse_repeat(text: &str) -> Result<u32, String> {
    match parse_number::<u32>(text, "a number of repeats (a whole number from 1 to 100)")? {
        n @ 1..=100 => Ok(n),
        n => Err(format!("{n} repeats is outside 1..=100")),
    }
}

/// 1,024 threads is the largest workload of the contract (docs/registry.md); 16 times that
/// still fits the default limits of a Linux host, with the harness's 256 KiB stacks.
pub(crate) const MAX_THREADS: usize = 16_384;

/// The longest duration any option takes.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The duration syntax of every option: a number and a unit, `ns`, `us` (or `µs`), `ms`, `s`,
/// `m` or `h`: `250ns`, `1us`, `1.5s`, `5m`. A bare number is refused rather than guessed at
/// (is `5` five seconds or five nanoseconds of callback cost?); `0` alone is zero.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: &str = "ns, us, ms, s, m or h";
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!(
            "`{text}` is negative: expected a duration such as 1.5s"
        ));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit: use {UNITS} (e.g. {text}s)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 1us, 250ns, 2ms, 1.5s or 5m"))?;
    let seconds = match unit.trim_start() {
        "ns" => value * 1e-9,
        "us" | "µs" => value * 1e-6,
        "ms" => value * 1e-3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`: use {UNITS}")),
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!("`{text}` is longer than 24 hours")),
    }
}

/// A duration that must not be zero: `what` says what zero would mean.
fn parse_positive_duration(text: &str, what: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("a {what} of 0 would check nothing")),
        d => Ok(d),
    }
}

fn parse_budget(text: &str) -> Result<Duration, String> {
    parse_positive_duration(text, "budget")
}

/// `bypass run`'s time cap: a duration, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeCap(pub(crate) Option<Duration>);

/// The word for no time cap.
pub(crate) const NO_CAP: &str = "none";

fn parse_time_cap(text: &str) -> Result<TimeCap, String> {
    if text.trim() == NO_CAP {
        return Ok(TimeCap(None));
    }
    parse_positive_duration(text, "time cap")
        .map(|d| TimeCap(Some(d)))
        .map_err(|e| format!("{e} (`--time-cap {NO_CAP}` runs the whole plan)"))
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The backend to run (`bypass list --backends`), or `all` to run every backend and
    /// compare each with the model.
    #[arg(long, default_value = "all", value_parser = parse_backend_choice)]
    pub(crate) backend: BackendChoice,
    /// The trace file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The backend (`bypass list --backends`), or `floor`: the plan's inserts and removes on a
    /// raw concurrent map with no protocol, what the harness costs by itself (measured mode,
    /// registry scenarios).
    #[arg(long, value_parser = parse_subject)]
    pub(crate) backend: Subject,
    /// What the run records. `checked`: every call and callback, verified by the checker
    /// after the run (the verdict; its throughput is mostly the recording's). `measured`:
    /// per-thread latency histograms and counts only, participants made before the clock
    /// starts, nothing checked (the registry's figures; no --chaos, faults or memory check;
    /// registry scenarios only).
    #[arg(long, default_value = "checked", value_parser = parse_mode)]
    pub(crate) mode: RunMode,
    /// The scenario (`bypass list`).
    #[arg(long, value_parser = parse_scenario)]
    pub(crate) scenario: Scenario,
    /// OS threads; by default one per actor the scenario models (VM, vCPU, device), which is
    /// also the most it can use: more is an error naming the scenario's count.
    #[arg(long, value_parser = parse_threads, allow_negative_numbers = true)]
    pub(crate) threads: Option<usize>,
    /// The seed of the scenario's plan; random when absent, and always printed.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    pub(crate) seed: Option<u64>,
    /// Grow or shrink the scenario's sizes (1 is the contract's, docs/registry.md), up to 100.
    ///
    /// Above 1, a run is refused before it starts if its memory estimate exceeds three
    /// quarters of the machine's memory. The estimate is 1 KiB per operation of the plan (the
    /// plan, the recorded history and its callbacks; measured runs peak at 0.3-0.85 KiB per
    /// operation) plus 64 MiB.
    #[arg(long, default_value = "1", value_parser = parse_scale, allow_negative_numbers = true)]
    pub(crate) scale: f64,
    /// Each stop/start/add/del callback busy-waits this long (e.g. `1us`), as an
    /// interrupt-remapping update would.
    #[arg(long, default_value = "0", value_parser = parse_duration, allow_hyphen_values = true)]
    pub(crate) callback_cost: Duration,
    /// Share of participants whose add callback returns an error, in 0..1.
    #[arg(long, default_value = "0", value_parser = parse_rate, allow_negative_numbers = true)]
    pub(crate) fail_rate: f64,
    /// Share of participants that panic in one of their callbacks, in 0..1.
    #[arg(long, default_value = "0", value_parser = parse_rate, allow_negative_numbers = true)]
    pub(crate) panic_rate: f64,
    /// Stop starting new operations after this long (e.g. `30s`, `5m`; `none` for no cap);
    /// the run is then reported as capped, and the operations it did are still checked.
    #[arg(long, default_value = "60s", value_parser = parse_time_cap, allow_hyphen_values = true)]
    pub(crate) time_cap: TimeCap,
    /// Random yields and short spins inside callbacks and between each thread's calls, to
    /// widen race windows; seeded by the value, or a random seed when none is given (always
    /// printed).
    #[arg(long, value_name = "SEED", num_args = 0..=1, value_parser = parse_seed)]
    pub(crate) chaos: Option<Option<u64>>,
    /// Also write the result as one JSON object to FILE (checked before the run).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CiArgs {
    /// How long to spend, with a unit (e.g. `240s`, `4m`): every backend over every scenario
    /// once, then fresh seeds drawn at random (hot-tokens weighted up) until the budget is
    /// spent. At least one pass must fit: a smaller budget is an error (exit status 2).
    #[arg(long, default_value = "4m", value_parser = parse_budget, allow_hyphen_values = true)]
    pub(crate) budget: Duration,
    /// Check only this backend (repeat for several); every backend when absent.
    #[arg(long, value_parser = parse_backend)]
    pub(crate) backend: Vec<Backend>,
    /// Check only this scenario (repeat for several); every scenario when absent.
    #[arg(long, value_parser = parse_scenario)]
    pub(crate) scenario: Vec<Scenario>,
    /// The seed of every plan; random when absent, and always printed.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    pub(crate) seed: Option<u64>,
    /// Also write every run (its figures and violations) as JSON to FILE (checked before the
    /// suite starts).
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Also write a JUnit XML report to FILE, for CI systems: one test case per backend and
    /// scenario, a violation as a failure with its seed and the replay trace (checked before
    /// the suite starts).
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The quick suite: a quarter of the sizes (see the README for how long it takes).
    #[arg(long)]
    pub(crate) quick: bool,
    /// Runs of each backend and scenario, for medians and spreads (three by default, so that
    /// the report can tell a lead from noise), 1 to 100.
    #[arg(long, default_value = "3", value_parser = parse_repeat, allow_negative_numbers = true)]
    pub(crate) repeat: u32,
    /// Where to write results.json and the report (checked before any run).
    #[arg(long, default_value = "bypass-results", value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// The seed of the first repeat (each repeat adds 1); random when absent, and with
    /// `--resume` the one of the results already there.
    #[arg(long, value_parser = parse_seed, allow_negative_numbers = true)]
    pub(crate) seed: Option<u64>,
    /// Continue an interrupted compare: keep the runs in DIR/results.json that match this
    /// suite (backend, scenario, scale, seed and options) and make only the missing ones.
    /// results.json is rewritten after every run, so an interruption loses at most one.
    #[arg(long)]
    pub(crate) resume: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The results of `bypass compare`.
    #[arg(
        long,
        default_value = "bypass-results/results.json",
        value_name = "FILE"
    )]
    pub(crate) results: PathBuf,
    /// criterion's output directory.
    #[arg(long, default_value = "target/criterion", value_name = "DIR")]
    pub(crate) criterion: PathBuf,
    /// Where to write report.md, report.html and the charts.
    #[arg(long, default_value = "bypass-results", value_name = "DIR")]
    pub(crate) out: PathBuf,
}

pub(crate) fn list(args: &ListArgs) {
    if args.backends {
        for backend in Backend::ALL {
            println!("{backend}");
        }
        return;
    }
    let width = Backend::ALL
        .iter()
        .map(|b| b.name().len())
        .chain(Scenario::ALL.iter().map(|s| s.name().len()))
        .max()
        .unwrap_or(0);
    println!("backends:");
    for backend in Backend::ALL {
        println!("  {:width$}  {}", backend.name(), backend.description());
    }
    println!("scenarios (the workloads of docs/registry.md, at --scale 1):");
    for scenario in Scenario::ALL {
        println!(
            "  {:width$}  {}",
            scenario.name(),
            scenario::description(*scenario)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("x1us").is_err());
        assert!(parse_duration("99999s").is_err());
        assert!(parse_budget("0").unwrap_err().contains("check nothing"));
        assert_eq!(parse_time_cap("none"), Ok(TimeCap(None)));
        assert!(parse_time_cap("0s").unwrap_err().contains("check nothing"));
    }

    #[test]
    fn rates_scales_threads() {
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("1.5").unwrap_err().contains("outside 0..1"));
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_scale("0").is_err());
        assert!(parse_scale("inf").is_err());
        assert!(parse_threads("0").unwrap_err().contains("at least one"));
        assert!(parse_threads("-3").unwrap_err().contains("negative"));
        assert!(parse_threads("100000000").is_err());
        assert_eq!(parse_threads("1024"), Ok(1024));
        assert!(parse_seed("x").unwrap_err().contains("not a seed"));
        assert!(parse_repeat("0").unwrap_err().contains("1..=100"));
    }
}
