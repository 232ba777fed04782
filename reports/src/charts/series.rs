//! What the charts draw: each backend's colour, the lines and bars, and the lines read from
//! criterion.

use plotters::style::RGBColor;

use crate::criterion::{Benchmark, CriterionData};
use crate::recommend::FLOORS;
use crate::schema::{BenchGroup, FLOOR, RunResult, Sweep, SweepAxis, SweepPoint};
use crate::stats::Spread;

/// A colour-blind-safe palette (Okabe and Ito), darkest first; backends take them in order.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// The floors are grey, and dashed in line charts.
const FLOOR_COLORS: [RGBColor; 2] = [RGBColor(90, 90, 90), RGBColor(150, 150, 150)];

/// Gives every backend the same colour in every chart.
#[derive(Clone, Debug)]
pub(crate) struct Colors {
    backends: Vec<String>,
}

impl Colors {
    pub(crate) fn new(backends: &[String]) -> Colors {
        Colors {
            backends: backends.to_vec(),
        }
    }

    pub(super) fn of(&self, name: &str) -> RGBColor {
        if let Some(i) = FLOORS.iter().position(|f| *f == name) {
            return FLOOR_COLORS[i % FLOOR_COLORS.len()];
        }
        let i = self
            .backends
            .iter()
            .position(|b| b == name)
            .unwrap_or(self.backends.len());
        PALETTE[i % PALETTE.len()]
    }
}

/// One line of a line chart.
pub(super) struct Line {
    pub(super) name: String,
    pub(super) color: RGBColor,
    pub(super) dashed: bool,
    pub(super) points: Vec<(f64, f64)>,
}

impl Line {
    /// A backend's solid line.
    pub(super) fn backend(backend: &str, colors: &Colors, points: Vec<(f64, f64)>) -> Line {
        Line {
            name: backend.to_string(),
            color: colors.of(backend),
            dashed: false,
            points,
        }
    }
}

/// Every distinct x of `lines`, in order.
pub(super) fn xs(lines: &[Line]) -> Vec<f64> {
    let mut xs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Every y of `lines`.
pub(super) fn ys(lines: &[Line]) -> impl Iterator<Item = f64> + '_ {
    lines.iter().flat_map(|l| l.points.iter().map(|p| p.1))
}

/// One horizontal bar.
pub(super) struct Bar {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) value: Spread,
}

/// ` (capped)` if any of `runs` was stopped by its time cap, for a backend's label.
pub(super) fn capped_mark<'a>(mut runs: impl Iterator<Item = &'a RunResult>) -> &'static str {
    if runs.any(|r| r.capped) {
        " (capped)"
    } else {
        ""
    }
}

/// A solid line per backend from criterion `group`, then a dashed one per raw-map floor from
/// the `floor` group's benchmarks whose parameter starts with `floor_prefix`: `value` of each
/// benchmark against its numeric parameter. Backends and floors without data get no line.
pub(super) fn criterion_lines(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
    group: BenchGroup,
    floor_prefix: &str,
    value: impl Fn(&Benchmark) -> f64,
) -> Vec<Line> {
    let series = |group: BenchGroup, function: &str, prefix: &str| {
        let mut points: Vec<(f64, f64)> = criterion
            .group(group)
            .filter(|b| b.function == function && b.parameter.starts_with(prefix))
            .filter_map(|b| Some((b.parameter_number()?, value(b))))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let backend_lines = backends
        .iter()
        .map(|backend| Line::backend(backend, colors, series(group, backend, "")));
    let floor_lines = FLOORS.iter().map(|floor| Line {
        name: format!("floor: {floor}"),
        color: colors.of(floor),
        dashed: true,
        points: series(BenchGroup::Floor, floor, floor_prefix),
    });
    backend_lines
        .chain(floor_lines)
        .filter(|line| !line.points.is_empty())
        .collect()
}

/// A solid line per backend from `sweep`'s points on `axis`, then a dashed one for the floor:
/// `value` of each point against its x. Backends without points get no line.
pub(super) fn sweep_lines(
    sweep: &Sweep,
    axis: SweepAxis,
    colors: &Colors,
    backends: &[String],
    value: impl Fn(&SweepPoint) -> f64,
) -> Vec<Line> {
    let series = |name: &str| {
        let mut points: Vec<(f64, f64)> = sweep
            .points
            .iter()
            .filter(|p| p.backend == name && p.axis == axis)
            .map(|p| (p.x as f64, value(p)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    };
    let floor = Line {
        name: format!("{FLOOR}: raw map"),
        color: FLOOR_COLORS[0],
        dashed: true,
        points: series(FLOOR),
    };
    backends
        .iter()
        .filter(|b| *b != FLOOR)
        .map(|backend| Line::backend(backend, colors, series(backend)))
        .chain([floor])
        .filter(|line| !line.points.is_empty())
        .collect()
}
