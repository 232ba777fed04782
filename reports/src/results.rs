//! The reader of `results.json`, an array of run results (`bypass compare`), or of one run
//! result (`bypass run --json`). The types are the [`schema`](crate::schema)'s, the ones the
//! harness writes.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::schema::{RunMode, RunResult, Sweep};

/// Why `results.json` could not be read.
#[derive(Debug)]
pub enum ResultsError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// The file is not a JSON array of run results.
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why parsing failed.
        error: serde_json::Error,
    },
}

impl fmt::Display for ResultsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultsError::Read { path, error } => {
                write!(f, "cannot read results `{}`: {error}", path.display())
            }
            ResultsError::Parse { path, error } => write!(
                f,
                "`{}` is not a results file of `bypass compare` (a JSON array of run results): {error}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ResultsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResultsError::Read { error, .. } => Some(error),
            ResultsError::Parse { error, .. } => Some(error),
        }
    }
}

/// Either shape a results file may have: `bypass compare`'s array, or the single object of
/// `bypass run --json`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<RunResult>),
    One(Box<RunResult>),
}

/// Parses the text of a results file: a JSON array of run results, or one run result.
pub fn parse_results(text: &str) -> Result<Vec<RunResult>, serde_json::Error> {
    // Parse as an array first, so that a malformed array reports the error of the array (the
    // untagged enum's error says only that no variant matched).
    match serde_json::from_str::<Vec<RunResult>>(text) {
        Ok(results) => Ok(results),
        Err(array_error) => match serde_json::from_str::<OneOrMany>(text) {
            Ok(OneOrMany::Many(results)) => Ok(results),
            Ok(OneOrMany::One(result)) => Ok(vec![*result]),
            Err(_) => Err(array_error),
        },
    }
}

/// Reads a results file (see [`parse_results`]).
pub fn read_results(path: &Path) -> Result<Vec<RunResult>, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|error| ResultsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_results(&text).map_err(|error| ResultsError::Parse {
        path: path.to_path_buf(),
        error,
    })
}

/// The runs whose figures the tables and charts show. Where a backend has measured runs of a
/// scenario (at a callback cost), those: the checked runs' own figures are mostly the
/// recording's. Their verdict stays: a checked run's violations are counted on the cell's
/// measured run of the same seed (or its first), so that the cell, the backend and the seed
/// to replay (`bypass run` checks by default) are flagged. Elsewhere (files from before runs
/// had modes, the bus scenarios) every run.
pub fn figure_runs(results: &[RunResult]) -> Vec<RunResult> {
    let mut figures: Vec<RunResult> = results
        .iter()
        .filter(|r| !verdict_only(results, r))
        .cloned()
        .collect();
    for checked in results
        .iter()
        .filter(|r| r.violations > 0 && verdict_only(results, r))
    {
        let cell = |m: &RunResult| m.mode() == RunMode::Measured && same_cell(m, checked);
        let at = figures
            .iter()
            .position(|m| cell(m) && m.seed == checked.seed)
            .or_else(|| figures.iter().position(cell))
            .expect("a verdict-only run has measured runs beside it");
        figures[at].violations += checked.violations;
    }
    figures
}

/// Whether `a` and `b` are runs of one backend on one scenario at one callback cost.
fn same_cell(a: &RunResult, b: &RunResult) -> bool {
    a.backend == b.backend && a.scenario == b.scenario && a.callback_cost_ns == b.callback_cost_ns
}

/// Whether `run` is a checked run of a backend and scenario (at a callback cost) that
/// `results` also has measured runs of: its verdict counts, its figures do not.
pub fn verdict_only(results: &[RunResult], run: &RunResult) -> bool {
    run.mode() == RunMode::Checked
        && results
            .iter()
            .any(|m| m.mode() == RunMode::Measured && same_cell(m, run))
}

/// Reads the sweep `bypass compare` writes next to `results.json` (`sweep.json`).
pub fn read_sweep(path: &Path) -> Result<Sweep, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|error| ResultsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|error| ResultsError::Parse {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{
        "backend": "mutex-map", "scenario": "boot-storm", "threads": 64, "seed": 7,
        "scale": 0.1, "ops": 1000, "elapsed_s": 0.5, "ops_per_s": 2000.0,
        "latency_ns": {"register": {"count": 500, "p50": 100, "p99": 900, "p999": 4000, "max": 9000}},
        "violations": 0, "peak_rss_bytes": 1048576,
        "machine": {"cores": 2, "rustc": "rustc 1.95.0", "cpu": "Test CPU", "memory_bytes": 8589934592},
        "capped": false, "skipped_ops": 0, "callback_cost_ns": 0, "fail_rate": 0.0,
        "panic_rate": 0.0, "check_s": 0.1
    }"#;

    #[test]
    fn reads_an_array_and_a_single_run() {
        let many = parse_results(&format!("[{ONE}, {ONE}]")).unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(
            many[0].latency_ns[&crate::schema::Operation::Register].p999,
            4000
        );
        assert_eq!(many[0].machine.cpu, "Test CPU");
        let one = parse_results(ONE).unwrap();
        assert_eq!(one, vec![many[0].clone()]);
        assert!(parse_results("[]").unwrap().is_empty());
    }

    #[test]
    fn garbled_files_are_errors() {
        assert!(parse_results("").is_err());
        assert!(parse_results("[{\"backend\": 1}]").is_err());
        let err = parse_results(&format!("[{ONE},")).unwrap_err();
        assert!(err.is_eof(), "{err}");
        let missing = read_results(Path::new("/nonexistent/results.json")).unwrap_err();
        assert!(
            missing.to_string().contains("cannot read results"),
            "{missing}"
        );
    }
}
