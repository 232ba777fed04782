//! The sequential model: the contract as a plain state machine, with no threads, locks or
//! real participants. It is the executable spec that traces and property tests compare every
//! backend against.

use std::collections::BTreeMap;

use crate::error::ErrorKind;
use crate::op::{Behaviour, Op, Outcome, Step};
use crate::pair::{Hold, Pair};
use crate::participant::{Callback, Event, Side};
use crate::registry::Population;

/// A registered participant, as the model sees it.
type Entrant = Behaviour;

/// What the model holds of each side of a token: the registered participant, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entrants;

impl Hold for Entrants {
    type Of<T: ?Sized + 'static> = Option<Entrant>;
}

/// Both sides of one token.
type Slot = Pair<Entrants>;

/// `side` of `slot`: the model picks sides at run time, from the operation.
fn side_mut(slot: &mut Slot, side: Side) -> &mut Option<Entrant> {
    match side {
        Side::Producer => &mut slot.producer,
        Side::Consumer => &mut slot.consumer,
    }
}

/// The registry contract as a sequential state machine.
///
/// ```
/// use bypass_registry::model::Model;
/// use bypass_registry::op::{Op, Outcome};
/// use bypass_registry::{ErrorKind, Side};
///
/// let mut model = Model::new();
/// let p = Op::Register { side: Side::Producer, token: 3, fail_add: false };
/// assert_eq!(model.apply(&p).outcome, Outcome::Ok);
/// assert_eq!(model.apply(&p).outcome, Outcome::Err(ErrorKind::Duplicate));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Model {
    slots: BTreeMap<u64, Slot>,
}

impl Model {
    /// An empty registry.
    pub fn new() -> Model {
        Model::default()
    }

    /// Whether `side` of `token` is registered.
    pub fn is_registered(&self, side: Side, token: u64) -> bool {
        self.slots.get(&token).is_some_and(|slot| match side {
            Side::Producer => slot.producer.is_some(),
            Side::Consumer => slot.consumer.is_some(),
        })
    }

    /// Whether both sides of `token` are registered, and so connected.
    pub fn is_paired(&self, token: u64) -> bool {
        self.is_registered(Side::Producer, token) && self.is_registered(Side::Consumer, token)
    }

    /// How many producers and consumers are registered.
    pub fn population(&self) -> Population {
        let mut population = Population::default();
        for slot in self.slots.values() {
            population.producers += usize::from(slot.producer.is_some());
            population.consumers += usize::from(slot.consumer.is_some());
        }
        population
    }

    /// Applies one operation: the callbacks the contract runs, in order, and the outcome.
    /// A registering participant fails its add as the operation's `fail_add` says.
    pub fn apply(&mut self, op: &Op) -> Step {
        self.apply_with(op, op.behaviour())
    }

    /// Like [`Model::apply`], with the registering participant behaving as `behaviour` (which
    /// overrides the operation's `fail_add`). A callback's panic makes the outcome
    /// [`Outcome::Panicked`], with the state changed as [`crate::protocol`] specifies: a panic
    /// in `stop` or `add_*` fails the connect, one in `start` leaves it connected, one in a
    /// disconnect callback still completes the unregister.
    pub fn apply_with(&mut self, op: &Op, behaviour: Behaviour) -> Step {
        let mut events = Vec::new();
        let outcome = self.run(op, behaviour, &mut events);
        Step {
            op: *op,
            events,
            outcome,
        }
    }

    /// The state of `token`: the behaviours of its registered producer and consumer.
    pub fn slot(&self, token: u64) -> (Option<Behaviour>, Option<Behaviour>) {
        self.slots
            .get(&token)
            .map_or((None, None), |s| (s.producer, s.consumer))
    }

    fn run(&mut self, op: &Op, new: Behaviour, events: &mut Vec<Event>) -> Outcome {
        let token = op.token();
        if token == 0 {
            return Outcome::Err(ErrorKind::InvalidToken);
        }
        let side = op.side();
        let slot = self.slots.entry(token).or_default();
        let mut panicked = false;
        // Records a callback of `who` and whether it panicked.
        let mut call = |side: Side, who: Behaviour, callback: Callback| {
            events.push(Event {
                side,
                token,
                callback,
            });
            let panics = who.panic_on == Some(callback);
            panicked |= panics;
            panics
        };
        let result = match *op {
            Op::Register { .. } => {
                if side_mut(slot, side).is_some() {
                    Err(ErrorKind::Duplicate)
                } else if let Some(other) = *side_mut(slot, side.other()) {
                    let (p, c) = match side {
                        Side::Producer => (new, other),
                        Side::Consumer => (other, new),
                    };
                    // connect(p, c): both stops; the adds only if no stop panicked, with the
                    // rollback if the consumer refuses; both starts always.
                    let mut failed = call(Side::Producer, p, Callback::Stop);
                    failed |= call(Side::Consumer, c, Callback::Stop);
                    let mut connected = false;
                    if !failed {
                        let p_ok = !call(Side::Producer, p, Callback::Add) && !p.fail_add;
                        if p_ok {
                            let c_ok = !call(Side::Consumer, c, Callback::Add) && !c.fail_add;
                            if c_ok {
                                connected = true;
                            } else {
                                call(Side::Producer, p, Callback::Del);
                            }
                        }
                    }
                    call(Side::Consumer, c, Callback::Start);
                    call(Side::Producer, p, Callback::Start);
                    if connected {
                        *side_mut(slot, side) = Some(new);
                        Ok(())
                    } else {
                        Err(ErrorKind::ConnectFailed)
                    }
                } else {
                    *side_mut(slot, side) = Some(new);
                    Ok(())
                }
            }
            Op::Unregister { .. } => match *side_mut(slot, side) {
                None => Err(ErrorKind::NotRegistered),
                Some(me) => {
                    if let Some(other) = *side_mut(slot, side.other()) {
                        let (p, c) = match side {
                            Side::Producer => (me, other),
                            Side::Consumer => (other, me),
                        };
                        // disconnect(p, c): every callback runs, whatever panics.
                        call(Side::Producer, p, Callback::Stop);
                        call(Side::Consumer, c, Callback::Stop);
                        call(Side::Consumer, c, Callback::Del);
                        call(Side::Producer, p, Callback::Del);
                        call(Side::Consumer, c, Callback::Start);
                        call(Side::Producer, p, Callback::Start);
                    }
                    *side_mut(slot, side) = None;
                    Ok(())
                }
            },
        };
        if *slot == Slot::default() {
            self.slots.remove(&token);
        }
        match result {
            _ if panicked => Outcome::Panicked,
            Ok(()) => Outcome::Ok,
            Err(kind) => Outcome::Err(kind),
        }
    }
}
