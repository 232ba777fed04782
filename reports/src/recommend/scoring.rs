//! How a backend is chosen: each backend's score from its evidence, the ranking, the margin
//! a winner needs, and ties.

use super::evidence::{Basis, Evidence, Reason};
use super::{Candidate, Exclusion, Verdict};
use crate::stats::Spread;

/// Below this ratio the winner's lead is too small to call on a shared machine, whatever the
/// measured spread: with a single repeat there is no spread to go by, and two cores shared
/// with other jobs give a few percent of noise between runs.
pub const MIN_MARGIN: f64 = 1.05;

/// Scores each backend of `evidence`, measured on `basis`: the geometric mean of its rates.
/// Backends with a reason are excluded; so is a stress throughput of zero, while criterion
/// rates that cannot be combined are dropped.
pub(super) fn score(
    basis: &Basis,
    evidence: Vec<(String, Evidence)>,
) -> (Vec<Candidate>, Vec<Exclusion>) {
    let mut candidates = Vec::new();
    let mut excluded = Vec::new();
    for (backend, evidence) in evidence {
        let reason = match evidence {
            Evidence::Excluded(reason) => reason,
            Evidence::Rates(rates) => match Spread::geometric_mean(&rates) {
                Some(score) => {
                    candidates.push(Candidate { backend, score });
                    continue;
                }
                None if matches!(basis, Basis::Stress(_)) => Reason::ZeroThroughput,
                None => continue,
            },
        };
        excluded.push(Exclusion { backend, reason });
    }
    (candidates, excluded)
}

/// Ranks `candidates` (best first) and names the winner, if the figures allow.
///
/// The best median wins clearly when the runner-up's best figure stays below the winner's
/// worst **and** the ratio of medians is at least [`MIN_MARGIN`]. Otherwise there is no clear
/// winner, and the leaders are every candidate whose best reaches the winner's worst or whose
/// median is within the margin.
pub fn decide(candidates: &mut [Candidate]) -> Verdict {
    candidates.sort_by(|a, b| {
        b.score
            .median
            .total_cmp(&a.score.median)
            .then_with(|| a.backend.cmp(&b.backend))
    });
    let ratio_to = |w: &Spread, o: &Spread| {
        if o.median > 0.0 {
            w.median / o.median
        } else {
            f64::INFINITY
        }
    };
    match candidates {
        [] => Verdict::NoData,
        [only] => Verdict::Winner {
            backend: only.backend.clone(),
            runner_up: None,
            ratio: None,
        },
        [winner, runner_up, ..] => {
            let w = winner.score;
            let within = |o: &Spread| o.high >= w.low || ratio_to(&w, o) < MIN_MARGIN;
            let ratio = ratio_to(&w, &runner_up.score);
            let overlap = runner_up.score.high >= w.low;
            if within(&runner_up.score) {
                Verdict::NoClearWinner {
                    leaders: candidates
                        .iter()
                        .filter(|c| within(&c.score))
                        .map(|c| c.backend.clone())
                        .collect(),
                    ratio,
                    overlap,
                }
            } else {
                Verdict::Winner {
                    backend: winner.backend.clone(),
                    runner_up: Some(runner_up.backend.clone()),
                    ratio: Some(ratio),
                }
            }
        }
    }
}
