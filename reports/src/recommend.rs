//! Which backend to choose for each kind of workload, computed from the figures.
//!
//! Each [`Workload`] is scored from `results.json` where the runs exist, and from criterion
//! otherwise. A backend's score is a rate (higher is better) with its spread: for results,
//! the geometric mean over the workload's scenarios of the median, of the lowest and of the
//! highest repeat; for criterion, the median time per iteration turned into a rate, with its
//! 95% confidence interval. [`decide`] then names the winner, and by how much it beats the
//! runner-up, unless the runner-up's best reaches the winner's worst or the two are within
//! [`MIN_MARGIN`]: then there is no clear winner.
//!
//! A backend that broke a guarantee in any run is never recommended, and a backend whose run
//! of a workload's scenario was capped (stopped by its time cap before the end of the plan) is
//! not scored on that workload: both are listed as excluded, with the reason.

use std::collections::BTreeMap;

use crate::criterion::CriterionData;
use crate::format;
use crate::schema::{BenchGroup, RunResult};
use crate::stats::Spread;

/// Below this ratio the winner's lead is too small to call on a shared machine, whatever the
/// measured spread: with a single repeat there is no spread to go by, and two cores shared
/// with other jobs give a few percent of noise between runs.
pub const MIN_MARGIN: f64 = 1.05;

/// The raw concurrent maps the benchmarks run as a floor: never candidates.
pub const FLOORS: &[&str] = &["dashmap", "papaya"];

/// A kind of workload a VMM puts on its registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// Many registrations at once: VMs booting or restoring together, irqfds created in bulk.
    BootStorms,
    /// MicroVMs created and destroyed all the time, whose consumers never meet a producer.
    Churn,
    /// The read path, asked on every interrupt while registrations churn.
    Delivery,
    /// Callbacks that take time (an interrupt-remapping update): whether other tokens wait.
    SlowCallbacks,
}

impl Workload {
    /// Every workload, in the order the report lists them.
    pub const ALL: [Workload; 4] = [
        Workload::BootStorms,
        Workload::Churn,
        Workload::Delivery,
        Workload::SlowCallbacks,
    ];

    /// The heading of the workload.
    pub fn title(self) -> &'static str {
        match self {
            Workload::BootStorms => "Boot storms",
            Workload::Churn => "Churn with unmatched consumers",
            Workload::Delivery => "Read-heavy delivery",
            Workload::SlowCallbacks => "Slow callbacks",
        }
    }

    /// The stress scenarios that model it (none for slow callbacks: any run with a callback
    /// cost counts).
    pub fn scenarios(self) -> &'static [&'static str] {
        match self {
            Workload::BootStorms => &["boot-storm", "restore-storm", "irqfd-flood"],
            Workload::Churn => &["serverless-churn"],
            Workload::Delivery => &["delivery-lookup"],
            Workload::SlowCallbacks => &[],
        }
    }
}

/// A backend's score on a workload: a rate, higher is better.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The backend.
    pub backend: String,
    /// The rate, with its spread.
    pub score: Spread,
}

/// A backend left out of a workload's ranking, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// The backend.
    pub backend: String,
    /// Why (violations, a capped run, no run of a scenario).
    pub reason: String,
}

/// The outcome for one workload.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// One backend wins by more than the spread and [`MIN_MARGIN`].
    Winner {
        /// The backend to choose.
        backend: String,
        /// The second best, if there was one.
        runner_up: Option<String>,
        /// The winner's median over the runner-up's.
        ratio: Option<f64>,
    },
    /// The leaders' figures overlap: any of them will do, as far as these figures tell.
    NoClearWinner {
        /// The backends within reach of the best, best first.
        leaders: Vec<String>,
        /// The best median over the second best.
        ratio: f64,
        /// Whether the second best's best figure reaches the best's worst (otherwise the
        /// medians are only closer than [`MIN_MARGIN`]).
        overlap: bool,
    },
    /// Nothing measured this workload.
    NoData,
}

/// The recommendation for one workload, with the figures it rests on.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    /// The workload.
    pub workload: Workload,
    /// What was measured, in words.
    pub basis: String,
    /// The unit of the scores (`ops/s`, `cycles/s`, …).
    pub unit: &'static str,
    /// The scored backends, best first.
    pub candidates: Vec<Candidate>,
    /// The backends left out, and why.
    pub excluded: Vec<Exclusion>,
    /// The outcome.
    pub verdict: Verdict,
}

