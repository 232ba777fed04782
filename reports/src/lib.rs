//! Reports on bypass's measurements: which registry backend to choose, and the figures that
//! say so.
//!
//! The input is what `bypass compare` writes (`results.json`, an array of run results) and,
//! when present, the estimates criterion leaves under `target/criterion`. The output is a
//! Markdown report, the same report as one self-contained HTML page, and its charts as SVG:
//!
//! - the default backend, first, with its reason in one sentence, and a recommendation for
//!   each kind of workload (boot storms, churn with unmatched consumers, read-heavy delivery,
//!   slow callbacks) from throughput and tail latency together: the backend to choose, the
//!   runner-up and the margin on each measure, or the backends tied and the measures that tie
//!   them; and the weighting table the choice follows ([`recommend`]);
//! - a headline table of every backend × scenario: throughput and register p99.9, median over
//!   the repeats with the range, the best of each column marked, capped runs and broken
//!   guarantees flagged;
//! - charts: throughput against threads, connect+disconnect cost against live tokens (with
//!   the raw-map floor), lookup throughput under churn, latency percentiles per scenario;
//! - the machine, the date, and the commands that reproduce it.
//!
//! ```
//! use bypass_reports::{CriterionData, Report, ReportInput, parse_results};
//!
//! let results = parse_results(r#"[
//!     {"backend": "mutex-map", "scenario": "serverless-churn", "ops_per_s": 120000.0},
//!     {"backend": "sharded", "scenario": "serverless-churn", "ops_per_s": 310000.0}
//! ]"#).unwrap();
//! let criterion = CriterionData::read("target/no-criterion-here".as_ref());
//! let report = Report::build(&ReportInput {
//!     results: &results,
//!     results_source: "results.json".into(),
//!     criterion: &criterion,
//!     commands: vec![],
//!     generated_unix_s: 0,
//! });
//! assert!(report.recommendations[1].summary().starts_with("sharded: 2.58× the ops/s"));
//! assert_eq!(report.default.as_ref().unwrap().backend, "sharded");
//! assert!(report.html().contains("<h2>Recommendations</h2>"));
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`schema`] | the types of `results.json`, which the harness writes, and the names they are keyed by |
//! | [`results`] | the reader of `results.json` |
//! | [`criterion`] | the reader of criterion's estimates |
//! | [`stats`] | medians and spreads over repeats |
//! | [`format`](mod@format) | how figures are written (rates, durations, dates) |
//! | [`recommend`] | the workloads and how a backend is chosen for each and overall: the weighting table, the evidence measured per workload and backend, its scoring, and the prose |
//! | [`charts`] | the SVG charts: shared axes, frame and series, and one module per figure (throughput against threads, cost against live tokens, lookup under churn, latency percentiles) |
//! | [`report`] | the report, assembled and written |

#![deny(missing_docs)]

pub mod charts;
pub mod criterion;
mod doc;
pub mod format;
pub mod recommend;
pub mod report;
pub mod results;
pub mod schema;
pub mod stats;

pub use charts::Chart;
pub use criterion::{Benchmark, CriterionData, Estimate};
pub use recommend::{OverallDefault, Recommendation, Verdict, Workload};
pub use report::{Report, ReportInput, WriteError};
pub use results::{
    ResultsError, figure_runs, parse_results, read_results, read_sweep, verdict_only,
};
pub use schema::{
    BenchGroup, Injected, Machine, Operation, Percentiles, RunDetails, RunMode, RunResult,
    Scenario, ScenarioKind, Sweep, SweepAxis, SweepPoint, UnknownName, ViolationKind,
};
pub use stats::Spread;
