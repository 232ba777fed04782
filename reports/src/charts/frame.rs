//! The frame every chart is drawn in: the SVG document, the title and axes in the report's
//! style, the legend, and the two kinds of plot (lines, and horizontal bars).

use plotters::chart::ChartContext;
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Axis, AxisCoord};
use super::series::{Bar, Line};
use crate::format;

/// A chart's default width.
pub(super) const WIDTH: u32 = 860;
/// A line chart's height.
pub(super) const HEIGHT: u32 = 440;
/// The width of the legend's column.
pub(super) const LEGEND: u32 = 190;
/// The width of each panel of a latency chart.
pub(super) const PANEL: u32 = 340;

/// Where a chart, or a panel of one, is drawn.
pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<AxisCoord, AxisCoord>>;

// Font sizes are given in plotters' units: its SVG backend writes them divided by 1.24, so
// 21 is a 17 px title and 16 a 13 px label.

/// A drawing error, as the report prints it in the chart's place.
pub(super) fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {e}")
}

/// Renders a whole SVG document of `size` with `draw`.
pub(super) fn svg(
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

/// Titles `area` and sets up `x` and `y` on it, leaving `y_label_width` for the y labels and
/// `margin_right` on the right, then draws the grid, tick labels and axis descriptions.
/// Without `y_grid` there are neither horizontal grid lines nor a y description (bars).
fn plot<'a, 'b>(
    area: &'a Area<'b>,
    title: &str,
    (x, y): (&Axis, &Axis),
    (y_label_width, margin_right): (u32, u32),
    y_grid: bool,
) -> Result<Plot<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 21))
        .margin(12)
        .margin_right(margin_right)
        .x_label_area_size(48)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(x.coord(), y.coord())
        .map_err(err)?;
    let xf = |v: &f64| (x.label)(*v);
    let yf = |v: &f64| (y.label)(*v);
    let mut mesh = chart.configure_mesh();
    if y_grid {
        mesh.y_desc(y.desc.as_str());
    } else {
        mesh.disable_y_mesh();
    }
    mesh.x_desc(x.desc.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 17))
        .bold_line_style(BLACK.mix(0.18))
        .light_line_style(BLACK.mix(0.06))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Draws a line chart on `area`.
pub(super) fn lines_on(
    area: &Area<'_>,
    title: &str,
    x: &Axis,
    y: &Axis,
    lines: &[Line],
) -> Result<(), String> {
    let mut chart = plot(area, title, (x, y), (76, 12), true)?;
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
pub(super) fn legend(area: &Area<'_>, entries: &[(String, RGBColor, bool)]) -> Result<(), String> {
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

/// A line chart with the legend on the right.
pub(super) fn line_chart(
    title: &str,
    x: &Axis,
    y: &Axis,
    lines: &[Line],
) -> Result<String, String> {
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

/// Horizontal bars on a log axis, with the spread as a whisker and the median written out.
pub(super) fn bar_chart(title: &str, desc: &str, bars: &[Bar]) -> Result<String, String> {
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
            label: Box::new(move |v| {
                let i = (n as f64 - 1.0 - v).round();
                if i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }),
        };
        let mut chart = plot(root, title, (&x, &y), (210, 36), false)?;
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
