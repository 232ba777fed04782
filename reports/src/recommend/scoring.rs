//! How a backend is chosen: per measure, each backend's figure against the best and against
//! the leader; the weighted sum; the ranking, the winner and ties.
//!
//! Everything is in doublings (log₂ of a ratio), so that 2× worse counts the same on every
//! measure, whether it is a throughput or a tail, and a measure's weight is exactly the share
//! of the verdict it carries.

use super::evidence::{Basis, Evidence};
use super::weights::{CAP, Direction, MEASURED_MARGIN, Measure, SINGLE_RUN_MARGIN, Weight};
use super::{Candidate, Comparison, Exclusion, MeasureMargin, Verdict, Workload};
use crate::stats::Spread;

/// The candidates of one workload, their figures lined up by measure: the measures every
/// candidate has, with their weights.
pub(super) struct Board {
    /// The measures compared, with their weights, in the weighting table's order.
    pub(super) weights: Vec<Weight>,
    /// The measures of the workload that some candidate lacked, so nobody is judged by them.
    pub(super) unmeasured: Vec<Measure>,
    /// Per candidate (by name), per compared measure, its figure in each scenario or
    /// benchmark.
    figures: Vec<(String, Vec<Vec<Spread>>)>,
    /// The weighted lead a winner needs, as a ratio.
    needed: f64,
}

/// Lines up `evidence` for `workload` on `basis`; backends with a reason are excluded.
pub(super) fn board(
    workload: Workload,
    basis: &Basis,
    evidence: Vec<(String, Evidence)>,
) -> (Board, Vec<Exclusion>) {
    let mut excluded = Vec::new();
    let mut present = Vec::new();
    for (backend, evidence) in evidence {
        match evidence {
            Evidence::Excluded(reason) => excluded.push(Exclusion { backend, reason }),
            Evidence::Figures(figures) => present.push((backend, figures)),
        }
    }
    let (weights, unmeasured): (Vec<Weight>, Vec<Weight>) = workload
        .weighting()
        .weights
        .iter()
        .filter(|w| basis.admits(w.measure))
        .partition(|w| {
            !present.is_empty()
                && present
                    .iter()
                    .all(|(_, figures)| figures.iter().any(|(m, _)| *m == w.measure))
        });
    let figures = present
        .into_iter()
        .map(|(backend, mut figures)| {
            let lined_up = weights
                .iter()
                .map(|w| {
                    let at = figures.iter().position(|(m, _)| *m == w.measure);
                    figures.swap_remove(at.expect("every candidate has it")).1
                })
                .collect();
            (backend, lined_up)
        })
        .collect();
    let needed = if basis.single_run() {
        SINGLE_RUN_MARGIN
    } else {
        MEASURED_MARGIN
    };
    let board = Board {
        weights,
        unmeasured: unmeasured.iter().map(|w| w.measure).collect(),
        figures,
        needed,
    };
    (board, excluded)
}

/// How much better `a` is than `b`, in doublings, from `a`'s point of view: positive when `a`
/// is better.
fn doublings(measure: Measure, a: f64, b: f64) -> f64 {
    let up = (a / b).log2();
    match measure.direction() {
        Direction::HigherIsBetter => up,
        Direction::LowerIsBetter => -up,
    }
}

