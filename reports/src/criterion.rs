//! The estimates criterion leaves under `target/criterion`.
//!
//! criterion writes each benchmark's latest figures to
//! `<dir>/<group>/<function>/<parameter>/new/`: `benchmark.json` names the benchmark (group,
//! function, parameter and throughput per iteration) and `estimates.json` holds the estimates
//! (`mean`, `median`, … each with a `point_estimate` and a 95% `confidence_interval`, in
//! nanoseconds per iteration). Saved baselines sit next to `new/` under their own names and
//! are not read. Reading never fails: a missing directory, or a file that does not parse, is
//! a note in [`CriterionData::problems`], and the report says there is no data.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::schema::BenchGroup;
use crate::stats::Spread;

/// One estimate, in nanoseconds per iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The point estimate.
    pub point: f64,
    /// Lower bound of the 95% confidence interval.
    pub lower: f64,
    /// Upper bound of the 95% confidence interval.
    pub upper: f64,
}

impl Estimate {
    /// The estimate as a spread (median = point, low/high = the interval).
    pub fn spread(&self) -> Spread {
        Spread {
            median: self.point,
            low: self.lower,
            high: self.upper,
            n: 0,
        }
    }
}

/// One benchmark's latest figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Benchmark {
    /// The group as criterion names it (see [`BenchGroup`] for the groups of `bypass-benches`).
    pub group: String,
    /// The function: a backend name, or a floor map's.
    pub function: String,
    /// The parameter as criterion prints it (`16`, `population=1000`, `is_paired`); empty if
    /// the benchmark has none.
    pub parameter: String,
    /// Elements per iteration, if the group declared a throughput in elements.
    pub elements: Option<u64>,
    /// The median time per iteration.
    pub median: Estimate,
    /// The mean time per iteration.
    pub mean: Estimate,
}

impl Benchmark {
    /// The parameter as a number: `16` and `threads=16` are both 16.
    pub fn parameter_number(&self) -> Option<f64> {
        let text = self.parameter.rsplit('=').next().unwrap_or("");
        text.parse().ok()
    }

    /// Elements a second (iterations a second if the group declared no throughput), from the
    /// median time per iteration and its confidence interval.
    pub fn per_second(&self) -> Spread {
        let elements = self.elements.unwrap_or(1) as f64;
        self.median.spread().reciprocal(elements * 1e9)
    }
}

