//! The checker: every guarantee of the contract (docs/registry.md), verified on a run's
//! recorded history.
//!
//! Tokens are independent, so each token's history is checked on its own, in parallel
//! (rayon). For a token it verifies that:
//! - every callback ran during a registry call on that token (none after a call returned, none
//!   from nowhere);
//! - the callbacks of one call are contiguous: no other call's callbacks interleave with them
//!   (per-token exclusion, a connect never interleaved with a disconnect);
//! - the history is **linearizable**: some order of its calls that respects real time (a
//!   call that returned before another started comes first) makes the sequential model give
//!   every call's recorded outcome and exact callbacks. With the callbacks compared, this
//!   also proves exactly one connect per pairing and the rollback and always-run `start`s.
//!
//! The search is Wing and Gong's, with the memoization of Lowe: states already explored
//! (calls linearized, model state) are not explored again.
//!
//! Then the run-wide checks, on the state the run ended in: with no call in flight a token is
//! paired exactly when both sides are registered; no participant was called after the
//! registry handed it back, or handed back twice, or kept after every token was unregistered;
//! the registry counts nobody at the end.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bypass_registry::model::Model;
use bypass_registry::op::{Behaviour, Op};
use bypass_registry::{Callback, Side};
use bypass_reports::schema::ViolationKind;
use rayon::prelude::*;

use bypass_registry::op::Outcome;

use crate::history::{
    History, Observed, OpKind, OpRecord, ParticipantEnd, PopRecord, QuietState, Recorded, TokenLog,
};
use crate::linearize::{Linearizable, linearize};
use crate::violation::Violation;

/// Every broken guarantee of a run: those seen during its calls, the run-wide checks, then
/// each token's.
pub(crate) fn check(history: History) -> Vec<Violation> {
    let mut violations = history.violations;
    violations.extend(history.quiet.iter().filter_map(quiet_state));
    if history.left.producers + history.left.consumers > 0 {
        violations.push(Violation::new(
            ViolationKind::NotEmpty,
            None,
            format!(
                "after every token was unregistered the registry still counts {} producers and {} consumers",
                history.left.producers, history.left.consumers
            ),
        ));
    }
    violations.extend(participant_checks(&history.participants));
    violations.extend(population_bounds(&history.ops, &history.pops));
    violations.extend(check_tokens(&history.ops, &history.logs));
    violations
}

/// When each participant of one side was registered: the starts and returns of the calls
/// that registered them, and of the unregisters that handed them back, each sorted.
#[derive(Default)]
struct Lifetimes {
    register_invoke: Vec<u64>,
    register_response: Vec<u64>,
    unregister_invoke: Vec<u64>,
    unregister_response: Vec<u64>,
}

impl Lifetimes {
    /// How many of them `population()` may count if it ran from `a` to `b`: at least those
    /// surely registered throughout (registered by `a`, not leaving before `b`), at most those
    /// possibly registered at some instant (registering by `b`, not gone before `a`).
    fn bounds(&self, a: u64, b: u64) -> (usize, usize) {
        let count = |v: &[u64], below: u64| v.partition_point(|&x| x < below);
        let lower = count(&self.register_response, a.saturating_add(1))
            .saturating_sub(count(&self.unregister_invoke, b));
        let upper =
            count(&self.register_invoke, b.saturating_add(1)) - count(&self.unregister_response, a);
        (lower, upper)
    }
}

