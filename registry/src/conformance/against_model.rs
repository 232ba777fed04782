//! The backend against the sequential model, step by step, on given or random operations.

use crate::model::Model;
use crate::op::{Behaviour, Op, Step};
use crate::participant::Side;
use crate::probe::{self, EventLog};
use crate::registry::Registry;
use crate::trace;

/// A small deterministic generator, so that a failing case replays the same way.
pub(super) struct SplitMix(pub(super) u64);

impl SplitMix {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random operation on one of `tokens` (given as their ids), with `fail-add` now and then.
pub(super) fn random_op(rng: &mut SplitMix, tokens: &[u64]) -> Op {
    let token = tokens[rng.below(tokens.len() as u64) as usize];
    let side = if rng.below(2) == 0 {
        Side::Producer
    } else {
        Side::Consumer
    };
    if rng.below(2) == 0 {
        Op::Register {
            side,
            token,
            fail_add: rng.below(6) == 0,
        }
    } else {
        Op::Unregister { side, token }
    }
}

/// Runs `ops` on `registry` and the model, each registering participant behaving as given
/// (failing its add, panicking in a callback), failing at the first step where the callbacks or
/// the outcome differ. Panics that reach the caller are caught and compared as outcomes.
pub fn assert_faults_match_model(registry: &dyn Registry, ops: &[(Op, Behaviour)]) {
    let log = EventLog::new();
    let mut model = Model::new();
    for (i, &(op, behaviour)) in ops.iter().enumerate() {
        let outcome = probe::apply_with(registry, &log, &op, behaviour);
        let got = Step {
            op,
            events: log.take(),
            outcome,
        };
        let want = model.apply_with(&op, behaviour);
        assert!(
            got == want,
            "{}: step {} ({behaviour:?}) differs from the model.\nbackend:\n{got}model:\n{want}",
            registry.name(),
            i + 1,
        );
    }
}

/// Replays `ops` on `registry` and the model, failing at the first step where they differ.
pub fn assert_matches_model(registry: &dyn Registry, ops: &[Op]) {
    let got = trace::replay(registry, ops);
    let want = trace::replay_model(ops);
    if let Some(i) = trace::first_difference(&got, &want) {
        panic!(
            "{}: step {} differs from the model.\nbackend:\n{}model:\n{}",
            registry.name(),
            i + 1,
            got.get(i).map_or("(missing)\n".into(), ToString::to_string),
            want.get(i)
                .map_or("(missing)\n".into(), ToString::to_string),
        );
    }
}
