//! The sequential model: the contract as a plain state machine, with no threads, locks or
//! real participants. It is the executable spec that traces and property tests compare every
//! backend against.

use std::collections::BTreeMap;

use crate::error::ErrorKind;
use crate::participant::{Callback, Event, Side};
use crate::registry::Population;
use crate::trace::{Op, Outcome, Step};

/// A registered participant, as the model sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entrant {
    fail_add: bool,
}

/// Both sides of one token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    producer: Option<Entrant>,
    consumer: Option<Entrant>,
}

impl Slot {
    fn side_mut(&mut self, side: Side) -> &mut Option<Entrant> {
        match side {
            Side::Producer => &mut self.producer,
            Side::Consumer => &mut self.consumer,
        }
    }
}

/// The registry contract as a sequential state machine.
///
/// ```
/// use bypass_registry::model::Model;
/// use bypass_registry::trace::{Op, Outcome};
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
    pub fn apply(&mut self, op: &Op) -> Step {
        let mut events = Vec::new();
        let outcome = match self.run(op, &mut events) {
            Ok(()) => Outcome::Ok,
            Err(kind) => Outcome::Err(kind),
        };
        Step {
            op: *op,
            events,
            outcome,
        }
    }

    fn run(&mut self, op: &Op, events: &mut Vec<Event>) -> Result<(), ErrorKind> {
        let token = op.token();
        if token == 0 {
            return Err(ErrorKind::InvalidToken);
        }
        let side = op.side();
        let slot = self.slots.entry(token).or_default();
        let mut emit = |side, callback| {
            events.push(Event {
                side,
                token,
                callback,
            })
        };
        let result = match *op {
            Op::Register { fail_add, .. } => {
                let new = Entrant { fail_add };
                if slot.side_mut(side).is_some() {
                    Err(ErrorKind::Duplicate)
                } else if let Some(other) = *slot.side_mut(side.other()) {
                    let (p, c) = match side {
                        Side::Producer => (new, other),
                        Side::Consumer => (other, new),
                    };
                    // connect(p, c): stops, adds with rollback, starts always.
                    emit(Side::Producer, Callback::Stop);
                    emit(Side::Consumer, Callback::Stop);
                    emit(Side::Producer, Callback::Add);
                    let connected = !p.fail_add && {
                        emit(Side::Consumer, Callback::Add);
                        if c.fail_add {
                            emit(Side::Producer, Callback::Del);
                        }
                        !c.fail_add
                    };
                    emit(Side::Consumer, Callback::Start);
                    emit(Side::Producer, Callback::Start);
                    if connected {
                        *slot.side_mut(side) = Some(new);
                        Ok(())
                    } else {
                        Err(ErrorKind::ConnectFailed)
                    }
                } else {
                    *slot.side_mut(side) = Some(new);
                    Ok(())
                }
            }
            Op::Unregister { .. } => {
                if slot.side_mut(side).is_none() {
                    Err(ErrorKind::NotRegistered)
                } else {
                    if slot.side_mut(side.other()).is_some() {
                        // disconnect(p, c)
                        emit(Side::Producer, Callback::Stop);
                        emit(Side::Consumer, Callback::Stop);
                        emit(Side::Consumer, Callback::Del);
                        emit(Side::Producer, Callback::Del);
                        emit(Side::Consumer, Callback::Start);
                        emit(Side::Producer, Callback::Start);
                    }
                    *slot.side_mut(side) = None;
                    Ok(())
                }
            }
        };
        if *slot == Slot::default() {
            self.slots.remove(&token);
        }
        result
    }
}
