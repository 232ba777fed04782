//! The report's charts, drawn as SVG with plotters.
//!
//! Each chart function returns the chart, or why it cannot be drawn (the data it needs is
//! missing), which the report prints in its place. Text in the SVG is laid out by whatever
//! displays it (plotters is built without a font engine), so labels use generic font families.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::criterion::CriterionData;
use crate::format;
use crate::recommend::FLOORS;
use crate::schema::{BenchGroup, Operation, RunResult, Scenario};
use crate::stats::Spread;

/// One chart: its file name, title, caption and SVG text.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The file name the report writes it to (`throughput-threads.svg`, …).
    pub file: String,
    /// The title, also drawn in the chart.
    pub title: String,
    /// What it shows and where the figures come from.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

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

    fn of(&self, name: &str) -> RGBColor {
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
struct Line {
    name: String,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// A solid line per backend from criterion `group`, then a dashed one per raw-map floor from
/// the `floor` group's benchmarks whose parameter starts with `floor_prefix`: `value` of each
/// benchmark against its numeric parameter. Backends and floors without data get no line.
fn criterion_lines(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
    group: BenchGroup,
    floor_prefix: &str,
    value: impl Fn(&crate::criterion::Benchmark) -> f64,
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
    let backend_lines = backends.iter().map(|backend| Line {
        name: backend.clone(),
        color: colors.of(backend),
        dashed: false,
        points: series(group, backend, ""),
    });
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

/// One axis: its description, scale, range, ticks and tick labels.
struct Axis {
    desc: String,
    log: bool,
    range: (f64, f64),
    ticks: Vec<f64>,
    light: Vec<f64>,
    label: Box<dyn Fn(f64) -> String>,
}

impl Axis {
    /// A log axis over `lo..hi`, from the decade below to the decade above, with a tick at
    /// each power of ten (and at 2 and 5 times each when the range is two decades or less).
    fn log(desc: &str, lo: f64, hi: f64, label: fn(f64) -> String) -> Axis {
        // Figures that cannot sit on a log axis (none, zero, infinite) get a default decade.
        let hi = if hi.is_finite() && hi > 0.0 { hi } else { 10.0 };
        let lo = if lo.is_finite() && lo > 0.0 {
            lo
        } else {
            hi / 10.0
        };
        let hi = hi.max(lo);
        let mut start = 10f64.powf(lo.log10().floor());
        let mut end = 10f64.powf(hi.log10().ceil());
        if end <= start {
            end = start * 10.0;
        }
        // Keep the lines off the frame when they sit on a decade.
        if lo <= start * 1.05 {
            start /= 2.0;
        }
        if hi >= end / 1.05 {
            end *= 2.0;
        }
        let decades = (end / start).log10();
        let mut ticks = Vec::new();
        let mut light = Vec::new();
        let mut p = 10f64.powf(start.log10().floor());
        while p <= end * 1.0001 && ticks.len() + light.len() < 400 {
            for m in 1..10 {
                let v = p * f64::from(m);
                if v < start * 0.9999 || v > end * 1.0001 {
                    continue;
                }
                if m == 1 || (decades <= 2.5 && (m == 2 || m == 5)) {
                    ticks.push(v);
                } else {
                    light.push(v);
                }
            }
            p *= 10.0;
        }
        Axis {
            desc: desc.into(),
            log: true,
            range: (start, end),
            ticks,
            light,
            label: Box::new(label),
        }
    }

    /// A linear axis from 0 to a little above `hi`, with about five round ticks.
    fn linear_from_zero(desc: &str, hi: f64, label: fn(f64) -> String) -> Axis {
        let hi = if hi > 0.0 && hi.is_finite() { hi } else { 1.0 };
        let raw = hi / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let n = (hi * 1.05 / step).ceil();
        let ticks: Vec<f64> = (0..=n as usize).map(|i| i as f64 * step).collect();
        Axis {
            desc: desc.into(),
            log: false,
            range: (0.0, n * step),
            ticks,
            light: Vec::new(),
            label: Box::new(label),
        }
    }

    /// Categories at 0, 1, 2, … named by `names`.
    fn categories(desc: &str, names: &[&str]) -> Axis {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let n = names.len();
        Axis {
            desc: desc.into(),
            log: false,
            range: (-0.4, n as f64 - 0.6),
            ticks: (0..n).map(|i| i as f64).collect(),
            light: Vec::new(),
            label: Box::new(move |v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }),
        }
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

// Font sizes are given in plotters' units: its SVG backend writes them divided by 1.24, so
// 21 is a 17 px title and 16 a 13 px label.

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {e}")
}

/// An axis' coordinate for plotters: a linear or log mapping, with our own ticks (plotters'
/// would pick its own, and label every light line of a log axis).
struct AxisCoord {
    scale: Scale,
    bold: Vec<f64>,
    light: Vec<f64>,
}

enum Scale {
    Linear(RangedCoordf64),
    Log(LogCoord<f64>),
}

impl Axis {
    fn coord(&self) -> AxisCoord {
        let range = self.range.0..self.range.1;
        AxisCoord {
            scale: if self.log {
                Scale::Log(range.log_scale().into())
            } else {
                Scale::Linear(range.into())
            },
            bold: self.ticks.clone(),
            light: self.light.clone(),
        }
    }
}

impl Ranged for AxisCoord {
    // Labels always come from the axis' own formatter; this only satisfies the mesh's bound.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        match &self.scale {
            Scale::Linear(c) => c.map(value, limit),
            Scale::Log(c) => c.map(value, limit),
        }
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        match &self.scale {
            Scale::Linear(c) => c.range(),
            Scale::Log(c) => c.range(),
        }
    }
}

/// Draws a line chart on `area`.
fn lines_on(
    area: &Area<'_>,
    title: &str,
    x: &Axis,
    y: &Axis,
    lines: &[Line],
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 21))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(76)
        .build_cartesian_2d(x.coord(), y.coord())
        .map_err(err)?;
    let xf = |v: &f64| (x.label)(*v);
    let yf = |v: &f64| (y.label)(*v);
    chart
        .configure_mesh()
        .x_desc(x.desc.as_str())
        .y_desc(y.desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 17))
        .bold_line_style(BLACK.mix(0.18))
        .light_line_style(BLACK.mix(0.06))
        .draw()
        .map_err(err)?;
    for line in lines {
        // A figure a log axis cannot show (zero, or a rate from a zero time) is left out.
        let usable = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|&(px, py)| usable(px, x.log) && usable(py, y.log))
            .collect();
        let style = line.color.stroke_width(2);
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 7, 5, style))
                .map_err(err)?;
        } else {
            chart
                .draw_series(LineSeries::new(points, style).point_size(3))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Draws the legend in its own column, one entry a line.
fn legend(area: &Area<'_>, entries: &[(String, RGBColor, bool)]) -> Result<(), String> {
    let text =
        TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (name, color, dashed)) in entries.iter().enumerate() {
        let y = 56 + 22 * i as i32;
        let style = color.stroke_width(2);
        if *dashed {
            area.draw(&PathElement::new(vec![(6, y), (15, y)], style))
                .map_err(err)?;
            area.draw(&PathElement::new(vec![(21, y), (30, y)], style))
                .map_err(err)?;
        } else {
            area.draw(&PathElement::new(vec![(6, y), (30, y)], style))
                .map_err(err)?;
            area.draw(&Circle::new((18, y), 3, color.filled()))
                .map_err(err)?;
        }
        area.draw(&Text::new(name.clone(), (38, y), text.clone()))
            .map_err(err)?;
    }
    Ok(())
}

