//! What is measured of each backend on each workload: the basis a workload is scored on, and
//! per backend either its rates or why it is left out.

use std::collections::BTreeMap;

use super::Workload;
use super::weights::{Measure, Stat};
use crate::criterion::CriterionData;
use crate::schema::{BenchGroup, RunResult, Scenario, ScenarioKind};
use crate::stats::Spread;

/// The raw concurrent maps the benchmarks run as a floor: never candidates.
pub const FLOORS: &[&str] = &["dashmap", "papaya"];

/// What a workload's figures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basis {
    /// Stress runs of the workload's scenarios (for slow callbacks: runs with a callback
    /// cost).
    Stress(StressRuns),
    /// Slow callbacks with no direct evidence: the latency tails of the nearest stress
    /// scenario run without a callback cost, where waiting on other tokens' calls shows first.
    Nearest(StressRuns),
    /// Criterion's [`BenchGroup::CallbackCost`]: connect+disconnect cycles a second with a
    /// slow callback, from the median time per iteration and its 95% confidence interval.
    CallbackCycles {
        /// The benchmarks' parameter (`threads=2,callback=1us`).
        parameter: String,
    },
    /// Criterion's [`BenchGroup::Lookup`]: lookups a second among 100,000 live tokens under
    /// churn, `is_paired` and `producer`.
    Lookups,
    /// Nothing measured the workload.
    Nothing(Workload),
}

/// Stress runs a workload is judged on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StressRuns {
    /// The scenarios, in the workload's order.
    pub scenarios: Vec<Scenario>,
    /// The callback costs the runs were made with, ascending; empty when the callbacks were
    /// free.
    pub callback_costs_ns: Vec<u64>,
    /// The fewest repeats of one backend in one scenario.
    pub repeats: usize,
}

/// The stress scenarios nearest to slow callbacks, nearest first: the first that ran stands
/// in when no run had a callback cost and criterion has no `callback_cost` group. A slow
/// callback lengthens the time other tokens wait on a registry's shared state; without one,
/// that waiting shows in the register and unregister tails of the scenario with the most
/// threads pairing at once.
pub const NEAREST_TO_SLOW_CALLBACKS: [Scenario; 4] = [
    Scenario::IrqfdFlood,
    Scenario::BootStorm,
    Scenario::RestoreStorm,
    Scenario::ServerlessChurn,
];