/// R-POP: each `population()` lies within what the registers and unregisters in flight
/// allow: exact with none in flight.
fn population_bounds(ops: &[OpRecord], pops: &[PopRecord]) -> Option<Violation> {
    if pops.is_empty() {
        return None;
    }
    let handed: HashMap<u64, &OpRecord> = ops
        .iter()
        .filter_map(|op| op.handed.map(|h| (h, op)))
        .collect();
    // A panic in a disconnect callback still removes the participant, but hands nothing back:
    // such a participant left during one of its token and side's panicked unregisters.
    let mut panicked: HashMap<(u64, usize), Vec<&OpRecord>> = HashMap::new();
    for op in ops {
        if let (OpKind::Unregister(side), Observed::Outcome(Outcome::Panicked)) =
            (op.kind, op.observed)
        {
            panicked
                .entry((op.token, side as usize))
                .or_default()
                .push(op);
        }
    }
    let mut sides: [Lifetimes; 2] = Default::default();
    for op in ops {
        let OpKind::Register(side) = op.kind else {
            continue;
        };
        let back = handed.get(&op.id);
        let leaving = panicked
            .get(&(op.token, side as usize))
            .map_or(&[][..], Vec::as_slice);
        // A participant was registered if its call said so, or if one that panicked (in a
        // `start`, after connecting) was later handed back or could have left in a panic.
        let (surely, maybe) = match op.observed {
            Observed::Outcome(Outcome::Ok) => (true, true),
            Observed::Outcome(Outcome::Panicked) => (back.is_some(), !leaving.is_empty()),
            _ => (false, false),
        };
        if !(surely || maybe) {
            continue;
        }
        let l = &mut sides[side as usize];
        l.register_invoke.push(op.invoke);
        let (left_from, left_by) = match back {
            Some(u) => (Some(u.invoke), Some(u.response)),
            // Not handed back: it left at the earliest in a panicked unregister that had not
            // returned when it began registering, and at the latest by the end of the first
            // that began after it was registered (unless it never left).
            None => (
                leaving
                    .iter()
                    .filter(|u| u.response >= op.invoke)
                    .map(|u| u.invoke)
                    .min(),
                leaving
                    .iter()
                    .filter(|u| u.invoke >= op.response)
                    .min_by_key(|u| u.invoke)
                    .map(|u| u.response),
            ),
        };
        l.unregister_response.extend(left_by);
        // The lower bound counts only the participants surely registered.
        if surely {
            l.register_response.push(op.response);
            l.unregister_invoke.extend(left_from);
        }
    }
    for l in &mut sides {
        for v in [
            &mut l.register_invoke,
            &mut l.register_response,
            &mut l.unregister_invoke,
            &mut l.unregister_response,
        ] {
            v.sort_unstable();
        }
    }
    let mut wrong = pops.iter().filter_map(|pop| {
        [Side::Producer, Side::Consumer].into_iter().find_map(|side| {
            let got = match side {
                Side::Producer => pop.population.producers,
                Side::Consumer => pop.population.consumers,
            };
            let (lower, upper) = sides[side as usize].bounds(pop.invoke, pop.response);
            (got < lower || got > upper).then(|| format!(
                "population() counted {got} {side}s, but the calls in flight allow only {lower} to {upper}"
            ))
        })
    });
    let first = wrong.next()?;
    let more = wrong.count();
    Some(Violation::new(
        ViolationKind::Population,
        None,
        if more == 0 {
            first
        } else {
            format!("{first} (and {more} more calls out of bounds)")
        },
    ))
}

/// With no call in flight, a token is paired exactly when both sides are registered.
fn quiet_state(q: &QuietState) -> Option<Violation> {
    (q.paired != (q.producer && q.consumer)).then(|| {
        Violation::new(
            ViolationKind::QuietState,
            Some(q.token),
            format!(
                "with no call in flight, is_paired is {} but producer registered: {}, consumer registered: {}",
                q.paired, q.producer, q.consumer
            ),
        )
    })
}

/// After teardown: nothing called after its unregister returned, nothing handed back twice,
/// nothing kept by the registry.
fn participant_checks(participants: &[ParticipantEnd]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let late: u64 = participants.iter().map(|p| u64::from(p.late_calls)).sum();
    if let Some(p) = participants.iter().find(|p| p.late_calls > 0) {
        violations.push(Violation::new(
            ViolationKind::CallAfterReturn,
            Some(p.token),
            format!("{late} callbacks reached participants after the registry had handed them back (first: {} {})", p.side, p.token),
        ));
    }
    let twice = participants.iter().filter(|p| p.handed_back > 1).count();
    if twice > 0 {
        violations.push(Violation::new(
            ViolationKind::HandedBack,
            None,
            format!("{twice} participants were handed back by more than one unregister"),
        ));
    }
    let kept: Vec<&ParticipantEnd> = participants.iter().filter(|p| p.still_held).collect();
    if let Some(first) = kept.first() {
        violations.push(Violation::new(
            ViolationKind::Leak,
            Some(first.token),
            format!(
                "the registry still holds {} participants after they were all unregistered (first: {} {})",
                kept.len(),
                first.side,
                first.token
            ),
        ));
    }
    violations
}