impl Recommendation {
    /// The verdict in one line: `lockfree: 1.83× the ops/s of sharded`.
    pub fn summary(&self) -> String {
        match &self.verdict {
            Verdict::Winner {
                backend,
                runner_up: Some(runner_up),
                ratio: Some(ratio),
            } => format!(
                "{backend}: {} the {} of the runner-up, {runner_up}",
                format::ratio(*ratio),
                self.unit
            ),
            Verdict::Winner { backend, .. } => {
                format!("{backend}: the only backend with usable figures")
            }
            Verdict::NoClearWinner {
                leaders,
                ratio,
                overlap,
            } => format!(
                "no clear winner: {} {} (best {} the next)",
                leaders.join(", "),
                tie_reason(*overlap),
                format::ratio(*ratio)
            ),
            Verdict::NoData => "no data".into(),
        }
    }
}

/// Why the leaders are tied, in words.
pub(crate) fn tie_reason(overlap: bool) -> String {
    if overlap {
        "are within the measured spread of each other".into()
    } else {
        format!(
            "are less than {} apart, within the noise of a shared machine",
            margin_percent()
        )
    }
}

/// [`MIN_MARGIN`] as a percentage: `5%`.
fn margin_percent() -> String {
    format!("{:.0}%", (MIN_MARGIN - 1.0) * 100.0)
}

/// Ranks `candidates` (best first) and names the winner, if the figures allow.
///
/// The best median wins clearly when the runner-up's best figure stays below the winner's
/// worst **and** the ratio of medians is at least [`MIN_MARGIN`]. Otherwise there is no clear
/// winner, and the leaders are every candidate whose best reaches the winner's worst or whose
/// median is within the margin.
pub fn decide(candidates: &mut [Candidate]) -> Verdict {
    candidates.sort_by(|a, b| {
        b.score
            .median
            .total_cmp(&a.score.median)
            .then_with(|| a.backend.cmp(&b.backend))
    });
    let ratio_to = |w: &Spread, o: &Spread| {
        if o.median > 0.0 {
            w.median / o.median
        } else {
            f64::INFINITY
        }
    };
    match candidates {
        [] => Verdict::NoData,
        [only] => Verdict::Winner {
            backend: only.backend.clone(),
            runner_up: None,
            ratio: None,
        },
        [winner, runner_up, ..] => {
            let w = winner.score;
            let within = |o: &Spread| o.high >= w.low || ratio_to(&w, o) < MIN_MARGIN;
            let ratio = ratio_to(&w, &runner_up.score);
            let overlap = runner_up.score.high >= w.low;
            if within(&runner_up.score) {
                Verdict::NoClearWinner {
                    leaders: candidates
                        .iter()
                        .filter(|c| within(&c.score))
                        .map(|c| c.backend.clone())
                        .collect(),
                    ratio,
                    overlap,
                }
            } else {
                Verdict::Winner {
                    backend: winner.backend.clone(),
                    runner_up: Some(runner_up.backend.clone()),
                    ratio: Some(ratio),
                }
            }
        }
    }
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

/// Backends that broke a guarantee: how many runs, and in which scenarios.
pub fn broken(results: &[RunResult]) -> BTreeMap<String, (usize, Vec<String>)> {
    let mut out: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.violations > 0) {
        let entry = out.entry(r.backend.clone()).or_default();
        entry.0 += 1;
        if !entry.1.iter().any(|s| s == r.scenario.name()) {
            entry.1.push(r.scenario.name().to_string());
        }
    }
    out
}

fn broken_reason(runs: usize, scenarios: &[String]) -> String {
    format!(
        "broke a guarantee in {runs} run{} ({}): never recommended",
        if runs == 1 { "" } else { "s" },
        scenarios.join(", ")
    )
}