impl Basis {
    /// The unit of throughput (`ops/s`, `cycles/s`, `lookups/s`).
    pub fn unit(&self) -> &'static str {
        match self {
            Basis::Stress(_) | Basis::Nearest(_) => "ops/s",
            Basis::CallbackCycles { .. } | Basis::Nothing(Workload::SlowCallbacks) => "cycles/s",
            Basis::Lookups | Basis::Nothing(Workload::Delivery) => "lookups/s",
            Basis::Nothing(
                Workload::BootStorms
                | Workload::Churn
                | Workload::VmBoots
                | Workload::DriverUpgrades
                | Workload::HotplugLookups,
            ) => "ops/s",
        }
    }

    /// Whether `measure` speaks to the workload on this basis: the nearest evidence for slow
    /// callbacks is its tails only, as its throughput had no slow callback to slow it.
    pub fn admits(&self, measure: Measure) -> bool {
        !matches!((self, measure), (Basis::Nearest(_), Measure::Throughput))
    }

    /// Whether some figure comes from a single run, with no spread measured.
    pub fn single_run(&self) -> bool {
        match self {
            Basis::Stress(runs) | Basis::Nearest(runs) => runs.repeats <= 1,
            _ => false,
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
    /// It is the harness's floor ([`FLOOR`](crate::schema::FLOOR)), a raw map with no
    /// protocol shown for scale: never a candidate.
    Floor,
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
    /// Per measure, its figure in each scenario or criterion benchmark, in the basis's order;
    /// a measure it lacks in some scenario is absent.
    Figures(Vec<(Measure, Vec<Spread>)>),
    /// It is left out.
    Excluded(Reason),
}

/// The IRQ bypass registry's backends: [`backends_of`] the registry.
pub fn backends(results: &[RunResult], criterion: &CriterionData) -> Vec<String> {
    backends_of(ScenarioKind::Registry, results, criterion)
}

/// The backends of one registry, in the order its runs of `results` (then criterion's groups
/// for it) first name them; floors left out.
pub fn backends_of(
    kind: ScenarioKind,
    results: &[RunResult],
    criterion: &CriterionData,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let groups: &[BenchGroup] = match kind {
        ScenarioKind::Registry => &[
            BenchGroup::CycleThreads,
            BenchGroup::CyclePopulation,
            BenchGroup::Lookup,
            BenchGroup::CallbackCost,
        ],
        ScenarioKind::Bus => &[
            BenchGroup::BusDevice,
            BenchGroup::BusDriver,
            BenchGroup::BusProbeThreads,
        ],
    };
    let from_criterion = criterion
        .benchmarks
        .iter()
        .filter(|b| groups.iter().any(|g| g.name() == b.group))
        .map(|b| b.function.as_str());
    for name in results
        .iter()
        .filter(|r| r.scenario.kind() == kind)
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
/// workload's scenarios ran, criterion otherwise, and for slow callbacks the nearest stress
/// scenario last. Backends criterion did not measure are left out of the evidence altogether.
pub(super) fn gather(
    workload: Workload,
    results: &[RunResult],
    criterion: &CriterionData,
    backends: &[String],
    broken: &BTreeMap<String, Broke>,
) -> (Basis, Vec<(String, Evidence)>) {
    // Runs with a callback cost answer the slow-callback question, and only that one.
    let slow = workload == Workload::SlowCallbacks;
    let runs: Vec<&RunResult> = results
        .iter()
        .filter(|r| (r.callback_cost_ns > 0) == slow)
        .collect();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for r in &runs {
        if (slow || workload.scenarios().contains(&r.scenario)) && !scenarios.contains(&r.scenario)
        {
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
        return from_stress(workload, &runs, scenarios, backends, broken, Basis::Stress);
    }
    let criterion_basis = match workload {
        Workload::SlowCallbacks => Some((
            BenchGroup::CallbackCost,
            Basis::CallbackCycles {
                parameter: criterion
                    .group(BenchGroup::CallbackCost)
                    .next()
                    .map(|b| b.parameter.clone())
                    .unwrap_or_default(),
            },
        )),
        Workload::Delivery => Some((BenchGroup::Lookup, Basis::Lookups)),
        Workload::BootStorms | Workload::Churn => None,
        // The bus's criterion groups time single calls, not its workloads.
        Workload::VmBoots | Workload::DriverUpgrades | Workload::HotplugLookups => None,
    };
    if let Some((group, basis)) = criterion_basis.filter(|(g, _)| criterion.has_group(*g)) {
        let evidence = backends
            .iter()
            .filter_map(|b| Some((b.clone(), from_criterion(b, criterion, group, broken)?)))
            .collect();
        return (basis, evidence);
    }
    if slow {
        let free: Vec<&RunResult> = results.iter().filter(|r| r.callback_cost_ns == 0).collect();
        let nearest = NEAREST_TO_SLOW_CALLBACKS
            .into_iter()
            .find(|s| free.iter().any(|r| r.scenario == *s));
        if let Some(scenario) = nearest {
            return from_stress(
                workload,
                &free,
                vec![scenario],
                backends,
                broken,
                Basis::Nearest,
            );
        }
    }
    (Basis::Nothing(workload), Vec::new())
}

/// The basis `make` builds from `runs` of `scenarios`, and each backend's figures in them.
fn from_stress(
    workload: Workload,
    runs: &[&RunResult],
    scenarios: Vec<Scenario>,
    backends: &[String],
    broken: &BTreeMap<String, Broke>,
    make: fn(StressRuns) -> Basis,
) -> (Basis, Vec<(String, Evidence)>) {
    let basis = make(StressRuns {
        callback_costs_ns: callback_costs(runs),
        repeats: fewest_repeats(runs, &scenarios),
        scenarios,
    });
    let measures: Vec<Measure> = workload
        .weighting()
        .weights
        .iter()
        .map(|w| w.measure)
        .filter(|&m| basis.admits(m))
        .collect();
    let (Basis::Stress(stress) | Basis::Nearest(stress)) = &basis else {
        unreachable!("`make` builds a stress basis")
    };
    let evidence = backends
        .iter()
        .map(|b| {
            let evidence = from_runs(b, runs, &stress.scenarios, &measures, broken);
            (b.clone(), evidence)
        })
        .collect();
    (basis, evidence)
}

/// A run's figure for `measure`; `None` if the run did not measure it. Latencies are at
/// least 1 ns, so that ratios stay finite.
fn figure(run: &RunResult, measure: Measure) -> Option<f64> {
    match measure {
        Measure::Throughput => Some(run.ops_per_s),
        Measure::Latency(op, stat) => {
            let p = run.latency_ns.get(&op).filter(|p| p.count > 0)?;
            let ns = match stat {
                Stat::P999 => p.p999,
                Stat::Max => p.max,
            };
            Some(ns.max(1) as f64)
        }
    }
}

/// `backend`'s figures for `measures` in each of `scenarios`, or why it has none to go by.
fn from_runs(
    backend: &str,
    runs: &[&RunResult],
    scenarios: &[Scenario],
    measures: &[Measure],
    broken: &BTreeMap<String, Broke>,
) -> Evidence {
    if backend == crate::schema::FLOOR {
        return Evidence::Excluded(Reason::Floor);
    }
    if let Some(broke) = broken.get(backend) {
        return Evidence::Excluded(Reason::Broke(broke.clone()));
    }
    let mut mine: Vec<Vec<&RunResult>> = Vec::new();
    for &scenario in scenarios {
        let of_scenario: Vec<&RunResult> = runs
            .iter()
            .copied()
            .filter(|r| r.backend == backend && r.scenario == scenario)
            .collect();
        if of_scenario.is_empty() {
            return Evidence::Excluded(Reason::NoRun { scenario });
        }
        if of_scenario.iter().any(|r| r.capped) {
            return Evidence::Excluded(Reason::Capped { scenario });
        }
        mine.push(of_scenario);
    }
    let mut figures = Vec::new();
    for &measure in measures {
        let spreads: Option<Vec<Spread>> = mine
            .iter()
            .map(|runs| Spread::of(runs.iter().filter_map(|r| figure(r, measure))))
            .collect();
        match spreads {
            Some(spreads) => figures.push((measure, spreads)),
            None if measure == Measure::Throughput => {
                let at = mine.iter().position(|runs| {
                    Spread::of(runs.iter().filter_map(|r| figure(r, measure))).is_none()
                });
                let scenario = scenarios[at.unwrap_or(0)];
                return Evidence::Excluded(Reason::NoFigure { scenario });
            }
            // A latency it did not measure: the comparison leaves that measure out.
            None => {}
        }
    }
    let zero = figures
        .iter()
        .any(|(m, spreads)| *m == Measure::Throughput && spreads.iter().any(|s| s.low <= 0.0));
    if zero {
        return Evidence::Excluded(Reason::ZeroThroughput);
    }
    Evidence::Figures(figures)
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
        .filter(|s| s.low > 0.0 && s.median.is_finite() && s.high.is_finite())
        .collect();
    if rates.is_empty() {
        return None;
    }
    Some(match broken.get(backend) {
        Some(broke) => Evidence::Excluded(Reason::Broke(broke.clone())),
        None => Evidence::Figures(vec![(Measure::Throughput, rates)]),
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

/// The fewest runs of one backend in one of `scenarios`.
fn fewest_repeats(runs: &[&RunResult], scenarios: &[Scenario]) -> usize {
    scenarios
        .iter()
        .flat_map(|s| {
            let mut per_backend: BTreeMap<&str, usize> = BTreeMap::new();
            for r in runs.iter().filter(|r| r.scenario == *s) {
                *per_backend.entry(r.backend.as_str()).or_default() += 1;
            }
            per_backend.into_values()
        })
        .min()
        .unwrap_or(0)
}
