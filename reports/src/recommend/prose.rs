//! The recommendation in words: the one-line verdict, each measure's margin, what a workload
//! was measured by, why a backend was left out, why leaders are tied, why the default.

use std::fmt;

use super::evidence::{Basis, Reason, StressRuns};
use super::weights::{Direction, Measure, SINGLE_RUN_MARGIN};
use super::{
    Comparison, MeasureMargin, OverallDefault, Recommendation, Verdict, Workload, weighting_of,
};
use crate::format;
use crate::schema::{Scenario, ScenarioKind};

impl Recommendation {
    /// The verdict in one line: `lockfree: 1.83× the ops/s of the runner-up, sharded`.
    pub fn summary(&self) -> String {
        match (&self.verdict, &self.comparison) {
            (Verdict::Winner { backend }, Some(c)) => {
                let mut line = format!(
                    "{backend}: {} of the runner-up, {}",
                    leads(c, self.unit()),
                    c.runner_up
                );
                let behind: Vec<String> = c
                    .measures
                    .iter()
                    .filter(|m| m.counted < 1.0)
                    .map(|m| m.measure.name())
                    .collect();
                if !behind.is_empty() {
                    line.push_str(&format!("; behind on {}", behind.join(", ")));
                }
                line
            }
            (Verdict::Winner { backend }, None) => {
                format!("{backend}: the only backend with usable figures")
            }
            (Verdict::Tie { leaders }, Some(c)) => {
                format!("tie: {} ({})", leaders.join(", "), tie_reason(c))
            }
            (Verdict::Tie { leaders }, None) => format!("tie: {}", leaders.join(", ")),
            (Verdict::NoData, _) => "no data".into(),
        }
    }
}

/// The leader's two heaviest counted leads: `2.00× the ops/s and 1/4.0 the register p99.9`.
fn leads(c: &Comparison, unit: &str) -> String {
    // A measure the leader leads as counted (in some scenario, beyond the ranges) but trails
    // on the median over all its scenarios is not named as a lead: its ratio would read
    // backwards.
    let mut ahead: Vec<&MeasureMargin> = c
        .measures
        .iter()
        .filter(|m| m.counted > 1.0 && m.ratio > 1.0)
        .collect();
    ahead.sort_by(|a, b| (b.weight * b.counted.log2()).total_cmp(&(a.weight * a.counted.log2())));
    let parts: Vec<String> = ahead
        .iter()
        .take(2)
        .map(|m| match m.measure.direction() {
            Direction::HigherIsBetter => format!("{} the {unit}", format::ratio(m.ratio)),
            Direction::LowerIsBetter => format!(
                "1/{} the {}",
                format::ratio(m.ratio).trim_end_matches('×'),
                m.measure.name()
            ),
        })
        .collect();
    if parts.is_empty() {
        return format!("a weighted lead of {}", format::ratio(c.margin));
    }
    parts.join(" and ")
}

/// Why the leaders are tied, in words: the measures on which they tie, those on which each
/// leads, and the weighted lead against the one needed.
pub(crate) fn tie_reason(c: &Comparison) -> String {
    let names = |keep: fn(&MeasureMargin) -> bool| -> Vec<String> {
        c.measures
            .iter()
            .filter(|m| keep(m))
            .map(|m| m.measure.name())
            .collect()
    };
    let tied = names(|m| m.tied());
    let ahead = names(|m| m.counted > 1.0);
    let behind = names(|m| m.counted < 1.0);
    if ahead.is_empty() && behind.is_empty() {
        return format!("tied on every measure: {}", tied.join(", "));
    }
    let mut parts = Vec::new();
    if !tied.is_empty() {
        parts.push(format!("tied on {}", tied.join(", ")));
    }
    if !ahead.is_empty() {
        parts.push(format!("{} ahead on {}", c.leader, ahead.join(", ")));
    }
    if !behind.is_empty() {
        parts.push(format!("{} ahead on {}", c.runner_up, behind.join(", ")));
    }
    format!(
        "{}: a weighted lead of {}, not above the {} needed",
        parts.join("; "),
        format::ratio(c.margin),
        format::ratio(c.needed)
    )
}

