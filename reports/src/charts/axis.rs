//! The axes every chart shares: linear, log and category scales, their ticks and labels,
//! and the coordinate plotters maps them with.

use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One axis: its description, scale, range, ticks and tick labels.
pub(super) struct Axis {
    pub(super) desc: String,
    pub(super) log: bool,
    pub(super) range: (f64, f64),
    pub(super) ticks: Vec<f64>,
    pub(super) light: Vec<f64>,
    pub(super) label: Box<dyn Fn(f64) -> String>,
}

impl Axis {
    /// A log axis over `lo..hi`, from the decade below to the decade above, with a tick at
    /// each power of ten (and at 2 and 5 times each when the range is two decades or less).
    pub(super) fn log(desc: &str, lo: f64, hi: f64, label: fn(f64) -> String) -> Axis {
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

    /// A log axis with a tick at each of `ticks` (sorted, at least one) and nowhere else,
    /// reaching `pad` times beyond the first and the last.
    pub(super) fn log_at(
        desc: &str,
        ticks: Vec<f64>,
        pad: f64,
        label: impl Fn(f64) -> String + 'static,
    ) -> Axis {
        Axis {
            desc: desc.into(),
            log: true,
            range: (ticks[0] / pad, ticks[ticks.len() - 1] * pad),
            ticks,
            light: Vec::new(),
            label: Box::new(label),
        }
    }

    /// A linear axis from 0 to a little above `hi`, with about five round ticks.
    pub(super) fn linear_from_zero(desc: &str, hi: f64, label: fn(f64) -> String) -> Axis {
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
    pub(super) fn categories(desc: &str, names: &[&str]) -> Axis {
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

    /// The coordinate plotters draws this axis with.
    pub(super) fn coord(&self) -> AxisCoord {
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

/// A whole number, as a tick label.
pub(super) fn int(v: f64) -> String {
    format!("{v:.0}")
}

/// An axis' coordinate for plotters: a linear or log mapping, with our own ticks (plotters'
/// would pick its own, and label every light line of a log axis).
pub(super) struct AxisCoord {
    scale: Scale,
    bold: Vec<f64>,
    light: Vec<f64>,
}

enum Scale {
    Linear(RangedCoordf64),
    Log(LogCoord<f64>),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format;

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
}
