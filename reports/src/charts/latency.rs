//! Latency percentiles: one chart per scenario, a panel per kind of operation.

use plotters::style::RGBColor;

use super::Chart;
use super::axis::Axis;
use super::frame::{HEIGHT, LEGEND, PANEL, WIDTH, err, legend, lines_on, svg};
use super::series::{Colors, Line, capped_mark};
use crate::format;
use crate::schema::{Operation, RunResult, Scenario};
use crate::stats::Spread;

const PERCENTILES: [&str; 4] = ["p50", "p99", "p99.9", "max"];

/// Latency percentiles per backend, one chart per scenario, a panel per kind of operation.
pub(crate) fn latency(results: &[RunResult], colors: &Colors, backends: &[String]) -> Vec<Chart> {
    let baseline: Vec<&RunResult> = results.iter().filter(|r| r.callback_cost_ns == 0).collect();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for r in &baseline {
        if !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario);
        }
    }
    let mut charts = Vec::new();
    for scenario in scenarios {
        let runs: Vec<&&RunResult> = baseline.iter().filter(|r| r.scenario == scenario).collect();
        let mut kinds: Vec<Operation> = Vec::new();
        for &kind in Operation::ALL {
            if runs
                .iter()
                .any(|r| r.latency_ns.get(&kind).is_some_and(|p| p.count > 0))
            {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            continue;
        }
        // Per kind, per backend: the median of each percentile over the repeats.
        let mut panels: Vec<(Operation, Vec<Line>)> = Vec::new();
        let mut entries: Vec<(String, RGBColor, bool)> = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for &kind in &kinds {
            let mut lines = Vec::new();
            for backend in backends {
                let mine: Vec<_> = runs
                    .iter()
                    .filter(|r| &r.backend == backend)
                    .filter_map(|r| r.latency_ns.get(&kind))
                    .filter(|p| p.count > 0)
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let points: Vec<(f64, f64)> = (0..4)
                    .filter_map(|i| {
                        let m = Spread::of(mine.iter().map(|p| p.values()[i] as f64))?.median;
                        Some((i as f64, m.max(1.0)))
                    })
                    .collect();
                for p in &points {
                    lo = lo.min(p.1);
                    hi = hi.max(p.1);
                }
                lines.push(Line::backend(backend, colors, points));
            }
            panels.push((kind, lines));
        }
        for backend in backends {
            let mine: Vec<&RunResult> = runs
                .iter()
                .filter(|r| &r.backend == backend)
                .map(|r| **r)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let mut name = format!("{backend}{}", capped_mark(mine.iter().copied()));
            if mine.iter().any(|r| r.violations > 0) {
                name.push_str(" (violations!)");
            }
            entries.push((name, colors.of(backend), false));
        }
        let title = format!("{scenario}: latency percentiles");
        let width = (LEGEND + PANEL * panels.len() as u32).max(WIDTH);
        let chart = svg((width, HEIGHT), |root| {
            let (plot, key) = root.split_horizontally(width - LEGEND);
            let plot = plot.titled(&title, ("sans-serif", 21)).map_err(err)?;
            let areas = plot.split_evenly((1, panels.len()));
            for (area, (kind, lines)) in areas.iter().zip(&panels) {
                let x = Axis::categories("", &PERCENTILES);
                let mut y = Axis::log("latency", lo, hi, format::ns_tick);
                if panels.len() > 1 {
                    y.desc = format!("{kind} latency");
                }
                lines_on(area, kind.name(), &x, &y, lines)?;
            }
            legend(&key, &entries)
        });
        // A chart that cannot be drawn is left out, like a scenario without latencies.
        if let Ok(svg) = chart {
            charts.push(Chart {
                file: format!("latency-{}.svg", file_safe(scenario.name())),
                caption: format!(
                    "Latency of each kind of operation in {scenario}, per backend: p50, p99, p99.9 and maximum (median of each over the repeats), log scale. Capped runs stopped before the end of their plan, so they saw less of it."
                ),
                title,
                svg,
            });
        }
    }
    charts
}

/// `name` with every character a file name might not take replaced by `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::results_fixture;

    #[test]
    fn a_chart_per_scenario() {
        let (results, backends, colors) = results_fixture();
        let charts = latency(&results, &colors, &backends);
        assert_eq!(charts.len(), 2);
        assert_eq!(charts[1].file, "latency-boot-storm.svg");
    }
}