/// Scores every backend on the throughput of `scenarios` in `runs`.
fn score_results(
    runs: &[&RunResult],
    scenarios: &[String],
    backends: &[String],
    broken: &BTreeMap<String, (usize, Vec<String>)>,
) -> (Vec<Candidate>, Vec<Exclusion>) {
    let mut candidates = Vec::new();
    let mut excluded = Vec::new();
    'backend: for backend in backends {
        if let Some((count, scenarios)) = broken.get(backend) {
            excluded.push(Exclusion {
                backend: backend.clone(),
                reason: broken_reason(*count, scenarios),
            });
            continue;
        }
        let mut parts = Vec::new();
        for scenario in scenarios {
            let mine: Vec<&&RunResult> = runs
                .iter()
                .filter(|r| &r.backend == backend && r.scenario.name() == scenario)
                .collect();
            let reason = if mine.is_empty() {
                Some(format!("no run of {scenario}"))
            } else if mine.iter().any(|r| r.capped) {
                Some(format!(
                    "capped in {scenario}: its time cap stopped the run before the end of the plan"
                ))
            } else {
                None
            };
            let part = Spread::of(mine.iter().map(|r| r.ops_per_s));
            match (reason, part) {
                (None, Some(part)) => parts.push(part),
                (reason, _) => {
                    excluded.push(Exclusion {
                        backend: backend.clone(),
                        reason: reason.unwrap_or_else(|| format!("no figure for {scenario}")),
                    });
                    continue 'backend;
                }
            }
        }
        match Spread::geometric_mean(&parts) {
            Some(score) => candidates.push(Candidate {
                backend: backend.clone(),
                score,
            }),
            None => excluded.push(Exclusion {
                backend: backend.clone(),
                reason: "a throughput of zero".into(),
            }),
        }
    }
    (candidates, excluded)
}

/// Scores every backend from one criterion group: each benchmark's rate, combined over the
/// group's parameters by geometric mean.
fn score_criterion(
    criterion: &CriterionData,
    group: BenchGroup,
    backends: &[String],
    broken: &BTreeMap<String, (usize, Vec<String>)>,
) -> (Vec<Candidate>, Vec<Exclusion>) {
    let mut candidates = Vec::new();
    let mut excluded = Vec::new();
    for backend in backends {
        let parts: Vec<Spread> = criterion
            .group(group)
            .filter(|b| &b.function == backend)
            .map(|b| b.per_second())
            .collect();
        if parts.is_empty() {
            continue;
        }
        if let Some((count, scenarios)) = broken.get(backend) {
            excluded.push(Exclusion {
                backend: backend.clone(),
                reason: broken_reason(*count, scenarios),
            });
            continue;
        }
        if let Some(score) = Spread::geometric_mean(&parts) {
            candidates.push(Candidate {
                backend: backend.clone(),
                score,
            });
        }
    }
    (candidates, excluded)
}

fn repeats_phrase(runs: &[&RunResult], scenarios: &[String]) -> String {
    let most = scenarios
        .iter()
        .flat_map(|s| {
            let mut per_backend: BTreeMap<&str, usize> = BTreeMap::new();
            for r in runs.iter().filter(|r| r.scenario.name() == s) {
                *per_backend.entry(r.backend.as_str()).or_default() += 1;
            }
            per_backend.into_values()
        })
        .max()
        .unwrap_or(0);
    if most <= 1 {
        format!(
            "one run each, so no spread was measured: only the {} margin guards against noise",
            margin_percent()
        )
    } else {
        format!("median and range over {most} repeats")
    }
}

/// The recommendation for every workload.
pub fn recommend(results: &[RunResult], criterion: &CriterionData) -> Vec<Recommendation> {
    let backends = backends(results, criterion);
    let broken = broken(results);
    Workload::ALL
        .iter()
        .map(|&workload| recommend_one(workload, results, criterion, &backends, &broken))
        .collect()
}