/// Every benchmark found under a criterion directory.
#[derive(Clone, Debug, Default)]
pub struct CriterionData {
    /// The directory read.
    pub dir: PathBuf,
    /// The benchmarks, sorted by group, function and parameter.
    pub benchmarks: Vec<Benchmark>,
    /// Why some or all of the data could not be read.
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
    throughput: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct EstimateJson {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct EstimatesJson {
    mean: EstimateJson,
    median: EstimateJson,
}

impl From<EstimateJson> for Estimate {
    fn from(e: EstimateJson) -> Estimate {
        Estimate {
            point: e.point_estimate,
            lower: e.confidence_interval.lower_bound,
            upper: e.confidence_interval.upper_bound,
        }
    }
}

/// How deep benchmarks may sit under the criterion directory: group / function / parameter /
/// `new`, with room for criterion's nested names.
const MAX_DEPTH: usize = 6;

impl CriterionData {
    /// Reads every benchmark under `dir`. Never fails; see [`CriterionData::problems`].
    pub fn read(dir: &Path) -> CriterionData {
        let mut data = CriterionData {
            dir: dir.to_path_buf(),
            ..CriterionData::default()
        };
        if !dir.is_dir() {
            data.problems
                .push(format!("`{}` is not a directory", dir.display()));
            return data;
        }
        data.walk(dir, 0);
        data.benchmarks.sort_by(|a, b| {
            (&a.group, &a.function, a.parameter_number(), &a.parameter)
                .partial_cmp(&(&b.group, &b.function, b.parameter_number(), &b.parameter))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if data.benchmarks.is_empty() && data.problems.is_empty() {
            data.problems
                .push(format!("no benchmark estimates under `{}`", dir.display()));
        }
        data
    }

    fn walk(&mut self, dir: &Path, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.problems
                    .push(format!("cannot list `{}`: {e}", dir.display()));
                return;
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            // file_type does not follow symbolic links, so a link loop cannot trap the walk.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        for path in dirs {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == "new" {
                if path.join("benchmark.json").is_file() {
                    match read_benchmark(&path) {
                        Ok(b) => self.benchmarks.push(b),
                        Err(e) => self.problems.push(e),
                    }
                }
            } else if name != "report" {
                self.walk(&path, depth + 1);
            }
        }
    }

    /// The benchmarks of one group.
    pub fn group(&self, group: BenchGroup) -> impl Iterator<Item = &Benchmark> + '_ {
        self.benchmarks
            .iter()
            .filter(move |b| b.group == group.name())
    }

    /// Whether any benchmark of `group` was read.
    pub fn has_group(&self, group: BenchGroup) -> bool {
        self.group(group).next().is_some()
    }
}

fn read_benchmark(new_dir: &Path) -> Result<Benchmark, String> {
    let read = |name: &str| {
        let path = new_dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
    };
    let id: BenchmarkJson = serde_json::from_str(&read("benchmark.json")?).map_err(|e| {
        format!(
            "`{}` is not a criterion benchmark.json: {e}",
            new_dir.join("benchmark.json").display()
        )
    })?;
    let estimates: EstimatesJson = serde_json::from_str(&read("estimates.json")?).map_err(|e| {
        format!(
            "`{}` is not a criterion estimates.json: {e}",
            new_dir.join("estimates.json").display()
        )
    })?;
    let elements = id
        .throughput
        .as_ref()
        .and_then(|t| t.get("Elements"))
        .and_then(serde_json::Value::as_u64);
    Ok(Benchmark {
        group: id.group_id,
        function: id.function_id.unwrap_or_default(),
        parameter: id.value_str.unwrap_or_default(),
        elements,
        median: estimates.median.into(),
        mean: estimates.mean.into(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes one benchmark the way criterion does.
    pub(crate) fn write_benchmark(
        root: &Path,
        group: &str,
        function: &str,
        parameter: &str,
        elements: u64,
        median_ns: f64,
    ) {
        let dir = root.join(group).join(function).join(parameter).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        let id = serde_json::json!({
            "group_id": group, "function_id": function, "value_str": parameter,
            "throughput": {"Elements": elements},
            "full_id": format!("{group}/{function}/{parameter}"),
            "directory_name": format!("{group}/{function}/{parameter}"),
            "title": format!("{group}/{function}/{parameter}"),
        });
        let est = |p: f64| {
            serde_json::json!({
                "confidence_interval": {"confidence_level": 0.95, "lower_bound": p * 0.95, "upper_bound": p * 1.05},
                "point_estimate": p, "standard_error": p * 0.02,
            })
        };
        let estimates = serde_json::json!({
            "mean": est(median_ns), "median": est(median_ns), "median_abs_dev": est(1.0),
            "slope": est(median_ns), "std_dev": est(1.0),
        });
        std::fs::write(dir.join("benchmark.json"), id.to_string()).unwrap();
        std::fs::write(dir.join("estimates.json"), estimates.to_string()).unwrap();
    }

    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bypass-reports-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_criterion_layout() {
        let root = temp_dir("criterion-layout");
        write_benchmark(&root, "cycle_threads", "mutex-map", "2", 2, 1000.0);
        write_benchmark(&root, "cycle_threads", "mutex-map", "16", 16, 9000.0);
        write_benchmark(&root, "floor", "dashmap", "threads=2", 2, 500.0);
        // A saved baseline and criterion's report folders are not benchmarks.
        std::fs::create_dir_all(root.join("cycle_threads/mutex-map/2/main")).unwrap();
        std::fs::create_dir_all(root.join("report")).unwrap();
        let data = CriterionData::read(&root);
        assert!(data.problems.is_empty(), "{:?}", data.problems);
        assert_eq!(data.benchmarks.len(), 3);
        let threads: Vec<f64> = data
            .group(BenchGroup::CycleThreads)
            .filter_map(Benchmark::parameter_number)
            .collect();
        assert_eq!(threads, [2.0, 16.0]);
        let floor = data.group(BenchGroup::Floor).next().unwrap();
        assert_eq!(floor.parameter_number(), Some(2.0));
        // 2 elements per 500 ns: 4 million a second.
        assert!((floor.per_second().median - 4e6).abs() < 1.0);
        assert!(floor.per_second().low < floor.per_second().high);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_or_garbled_is_a_note_not_a_panic() {
        let data = CriterionData::read(Path::new("/nonexistent/criterion"));
        assert!(data.benchmarks.is_empty());
        assert!(data.problems[0].contains("not a directory"));

        let root = temp_dir("criterion-garbled");
        let dir = root.join("lookup/rcu/is_paired/new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("benchmark.json"), "{not json").unwrap();
        let data = CriterionData::read(&root);
        assert!(data.benchmarks.is_empty());
        assert!(
            data.problems[0].contains("benchmark.json"),
            "{:?}",
            data.problems
        );
        assert!(!data.has_group(BenchGroup::Lookup));

        let empty = temp_dir("criterion-empty");
        let data = CriterionData::read(&empty);
        assert!(data.problems[0].contains("no benchmark"));
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
