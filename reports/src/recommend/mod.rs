//! Which backend to choose for each kind of workload, and overall, computed from the
//! figures: throughput and tail latency together.
//!
//! # The method
//!
//! Each [`Workload`] is judged on the measures of its row of [`WEIGHTING`] (throughput;
//! register and unregister p99.9 and maximum; lookup p99.9 for delivery), each with a weight.
//! The figures come from `results.json` where the workload's scenarios ran, and from criterion
//! otherwise; slow callbacks, with neither a run with a callback cost nor criterion's
//! `callback_cost` group, fall back to the tails of the nearest scenario that ran
//! ([`NEAREST_TO_SLOW_CALLBACKS`]), and say so.
//!
//! 1. **Per measure and scenario, each backend's median over the repeats**, with its range
//!    (lowest and highest repeat; for criterion, the 95% confidence interval). The median
//!    ignores one bad repeat; the range says how far the repeats disagree.
//! 2. **Ratios, log-scaled.** Two backends are compared by the log₂ of the ratio of their
//!    medians, turned so that positive is better: 2× worse counts the same on throughput as on
//!    a p99.9, and a measure's weight is exactly the share of the verdict it carries. With
//!    several scenarios, a measure's lead is the mean over them.
//! 3. **Ties per measure.** Two backends tie on a measure in a scenario when their ranges
//!    overlap (the repeats cannot tell them apart) or their medians are within the measure's
//!    band ([`MIN_MARGIN`] for throughput, [`TAIL_BAND`] for tails, the noise a single figure
//!    carries on a shared machine). A tied measure counts for neither.
//! 4. **A cap.** A lead counts up to [`CAP`]: one tail hiccup (200× between repeats in the
//!    results of 2026-11-21) must not outweigh every other measure.
//! 5. **The ranking** is by how far each backend is behind the best median of each measure,
//!    capped and weighted. **The verdict** compares the leader with every other backend: the
//!    weighted lead, counting the measures on which they do not tie, must exceed
//!    [`MEASURED_MARGIN`] when every figure has a spread, and [`SINGLE_RUN_MARGIN`] when some
//!    come from one run each, which cannot tell noise from difference. A backend the leader
//!    does not beat so is tied with it, and the tie names the measures behind it: those on
//!    which they tie, and those on which each leads.
//! 6. **The overall default** ([`overall`]) is the backend that wins or ties the most
//!    workloads, each weighted by how common it is (the table's `prevalence`); then the one
//!    with the most outright wins; then the one least far behind across the workloads.
//!
//! The rule in 5 was tuned on the full-size results of 2026-11-21 (checked runs): each of
//! their three repeats, scored alone, gives the same verdicts (a test holds it), because where
//! single repeats disagree, the single-run margin makes the verdict a named tie. On the current
//! reference (2026-12-02, measured runs) the three repeats alone agree on the default
//! (`sharded`) but not on every workload, and `compare --quick` runs do not agree with each
//! other on most workloads: the tails of the scalable backends move by 2× to 16× between
//! repeats there. Read a verdict from one run, or from a quick run, with its margins.
//!
//! A backend that broke a guarantee in any run is never recommended, and a backend whose run
//! of a workload's scenario was capped (stopped by its time cap before the end of the plan) is
//! not scored on that workload: both are listed as excluded, with the reason.
//!
//! | module | what it holds |
//! |---|---|
//! | `weights` | the weighting table ([`WEIGHTING`]) and the margins: the method's judgement, as data |
//! | `evidence` | what is measured of each backend on each workload: the [`Basis`], figures per measure or a [`Reason`] to leave it out |
//! | `scoring` | the comparison per measure, the ranking, the verdict |
//! | `prose` | the words: the one-line summary, the basis, the reasons, the default's reason |

mod evidence;
mod prose;
mod scoring;
mod weights;

use std::collections::BTreeMap;

use crate::criterion::CriterionData;
use crate::schema::{RunResult, Scenario, ScenarioKind};
use crate::stats::Spread;