impl MeasureMargin {
    /// The margin in words, naming the better backend: `register p99.9: lockfree 9.8×`, or
    /// `throughput: tie (1.02×)`.
    pub fn describe(&self, leader: &str, runner_up: &str) -> String {
        let name = self.measure.name();
        let (better, ratio) = if self.ratio >= 1.0 {
            (leader, self.ratio)
        } else {
            (runner_up, 1.0 / self.ratio)
        };
        if self.tied() {
            format!("{name}: tie ({better} {})", format::ratio(ratio))
        } else {
            format!("{name}: {better} {}", format::ratio(ratio))
        }
    }
}

impl OverallDefault {
    /// Why this backend is the default, in one sentence.
    pub fn reason(&self) -> String {
        let list = |workloads: &[Workload]| -> String {
            let titles: Vec<String> = workloads.iter().map(|w| w.title_in_text()).collect();
            match titles.as_slice() {
                [] => String::new(),
                [one] => one.clone(),
                [init @ .., last] => format!("{} and {last}", init.join(", ")),
            }
        };
        let record = match (self.wins.is_empty(), self.ties.is_empty()) {
            (false, false) => format!("wins {} and ties {}", list(&self.wins), list(&self.ties)),
            (false, true) => format!("wins {}", list(&self.wins)),
            (true, _) => format!("ties {}", list(&self.ties)),
        };
        format!(
            "{} {record}: the most workloads won or tied, weighted by how common they are ({} of {}), and it broke no guarantee.",
            self.backend,
            weight(self.credit),
            weight(self.total)
        )
    }
}

impl Workload {
    /// The title inside a sentence: its first word lower-cased unless it is an acronym, so
    /// that `VM boots` stays `VM boots`.
    fn title_in_text(self) -> String {
        let title = self.title();
        let first_word = title.split(' ').next().unwrap_or("");
        if first_word.len() > 1 && first_word.chars().all(|c| c.is_ascii_uppercase()) {
            return title.to_string();
        }
        title.to_lowercase()
    }
}

/// A weight without needless decimals: `2`, `0.5`.
pub(crate) fn weight(w: f64) -> String {
    let s = format!("{w:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The workloads of one registry with their prevalences, for the report: `boot storms 2,
/// churn with unmatched consumers 2, …`.
pub(crate) fn prevalences(kind: ScenarioKind) -> String {
    let parts: Vec<String> = weighting_of(kind)
        .iter()
        .map(|w| format!("{} {}", w.workload.title_in_text(), weight(w.prevalence)))
        .collect();
    parts.join(", ")
}

/// The margin a comparison on single runs needs, as a percentage: `50%`.
fn single_run_percent() -> String {
    format!("{:.0}%", (SINGLE_RUN_MARGIN - 1.0) * 100.0)
}

/// `scenarios` by name, comma-separated.
pub(crate) fn scenario_list(scenarios: &[Scenario]) -> String {
    let names: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
    names.join(", ")
}

/// What was measured, in words.
impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Basis::Stress(stress) => stress.fmt(f),
            Basis::Nearest(stress) => write!(
                f,
                "no stress run with a callback cost, and no criterion `callback_cost` group: the nearest evidence instead, the register and unregister tails of {} without a callback cost, where waiting on other tokens' calls shows first{}",
                scenario_list(&stress.scenarios),
                repeats(stress.repeats)
            ),
            Basis::CallbackCycles { parameter } => write!(
                f,
                "criterion `callback_cost` ({parameter}): connect+disconnect cycles a second, from the median time per iteration and its 95% confidence interval"
            ),
            Basis::Lookups => f.write_str(
                "criterion `lookup`: lookups a second among 100,000 live tokens under churn, `is_paired` and `producer`, from the median time per iteration and its 95% confidence interval",
            ),
            Basis::Nothing(Workload::SlowCallbacks) => f.write_str(
                "no stress run at all, and no criterion `callback_cost` group",
            ),
            Basis::Nothing(Workload::Delivery) => {
                f.write_str("no delivery-lookup run, and no criterion `lookup` group")
            }
            Basis::Nothing(workload) => {
                write!(f, "no run of {}", scenario_list(workload.scenarios()))
            }
        }
    }
}

