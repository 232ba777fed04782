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
//!
//! | module | what it holds |
//! |---|---|
//! | `evidence` | what is measured of each backend on each workload: the [`Basis`], rates or a [`Reason`] to leave it out |
//! | `scoring` | scores from the evidence, the ranking, [`MIN_MARGIN`] and ties ([`decide`]) |
//! | `prose` | the words: the one-line summary, the basis, the reasons, why leaders are tied |

mod evidence;
mod prose;
mod scoring;

use std::collections::BTreeMap;

use crate::criterion::CriterionData;
use crate::schema::{RunResult, Scenario};
use crate::stats::Spread;

pub use evidence::{Basis, Broke, FLOORS, Reason, StressThroughput, backends, broken};
pub(crate) use prose::{scenario_list, tie_reason};
pub use scoring::{MIN_MARGIN, decide};

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
    pub fn scenarios(self) -> &'static [Scenario] {
        match self {
            Workload::BootStorms => &[
                Scenario::BootStorm,
                Scenario::RestoreStorm,
                Scenario::IrqfdFlood,
            ],
            Workload::Churn => &[Scenario::ServerlessChurn],
            Workload::Delivery => &[Scenario::DeliveryLookup],
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
    pub reason: Reason,
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
    /// What was measured (its [`Display`](std::fmt::Display) says it in words).
    pub basis: Basis,
    /// The scored backends, best first.
    pub candidates: Vec<Candidate>,
    /// The backends left out, and why.
    pub excluded: Vec<Exclusion>,
    /// The outcome.
    pub verdict: Verdict,
}

impl Recommendation {
    /// The unit of the scores (`ops/s`, `cycles/s`, `lookups/s`).
    pub fn unit(&self) -> &'static str {
        self.basis.unit()
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
    broken: &BTreeMap<String, Broke>,
) -> Recommendation {
    let (basis, evidence) = evidence::gather(workload, results, criterion, backends, broken);
    let (mut candidates, excluded) = scoring::score(&basis, evidence);
    let verdict = decide(&mut candidates);
    Recommendation {
        workload,
        basis,
        candidates,
        excluded,
        verdict,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::criterion::tests::{temp_dir, write_benchmark};
    use crate::schema::{Machine, Operation, Percentiles};

    /// A run with the figures a test cares about; the rest plausible.
    pub(crate) fn run(backend: &str, scenario: Scenario, seed: u64, ops_per_s: f64) -> RunResult {
        RunResult {
            backend: backend.into(),
            scenario,
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
            details: Default::default(),
        }
    }

    /// Three repeats of `scenario` per backend, at `base × (1 ± jitter)`.
    pub(crate) fn repeats(
        out: &mut Vec<RunResult>,
        scenario: Scenario,
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
        for &scenario in Workload::BootStorms.scenarios() {
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
        assert!(
            rec.basis
                .to_string()
                .contains("boot-storm, restore-storm, irqfd-flood")
        );
        assert!(rec.basis.to_string().contains("3 repeats"), "{}", rec.basis);
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
            Scenario::ServerlessChurn,
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
            Scenario::ServerlessChurn,
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
            run("a", Scenario::DeliveryLookup, 1, 100.0),
            run("b", Scenario::DeliveryLookup, 1, 103.0),
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
        assert!(rec.basis.to_string().contains("no spread"), "{}", rec.basis);
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
                .map(|e| e.reason.to_string())
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
            Scenario::ServerlessChurn,
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
        assert!(rec.basis.to_string().contains("callback_cost"));
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
        assert!(rec.basis.to_string().contains("criterion `callback_cost`"));

        // Runs with a callback cost take precedence, and stay out of the other workloads.
        let mut results = Vec::new();
        repeats(
            &mut results,
            Scenario::BootStorm,
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
        assert!(
            recs[3].basis.to_string().contains("1.00 µs"),
            "{}",
            recs[3].basis
        );
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
        assert_eq!(rec.unit(), "lookups/s");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
