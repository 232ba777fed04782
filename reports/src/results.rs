//! The figures of `bypass compare`: `results.json`, an array of run results.
//!
//! These types mirror `bypass_stress::runner::RunResult` field for field (the JSON names are the
//! same), so that this crate reads what the harness writes without depending on it. Fields the
//! harness added after the first version default when absent, so older files still read.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Latency percentiles of one kind of operation, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Operations measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Percentiles {
    /// The four figures in the order a chart draws them: p50, p99, p99.9, max.
    pub fn values(&self) -> [u64; 4] {
        [self.p50, self.p99, self.p999, self.max]
    }
}

/// The machine a result was measured on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// The compiler that built the harness (`rustc --version`).
    pub rustc: String,
    /// The CPU model.
    pub cpu: String,
    /// Total memory in bytes (0 if unknown).
    pub memory_bytes: u64,
}

/// One run: a backend over a scenario, as `bypass run --json` and `bypass compare` write it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// Backend name.
    pub backend: String,
    /// Scenario name.
    pub scenario: String,
    /// OS threads that ran the plan.
    #[serde(default)]
    pub threads: usize,
    /// The plan's seed.
    #[serde(default)]
    pub seed: u64,
    /// Size relative to PROTOCOL.md's.
    #[serde(default = "one")]
    pub scale: f64,
    /// Operations completed.
    #[serde(default)]
    pub ops: u64,
    /// Wall time of the plan, in seconds.
    #[serde(default)]
    pub elapsed_s: f64,
    /// `ops / elapsed_s`.
    pub ops_per_s: f64,
    /// Latency by operation kind (`register`, `unregister`, `lookup`).
    #[serde(default)]
    pub latency_ns: BTreeMap<String, Percentiles>,
    /// Guarantees found broken.
    #[serde(default)]
    pub violations: usize,
    /// Peak resident memory of the process during the run.
    #[serde(default)]
    pub peak_rss_bytes: u64,
    /// Where it ran.
    #[serde(default)]
    pub machine: Machine,
    /// Whether the time cap stopped the plan early.
    #[serde(default)]
    pub capped: bool,
    /// Operations of the plan skipped because of the cap.
    #[serde(default)]
    pub skipped_ops: u64,
    /// The busy-wait of each callback, in nanoseconds.
    #[serde(default)]
    pub callback_cost_ns: u64,
    /// Injected add failures.
    #[serde(default)]
    pub fail_rate: f64,
    /// Injected panics.
    #[serde(default)]
    pub panic_rate: f64,
    /// Time the checker took.
    #[serde(default)]
    pub check_s: f64,
}

fn one() -> f64 {
    1.0
}

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
        assert_eq!(many[0].latency_ns["register"].p999, 4000);
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
