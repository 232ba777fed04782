//! The participants of a stress run: they record every callback into their token's log, with
//! the id of the registry call during which it ran, and count calls that come too late.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bypass_registry::op::Behaviour;
use bypass_registry::{Callback, CallbackError, Consumer, Producer, Side};

use crate::history::{ParticipantEnd, Recorded, TokenLog};

/// The payload of an injected panic; the binary's panic hook stays silent for it.
#[derive(Debug)]
pub struct InjectedPanic;

thread_local! {
    /// The id of the registry call this thread is making (0: none).
    static CURRENT_OP: Cell<u64> = const { Cell::new(0) };
}

/// The id of the registry call this thread is making (0: none).
pub(crate) fn current_op() -> u64 {
    CURRENT_OP.with(Cell::get)
}

/// Marks this thread as making registry call `op` until dropped, so that the callbacks it
/// causes are attributed to it.
pub(crate) struct OpScope(u64);

impl OpScope {
    pub(crate) fn enter(op: u64) -> OpScope {
        let previous = CURRENT_OP.with(|c| c.replace(op));
        OpScope(previous)
    }
}

impl Drop for OpScope {
    fn drop(&mut self) {
        CURRENT_OP.with(|c| c.set(self.0));
    }
}

/// A producer or consumer of a stress run.
#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) side: Side,
    pub(crate) token: u64,
    behaviour: Behaviour,
    cost: Duration,
    log: Arc<TokenLog>,
    retired: AtomicBool,
    late: AtomicU32,
    pub(crate) handed_back: AtomicU32,
}

impl Participant {
    pub(crate) fn new(
        side: Side,
        token: u64,
        behaviour: Behaviour,
        cost: Duration,
        log: Arc<TokenLog>,
    ) -> Participant {
        Participant {
            side,
            token,
            behaviour,
            cost,
            log,
            retired: AtomicBool::new(false),
            late: AtomicU32::new(0),
            handed_back: AtomicU32::new(0),
        }
    }

    /// The registry has returned this participant for good (unregistered, or refused): any
    /// later callback is a violation.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// What became of it, once the registry should have let go of it.
    pub(crate) fn end(self: &Arc<Participant>) -> ParticipantEnd {
        ParticipantEnd {
            side: self.side,
            token: self.token,
            late_calls: self.late.load(Ordering::SeqCst),
            handed_back: self.handed_back.load(Ordering::SeqCst),
            still_held: Arc::strong_count(self) > 1,
        }
    }

    fn called(&self, callback: Callback) {
        if self.retired.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        self.log.push(Recorded {
            op: CURRENT_OP.with(Cell::get),
            side: self.side,
            callback,
        });
        if !self.cost.is_zero() {
            // A busy wait, as an interrupt-remapping update would spend on a CPU.
            let start = Instant::now();
            while start.elapsed() < self.cost {
                std::hint::spin_loop();
            }
        }
        if self.behaviour.panic_on == Some(callback) {
            std::panic::panic_any(InjectedPanic);
        }
    }

    fn add(&self) -> Result<(), CallbackError> {
        self.called(Callback::Add);
        if self.behaviour.fail_add {
            Err(CallbackError::new("injected add failure"))
        } else {
            Ok(())
        }
    }
}

impl Producer for Participant {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        self.add()
    }
    fn del_consumer(&self, _: &dyn Consumer) {
        self.called(Callback::Del);
    }
    fn stop(&self) {
        self.called(Callback::Stop);
    }
    fn start(&self) {
        self.called(Callback::Start);
    }
}

impl Consumer for Participant {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        self.add()
    }
    fn del_producer(&self, _: &dyn Producer) {
        self.called(Callback::Del);
    }
    fn stop(&self) {
        self.called(Callback::Stop);
    }
    fn start(&self) {
        self.called(Callback::Start);
    }
}
