//! Medians and spreads of repeated measurements.

/// A figure measured one or more times: the median, and the lowest and highest value seen
/// (or, for a criterion estimate, the bounds of its 95% confidence interval).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median of the measurements.
    pub median: f64,
    /// The lowest measurement (or lower bound).
    pub low: f64,
    /// The highest measurement (or upper bound).
    pub high: f64,
    /// How many measurements; 0 for a criterion estimate, whose bounds are a confidence
    /// interval rather than repeats.
    pub n: usize,
}

impl Spread {
    /// The median and range of `values`; `None` if there are none (non-finite values are
    /// ignored).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            low: v[0],
            high: v[n - 1],
            n,
        })
    }

    /// A single figure with no spread.
    pub fn exact(value: f64) -> Spread {
        Spread {
            median: value,
            low: value,
            high: value,
            n: 1,
        }
    }

    /// The geometric mean of several spreads, component by component: the median of the
    /// result is the geometric mean of the medians, its low the geometric mean of the lows
    /// (every figure at its worst at once), its high that of the highs. `None` if `parts` is
    /// empty or holds a figure that is not positive.
    pub fn geometric_mean(parts: &[Spread]) -> Option<Spread> {
        if parts.is_empty()
            || parts
                .iter()
                .any(|p| !(p.low > 0.0 && p.median > 0.0 && p.high > 0.0))
        {
            return None;
        }
        let g = |f: fn(&Spread) -> f64| {
            (parts.iter().map(|p| f(p).ln()).sum::<f64>() / parts.len() as f64).exp()
        };
        Some(Spread {
            median: g(|p| p.median),
            low: g(|p| p.low),
            high: g(|p| p.high),
            n: parts.iter().map(|p| p.n).min().unwrap_or(0),
        })
    }

    /// `1 / self`, scaled: turns a time per iteration into a rate (the low and high swap).
    pub fn reciprocal(self, scale: f64) -> Spread {
        Spread {
            median: scale / self.median,
            low: scale / self.high,
            high: scale / self.low,
            n: self.n,
        }
    }

    /// Whether there is any spread to speak of (more than one repeat, or an interval).
    pub fn measured(&self) -> bool {
        self.n != 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.low, s.high, s.n), (2.0, 1.0, 3.0, 3));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of([]).is_none());
        assert!(Spread::of([f64::NAN]).is_none());
    }

    #[test]
    fn geometric_mean_of_spreads() {
        let a = Spread {
            median: 2.0,
            low: 1.0,
            high: 4.0,
            n: 3,
        };
        let b = Spread {
            median: 8.0,
            low: 4.0,
            high: 16.0,
            n: 5,
        };
        let g = Spread::geometric_mean(&[a, b]).unwrap();
        assert!((g.median - 4.0).abs() < 1e-9);
        assert!((g.low - 2.0).abs() < 1e-9);
        assert!((g.high - 8.0).abs() < 1e-9);
        assert_eq!(g.n, 3);
        assert!(Spread::geometric_mean(&[]).is_none());
        assert!(Spread::geometric_mean(&[Spread::exact(0.0)]).is_none());
    }

    #[test]
    fn reciprocal_swaps_bounds() {
        let t = Spread {
            median: 2.0,
            low: 1.0,
            high: 4.0,
            n: 0,
        };
        let r = t.reciprocal(8.0);
        assert_eq!((r.median, r.low, r.high), (4.0, 2.0, 8.0));
    }
}