pub use evidence::{
    Basis, Broke, FLOORS, NEAREST_TO_SLOW_CALLBACKS, Reason, StressRuns, backends, backends_of,
    broken,
};
pub(crate) use prose::{prevalences, scenario_list, weight};
pub use weights::{
    BUS_WEIGHTING, CAP, Direction, MEASURED_MARGIN, MIN_MARGIN, Measure, SINGLE_RUN_MARGIN, Stat,
    TAIL_BAND, WEIGHTING, Weight, Weighting, weighting_of,
};

/// A kind of workload a VMM puts on one of its registries: the IRQ bypass registry's first,
/// then the virtio bus's.
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
    /// Bus: microVMs registering their virtio devices while the host loads its drivers.
    VmBoots,
    /// Bus: a driver upgraded in place, unregistered with every device it binds and
    /// registered again, while devices come and go.
    DriverUpgrades,
    /// Bus: devices hot-added and removed while the driver of a device is looked up on every
    /// interrupt.
    HotplugLookups,
}

impl Workload {
    /// The IRQ bypass registry's workloads, in the order the report lists them.
    pub const REGISTRY: [Workload; 4] = [
        Workload::BootStorms,
        Workload::Churn,
        Workload::Delivery,
        Workload::SlowCallbacks,
    ];

    /// The virtio bus's workloads, in the order the report lists them.
    pub const BUS: [Workload; 3] = [
        Workload::VmBoots,
        Workload::DriverUpgrades,
        Workload::HotplugLookups,
    ];

    /// Which registry the workload loads.
    pub const fn kind(self) -> ScenarioKind {
        match self {
            Workload::VmBoots | Workload::DriverUpgrades | Workload::HotplugLookups => {
                ScenarioKind::Bus
            }
            _ => ScenarioKind::Registry,
        }
    }

    /// The heading of the workload.
    pub fn title(self) -> &'static str {
        match self {
            Workload::BootStorms => "Boot storms",
            Workload::Churn => "Churn with unmatched consumers",
            Workload::Delivery => "Read-heavy delivery",
            Workload::SlowCallbacks => "Slow callbacks",
            Workload::VmBoots => "VM boots",
            Workload::DriverUpgrades => "Driver upgrades",
            Workload::HotplugLookups => "Hot-plug with lookups",
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
            Workload::VmBoots => &[Scenario::VirtioBoot],
            Workload::DriverUpgrades => &[Scenario::DriverReload],
            Workload::HotplugLookups => &[Scenario::VirtioHotplug],
        }
    }
}

/// A scored backend of a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The backend.
    pub backend: String,
    /// How far it is behind the best figure of each measure, weighted, as a ratio: 1 for a
    /// backend best on every measure, 2 for one on average twice as bad (each measure capped
    /// at [`CAP`]).
    pub behind: f64,
    /// Its figure per compared measure: the geometric mean over the scenarios of its median,
    /// lowest and highest repeat.
    pub figures: Vec<(Measure, Spread)>,
}

/// A backend left out of a workload's ranking, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// The backend.
    pub backend: String,
    /// Why (violations, a capped run, no run of a scenario).
    pub reason: Reason,
}

/// One measure of a comparison between two backends.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasureMargin {
    /// The measure.
    pub measure: Measure,
    /// Its weight.
    pub weight: f64,
    /// How much better the first backend's median is, as a ratio turned so that above 1 is
    /// better (for a latency, the other's over its own); geometric mean over the scenarios.
    pub ratio: f64,
    /// The same lead as counted: 1 where they tie (ranges overlapping, or within the band),
    /// capped at [`CAP`].
    pub counted: f64,
}

impl MeasureMargin {
    /// Whether the two tie on this measure in every scenario.
    pub fn tied(&self) -> bool {
        self.counted == 1.0
    }
}

/// The leader of a workload against the runner-up (for a tie, the first backend tied with
/// it), measure by measure.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The leader.
    pub leader: String,
    /// The backend it is compared with.
    pub runner_up: String,
    /// Each measure, in the weighting table's order.
    pub measures: Vec<MeasureMargin>,
    /// The weighted lead, as a ratio: the weighted geometric mean of the counted leads.
    pub margin: f64,
    /// The lead a winner needs ([`MEASURED_MARGIN`] or [`SINGLE_RUN_MARGIN`]).
    pub needed: f64,
}

