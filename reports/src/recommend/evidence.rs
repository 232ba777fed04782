//! What is measured of each backend on each workload: the basis a workload is scored on, and
//! per backend either its rates or why it is left out.

use std::collections::BTreeMap;

use super::Workload;
use crate::criterion::CriterionData;
use crate::schema::{BenchGroup, RunResult, Scenario};
use crate::stats::Spread;

/// The raw concurrent maps the benchmarks run as a floor: never candidates.
pub const FLOORS: &[&str] = &["dashmap", "papaya"];

/// What a workload's scores are rates of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basis {
    /// Stress runs' operations a second.
    Stress(StressThroughput),
    /// Criterion's [`BenchGroup::CallbackCost`]: connect+disconnect cycles a second with a
    /// slow callback, from the median time per iteration and its 95% confidence interval.
    CallbackCycles {
        /// The benchmarks' parameter (`threads=2,callback=1us`).
        parameter: String,
    },
    /// Criterion's [`BenchGroup::Lookup`]: lookups a second among 100,000 live tokens under
    /// churn, geometric mean of `is_paired` and `producer`.
    Lookups,
    /// Nothing measured the workload.
    Nothing(Workload),
}

/// Stress throughput in a workload's scenarios.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StressThroughput {
    /// The scenarios, in the workload's order.
    pub scenarios: Vec<Scenario>,
    /// The callback costs the runs were made with, ascending; empty when the callbacks were
    /// free.
    pub callback_costs_ns: Vec<u64>,
    /// The most repeats of one backend in one scenario.
    pub repeats: usize,
}

impl Basis {
    /// The unit of the scores (`ops/s`, `cycles/s`, `lookups/s`).
    pub fn unit(&self) -> &'static str {
        match self {
            Basis::Stress(_) => "ops/s",
            Basis::CallbackCycles { .. } | Basis::Nothing(Workload::SlowCallbacks) => "cycles/s",
            Basis::Lookups | Basis::Nothing(Workload::Delivery) => "lookups/s",
            Basis::Nothing(Workload::BootStorms | Workload::Churn) => "ops/s",
        }
    }
}

/// Why a backend is left out of a workload's ranking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// It broke a guarantee in some run, of any workload.
    Broke(Broke),
    /// It has no run of one of the workload's scenarios.
    NoRun {
        /// The scenario.
        scenario: Scenario,
    },
    /// A run of one of the workload's scenarios was stopped by its time cap.
    Capped {
        /// The scenario.
        scenario: Scenario,
    },
    /// Its runs of one of the workload's scenarios have no usable throughput.
    NoFigure {
        /// The scenario.
        scenario: Scenario,
    },
    /// Its throughput is zero in one of the scenarios.
    ZeroThroughput,
}

/// The runs in which a backend broke a guarantee.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Broke {
    /// How many runs.
    pub runs: usize,
    /// Their scenarios, in the order of the results.
    pub scenarios: Vec<Scenario>,
}

/// What was measured of one backend on one workload.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Evidence {
    /// Its rates, one per scenario or criterion benchmark, to be combined.
    Rates(Vec<Spread>),
    /// It is left out.
    Excluded(Reason),
}

