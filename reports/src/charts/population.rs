//! Connect+disconnect cost against live tokens: criterion's `cycle_population`, with the
//! raw maps' floor, or else the built-in sweep of `bypass compare`.

use super::Chart;
use super::axis::Axis;
use super::frame::line_chart;
use super::series::{Colors, Line, criterion_lines, sweep_lines, xs, ys};
use crate::criterion::{Benchmark, CriterionData};
use crate::format;
use crate::schema::{BenchGroup, Sweep, SweepAxis};

/// The cost of one connect+disconnect cycle against live tokens, log-log, with the floors:
/// from criterion when it has the group, else from the sweep.
pub(crate) fn cost_population(
    criterion: &CriterionData,
    sweep: Option<&Sweep>,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Connect+disconnect cost against live tokens";
    let (lines, source) = if criterion.has_group(BenchGroup::CyclePopulation) {
        from_criterion(criterion, colors, backends)?
    } else if let Some(sweep) = sweep {
        from_sweep(sweep, colors, backends)?
    } else {
        return Err(
            "no criterion `cycle_population` data (run `cargo bench -p bypass-benches --bench cycle`) and no sweep (`bypass compare` writes one, `sweep.json`)"
                .into(),
        );
    };
    let (svg, zero_at) =
        population_chart(title, "live tokens", "time per cycle (one thread)", lines)?;
    Ok(Chart {
        file: "cost-population.svg".into(),
        title: title.into(),
        caption: format!(
            "Time for one cycle (register producer, register consumer, unregister both) on one thread after the given number of unrelated tokens were registered ({source}), log-log. The empty registry is drawn at {}, labelled 0.",
            format::si(zero_at)
        ),
        svg,
    })
}

/// A log-log line chart of a cost against a population that may be zero: the empty
/// population is drawn a decade left of the smallest other one, and labelled 0. Returns the
/// SVG and where the zero is drawn, for the caption.
pub(super) fn population_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    mut lines: Vec<Line>,
) -> Result<(String, f64), String> {
    let live = xs(&lines);
    // A log axis has no 0: the empty registry is drawn a decade left of the smallest
    // population, and labelled 0.
    let smallest = live.iter().copied().find(|&v| v > 0.0).unwrap_or(10.0);
    let zero_at = smallest / 10.0;
    let at = move |v: f64| if v > 0.0 { v } else { zero_at };
    for line in &mut lines {
        line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        for point in &mut line.points {
            point.0 = at(point.0);
        }
    }
    let ticks: Vec<f64> = live.iter().map(|&v| at(v)).collect();
    let x = Axis::log_at(x_label, ticks, 1.6, move |v| {
        if (v - zero_at).abs() < zero_at * 1e-6 {
            "0".into()
        } else {
            format::si_tick(v)
        }
    });
    let (lo, hi) = ys(&lines)
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let y = Axis::log(y_label, lo, hi, format::ns_tick);
    Ok((line_chart(title, &x, &y, &lines)?, zero_at))
}

/// The lines from criterion's `cycle_population` and `floor`, and where they come from.
fn from_criterion(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
) -> Result<(Vec<Line>, String), String> {
    let ns_per_cycle = |b: &Benchmark| b.median.point / b.elements.unwrap_or(1).max(1) as f64;
    let lines = criterion_lines(
        criterion,
        colors,
        backends,
        BenchGroup::CyclePopulation,
        "population=",
        ns_per_cycle,
    );
    if lines.is_empty() {
        return Err("criterion `cycle_population` has no population this report can read".into());
    }
    let source = "criterion `cycle_population`, median. Dashed: the raw maps' inserts and removes at the same population (criterion `floor`)";
    Ok((lines, source.into()))
}

/// The lines from the sweep's population points, and where they come from.
fn from_sweep(
    sweep: &Sweep,
    colors: &Colors,
    backends: &[String],
) -> Result<(Vec<Line>, String), String> {
    // One thread's CPU time is its cost even when other work shares the cores; wall time
    // where the system did not give it.
    let cpu = sweep
        .points
        .iter()
        .filter(|p| p.axis == SweepAxis::Population)
        .all(|p| p.cpu_ns_per_cycle.is_some());
    let lines = sweep_lines(sweep, SweepAxis::Population, colors, backends, |p| {
        p.cpu_ns_per_cycle.unwrap_or(p.wall_ns_per_cycle)
    });
    if lines.is_empty() {
        return Err(
            "no criterion `cycle_population` data, and the sweep has no population points".into(),
        );
    }
    Ok((
        lines,
        format!(
            "the built-in sweep of `bypass compare`, `sweep.json`: the thread's {} time, median of {} samples of {}; no criterion `cycle_population` data. Dashed: the floor, a raw concurrent map doing the same inserts and removes",
            if cpu { "CPU" } else { "wall" },
            sweep.samples,
            format::ns(sweep.sample_s * 1e9)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{criterion_fixture, results_fixture, sweep_fixture};

    #[test]
    fn from_criterion_with_the_empty_registry_at_zero() {
        let (root, criterion, backends, colors) = criterion_fixture("charts-population");
        let p = cost_population(&criterion, None, &colors, &backends).unwrap();
        assert!(
            p.svg.contains(">\n0\n</text>"),
            "the empty registry is labelled 0"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nothing_without_criterion() {
        let (_, backends, colors) = results_fixture();
        let none = CriterionData::default();
        assert!(cost_population(&none, None, &colors, &backends).is_err());
    }

    #[test]
    fn from_the_sweep_without_criterion() {
        let (_, backends, colors) = results_fixture();
        let none = CriterionData::default();
        let sweep = sweep_fixture(&backends);
        let p = cost_population(&none, Some(&sweep), &colors, &backends).unwrap();
        assert!(p.caption.contains("sweep.json"), "{}", p.caption);
        assert!(p.svg.contains("floor: raw map"));
        assert!(
            p.svg.contains(">\n0\n</text>"),
            "the empty registry is labelled 0"
        );
    }
}