/// ` (median and range over 3 repeats)`, or why there is no range.
fn repeats(n: usize) -> String {
    if n <= 1 {
        format!(
            " (one run each, so no spread was measured: a winner needs a weighted lead of {})",
            single_run_percent()
        )
    } else {
        format!(" (median and range over {n} repeats)")
    }
}

impl fmt::Display for StressRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scenarios = scenario_list(&self.scenarios);
        if self.callback_costs_ns.is_empty() {
            write!(f, "stress runs of {scenarios}")?;
        } else {
            let costs: Vec<String> = self
                .callback_costs_ns
                .iter()
                .map(|&c| format::ns(c as f64))
                .collect();
            write!(
                f,
                "stress runs whose callbacks each take {}: {scenarios}",
                costs.join(" or ")
            )?;
        }
        f.write_str(&repeats(self.repeats))
    }
}

/// Why a backend was left out, in words.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Broke(broke) => write!(
                f,
                "broke a guarantee in {} run{} ({}): never recommended",
                broke.runs,
                if broke.runs == 1 { "" } else { "s" },
                scenario_list(&broke.scenarios)
            ),
            Reason::NoRun { scenario } => write!(f, "no run of {scenario}"),
            Reason::Capped { scenario } => write!(
                f,
                "capped in {scenario}: its time cap stopped the run before the end of the plan"
            ),
            Reason::NoFigure { scenario } => write!(f, "no figure for {scenario}"),
            Reason::ZeroThroughput => f.write_str("a throughput of zero"),
            Reason::Floor => f.write_str("the harness's floor, a raw map with no protocol: shown for scale, never recommended"),
        }
    }
}

/// A measure's direction in words.
impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::HigherIsBetter => "higher is better",
            Direction::LowerIsBetter => "lower is better",
        })
    }
}

/// The measure's name.
impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::weights::{Measure, Stat};
    use crate::recommend::{Basis, Recommendation, Verdict, Workload};
    use crate::schema::Operation;

    fn margin(measure: Measure, ratio: f64, counted: f64) -> MeasureMargin {
        MeasureMargin {
            measure,
            weight: 1.0,
            ratio,
            counted,
        }
    }

    fn won(measures: Vec<MeasureMargin>) -> Recommendation {
        Recommendation {
            workload: Workload::Delivery,
            basis: Basis::Lookups,
            candidates: Vec::new(),
            excluded: Vec::new(),
            verdict: Verdict::Winner {
                backend: "sharded".into(),
            },
            comparison: Some(Comparison {
                leader: "sharded".into(),
                runner_up: "lockfree".into(),
                measures,
                margin: 1.5,
                needed: 1.05,
            }),
            unmeasured: Vec::new(),
        }
    }

    #[test]
    fn a_lead_named_is_a_lead_on_the_median() {
        let p999 = Measure::Latency(Operation::Register, Stat::P999);
        // Counted ahead (in one scenario) but behind on the median over the scenarios: not
        // named as a lead, which would read "1/0.63".
        let summary = won(vec![
            margin(Measure::Throughput, 2.0, 2.0),
            margin(p999, 0.63, 1.5),
        ])
        .summary();
        assert!(
            summary.starts_with("sharded: 2.00× the lookups/s of"),
            "{summary}"
        );
        assert!(!summary.contains("1/0.63"), "{summary}");
        // With no lead left to name, the weighted lead is said instead.
        let summary = won(vec![margin(p999, 0.63, 1.5)]).summary();
        assert!(summary.contains("a weighted lead of 1.50×"), "{summary}");
    }
}