/// The backends, in the order results (then criterion) first name them; floors left out.
pub fn backends(results: &[RunResult], criterion: &CriterionData) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let groups = [
        BenchGroup::CycleThreads,
        BenchGroup::CyclePopulation,
        BenchGroup::Lookup,
        BenchGroup::CallbackCost,
    ];
    let from_criterion = criterion
        .benchmarks
        .iter()
        .filter(|b| groups.iter().any(|g| g.name() == b.group))
        .map(|b| b.function.as_str());
    for name in results
        .iter()
        .map(|r| r.backend.as_str())
        .chain(from_criterion)
    {
        if !FLOORS.contains(&name) && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// Backends that broke a guarantee, and in which runs.
pub fn broken(results: &[RunResult]) -> BTreeMap<String, Broke> {
    let mut out: BTreeMap<String, Broke> = BTreeMap::new();
    for r in results.iter().filter(|r| r.violations > 0) {
        let entry = out.entry(r.backend.clone()).or_default();
        entry.runs += 1;
        if !entry.scenarios.contains(&r.scenario) {
            entry.scenarios.push(r.scenario);
        }
    }
    out
}

/// What `workload` is measured by, and each backend's evidence: stress runs where the
/// workload's scenarios ran, criterion otherwise. Backends criterion did not measure are
/// left out of the evidence altogether.
pub(super) fn gather(
    workload: Workload,
    results: &[RunResult],
    criterion: &CriterionData,
    backends: &[String],
    broken: &BTreeMap<String, Broke>,
) -> (Basis, Vec<(String, Evidence)>) {
    // Runs with a callback cost answer the slow-callback question, and only that one.
    let runs: Vec<&RunResult> = results
        .iter()
        .filter(|r| (r.callback_cost_ns > 0) == (workload == Workload::SlowCallbacks))
        .collect();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for r in &runs {
        let wanted =
            workload == Workload::SlowCallbacks || workload.scenarios().contains(&r.scenario);
        if wanted && !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario);
        }
    }
    // The workload's own order, not the file's.
    scenarios.sort_by_key(|s| {
        workload
            .scenarios()
            .iter()
            .position(|w| w == s)
            .unwrap_or(usize::MAX)
    });
    if !scenarios.is_empty() {
        let evidence = backends
            .iter()
            .map(|b| (b.clone(), from_runs(b, &runs, &scenarios, broken)))
            .collect();
        let basis = StressThroughput {
            callback_costs_ns: callback_costs(&runs),
            repeats: most_repeats(&runs, &scenarios),
            scenarios,
        };
        return (Basis::Stress(basis), evidence);
    }
    let (group, basis) = match workload {
        Workload::SlowCallbacks => {
            let parameter = criterion
                .group(BenchGroup::CallbackCost)
                .next()
                .map(|b| b.parameter.clone())
                .unwrap_or_default();
            (
                BenchGroup::CallbackCost,
                Basis::CallbackCycles { parameter },
            )
        }
        Workload::Delivery => (BenchGroup::Lookup, Basis::Lookups),
        Workload::BootStorms | Workload::Churn => return (Basis::Nothing(workload), Vec::new()),
    };
    if !criterion.has_group(group) {
        return (Basis::Nothing(workload), Vec::new());
    }
    let evidence = backends
        .iter()
        .filter_map(|b| Some((b.clone(), from_criterion(b, criterion, group, broken)?)))
        .collect();
    (basis, evidence)
}

/// `backend`'s throughput in each of `scenarios`, or why it has none to go by.
fn from_runs(
    backend: &str,
    runs: &[&RunResult],
    scenarios: &[Scenario],
    broken: &BTreeMap<String, Broke>,
) -> Evidence {
    if let Some(broke) = broken.get(backend) {
        return Evidence::Excluded(Reason::Broke(broke.clone()));
    }
    let mut rates = Vec::new();
    for &scenario in scenarios {
        let mine: Vec<&&RunResult> = runs
            .iter()
            .filter(|r| r.backend == backend && r.scenario == scenario)
            .collect();
        if mine.is_empty() {
            return Evidence::Excluded(Reason::NoRun { scenario });
        }
        if mine.iter().any(|r| r.capped) {
            return Evidence::Excluded(Reason::Capped { scenario });
        }
        match Spread::of(mine.iter().map(|r| r.ops_per_s)) {
            Some(rate) => rates.push(rate),
            None => return Evidence::Excluded(Reason::NoFigure { scenario }),
        }
    }
    Evidence::Rates(rates)
}

/// `backend`'s rate in each benchmark of criterion `group`; `None` if it has none.
fn from_criterion(
    backend: &str,
    criterion: &CriterionData,
    group: BenchGroup,
    broken: &BTreeMap<String, Broke>,
) -> Option<Evidence> {
    let rates: Vec<Spread> = criterion
        .group(group)
        .filter(|b| b.function == backend)
        .map(|b| b.per_second())
        .collect();
    if rates.is_empty() {
        return None;
    }
    Some(match broken.get(backend) {
        Some(broke) => Evidence::Excluded(Reason::Broke(broke.clone())),
        None => Evidence::Rates(rates),
    })
}

/// The distinct callback costs of `runs` other than none, ascending.
fn callback_costs(runs: &[&RunResult]) -> Vec<u64> {
    let mut costs: Vec<u64> = runs
        .iter()
        .map(|r| r.callback_cost_ns)
        .filter(|&c| c > 0)
        .collect();
    costs.sort_unstable();
    costs.dedup();
    costs
}

/// The most runs of one backend in one of `scenarios`.
fn most_repeats(runs: &[&RunResult], scenarios: &[Scenario]) -> usize {
    scenarios
        .iter()
        .flat_map(|s| {
            let mut per_backend: BTreeMap<&str, usize> = BTreeMap::new();
            for r in runs.iter().filter(|r| r.scenario == *s) {
                *per_backend.entry(r.backend.as_str()).or_default() += 1;
            }
            per_backend.into_values()
        })
        .max()
        .unwrap_or(0)
}