fn recommend_one(
    workload: Workload,
    results: &[RunResult],
    criterion: &CriterionData,
    backends: &[String],
    broken: &BTreeMap<String, (usize, Vec<String>)>,
) -> Recommendation {
    // Runs with a callback cost answer the slow-callback question, and only that one.
    let runs: Vec<&RunResult> = results
        .iter()
        .filter(|r| (r.callback_cost_ns > 0) == (workload == Workload::SlowCallbacks))
        .collect();
    let mut scenarios: Vec<String> = Vec::new();
    for r in &runs {
        let wanted = workload == Workload::SlowCallbacks
            || workload.scenarios().contains(&r.scenario.name());
        if wanted && !scenarios.iter().any(|s| s == r.scenario.name()) {
            scenarios.push(r.scenario.name().to_string());
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
    let (mut candidates, excluded, basis, unit) = if !scenarios.is_empty() {
        let (c, e) = score_results(&runs, &scenarios, backends, broken);
        let what = if workload == Workload::SlowCallbacks {
            let costs: Vec<String> = {
                let mut v: Vec<u64> = runs.iter().map(|r| r.callback_cost_ns).collect();
                v.sort_unstable();
                v.dedup();
                v.into_iter().map(|c| format::ns(c as f64)).collect()
            };
            format!(
                "stress runs whose callbacks each take {}: throughput in {}",
                costs.join(" or "),
                scenarios.join(", ")
            )
        } else {
            format!("stress throughput in {}", scenarios.join(", "))
        };
        let combine = if scenarios.len() > 1 {
            "; geometric mean over the scenarios of each backend's median, lowest and highest run"
        } else {
            ""
        };
        (
            c,
            e,
            format!("{what} ({}){combine}", repeats_phrase(&runs, &scenarios)),
            "ops/s",
        )
    } else {
        let (group, basis, unit) = match workload {
            Workload::SlowCallbacks => {
                let param = criterion
                    .group(BenchGroup::CallbackCost)
                    .next()
                    .map(|b| b.parameter.clone())
                    .unwrap_or_default();
                (
                    Some(BenchGroup::CallbackCost),
                    format!(
                        "criterion `callback_cost` ({param}): connect+disconnect cycles a second, from the median time per iteration and its 95% confidence interval"
                    ),
                    "cycles/s",
                )
            }
            Workload::Delivery => (
                Some(BenchGroup::Lookup),
                "criterion `lookup`: lookups a second among 100,000 live tokens under churn, geometric mean of `is_paired` and `producer`, from the median time per iteration and its 95% confidence interval".to_string(),
                "lookups/s",
            ),
            Workload::BootStorms | Workload::Churn => (None, String::new(), "ops/s"),
        };
        let group = group.filter(|&g| criterion.has_group(g));
        if let Some(group) = group {
            let (c, e) = score_criterion(criterion, group, backends, broken);
            (c, e, basis, unit)
        } else {
            let basis = match workload {
                Workload::SlowCallbacks => {
                    "no stress run with a callback cost, and no criterion `callback_cost` group"
                        .to_string()
                }
                Workload::Delivery => {
                    "no delivery-lookup run, and no criterion `lookup` group".to_string()
                }
                _ => format!("no run of {}", workload.scenarios().join(", ")),
            };
            (Vec::new(), Vec::new(), basis, unit)
        }
    };
    let verdict = decide(&mut candidates);
    Recommendation {
        workload,
        basis,
        unit,
        candidates,
        excluded,
        verdict,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::criterion::tests::{temp_dir, write_benchmark};
    use crate::schema::{Machine, Operation, Percentiles, Scenario};

    /// A run with the figures a test cares about; the rest plausible.
    pub(crate) fn run(backend: &str, scenario: &str, seed: u64, ops_per_s: f64) -> RunResult {
        RunResult {
            backend: backend.into(),
            scenario: scenario.parse().expect("a scenario name"),
            threads: 4,
            seed,
            scale: 0.1,
            ops: 10_000,
            elapsed_s: 10_000.0 / ops_per_s,
            ops_per_s,
            latency_ns: [(
                Operation::Register,
                Percentiles {
                    count: 5000,
                    p50: 200,
                    p99: 2_000,
                    p999: (4e9 / ops_per_s) as u64,
                    max: 50_000,
                },
            )]
            .into_iter()
            .collect(),
            violations: 0,
            peak_rss_bytes: 64 << 20,
            machine: Machine {
                cores: 2,
                rustc: "rustc 1.95.0".into(),
                cpu: "Synthetic CPU".into(),
                memory_bytes: 8 << 30,
            },
            capped: false,
            skipped_ops: 0,
            callback_cost_ns: 0,
            fail_rate: 0.0,
            panic_rate: 0.0,
            check_s: 0.01,
        }
    }

    /// Three repeats of `scenario` per backend, at `base × (1 ± jitter)`.
    pub(crate) fn repeats(
        out: &mut Vec<RunResult>,
        scenario: &str,
        figures: &[(&str, f64)],
        jitter: f64,
    ) {
        for (seed, factor) in [(1, 1.0 - jitter), (2, 1.0), (3, 1.0 + jitter)] {
            for &(backend, base) in figures {
                out.push(run(backend, scenario, seed, base * factor));
            }
        }
    }

    fn for_workload(results: &[RunResult], workload: Workload) -> Recommendation {
        recommend(results, &CriterionData::default())
            .into_iter()
            .find(|r| r.workload == workload)
            .unwrap()
    }

    fn boot_storms(figures: &[(&str, f64)], jitter: f64) -> Vec<RunResult> {
        let mut out = Vec::new();
        for scenario in Workload::BootStorms.scenarios() {
            repeats(&mut out, scenario, figures, jitter);
        }
        out
    }

    #[test]
    fn the_fastest_backend_wins_by_its_ratio() {
        let results = boot_storms(&[("a", 100.0), ("b", 300.0), ("c", 150.0)], 0.05);
        let rec = for_workload(&results, Workload::BootStorms);
        match &rec.verdict {
            Verdict::Winner {
                backend,
                runner_up,
                ratio,
            } => {
                assert_eq!(backend, "b");
                assert_eq!(runner_up.as_deref(), Some("c"));
                assert!((ratio.unwrap() - 2.0).abs() < 1e-9, "{ratio:?}");
            }
            other => panic!("expected a winner, got {other:?}"),
        }
        let order: Vec<&str> = rec.candidates.iter().map(|c| c.backend.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert!(rec.summary().starts_with("b: 2.00×"), "{}", rec.summary());
        assert!(rec.basis.contains("boot-storm, restore-storm, irqfd-flood"));
        assert!(rec.basis.contains("3 repeats"), "{}", rec.basis);
    }

    #[test]
    fn changing_the_figures_changes_the_winner() {
        let before = boot_storms(&[("a", 100.0), ("b", 300.0)], 0.05);
        let after = boot_storms(&[("a", 700.0), ("b", 300.0)], 0.05);
        let winner =
            |results: &[RunResult]| match for_workload(results, Workload::BootStorms).verdict {
                Verdict::Winner { backend, .. } => backend,
                other => panic!("expected a winner, got {other:?}"),
            };
        assert_eq!(winner(&before), "b");
        assert_eq!(winner(&after), "a");

        // Only one scenario of the three moves, and it is enough to turn the geometric mean.
        let mut mixed = boot_storms(&[("a", 100.0), ("b", 130.0)], 0.01);
        for r in mixed.iter_mut() {
            if r.backend == "a" && r.scenario == Scenario::IrqfdFlood {
                r.ops_per_s *= 3.0;
            }
        }
        assert_eq!(winner(&mixed), "a");
    }

    #[test]
    fn overlapping_spreads_give_no_clear_winner() {
        // b's median is 10% above a's, but a's best repeat (+15%) reaches b's worst (-15%).
        let mut results = Vec::new();
        repeats(
            &mut results,
            "serverless-churn",
            &[("a", 100.0), ("b", 110.0), ("c", 20.0)],
            0.15,
        );
        let rec = for_workload(&results, Workload::Churn);
        match &rec.verdict {
            Verdict::NoClearWinner {
                leaders,
                ratio,
                overlap,
            } => {
                assert!(overlap);
                assert_eq!(leaders, &["b", "a"]);
                assert!((ratio - 1.1).abs() < 1e-9);
            }
            other => panic!("expected no clear winner, got {other:?}"),
        }
        assert!(rec.summary().starts_with("no clear winner"));

        // The same medians with tight repeats: b wins.
        let mut tight = Vec::new();
        repeats(
            &mut tight,
            "serverless-churn",
            &[("a", 100.0), ("b", 110.0)],
            0.01,
        );
        assert!(matches!(
            for_workload(&tight, Workload::Churn).verdict,
            Verdict::Winner { ref backend, .. } if backend == "b"
        ));
    }

    #[test]
    fn a_lead_under_the_margin_is_no_clear_winner_even_without_spread() {
        let results = vec![
            run("a", "delivery-lookup", 1, 100.0),
            run("b", "delivery-lookup", 1, 103.0),
        ];
        let rec = for_workload(&results, Workload::Delivery);
        assert!(
            matches!(rec.verdict, Verdict::NoClearWinner { overlap: false, .. }),
            "{:?}",
            rec.verdict
        );
        assert!(
            rec.summary().contains("less than 5% apart"),
            "{}",
            rec.summary()
        );
        assert!(rec.basis.contains("no spread"), "{}", rec.basis);
    }

    #[test]
    fn violations_and_capped_runs_are_flagged_and_excluded() {
        let mut results = boot_storms(&[("a", 100.0), ("b", 300.0), ("c", 900.0)], 0.05);
        // c is the fastest, but broke a guarantee once; b was capped in one scenario.
        results
            .iter_mut()
            .find(|r| r.backend == "c" && r.scenario == Scenario::BootStorm)
            .unwrap()
            .violations = 2;
        results
            .iter_mut()
            .find(|r| r.backend == "b" && r.scenario == Scenario::IrqfdFlood)
            .unwrap()
            .capped = true;
        let rec = for_workload(&results, Workload::BootStorms);
        assert!(matches!(
            rec.verdict,
            Verdict::Winner { ref backend, runner_up: None, .. } if backend == "a"
        ));
        let reason = |b: &str| {
            rec.excluded
                .iter()
                .find(|e| e.backend == b)
                .map(|e| e.reason.clone())
                .unwrap_or_default()
        };
        assert!(reason("c").contains("broke a guarantee"), "{}", reason("c"));
        assert!(
            reason("b").contains("capped in irqfd-flood"),
            "{}",
            reason("b")
        );
        assert!(rec.summary().contains("only backend"));
        // The violation counts everywhere, not only in boot storms.
        let mut churn = results.clone();
        repeats(
            &mut churn,
            "serverless-churn",
            &[("a", 1.0), ("c", 9.0)],
            0.0,
        );
        let rec = for_workload(&churn, Workload::Churn);
        assert!(rec.excluded.iter().any(|e| e.backend == "c"));
    }

    #[test]
    fn no_runs_no_recommendation() {
        let rec = for_workload(&[], Workload::BootStorms);
        assert_eq!(rec.verdict, Verdict::NoData);
        assert_eq!(rec.summary(), "no data");
        let rec = for_workload(&[], Workload::SlowCallbacks);
        assert_eq!(rec.verdict, Verdict::NoData);
        assert!(rec.basis.contains("callback_cost"));
    }

    #[test]
    fn slow_callbacks_from_criterion_or_from_runs() {
        let root = temp_dir("recommend-callbacks");
        let param = "threads=2,callback=1us";
        write_benchmark(&root, "callback_cost", "mutex-map", param, 2, 16_000.0);
        write_benchmark(&root, "callback_cost", "sharded", param, 2, 8_000.0);
        let criterion = CriterionData::read(&root);
        let rec = &recommend(&[], &criterion)[3];
        assert_eq!(rec.workload, Workload::SlowCallbacks);
        assert!(
            matches!(&rec.verdict, Verdict::Winner { backend, ratio: Some(r), .. }
                if backend == "sharded" && (r - 2.0).abs() < 1e-9),
            "{:?}",
            rec.verdict
        );
        assert!(rec.basis.contains("criterion `callback_cost`"));

        // Runs with a callback cost take precedence, and stay out of the other workloads.
        let mut results = Vec::new();
        repeats(
            &mut results,
            "boot-storm",
            &[("mutex-map", 50.0), ("sharded", 20.0)],
            0.01,
        );
        for r in &mut results {
            r.callback_cost_ns = 1_000;
        }
        let recs = recommend(&results, &criterion);
        assert!(
            matches!(&recs[3].verdict, Verdict::Winner { backend, .. } if backend == "mutex-map")
        );
        assert!(recs[3].basis.contains("1.00 µs"), "{}", recs[3].basis);
        assert_eq!(recs[0].verdict, Verdict::NoData);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn delivery_falls_back_to_criterion_lookups() {
        let root = temp_dir("recommend-lookup");
        for (backend, ns) in [("rcu", 20.0), ("mutex-map", 200.0), ("dashmap", 10.0)] {
            write_benchmark(&root, "lookup", backend, "is_paired", 1, ns);
            write_benchmark(&root, "lookup", backend, "producer", 1, ns * 1.5);
        }
        let criterion = CriterionData::read(&root);
        let rec = &recommend(&[], &criterion)[2];
        // The floor is faster, but it is not a backend.
        assert!(
            matches!(&rec.verdict, Verdict::Winner { backend, ratio: Some(r), .. }
                if backend == "rcu" && (r - 10.0).abs() < 1e-6),
            "{:?}",
            rec.verdict
        );
        assert_eq!(rec.unit, "lookups/s");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
