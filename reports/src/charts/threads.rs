//! Throughput against threads: criterion's `cycle_threads`, or else the built-in sweep of
//! `bypass compare`, or else a stress scenario that ran at several thread counts.

use std::collections::BTreeMap;

use super::Chart;
use super::axis::{Axis, int};
use super::frame::line_chart;
use super::series::{Colors, Line, criterion_lines, sweep_lines, xs, ys};
use crate::criterion::CriterionData;
use crate::format;
use crate::schema::{BenchGroup, RunResult, Scenario, Sweep, SweepAxis};
use crate::stats::Spread;

/// Connect+disconnect throughput against threads, a line per backend, the floors dashed.
pub(crate) fn throughput_threads(
    results: &[RunResult],
    criterion: &CriterionData,
    sweep: Option<&Sweep>,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Connect+disconnect throughput against threads";
    let mut lines = Vec::new();
    let swept = sweep
        .map(|s| sweep_lines(s, SweepAxis::Threads, colors, backends, |p| p.cycles_per_s))
        .unwrap_or_default();
    let cycles = criterion.has_group(BenchGroup::CycleThreads) || !swept.is_empty();
    let caption = if criterion.has_group(BenchGroup::CycleThreads) {
        lines = criterion_lines(
            criterion,
            colors,
            backends,
            BenchGroup::CycleThreads,
            "threads=",
            |b| b.per_second().median,
        );
        format!(
            "Connect+disconnect cycles a second, summed over the threads, each thread on its own token (criterion `cycle_threads`, median time per iteration). Dashed: the raw maps doing the same inserts and removes with no protocol (criterion `floor`).{}",
            cores_phrase(results)
        )
    } else if let Some(sweep) = sweep.filter(|_| !swept.is_empty()) {
        lines = swept;
        format!(
            "Connect+disconnect cycles a second, summed over the threads, each thread on its own token (the built-in sweep of `bypass compare`, `sweep.json`: median of {} samples of {}; no criterion `cycle_threads` data). Dashed: the floor, a raw concurrent map doing the same inserts and removes with no protocol.{}",
            sweep.samples,
            format::ns(sweep.sample_s * 1e9),
            cores_phrase(results)
        )
    } else {
        // Without criterion or a sweep, a scenario that ran at several thread counts will do.
        let mut by_scenario: BTreeMap<Scenario, Vec<&RunResult>> = BTreeMap::new();
        for r in results.iter().filter(|r| r.callback_cost_ns == 0) {
            by_scenario.entry(r.scenario).or_default().push(r);
        }
        let varied = by_scenario.iter().find(|(_, runs)| {
            let first = runs[0].threads;
            runs.iter().any(|r| r.threads != first)
        });
        let Some((scenario, runs)) = varied else {
            return Err(
                "no criterion `cycle_threads` data (run `cargo bench -p bypass-benches --bench cycle`), no sweep (`bypass compare` writes one, `sweep.json`), and every scenario of the results ran at a single thread count"
                    .into(),
            );
        };
        for backend in backends {
            let mut by_threads: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for r in runs.iter().filter(|r| &r.backend == backend) {
                by_threads.entry(r.threads).or_default().push(r.ops_per_s);
            }
            let points: Vec<(f64, f64)> = by_threads
                .into_iter()
                .filter_map(|(t, v)| Some((t as f64, Spread::of(v)?.median)))
                .collect();
            if !points.is_empty() {
                lines.push(Line::backend(backend, colors, points));
            }
        }
        format!(
            "Operations a second in the {scenario} stress scenario at each thread count it ran with (median over repeats).{}",
            cores_phrase(results)
        )
    };
    if lines.is_empty() {
        return Err("no thread counts to draw".into());
    }
    let x = Axis::log_at("threads", xs(&lines), 1.25, int);
    let ymax = ys(&lines).fold(0.0, f64::max);
    let unit = if cycles {
        "cycles a second"
    } else {
        "operations a second"
    };
    let y = Axis::linear_from_zero(unit, ymax, format::si_tick);
    Ok(Chart {
        file: "throughput-threads.svg".into(),
        title: title.into(),
        caption,
        svg: line_chart(title, &x, &y, &lines)?,
    })
}

/// ` The machine has N cores.`, from the results, or nothing.
fn cores_phrase(results: &[RunResult]) -> String {
    match results.first() {
        Some(r) if r.machine.cores > 0 => format!(" The machine has {} cores.", r.machine.cores),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{criterion_fixture, results_fixture, sweep_fixture};
    use crate::recommend::tests::run;

    #[test]
    fn from_criterion_with_the_floors() {
        let (root, criterion, backends, colors) = criterion_fixture("charts-threads");
        let t = throughput_threads(&[], &criterion, None, &colors, &backends).unwrap();
        assert!(t.svg.starts_with("<svg"), "{}", &t.svg[..40]);
        assert!(t.svg.contains("floor: dashmap"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn from_results_only_when_thread_counts_vary() {
        let (results, backends, colors) = results_fixture();
        let none = CriterionData::default();
        assert!(
            throughput_threads(&results, &none, None, &colors, &backends)
                .unwrap_err()
                .contains("single thread count")
        );
        // Thread counts that vary within a scenario give the threads chart.
        let mut varied = results.clone();
        let mut more = run("a", Scenario::BootStorm, 9, 2e5);
        more.threads = 16;
        varied.push(more);
        assert!(throughput_threads(&varied, &none, None, &colors, &backends).is_ok());
    }

    #[test]
    fn from_the_sweep_before_results() {
        let (results, backends, colors) = results_fixture();
        let none = CriterionData::default();
        let sweep = sweep_fixture(&backends);
        let t = throughput_threads(&results, &none, Some(&sweep), &colors, &backends).unwrap();
        assert!(t.caption.contains("sweep.json"), "{}", t.caption);
        assert!(t.svg.contains("floor: raw map"));
        assert!(t.svg.contains("cycles a second"));
    }
}