/// Checks every token's history; `logs[t]` holds token `t`'s callbacks.
fn check_tokens(ops: &[OpRecord], logs: &[Arc<TokenLog>]) -> Vec<Violation> {
    let mut by_token: HashMap<u64, Vec<OpRecord>> = HashMap::new();
    for op in ops {
        by_token.entry(op.token).or_default().push(*op);
    }
    let mut tokens: Vec<(u64, Vec<OpRecord>, Vec<Recorded>)> = logs
        .iter()
        .enumerate()
        .map(|(t, log)| {
            let t = t as u64;
            (t, by_token.remove(&t).unwrap_or_default(), log.take())
        })
        .filter(|(_, ops, events)| !ops.is_empty() || !events.is_empty())
        .collect();
    // Deep histories recurse deeply: a pool with big stacks.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(256 << 20)
        .build()
        .expect("a checker thread pool");
    let mut violations: Vec<Violation> = pool.install(|| {
        tokens
            .par_iter_mut()
            .filter_map(|(t, ops, events)| check_token(*t, ops, events).err())
            .collect()
    });
    violations.sort_by_key(|v| v.token);
    violations
}

/// Checks one token's calls and callbacks.
pub(crate) fn check_token(
    token: u64,
    ops: &mut [OpRecord],
    events: &[Recorded],
) -> Result<(), Violation> {
    ops.sort_by_key(|op| (op.invoke, op.response));
    let fail = |kind, message: String| {
        let mut v = Violation::new(kind, Some(token), message);
        v.trace = Some(replay_trace(ops));
        v
    };
    let index: HashMap<u64, usize> = ops.iter().enumerate().map(|(i, op)| (op.id, i)).collect();
    let mut per_op: Vec<Vec<(Side, Callback)>> = vec![Vec::new(); ops.len()];
    let mut closed: HashSet<u64> = HashSet::new();
    let mut current: Option<u64> = None;
    for (n, event) in events.iter().enumerate() {
        let Some(&i) = index.get(&event.op) else {
            return Err(fail(
                ViolationKind::StrayCallback,
                format!(
                    "callback {n} (`{} {token} {}`) ran outside every registry call on this token",
                    event.side,
                    event.callback.name(event.side)
                ),
            ));
        };
        if current != Some(event.op) {
            if closed.contains(&event.op) {
                return Err(fail(
                    ViolationKind::Exclusion,
                    format!(
                        "the callbacks of two calls interleave: callback {n} (`{} {token} {}`) resumes a call whose sequence another call's callbacks had interrupted",
                        event.side,
                        event.callback.name(event.side)
                    ),
                ));
            }
            if let Some(previous) = current {
                closed.insert(previous);
            }
            current = Some(event.op);
        }
        per_op[i].push((event.side, event.callback));
    }
    let calls = Calls {
        token,
        ops,
        events: &per_op,
    };
    let start = State {
        model: Model::new(),
        producer: None,
        consumer: None,
    };
    linearize(&calls, start).map_err(|(depth, why)| {
        fail(
            ViolationKind::Linearizability,
            format!(
                "no order of its {} calls that respects real time explains what they returned and the callbacks they ran; at best {depth} calls fit, then: {why}",
                ops.len()
            ),
        )
    })
}

/// A participant as a message names it: by the id of the call that registered it.
fn name(who: Option<u64>) -> String {
    match who {
        Some(id) => format!("the participant registered by call {id}"),
        None => "none".to_string(),
    }
}

/// The token's calls in the order they started, as a replay trace (reads and panics, which
/// traces cannot express, as comments).
fn replay_trace(ops: &[OpRecord]) -> String {
    let mut out = String::new();
    for op in ops {
        let line = match op.kind {
            OpKind::Register(side) => {
                let mut line = Op::Register {
                    side,
                    token: op.token,
                    fail_add: op.behaviour.fail_add,
                }
                .to_string();
                if let Some(cb) = op.behaviour.panic_on {
                    line.push_str(&format!("  # panics in {}", cb.name(side)));
                }
                line
            }
            OpKind::Unregister(side) => Op::Unregister {
                side,
                token: op.token,
            }
            .to_string(),
            OpKind::IsPaired | OpKind::Who(_) => continue,
        };
        let outcome = match op.observed {
            Observed::Outcome(o) => o.to_string(),
            Observed::Bool(b) => b.to_string(),
            Observed::Who(w) => format!("{w:?}"),
        };
        out.push_str(&format!("{line:<40} # returned {outcome}\n"));
    }
    out
}

/// The token's state in the model, and who is registered on each side (the ids of the calls
/// that registered them).
#[derive(Clone)]
struct State {
    model: Model,
    producer: Option<u64>,
    consumer: Option<u64>,
}

/// One token's calls, with the callbacks each ran, for the search.
struct Calls<'a> {
    token: u64,
    ops: &'a [OpRecord],
    events: &'a [Vec<(Side, Callback)>],
}

