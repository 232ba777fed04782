//! Lookup throughput under churn: criterion's `lookup` group, or the delivery-lookup runs.

use super::Chart;
use super::frame::bar_chart;
use super::series::{Bar, Colors, capped_mark};
use crate::criterion::CriterionData;
use crate::recommend::FLOORS;
use crate::schema::{BenchGroup, RunResult, Scenario};
use crate::stats::Spread;

/// Lookup throughput under churn, a bar per backend (and per criterion benchmark), the
/// floors grey.
pub(crate) fn lookup(
    results: &[RunResult],
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Lookup throughput under churn";
    let mut bars = Vec::new();
    let caption = if criterion.has_group(BenchGroup::Lookup) {
        let mut names: Vec<&str> = backends.iter().map(String::as_str).collect();
        names.extend(FLOORS);
        for name in names {
            for b in criterion
                .group(BenchGroup::Lookup)
                .filter(|b| b.function == name)
            {
                let floor = if FLOORS.contains(&name) {
                    "floor: "
                } else {
                    ""
                };
                bars.push(Bar {
                    label: format!("{floor}{name} · {}", b.parameter),
                    color: colors.of(name),
                    value: b.per_second(),
                });
            }
        }
        "Lookups a second on one thread among 100,000 live tokens while a background thread cycles registrations (criterion `lookup`: `is_paired`, and `producer` which also clones the producer's handle). Bar: the median; whisker: its 95% confidence interval. Grey: the raw maps.".to_string()
    } else {
        for backend in backends {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| {
                    &r.backend == backend
                        && r.scenario == Scenario::DeliveryLookup
                        && r.callback_cost_ns == 0
                })
                .collect();
            if let Some(value) = Spread::of(runs.iter().map(|r| r.ops_per_s)) {
                bars.push(Bar {
                    label: format!("{backend}{}", capped_mark(runs.iter().copied())),
                    color: colors.of(backend),
                    value,
                });
            }
        }
        "Operations a second in the delivery-lookup stress scenario (99% lookups, 1% registrations, on all threads at once): no criterion `lookup` data was found. Bar: the median over repeats; whisker: lowest to highest.".to_string()
    };
    if bars.is_empty() {
        return Err(
            "no criterion `lookup` data (run `cargo bench -p bypass-benches --bench lookup`) and no delivery-lookup run"
                .into(),
        );
    }
    let unit = if criterion.has_group(BenchGroup::Lookup) {
        "lookups a second"
    } else {
        "operations a second"
    };
    Ok(Chart {
        file: "lookup.svg".into(),
        title: title.into(),
        caption,
        svg: bar_chart(title, unit, &bars)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{criterion_fixture, results_fixture};

    #[test]
    fn from_criterion_a_bar_per_benchmark() {
        let (root, criterion, backends, colors) = criterion_fixture("charts-lookup");
        let l = lookup(&[], &criterion, &colors, &backends).unwrap();
        assert!(l.svg.contains("rcu · is_paired"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn from_the_delivery_lookup_runs() {
        let (results, backends, colors) = results_fixture();
        let none = CriterionData::default();
        assert!(
            lookup(&results, &none, &colors, &backends)
                .unwrap()
                .svg
                .contains("<rect")
        );
    }
}
