//! `bypass report`, and the report `bypass compare` writes at its end.
//!
//! Both read `results.json` back through `bypass-reports` (the same reader for both), add
//! criterion's estimates when there are any, and write `report.md`, `report.html` and the
//! charts into the output directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bypass_reports::{
    CriterionData, Report, ReportInput, RunResult, read_results, read_sweep, verdict_only,
};
use bypass_stress::scenario::Scenario;

use crate::cli::{CompareArgs, ReportArgs};
use crate::commands::{bad_input, check_output_dir};
use crate::suite::compare_scale;

/// `path` as a shell word: quoted unless it is made of plain characters.
fn shell(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The `bypass compare` command that made `results`, if they look like its output: the
/// suite's scales (quick or full), no callback cost or faults, the same number of repeats of
/// every backend × scenario, and seeds counting up from the first repeat's.
fn compare_command(results: &[RunResult], out: &Path) -> Option<String> {
    let first = results.first()?;
    let quick = [true, false].into_iter().find(|&quick| {
        results
            .iter()
            .all(|r| (compare_scale(r.scenario, quick) - r.scale).abs() < 1e-9)
    })?;
    if results
        .iter()
        .any(|r| r.callback_cost_ns > 0 || r.fail_rate > 0.0 || r.panic_rate > 0.0)
    {
        return None;
    }
    let mut seeds: BTreeMap<(&str, Scenario), Vec<u64>> = BTreeMap::new();
    // The repeats: a cell's checked run beside its measured ones gives only its verdict.
    for r in results.iter().filter(|r| !verdict_only(results, r)) {
        seeds
            .entry((r.backend.as_str(), r.scenario))
            .or_default()
            .push(r.seed);
    }
    let repeat = seeds.values().next()?.len();
    let seed = results.iter().map(|r| r.seed).min().unwrap_or(first.seed);
    let consistent = seeds.values().all(|v| {
        let mut v = v.clone();
        v.sort_unstable();
        v.len() == repeat
            && v.iter()
                .enumerate()
                .all(|(i, s)| *s == seed.wrapping_add(i as u64))
    });
    consistent.then(|| compare_line(quick, repeat, seed, out))
}

/// The `bypass compare` command line with these options.
fn compare_line(quick: bool, repeat: impl std::fmt::Display, seed: u64, out: &Path) -> String {
    format!(
        "cargo run --release -- compare{} --repeat {repeat} --seed {seed} --out {}",
        if quick { " --quick" } else { "" },
        shell(out)
    )
}

/// `text` after `first`, wrapped at word boundaries to `width` columns, continuation lines
/// indented as far as `first` is long; each line ends with a newline.
fn wrap(first: &str, text: &str, width: usize) -> String {
    let indent = first.chars().count();
    let mut out = first.to_string();
    let mut column = indent;
    let mut line_empty = true;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if !line_empty && column + 1 + len > width {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            column = indent;
            line_empty = true;
        }
        if !line_empty {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        line_empty = false;
    }
    out.push('\n');
    out
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads `results_path` and `criterion_dir`, writes the report into `out`, prints where it is
/// and the recommendations. `made_by` is the exact command that produced the results, when
/// the caller knows it.
fn render(
    results_path: &Path,
    criterion_dir: &Path,
    out: &Path,
    made_by: Option<String>,
) -> Result<PathBuf, String> {
    check_output_dir(out)?;
    let results = read_results(results_path).map_err(|e| e.to_string())?;
    if results.is_empty() {
        return Err(format!(
            "`{}` holds no runs (an empty results array): nothing to report",
            results_path.display()
        ));
    }
    let criterion = CriterionData::read(criterion_dir);
    let mut commands = Vec::new();
    if !criterion.benchmarks.is_empty() {
        commands.push(
            "cargo bench -p bypass-benches   # the criterion figures (about a quarter of an hour)"
                .to_string(),
        );
    }
    let results_dir = results_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let made_by = made_by.or_else(|| compare_command(&results, results_dir));
    let compare_wrote_it = made_by.is_some() && results_dir == out;
    match made_by {
        Some(cmd) => commands.push(cmd),
        None => commands.push(format!(
            "# {} was not written by `bypass compare` with its default suite: each run's seed, scale and settings are in the file",
            shell(results_path)
        )),
    }
    // `compare` writes the report itself, reading target/criterion; say so only when the
    // report was made some other way.
    if !compare_wrote_it || criterion_dir != Path::new("target/criterion") {
        commands.push(format!(
            "cargo run --release -- report --results {} --criterion {} --out {}",
            shell(results_path),
            shell(criterion_dir),
            shell(out)
        ));
    }
    // The sweep `compare` writes next to its results, if there is one.
    let sweep_path = results_dir.join("sweep.json");
    let sweep = match read_sweep(&sweep_path) {
        Ok(sweep) => Some(sweep),
        Err(_) if !sweep_path.exists() => None,
        Err(e) => {
            eprintln!("warning: {e}; the report goes without it");
            None
        }
    };
    let input = ReportInput {
        results: &results,
        results_source: format!("`{}`", results_path.display()),
        criterion: &criterion,
        commands,
        generated_unix_s: now_unix_s(),
    };
    let report = Report::build_with_sweep(&input, sweep.as_ref());
    let written = report.write(out).map_err(|e| e.to_string())?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    println!("recommendations:");
    for (label, text) in report.headline() {
        print!("{}", wrap(&format!("  {label:<31} "), &text, 100));
    }
    let html = written[0].clone();
    println!(
        "report: {} (and report.md, {} chart{}, in {})",
        html.display(),
        report.charts.len(),
        if report.charts.len() == 1 { "" } else { "s" },
        out.display()
    );
    Ok(html)
}

/// `bypass report`.
pub(crate) fn run(args: &ReportArgs) -> ExitCode {
    match render(&args.results, &args.criterion, &args.out, None) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => bad_input(e),
    }
}

/// The end of `bypass compare`: the report of the results it just wrote to `args.out`, with
/// the exact command that made them (`seed` is the first repeat's). Returns the error to
/// print, if any.
pub(crate) fn after_compare(args: &CompareArgs, seed: u64) -> Result<(), String> {
    let command = compare_line(args.quick, args.repeat, seed, &args.out);
    render(
        &args.out.join("results.json"),
        Path::new("target/criterion"),
        &args.out,
        Some(command),
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(backend: &str, scenario: Scenario, seed: u64, quick: bool) -> RunResult {
        let mut r: RunResult = serde_json::from_value(serde_json::json!({
            "backend": backend, "scenario": scenario, "ops_per_s": 1.0
        }))
        .unwrap();
        r.seed = seed;
        r.scale = compare_scale(scenario, quick);
        r
    }

    #[test]
    fn wraps_within_the_width() {
        assert_eq!(
            wrap("ab ", "one two three", 9),
            "ab one\n   two\n   three\n"
        );
        assert_eq!(wrap("ab ", "", 9), "ab \n");
        let long = wrap("  title ", &"word ".repeat(60), 100);
        assert!(long.lines().all(|l| l.chars().count() <= 100), "{long}");
        assert_eq!(long.split_whitespace().count(), 61);
    }

    #[test]
    fn infers_the_compare_command() {
        let mut results = Vec::new();
        for seed in [41, 42] {
            for s in Scenario::ALL {
                for b in ["mutex-map", "sharded"] {
                    results.push(result(b, *s, seed, true));
                }
            }
        }
        assert_eq!(
            compare_command(&results, Path::new("out dir")).as_deref(),
            Some("cargo run --release -- compare --quick --repeat 2 --seed 41 --out 'out dir'")
        );
        let full: Vec<RunResult> = Scenario::ALL
            .iter()
            .map(|s| result("rcu", *s, 7, false))
            .collect();
        assert_eq!(
            compare_command(&full, Path::new("bypass-results")).as_deref(),
            Some("cargo run --release -- compare --repeat 1 --seed 7 --out bypass-results")
        );
        // Not compare's suite: another scale, a callback cost, a missing repeat.
        let mut odd = full.clone();
        odd[0].scale = 0.3;
        assert_eq!(compare_command(&odd, Path::new("x")), None);
        let mut slow = full.clone();
        slow[0].callback_cost_ns = 1000;
        assert_eq!(compare_command(&slow, Path::new("x")), None);
        let mut gap = results.clone();
        gap.pop();
        assert_eq!(compare_command(&gap, Path::new("x")), None);
        assert_eq!(compare_command(&[], Path::new("x")), None);
    }
}