impl Linearizable for Calls<'_> {
    type State = State;
    /// The token's slot in the model and who is registered: all of the state that matters.
    type Key = (
        (Option<Behaviour>, Option<Behaviour>),
        Option<u64>,
        Option<u64>,
    );

    fn len(&self) -> usize {
        self.ops.len()
    }

    fn window(&self, i: usize) -> (u64, u64) {
        (self.ops[i].invoke, self.ops[i].response)
    }

    fn step(&self, state: &State, i: usize) -> Result<State, String> {
        self.apply(state, i)
    }

    fn key(&self, state: &State) -> Self::Key {
        (state.model.slot(self.token), state.producer, state.consumer)
    }

    /// On one token, a call that leaves the state as it was is a read or a refused call,
    /// which changes nothing wherever it fits.
    fn unchanged(&self, before: &State, after: &State) -> bool {
        self.key(before) == self.key(after)
    }
}

impl Calls<'_> {
    /// Whether op `i` applied to `state` gives what was recorded; on success, the new state.
    fn apply(&self, state: &State, i: usize) -> Result<State, String> {
        let op = &self.ops[i];
        let t = self.token;
        let registered = |side| match side {
            Side::Producer => state.producer,
            Side::Consumer => state.consumer,
        };
        let trace_op = match (op.kind, op.observed) {
            (OpKind::IsPaired, Observed::Bool(b)) => {
                let want = state.producer.is_some() && state.consumer.is_some();
                return if b == want {
                    Ok(state.clone())
                } else {
                    Err(format!(
                        "is_paired({t}) returned {b}, but the state says {want}"
                    ))
                };
            }
            (OpKind::Who(side), Observed::Who(who)) => {
                let want = registered(side);
                return if who == want {
                    Ok(state.clone())
                } else {
                    Err(format!(
                        "{side}({t}) returned {}, but the state says {}",
                        name(who),
                        name(want)
                    ))
                };
            }
            (OpKind::Register(side), _) => Op::Register {
                side,
                token: t,
                fail_add: op.behaviour.fail_add,
            },
            (OpKind::Unregister(side), _) => Op::Unregister { side, token: t },
            (kind, observed) => unreachable!("{kind:?} cannot observe {observed:?}"),
        };
        let mut next = state.clone();
        let expected = next.model.apply_with(&trace_op, op.behaviour);
        let Observed::Outcome(outcome) = op.observed else {
            unreachable!("registers and unregisters observe an outcome")
        };
        if outcome != expected.outcome {
            return Err(format!(
                "`{trace_op}` returned {outcome}, the model says {}",
                expected.outcome
            ));
        }
        let callbacks: Vec<(Side, Callback)> = expected
            .events
            .iter()
            .map(|e| (e.side, e.callback))
            .collect();
        if callbacks != self.events[i] {
            let show = |c: &[(Side, Callback)]| {
                c.iter()
                    .map(|(s, cb)| format!("{s} {}", cb.name(*s)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!(
                "`{trace_op}` ran callbacks [{}], the model says [{}]",
                show(&self.events[i]),
                show(&callbacks)
            ));
        }
        if let (OpKind::Unregister(side), Some(handed)) = (op.kind, op.handed) {
            if Some(handed) != registered(side) {
                return Err(format!(
                    "`{trace_op}` handed back {}, but the state says {}",
                    name(Some(handed)),
                    name(registered(side))
                ));
            }
        }
        // Who is registered now: the registering call's participant, if the model kept it.
        let (p, c) = next.model.slot(t);
        let now = |was: Option<u64>, is: bool| match (was, is) {
            (_, false) => None,
            (Some(id), true) => Some(id),
            (None, true) => Some(op.id),
        };
        next.producer = now(state.producer, p.is_some());
        next.consumer = now(state.consumer, c.is_some());
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, kind: OpKind, invoke: u64, response: u64, observed: Observed) -> OpRecord {
        OpRecord {
            id,
            token: 1,
            kind,
            behaviour: Behaviour::default(),
            invoke,
            response,
            observed,
            handed: None,
        }
    }

    /// The contract's connect sequence, as recorded during call `op`.
    fn connect(op: u64) -> Vec<Recorded> {
        bypass_registry::conformance::connect_events(1)
            .into_iter()
            .map(|e| Recorded {
                op,
                side: e.side,
                callback: e.callback,
            })
            .collect()
    }

    const OK: Observed = Observed::Outcome(Outcome::Ok);

    #[test]
    fn overlapping_registrations_linearize_either_way() {
        // The consumer's call started first but the producer's connected: fine, they overlap.
        let mut ops = vec![
            op(1, OpKind::Register(Side::Consumer), 0, 10, OK),
            op(2, OpKind::Register(Side::Producer), 1, 9, OK),
        ];
        assert_eq!(check_token(1, &mut ops, &connect(2)), Ok(()));
        assert_eq!(check_token(1, &mut ops, &connect(1)), Ok(()));
    }

    #[test]
    fn a_lost_pairing_is_not_linearizable() {
        let mut ops = vec![
            op(1, OpKind::Register(Side::Consumer), 0, 10, OK),
            op(2, OpKind::Register(Side::Producer), 1, 9, OK),
        ];
        let err = check_token(1, &mut ops, &[]).unwrap_err();
        assert_eq!(err.kind, ViolationKind::Linearizability);
        assert!(err.message.contains("the model says"), "{}", err.message);
        assert!(err.trace.unwrap().contains("register producer 1"));
    }

    #[test]
    fn real_time_order_is_respected() {
        // The unregister returned before the register started: it must come first, and fails.
        let mut ops = vec![
            op(1, OpKind::Unregister(Side::Producer), 0, 1, OK),
            op(2, OpKind::Register(Side::Producer), 2, 3, OK),
        ];
        assert_eq!(
            check_token(1, &mut ops, &[]).unwrap_err().kind,
            ViolationKind::Linearizability
        );
    }

    #[test]
    fn interleaved_callbacks_break_exclusion() {
        let mut ops = vec![
            op(1, OpKind::Register(Side::Consumer), 0, 10, OK),
            op(2, OpKind::Register(Side::Producer), 1, 9, OK),
        ];
        let mut events = connect(2);
        events.insert(
            2,
            Recorded {
                op: 1,
                side: Side::Consumer,
                callback: Callback::Stop,
            },
        );
        events.push(Recorded {
            op: 2,
            side: Side::Producer,
            callback: Callback::Stop,
        });
        assert_eq!(
            check_token(1, &mut ops, &events).unwrap_err().kind,
            ViolationKind::Exclusion
        );
    }

    #[test]
    fn callbacks_outside_calls_are_stray() {
        let mut ops = vec![op(1, OpKind::Register(Side::Consumer), 0, 10, OK)];
        let events = [Recorded {
            op: 0,
            side: Side::Consumer,
            callback: Callback::Stop,
        }];
        assert_eq!(
            check_token(1, &mut ops, &events).unwrap_err().kind,
            ViolationKind::StrayCallback
        );
    }

    #[test]
    fn reads_are_checked_against_the_state() {
        let mut ops = vec![
            op(1, OpKind::Register(Side::Consumer), 0, 1, OK),
            op(2, OpKind::IsPaired, 2, 3, Observed::Bool(true)),
        ];
        assert_eq!(
            check_token(1, &mut ops, &[]).unwrap_err().kind,
            ViolationKind::Linearizability
        );
        ops[1].observed = Observed::Bool(false);
        assert_eq!(check_token(1, &mut ops, &[]), Ok(()));
    }

    #[test]
    fn run_wide_checks_read_the_end_state() {
        let end = |token, late_calls, handed_back, still_held| ParticipantEnd {
            side: Side::Consumer,
            token,
            late_calls,
            handed_back,
            still_held,
        };
        let clean = History {
            quiet: vec![QuietState {
                token: 1,
                paired: true,
                producer: true,
                consumer: true,
            }],
            participants: vec![end(1, 0, 1, false)],
            ..History::default()
        };
        assert_eq!(check(clean), []);
        let broken = History {
            quiet: vec![QuietState {
                token: 2,
                paired: true,
                producer: true,
                consumer: false,
            }],
            participants: vec![end(3, 2, 1, false), end(4, 0, 2, true)],
            left: bypass_registry::Population {
                producers: 1,
                consumers: 0,
            },
            ..History::default()
        };
        let kinds: Vec<(ViolationKind, Option<u64>)> =
            check(broken).iter().map(|v| (v.kind, v.token)).collect();
        assert_eq!(
            kinds,
            [
                (ViolationKind::QuietState, Some(2)),
                (ViolationKind::NotEmpty, None),
                (ViolationKind::CallAfterReturn, Some(3)),
                (ViolationKind::HandedBack, None),
                (ViolationKind::Leak, Some(4)),
            ]
        );
    }
}
