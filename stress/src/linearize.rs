//! Wing and Gong's linearizability search with Lowe's memoization, over the calls of one
//! token (the registry's checker) or of one device (the bus's checker): is there an order of
//! the calls that respects real time (a call that returned before another started comes first)
//! and in which each call, applied to the sequential model, gives what it was recorded giving?
//!
//! The search keeps the calls taken so far in a `done` set and tries, as the next call, each
//! pending call that started before every pending call returned. A state already reached with
//! the same calls left is not searched twice (the memo). When no order exists, the error names
//! how many calls the deepest branch fitted and why the next did not.

use std::collections::HashSet;
use std::hash::Hash;

/// One object's recorded calls, as the search needs them, with its sequential model.
pub(crate) trait Linearizable {
    /// The model's state of the object.
    type State: Clone;
    /// What identifies a state for the memo (the state itself, or the part of it that matters).
    type Key: Hash + Eq;

    /// How many calls.
    fn len(&self) -> usize;
    /// When call `i` was invoked and when it returned, on one clock; calls in invocation order.
    fn window(&self, i: usize) -> (u64, u64);
    /// Whether call `i` applied to `state` gives what was recorded; on success, the new state.
    fn step(&self, state: &Self::State, i: usize) -> Result<Self::State, String>;
    /// The memo's key of `state`.
    fn key(&self, state: &Self::State) -> Self::Key;
    /// Whether a call that fits at `before` and gives `after` changes nothing at any state it
    /// fits (a read, a refused call), so that it may go first without branching: whatever
    /// order explains the rest still does. `false` unless the model knows better.
    fn unchanged(&self, _before: &Self::State, _after: &Self::State) -> bool {
        false
    }
}

/// Whether `history` is linearizable from `start`: `Ok`, or how many of its calls the deepest
/// order fitted and why the next could not follow.
pub(crate) fn linearize<H: Linearizable>(
    history: &H,
    start: H::State,
) -> Result<(), (usize, String)> {
    let mut search = Search {
        history,
        done: vec![false; history.len()],
        seen: HashSet::new(),
        deepest: (0, String::new()),
    };
    if search.search(0, 0, start) {
        Ok(())
    } else {
        Err(search.deepest)
    }
}

struct Search<'h, H: Linearizable> {
    history: &'h H,
    done: Vec<bool>,
    seen: HashSet<(usize, Vec<usize>, H::Key)>,
    /// The most calls linearized in any branch, and why the next could not be.
    deepest: (usize, String),
}

impl<H: Linearizable> Search<'_, H> {
    /// The calls that may come next, from the first pending one, `lo`: those that started
    /// before every pending call's return.
    fn candidates(&self, lo: usize) -> Vec<usize> {
        let mut candidates = Vec::new();
        let mut min_response = u64::MAX;
        for j in lo..self.history.len() {
            let (invoke, response) = self.history.window(j);
            if invoke > min_response {
                break;
            }
            if !self.done[j] {
                min_response = min_response.min(response);
                candidates.push(j);
            }
        }
        candidates.retain(|&j| self.history.window(j).0 <= min_response);
        candidates
    }

    fn search(&mut self, mut lo: usize, mut linearized: usize, state: H::State) -> bool {
        // Calls that change nothing go first without branching, which keeps the search small
        // when many reads overlap.
        let mut taken = Vec::new();
        let candidates = loop {
            while lo < self.history.len() && self.done[lo] {
                lo += 1;
            }
            if lo == self.history.len() {
                return true;
            }
            let candidates = self.candidates(lo);
            let pure = candidates.iter().copied().find(|&j| {
                self.history
                    .step(&state, j)
                    .is_ok_and(|next| self.history.unchanged(&state, &next))
            });
            match pure {
                Some(j) => {
                    self.done[j] = true;
                    taken.push(j);
                    linearized += 1;
                }
                None => break candidates,
            }
        };
        let found = self.branch(lo, linearized, state, candidates);
        if !found {
            for j in taken {
                self.done[j] = false;
            }
        }
        found
    }

    /// Tries each of `candidates` as the next call.
    fn branch(
        &mut self,
        lo: usize,
        linearized: usize,
        state: H::State,
        candidates: Vec<usize>,
    ) -> bool {
        let done_above: Vec<usize> = (lo..self.history.len()).filter(|&j| self.done[j]).collect();
        if !self.seen.insert((lo, done_above, self.history.key(&state))) {
            return false;
        }
        for j in candidates {
            match self.history.step(&state, j) {
                Ok(next) => {
                    self.done[j] = true;
                    if self.search(lo, linearized + 1, next) {
                        return true;
                    }
                    self.done[j] = false;
                }
                Err(why) => {
                    if linearized >= self.deepest.0 {
                        self.deepest = (linearized, why);
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register: calls `(invoke, response, value written or None for a read, value read)`.
    struct Register(Vec<(u64, u64, Option<u8>, u8)>);

    impl Linearizable for Register {
        type State = u8;
        type Key = u8;
        fn len(&self) -> usize {
            self.0.len()
        }
        fn window(&self, i: usize) -> (u64, u64) {
            (self.0[i].0, self.0[i].1)
        }
        fn step(&self, state: &u8, i: usize) -> Result<u8, String> {
            match self.0[i] {
                (.., Some(write), _) => Ok(write),
                (.., None, read) if read == *state => Ok(*state),
                (.., None, read) => Err(format!("read {read}, the register holds {state}")),
            }
        }
        fn key(&self, state: &u8) -> u8 {
            *state
        }
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either() {
        for seen in [0, 1] {
            let h = Register(vec![(0, 10, Some(1), 0), (5, 15, None, seen)]);
            assert_eq!(linearize(&h, 0), Ok(()));
        }
    }

    #[test]
    fn a_read_after_a_write_returned_must_see_it() {
        let h = Register(vec![(0, 10, Some(1), 0), (11, 15, None, 0)]);
        let (depth, why) = linearize(&h, 0).unwrap_err();
        assert_eq!(depth, 1);
        assert_eq!(why, "read 0, the register holds 1");
    }
}