/// The outcome for one workload.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// One backend leads every other by more than the margin needed.
    Winner {
        /// The backend to choose.
        backend: String,
    },
    /// The leader does not beat some backends by the margin needed: as far as these figures
    /// tell, any of them will do.
    Tie {
        /// The tied backends, in the order the results list the backends (a tie is a set:
        /// its order does not say which led).
        leaders: Vec<String>,
    },
    /// Nothing measured this workload.
    NoData,
}

impl Verdict {
    /// The backends the verdict allows: the winner, or the tied leaders.
    pub fn backends(&self) -> &[String] {
        match self {
            Verdict::Winner { backend } => std::slice::from_ref(backend),
            Verdict::Tie { leaders } => leaders,
            Verdict::NoData => &[],
        }
    }
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
    /// The leader against the runner-up, when there are two candidates.
    pub comparison: Option<Comparison>,
    /// The workload's measures that some candidate lacked, so nobody was judged by them.
    pub unmeasured: Vec<Measure>,
}

impl Recommendation {
    /// The unit of throughput (`ops/s`, `cycles/s`, `lookups/s`).
    pub fn unit(&self) -> &'static str {
        self.basis.unit()
    }
}

/// The recommendation for every workload of the IRQ bypass registry, from the registry's runs
/// of `results` (bus runs are left out: [`recommend_bus`] judges them).
pub fn recommend(results: &[RunResult], criterion: &CriterionData) -> Vec<Recommendation> {
    recommend_kind(ScenarioKind::Registry, results, criterion)
}

/// The recommendation for every workload of the virtio bus, from the bus runs of `results`,
/// judged exactly as the registry's are, on the bus's rows of the weighting table
/// ([`BUS_WEIGHTING`]). Registry runs are left out, so that a registry's violation never
/// excludes a bus backend, nor the other way round.
pub fn recommend_bus(results: &[RunResult], criterion: &CriterionData) -> Vec<Recommendation> {
    recommend_kind(ScenarioKind::Bus, results, criterion)
}

fn recommend_kind(
    kind: ScenarioKind,
    results: &[RunResult],
    criterion: &CriterionData,
) -> Vec<Recommendation> {
    let results: Vec<RunResult> = results
        .iter()
        .filter(|r| r.scenario.kind() == kind)
        .cloned()
        .collect();
    let backends = backends_of(kind, &results, criterion);
    let broken = broken(&results);
    let workloads: &[Workload] = match kind {
        ScenarioKind::Registry => &Workload::REGISTRY,
        ScenarioKind::Bus => &Workload::BUS,
    };
    workloads
        .iter()
        .map(|&workload| recommend_one(workload, &results, criterion, &backends, &broken))
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
    let (board, excluded) = scoring::board(workload, &basis, evidence);
    let (candidates, verdict, comparison) = board.decide();
    Recommendation {
        workload,
        basis,
        candidates,
        excluded,
        verdict,
        comparison,
        unmeasured: board.unmeasured,
    }
}

/// The one backend to start from, whatever the workload.
#[derive(Clone, Debug, PartialEq)]
pub struct OverallDefault {
    /// The backend.
    pub backend: String,
    /// The workloads it wins outright.
    pub wins: Vec<Workload>,
    /// The workloads it ties for first place.
    pub ties: Vec<Workload>,
    /// The prevalence of the workloads it wins or ties, out of [`total`](OverallDefault::total).
    pub credit: f64,
    /// The prevalence of every workload with a verdict.
    pub total: f64,
}