/// `a`'s lead over `b` on one measure in one scenario, as counted: none if their ranges
/// overlap or their medians are within the measure's band, otherwise capped at [`CAP`].
fn counted(measure: Measure, a: &Spread, b: &Spread) -> f64 {
    let lead = doublings(measure, a.median, b.median);
    let overlap = a.low <= b.high && b.low <= a.high;
    if overlap || lead.abs() < measure.band().log2() {
        0.0
    } else {
        lead.clamp(-CAP.log2(), CAP.log2())
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

impl Board {
    fn total_weight(&self) -> f64 {
        self.weights.iter().map(|w| w.weight).sum()
    }

    /// The weighted mean over the measures of `per_measure`, in doublings.
    fn weighted(&self, per_measure: impl Iterator<Item = f64>) -> f64 {
        let total = self.total_weight();
        if total <= 0.0 {
            return 0.0;
        }
        self.weights
            .iter()
            .zip(per_measure)
            .map(|(w, d)| w.weight * d)
            .sum::<f64>()
            / total
    }

    /// How far candidate `i` is behind the best median of each measure, capped, weighted: 0
    /// for a backend best on every measure.
    fn behind(&self, i: usize) -> f64 {
        let mine = &self.figures[i].1;
        self.weighted(self.weights.iter().enumerate().map(|(m, w)| {
            mean(mine[m].iter().enumerate().map(|(part, figure)| {
                let lag = self
                    .figures
                    .iter()
                    .map(|(_, other)| doublings(w.measure, other[m][part].median, figure.median))
                    .fold(0.0, f64::max);
                lag.min(CAP.log2())
            }))
        }))
    }

    /// Candidate `a` against candidate `b`, measure by measure.
    fn compare(&self, a: usize, b: usize) -> Comparison {
        let (fa, fb) = (&self.figures[a].1, &self.figures[b].1);
        let measures: Vec<MeasureMargin> = self
            .weights
            .iter()
            .enumerate()
            .map(|(m, w)| {
                let pairs = || fa[m].iter().zip(&fb[m]);
                MeasureMargin {
                    measure: w.measure,
                    weight: w.weight,
                    ratio: mean(pairs().map(|(x, y)| doublings(w.measure, x.median, y.median)))
                        .exp2(),
                    counted: mean(pairs().map(|(x, y)| counted(w.measure, x, y))).exp2(),
                }
            })
            .collect();
        let margin = self
            .weighted(measures.iter().map(|m| m.counted.log2()))
            .exp2();
        Comparison {
            leader: self.figures[a].0.clone(),
            runner_up: self.figures[b].0.clone(),
            measures,
            margin,
            needed: self.needed,
        }
    }

    /// The candidates, best first; the verdict; and the leader against the runner-up.
    ///
    /// Candidates rank by how far they are behind the best figure of each measure. The
    /// leader wins if its weighted lead over every other candidate, counting only the
    /// measures on which they do not tie, exceeds the margin needed; the candidates it does
    /// not beat so are tied with it.
    pub(super) fn decide(&self) -> (Vec<Candidate>, Verdict, Option<Comparison>) {
        let mut order: Vec<(usize, f64)> = (0..self.figures.len())
            .map(|i| (i, self.behind(i)))
            .collect();
        order.sort_by(|(a, sa), (b, sb)| {
            sa.total_cmp(sb)
                .then_with(|| self.figures[*a].0.cmp(&self.figures[*b].0))
        });
        let candidates = order
            .iter()
            .map(|&(i, behind)| Candidate {
                backend: self.figures[i].0.clone(),
                behind: behind.exp2(),
                figures: self
                    .weights
                    .iter()
                    .zip(&self.figures[i].1)
                    .filter_map(|(w, parts)| Some((w.measure, Spread::geometric_mean(parts)?)))
                    .collect(),
            })
            .collect();
        let (leader, runner_up) = match order.as_slice() {
            [] => return (candidates, Verdict::NoData, None),
            [(only, _)] => {
                let verdict = Verdict::Winner {
                    backend: self.figures[*only].0.clone(),
                };
                return (candidates, verdict, None);
            }
            [(leader, _), (runner_up, _), ..] => (*leader, *runner_up),
        };
        let tied: Vec<usize> = order[1..]
            .iter()
            .map(|&(i, _)| i)
            .filter(|&i| self.compare(leader, i).margin <= self.needed)
            .collect();
        // A tie is shown against the first backend tied with the leader, a win against the
        // runner-up.
        let comparison = self.compare(leader, tied.first().copied().unwrap_or(runner_up));
        let verdict = if tied.is_empty() {
            Verdict::Winner {
                backend: self.figures[leader].0.clone(),
            }
        } else {
            // A tie is a set: its members are listed in the backends' order, whichever of
            // them led, so that the same tie reads the same from run to run.
            let mut members = tied;
            members.push(leader);
            members.sort_unstable();
            Verdict::Tie {
                leaders: members.iter().map(|&i| self.figures[i].0.clone()).collect(),
            }
        };
        (candidates, verdict, Some(comparison))
    }
}