const WIDTH: u32 = 860;
const HEIGHT: u32 = 440;
const LEGEND: u32 = 190;
/// The width of each panel of a latency chart.
const PANEL: u32 = 340;

/// Renders a whole SVG document of `size` with `draw`.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// A line chart with the legend on the right.
fn line_chart(title: &str, x: &Axis, y: &Axis, lines: &[Line]) -> Result<String, String> {
    svg((WIDTH, HEIGHT), |root| {
        let (plot, key) = root.split_horizontally(WIDTH - LEGEND);
        lines_on(&plot, title, x, y, lines)?;
        let entries: Vec<(String, RGBColor, bool)> = lines
            .iter()
            .map(|l| (l.name.clone(), l.color, l.dashed))
            .collect();
        legend(&key, &entries)
    })
}

fn int(v: f64) -> String {
    format!("{v:.0}")
}

fn cores_phrase(results: &[RunResult]) -> String {
    match results.first() {
        Some(r) if r.machine.cores > 0 => format!(" The machine has {} cores.", r.machine.cores),
        _ => String::new(),
    }
}

/// Connect+disconnect throughput against threads, a line per backend, the floors dashed.
pub(crate) fn throughput_threads(
    results: &[RunResult],
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Connect+disconnect throughput against threads";
    let mut lines = Vec::new();
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
    } else {
        // Without criterion, a scenario that ran at several thread counts will do.
        let mut by_scenario: BTreeMap<&str, Vec<&RunResult>> = BTreeMap::new();
        for r in results.iter().filter(|r| r.callback_cost_ns == 0) {
            by_scenario.entry(r.scenario.name()).or_default().push(r);
        }
        let varied = by_scenario.iter().find(|(_, runs)| {
            let first = runs[0].threads;
            runs.iter().any(|r| r.threads != first)
        });
        let Some((scenario, runs)) = varied else {
            return Err(
                "no criterion `cycle_threads` data (run `cargo bench -p bypass-benches --bench cycle`), and every scenario of the results ran at a single thread count"
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
                lines.push(Line {
                    name: backend.clone(),
                    color: colors.of(backend),
                    dashed: false,
                    points,
                });
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
    let mut threads: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    threads.sort_by(f64::total_cmp);
    threads.dedup();
    let (lo, hi) = (threads[0], threads[threads.len() - 1]);
    let x = Axis {
        desc: "threads".into(),
        log: true,
        range: (lo / 1.25, hi * 1.25),
        ticks: threads,
        light: Vec::new(),
        label: Box::new(int),
    };
    let ymax = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let unit = if criterion.has_group(BenchGroup::CycleThreads) {
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

/// The cost of one connect+disconnect cycle against live tokens, log-log, with the floors.
pub(crate) fn cost_population(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Connect+disconnect cost against live tokens";
    if !criterion.has_group(BenchGroup::CyclePopulation) {
        return Err(
            "no criterion `cycle_population` data (run `cargo bench -p bypass-benches --bench cycle`)"
                .into(),
        );
    }
    let ns_per_cycle =
        |b: &crate::criterion::Benchmark| b.median.point / b.elements.unwrap_or(1).max(1) as f64;
    let mut lines = criterion_lines(
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
    let mut live: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    live.sort_by(f64::total_cmp);
    live.dedup();
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
    let x = Axis {
        desc: "live tokens".into(),
        log: true,
        range: (ticks[0] / 1.6, ticks[ticks.len() - 1] * 1.6),
        ticks,
        light: Vec::new(),
        label: Box::new(move |v| {
            if (v - zero_at).abs() < zero_at * 1e-6 {
                "0".into()
            } else {
                format::si_tick(v)
            }
        }),
    };
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let y = Axis::log("time per cycle (one thread)", lo, hi, format::ns_tick);
    Ok(Chart {
        file: "cost-population.svg".into(),
        title: title.into(),
        caption: format!(
            "Time for one cycle (register producer, register consumer, unregister both) on one thread after the given number of unrelated tokens were registered (criterion `cycle_population`, median), log-log. Dashed: the raw maps' inserts and removes at the same population (criterion `floor`). The empty registry is drawn at {}, labelled 0.",
            format::si(zero_at)
        ),
        svg: line_chart(title, &x, &y, &lines)?,
    })
}

/// One horizontal bar.
struct Bar {
    label: String,
    color: RGBColor,
    value: Spread,
}

/// Horizontal bars on a log axis, with the spread as a whisker and the median written out.
fn bar_chart(title: &str, desc: &str, bars: &[Bar]) -> Result<String, String> {
    let n = bars.len();
    let lo = bars
        .iter()
        .map(|b| b.value.low.min(b.value.median))
        .fold(f64::INFINITY, f64::min);
    let hi = bars
        .iter()
        .map(|b| b.value.high.max(b.value.median))
        .fold(0.0, f64::max);
    // Room on the right for the figures.
    let mut x = Axis::log(desc, lo, hi * 3.0, format::si_tick);
    x.range.0 = x.range.0.min(lo / 3.0);
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    let height = (110 + 34 * n as u32).max(240);
    svg((WIDTH, height), |root| {
        // Bar i is drawn at y = n - 1 - i, so the first bar is on top.
        let y = Axis {
            desc: String::new(),
            log: false,
            range: (-0.6, n as f64 - 0.4),
            ticks: (0..n).map(|i| i as f64).collect(),
            light: Vec::new(),
            label: Box::new(|_| String::new()),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 21))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(48)
            .y_label_area_size(210)
            .build_cartesian_2d(x.coord(), y.coord())
            .map_err(err)?;
        let yf = |v: &f64| {
            let i = (n as f64 - 1.0 - v).round();
            if i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let xf = |v: &f64| (x.label)(*v);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(desc)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 17))
            .bold_line_style(BLACK.mix(0.18))
            .light_line_style(BLACK.mix(0.06))
            .draw()
            .map_err(err)?;
        let base = x.range.0;
        let text =
            TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, bar) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let v = bar.value;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(base, y - 0.32), (v.median, y + 0.32)],
                    bar.color.mix(0.85).filled(),
                )))
                .map_err(err)?;
            if v.low < v.high {
                let whisker = BLACK.stroke_width(1);
                for path in [
                    vec![(v.low, y), (v.high, y)],
                    vec![(v.low, y - 0.15), (v.low, y + 0.15)],
                    vec![(v.high, y - 0.15), (v.high, y + 0.15)],
                ] {
                    chart
                        .draw_series(std::iter::once(PathElement::new(path, whisker)))
                        .map_err(err)?;
                }
            }
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("  {}", format::si(v.median)),
                    (v.high.max(v.median), y),
                    text.clone(),
                )))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// Lookup throughput under churn: criterion's `lookup` group, or the delivery-lookup runs.
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
                let capped = if runs.iter().any(|r| r.capped) {
                    " (capped)"
                } else {
                    ""
                };
                bars.push(Bar {
                    label: format!("{backend}{capped}"),
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
                lines.push(Line {
                    name: backend.clone(),
                    color: colors.of(backend),
                    dashed: false,
                    points,
                });
            }
            panels.push((kind, lines));
        }
        for backend in backends {
            let mine: Vec<&&&RunResult> = runs.iter().filter(|r| &r.backend == backend).collect();
            if mine.is_empty() {
                continue;
            }
            let mut name = backend.clone();
            if mine.iter().any(|r| r.capped) {
                name.push_str(" (capped)");
            }
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
        match chart {
            Ok(svg) => charts.push(Chart {
                file: format!("latency-{}.svg", file_safe(scenario.name())),
                title,
                caption: format!(
                    "Latency of each kind of operation in {scenario}, per backend: p50, p99, p99.9 and maximum (median of each over the repeats), log scale. Capped runs stopped before the end of their plan, so they saw less of it."
                ),
                svg,
            }),
            Err(e) => charts.push(Chart {
                file: String::new(),
                title,
                caption: e,
                svg: String::new(),
            }),
        }
    }
    charts.retain(|c| !c.svg.is_empty());
    charts
}

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
    use crate::criterion::tests::{temp_dir, write_benchmark};
    use crate::recommend::tests::{repeats, run};

    #[test]
    fn log_axis_ticks() {
        let a = Axis::log("", 120.0, 90_000.0, format::ns);
        assert_eq!(a.range, (100.0, 100_000.0));
        assert_eq!(a.ticks, [100.0, 1_000.0, 10_000.0, 100_000.0]);
        let b = Axis::log("", 3.0, 40.0, format::ns);
        assert!(
            b.ticks.contains(&5.0) && b.ticks.contains(&20.0),
            "{:?}",
            b.ticks
        );
        let c = Axis::linear_from_zero("", 9.3e6, format::si);
        assert_eq!(c.ticks[1], 2e6);
        assert!(c.range.1 >= 9.3e6);
        // Nothing usable: still an axis, and no endless loop.
        let d = Axis::log("", f64::INFINITY, f64::INFINITY, format::ns);
        assert_eq!(d.range, (0.5, 20.0));
        let e = Axis::log("", 0.0, 0.0, format::ns);
        assert!(!e.ticks.is_empty());
    }

    #[test]
    fn charts_from_criterion() {
        let root = temp_dir("charts-criterion");
        for (backend, ns) in [("mutex-map", 400.0), ("rcu", 300.0)] {
            for t in [1u64, 2, 4, 16] {
                write_benchmark(
                    &root,
                    "cycle_threads",
                    backend,
                    &t.to_string(),
                    t,
                    ns * t as f64,
                );
            }
            for live in [0u64, 1000, 10_000, 100_000] {
                write_benchmark(&root, "cycle_population", backend, &live.to_string(), 1, ns);
            }
            write_benchmark(&root, "lookup", backend, "is_paired", 1, ns / 10.0);
        }
        write_benchmark(&root, "floor", "dashmap", "threads=2", 2, 100.0);
        write_benchmark(&root, "floor", "dashmap", "population=1000", 1, 90.0);
        let criterion = CriterionData::read(&root);
        let backends = vec!["mutex-map".to_string(), "rcu".to_string()];
        let colors = Colors::new(&backends);
        let t = throughput_threads(&[], &criterion, &colors, &backends).unwrap();
        assert!(t.svg.starts_with("<svg"), "{}", &t.svg[..40]);
        assert!(t.svg.contains("floor: dashmap"));
        let p = cost_population(&criterion, &colors, &backends).unwrap();
        assert!(
            p.svg.contains(">\n0\n</text>"),
            "the empty registry is labelled 0"
        );
        let l = lookup(&[], &criterion, &colors, &backends).unwrap();
        assert!(l.svg.contains("rcu · is_paired"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn charts_from_results_alone() {
        let mut results = Vec::new();
        repeats(
            &mut results,
            "delivery-lookup",
            &[("a", 1e6), ("b", 2e6)],
            0.1,
        );
        repeats(&mut results, "boot-storm", &[("a", 1e5), ("b", 3e5)], 0.1);
        let backends = vec!["a".to_string(), "b".to_string()];
        let colors = Colors::new(&backends);
        let none = CriterionData::default();
        assert!(
            throughput_threads(&results, &none, &colors, &backends)
                .unwrap_err()
                .contains("single thread count")
        );
        assert!(cost_population(&none, &colors, &backends).is_err());
        assert!(
            lookup(&results, &none, &colors, &backends)
                .unwrap()
                .svg
                .contains("<rect")
        );
        let charts = latency(&results, &colors, &backends);
        assert_eq!(charts.len(), 2);
        assert_eq!(charts[1].file, "latency-boot-storm.svg");

        // Thread counts that vary within a scenario give the threads chart.
        let mut varied = results.clone();
        let mut more = run("a", "boot-storm", 9, 2e5);
        more.threads = 16;
        varied.push(more);
        assert!(throughput_threads(&varied, &none, &colors, &backends).is_ok());
    }
}