/// The overall default from the workloads' recommendations: the backend that wins or ties the
/// most workloads, each weighted by its prevalence; then the most outright wins; then the
/// least far behind, weighted alike; then by name. Only backends that some workload allows
/// are considered, so never one that broke a guarantee. `None` if no workload has a verdict.
pub fn overall(recommendations: &[Recommendation]) -> Option<OverallDefault> {
    struct Tally<'a> {
        backend: &'a str,
        credit: f64,
        wins: f64,
        behind: f64,
    }
    let mut tallies: Vec<Tally<'_>> = Vec::new();
    let mut total = 0.0;
    for rec in recommendations {
        let prevalence = rec.workload.weighting().prevalence;
        if rec.verdict != Verdict::NoData {
            total += prevalence;
        }
        for backend in rec.verdict.backends() {
            if !tallies.iter().any(|t| t.backend == backend) {
                tallies.push(Tally {
                    backend,
                    credit: 0.0,
                    wins: 0.0,
                    behind: 0.0,
                });
            }
        }
    }
    for tally in &mut tallies {
        for rec in recommendations {
            let prevalence = rec.workload.weighting().prevalence;
            let allowed = rec.verdict.backends();
            if allowed.iter().any(|b| b == tally.backend) {
                tally.credit += prevalence;
                if allowed.len() == 1 {
                    tally.wins += prevalence;
                }
            }
            let behind = rec
                .candidates
                .iter()
                .find(|c| c.backend == tally.backend)
                .map_or(CAP, |c| c.behind);
            tally.behind += prevalence * behind.log2();
        }
    }
    let best = tallies.into_iter().min_by(|a, b| {
        b.credit
            .total_cmp(&a.credit)
            .then_with(|| b.wins.total_cmp(&a.wins))
            .then_with(|| a.behind.total_cmp(&b.behind))
            .then_with(|| a.backend.cmp(b.backend))
    })?;
    let of = |tie: bool| {
        recommendations
            .iter()
            .filter(|r| {
                let allowed = r.verdict.backends();
                allowed.iter().any(|b| b == best.backend) && (allowed.len() > 1) == tie
            })
            .map(|r| r.workload)
            .collect()
    };
    Some(OverallDefault {
        backend: best.backend.to_string(),
        wins: of(false),
        ties: of(true),
        credit: best.credit,
        total,
    })
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

    fn winner(rec: &Recommendation) -> &str {
        match &rec.verdict {
            Verdict::Winner { backend } => backend,
            other => panic!("expected a winner, got {other:?}"),
        }
    }

    fn margin(rec: &Recommendation, measure: Measure) -> &MeasureMargin {
        let c = rec.comparison.as_ref().expect("a comparison");
        c.measures.iter().find(|m| m.measure == measure).unwrap()
    }

    #[test]
    fn a_clear_winner_leads_on_throughput_and_tail() {
        let results = boot_storms(&[("a", 100.0), ("b", 300.0), ("c", 150.0)], 0.05);
        let rec = for_workload(&results, Workload::BootStorms);
        assert_eq!(winner(&rec), "b");
        let c = rec.comparison.as_ref().unwrap();
        assert_eq!(c.runner_up, "c");
        let throughput = margin(&rec, Measure::Throughput);
        assert!((throughput.ratio - 2.0).abs() < 1e-9, "{throughput:?}");
        assert!(!throughput.tied());
        // The same register maximum everywhere: a tie on that measure.
        assert!(margin(&rec, Measure::Latency(Operation::Register, Stat::Max)).tied());
        // Unregister was never measured, so nobody is judged by it.
        assert!(
            rec.unmeasured
                .contains(&Measure::Latency(Operation::Unregister, Stat::P999))
        );
        assert!(c.margin > MEASURED_MARGIN, "{c:?}");
        let order: Vec<&str> = rec.candidates.iter().map(|c| c.backend.as_str()).collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(rec.candidates[0].behind, 1.0);
        assert!(
            rec.summary().starts_with("b: 2.00× the ops/s"),
            "{}",
            rec.summary()
        );
        assert!(
            rec.basis
                .to_string()
                .contains("boot-storm, restore-storm, irqfd-flood")
        );
        assert!(rec.basis.to_string().contains("3 repeats"), "{}", rec.basis);
    }

    #[test]
    fn a_tail_outweighs_a_small_throughput_lead() {
        // b is 10% faster, but a's register p99.9 is 20 times shorter.
        let mut results = Vec::new();
        repeats(
            &mut results,
            Scenario::ServerlessChurn,
            &[("a", 100.0), ("b", 110.0)],
            0.01,
        );
        for r in results.iter_mut().filter(|r| r.backend == "a") {
            r.latency_ns.get_mut(&Operation::Register).unwrap().p999 /= 20;
        }
        let rec = for_workload(&results, Workload::Churn);
        assert_eq!(winner(&rec), "a");
        assert!(
            rec.summary()
                .starts_with("a: 1/18.2 the register p99.9 of the runner-up, b"),
            "{}",
            rec.summary()
        );
        assert!(
            rec.summary().ends_with("behind on throughput"),
            "{}",
            rec.summary()
        );
    }

    #[test]
    fn changing_the_figures_changes_the_winner() {
        let before = boot_storms(&[("a", 100.0), ("b", 300.0)], 0.05);
        let after = boot_storms(&[("a", 700.0), ("b", 300.0)], 0.05);
        assert_eq!(winner(&for_workload(&before, Workload::BootStorms)), "b");
        assert_eq!(winner(&for_workload(&after, Workload::BootStorms)), "a");

        // Only one scenario of the three moves, and it is enough to turn the mean.
        let mut mixed = boot_storms(&[("a", 100.0), ("b", 130.0)], 0.01);
        for r in mixed.iter_mut() {
            if r.backend == "a" && r.scenario == Scenario::IrqfdFlood {
                r.ops_per_s *= 3.0;
                r.latency_ns.get_mut(&Operation::Register).unwrap().p999 /= 3;
            }
        }
        assert_eq!(winner(&for_workload(&mixed, Workload::BootStorms)), "a");
    }

    #[test]
    fn overlapping_ranges_tie_and_the_tie_names_its_measures() {
        // b's median is 15% above a's, but a's best repeat reaches b's worst; their tails are
        // within the band.
        let mut results = Vec::new();
        repeats(
            &mut results,
            Scenario::ServerlessChurn,
            &[("a", 100.0), ("b", 115.0), ("c", 20.0)],
            0.15,
        );
        let rec = for_workload(&results, Workload::Churn);
        assert_eq!(
            rec.verdict,
            Verdict::Tie {
                leaders: vec!["a".into(), "b".into()]
            }
        );
        assert!(
            rec.summary()
                .starts_with("tie: a, b (tied on every measure: throughput, register p99.9"),
            "{}",
            rec.summary()
        );
        let c = rec.comparison.as_ref().unwrap();
        assert_eq!((c.leader.as_str(), c.runner_up.as_str()), ("b", "a"));
        assert_eq!(c.margin, 1.0);

        // The same medians with tight repeats: b wins.
        let mut tight = Vec::new();
        repeats(
            &mut tight,
            Scenario::ServerlessChurn,
            &[("a", 100.0), ("b", 115.0)],
            0.01,
        );
        assert_eq!(winner(&for_workload(&tight, Workload::Churn)), "b");
    }

    #[test]
    fn single_runs_need_the_single_run_margin() {
        let single = |b: f64| {
            vec![
                run("a", Scenario::DeliveryLookup, 1, 100.0),
                run("b", Scenario::DeliveryLookup, 1, b),
            ]
        };
        // Within the throughput band and the tail band: tied on every measure.
        let rec = for_workload(&single(103.0), Workload::Delivery);
        assert!(
            matches!(rec.verdict, Verdict::Tie { .. }),
            "{:?}",
            rec.verdict
        );
        assert!(
            rec.summary().contains("tied on every measure"),
            "{}",
            rec.summary()
        );
        assert!(
            rec.basis.to_string().contains("one run each"),
            "{}",
            rec.basis
        );
        // 30% faster in one run: a lead, but not the 1.5× one run needs.
        let rec = for_workload(&single(130.0), Workload::Delivery);
        assert!(
            matches!(rec.verdict, Verdict::Tie { .. }),
            "{:?}",
            rec.verdict
        );
        assert!(
            rec.summary().contains("b ahead on throughput")
                && rec.summary().contains("not above the 1.50× needed"),
            "{}",
            rec.summary()
        );
        // Far ahead in one run: a winner all the same.
        assert_eq!(
            winner(&for_workload(&single(900.0), Workload::Delivery)),
            "b"
        );
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
        assert_eq!(winner(&rec), "a");
        assert_eq!(rec.comparison, None);
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
        // The violation counts everywhere, not only in boot storms, and never makes c the
        // default, though c is fastest in churn.
        let mut churn = results.clone();
        repeats(
            &mut churn,
            Scenario::ServerlessChurn,
            &[("a", 1.0), ("c", 9.0)],
            0.0,
        );
        let recs = recommend(&churn, &CriterionData::default());
        assert!(recs[1].excluded.iter().any(|e| e.backend == "c"));
        assert_eq!(overall(&recs).unwrap().backend, "a");
    }

    #[test]
    fn the_default_wins_or_ties_the_most_common_workloads() {
        // a wins boot storms; b wins churn and delivery, more common together.
        let mut results = boot_storms(&[("a", 300.0), ("b", 100.0)], 0.01);
        repeats(
            &mut results,
            Scenario::ServerlessChurn,
            &[("a", 100.0), ("b", 300.0)],
            0.01,
        );
        repeats(
            &mut results,
            Scenario::DeliveryLookup,
            &[("a", 100.0), ("b", 300.0)],
            0.01,
        );
        let recs = recommend(&results, &CriterionData::default());
        let d = overall(&recs).unwrap();
        assert_eq!(d.backend, "b");
        assert_eq!(d.wins, [Workload::Churn, Workload::Delivery]);
        assert!(d.ties.is_empty());
        // Boot storms, churn and delivery have verdicts; slow callbacks borrow irqfd-flood.
        assert_eq!((d.credit, d.total), (5.0, 8.0));
        assert_eq!(
            d.reason(),
            "b wins churn with unmatched consumers and read-heavy delivery: the most workloads won or tied, weighted by how common they are (5 of 8), and it broke no guarantee."
        );
        assert_eq!(overall(&recommend(&[], &CriterionData::default())), None);
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
    fn slow_callbacks_fall_back_to_the_nearest_scenario_and_say_so() {
        let mut results = Vec::new();
        repeats(
            &mut results,
            Scenario::ServerlessChurn,
            &[("a", 100.0), ("b", 900.0)],
            0.01,
        );
        let rec = for_workload(&results, Workload::SlowCallbacks);
        assert!(
            matches!(&rec.basis, Basis::Nearest(n) if n.scenarios == [Scenario::ServerlessChurn])
        );
        assert!(
            rec.basis.to_string().contains("nearest evidence"),
            "{}",
            rec.basis
        );
        // Judged on the tails only: b's register p99.9 is 9 times shorter.
        assert_eq!(winner(&rec), "b");
        let c = rec.comparison.as_ref().unwrap();
        assert!(c.measures.iter().all(|m| m.measure != Measure::Throughput));
        // irqfd-flood is nearer when it ran.
        repeats(
            &mut results,
            Scenario::IrqfdFlood,
            &[("a", 900.0), ("b", 100.0)],
            0.01,
        );
        let rec = for_workload(&results, Workload::SlowCallbacks);
        assert_eq!(winner(&rec), "a");
        assert!(
            rec.basis.to_string().contains("tails of irqfd-flood"),
            "{}",
            rec.basis
        );
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
        assert_eq!(winner(rec), "sharded");
        assert!((margin(rec, Measure::Throughput).ratio - 2.0).abs() < 1e-9);
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
        assert_eq!(winner(&recs[3]), "mutex-map");
        assert!(
            recs[3].basis.to_string().contains("1.00 µs"),
            "{}",
            recs[3].basis
        );
        assert_eq!(recs[0].verdict, Verdict::NoData);
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Three repeats of a bus `scenario` per backend, as [`repeats`] makes them, with each
    /// run's register latency measured as register-device instead.
    pub(crate) fn bus_repeats(
        out: &mut Vec<RunResult>,
        scenario: Scenario,
        figures: &[(&str, f64)],
        jitter: f64,
    ) {
        let from = out.len();
        repeats(out, scenario, figures, jitter);
        for r in &mut out[from..] {
            let p = r.latency_ns.remove(&Operation::Register).unwrap();
            r.latency_ns.insert(Operation::RegisterDevice, p);
        }
    }

    #[test]
    fn a_bus_winner_from_bus_runs_alone() {
        let mut results = Vec::new();
        bus_repeats(
            &mut results,
            Scenario::VirtioBoot,
            &[("a", 100.0), ("b", 300.0)],
            0.05,
        );
        let recs = recommend_bus(&results, &CriterionData::default());
        assert_eq!(
            recs.iter().map(|r| r.workload).collect::<Vec<_>>(),
            Workload::BUS
        );
        assert_eq!(winner(&recs[0]), "b");
        assert!(
            recs[0].summary().starts_with(
                "b: 1/3.00 the register-device p99.9 and 3.00× the ops/s of the runner-up, a"
            ),
            "{}",
            recs[0].summary()
        );
        assert_eq!(recs[1].verdict, Verdict::NoData);
        assert_eq!(recs[1].basis.to_string(), "no run of driver-reload");
        let d = overall(&recs).unwrap();
        assert_eq!((d.backend.as_str(), d.credit, d.total), ("b", 2.0, 2.0));
        // Bus runs say nothing of the registry: no verdict, and nobody left out for them.
        for rec in recommend(&results, &CriterionData::default()) {
            assert_eq!(rec.verdict, Verdict::NoData, "{:?}", rec.workload);
            assert!(rec.excluded.is_empty() && rec.candidates.is_empty());
        }
    }

    #[test]
    fn a_bus_tie_names_its_measures() {
        let mut results = Vec::new();
        bus_repeats(
            &mut results,
            Scenario::DriverReload,
            &[("a", 100.0), ("b", 115.0)],
            0.15,
        );
        let rec = &recommend_bus(&results, &CriterionData::default())[1];
        assert_eq!(rec.workload, Workload::DriverUpgrades);
        assert_eq!(
            rec.verdict,
            Verdict::Tie {
                leaders: vec!["a".into(), "b".into()]
            }
        );
        assert!(
            rec.summary()
                .starts_with("tie: a, b (tied on every measure: throughput, register-device p99.9"),
            "{}",
            rec.summary()
        );
        // The driver tails were not measured, so nobody is judged by them.
        assert!(
            rec.unmeasured
                .contains(&Measure::Latency(Operation::UnregisterDriver, Stat::Max))
        );
    }

    #[test]
    fn registry_runs_and_their_violations_stay_out_of_the_bus() {
        let mut results = boot_storms(&[("a", 100.0), ("b", 300.0), ("c", 900.0)], 0.05);
        results[0].violations = 1;
        let broke = results[0].backend.clone();
        bus_repeats(
            &mut results,
            Scenario::VirtioHotplug,
            &[("a", 100.0), ("b", 300.0), ("c", 900.0)],
            0.05,
        );
        let bus = recommend_bus(&results, &CriterionData::default());
        assert_eq!(bus[0].verdict, Verdict::NoData);
        assert!(bus[0].excluded.is_empty());
        // The registry's violation excludes its backend from the registry, not from the bus.
        assert_eq!(winner(&bus[2]), "c");
        assert!(bus[2].excluded.is_empty());
        let registry = recommend(&results, &CriterionData::default());
        assert!(registry[0].excluded.iter().any(|e| e.backend == broke));
        assert_eq!(registry[2].verdict, Verdict::NoData);
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
        assert_eq!(winner(rec), "rcu");
        assert!((margin(rec, Measure::Throughput).ratio - 10.0).abs() < 1e-6);
        assert_eq!(rec.unit(), "lookups/s");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
