//! The recommendation in words: the one-line verdict, what a workload was measured by, why a
//! backend was left out, why leaders are tied.

use std::fmt;

use super::evidence::{Basis, Reason, StressThroughput};
use super::scoring::MIN_MARGIN;
use super::{Recommendation, Verdict, Workload};
use crate::format;
use crate::schema::Scenario;

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
                self.unit()
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
            Basis::CallbackCycles { parameter } => write!(
                f,
                "criterion `callback_cost` ({parameter}): connect+disconnect cycles a second, from the median time per iteration and its 95% confidence interval"
            ),
            Basis::Lookups => f.write_str(
                "criterion `lookup`: lookups a second among 100,000 live tokens under churn, geometric mean of `is_paired` and `producer`, from the median time per iteration and its 95% confidence interval",
            ),
            Basis::Nothing(Workload::SlowCallbacks) => f.write_str(
                "no stress run with a callback cost, and no criterion `callback_cost` group",
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

impl fmt::Display for StressThroughput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scenarios = scenario_list(&self.scenarios);
        if self.callback_costs_ns.is_empty() {
            write!(f, "stress throughput in {scenarios}")?;
        } else {
            let costs: Vec<String> = self
                .callback_costs_ns
                .iter()
                .map(|&c| format::ns(c as f64))
                .collect();
            write!(
                f,
                "stress runs whose callbacks each take {}: throughput in {scenarios}",
                costs.join(" or ")
            )?;
        }
        if self.repeats <= 1 {
            write!(
                f,
                " (one run each, so no spread was measured: only the {} margin guards against noise)",
                margin_percent()
            )?;
        } else {
            write!(f, " (median and range over {} repeats)", self.repeats)?;
        }
        if self.scenarios.len() > 1 {
            f.write_str(
                "; geometric mean over the scenarios of each backend's median, lowest and highest run",
            )?;
        }
        Ok(())
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
        }
    }
}
