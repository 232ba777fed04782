//! The participants of a stress run: they record every callback into their token's log, with
//! the id of the registry call during which it ran, and count calls that come too late.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bypass_registry::op::Behaviour;
use bypass_registry::{Callback, CallbackError, Consumer, Producer, Side};

use bypass_reports::schema::Injected;

use crate::chaos;
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

/// The faults a run's participants injected, counted as they fire.
#[derive(Debug, Default)]
pub(crate) struct Injections {
    add_failures: AtomicU64,
    panics: AtomicU64,
}

impl Injections {
    pub(crate) fn counted(&self) -> Injected {
        Injected {
            add_failures: self.add_failures.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
        }
    }
}

/// What every participant of a run shares: the cost of a callback, and the fault counts.
#[derive(Debug)]
pub(crate) struct Setting {
    pub(crate) cost: Duration,
    pub(crate) injections: Arc<Injections>,
}

/// A producer or consumer of a stress run.
#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) side: Side,
    pub(crate) token: u64,
    /// The id of the call that registered it: reads and unregisters name it by this.
    pub(crate) id: u64,
    behaviour: Behaviour,
    cost: Duration,
    injections: Arc<Injections>,
    log: Arc<TokenLog>,
    retired: AtomicBool,
    late: AtomicU32,
    pub(crate) handed_back: AtomicU32,
}

impl Participant {
    pub(crate) fn new(
        (side, token, id): (Side, u64, u64),
        behaviour: Behaviour,
        setting: &Setting,
        log: Arc<TokenLog>,
    ) -> Participant {
        Participant {
            side,
            token,
            id,
            behaviour,
            cost: setting.cost,
            injections: setting.injections.clone(),
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
        chaos::pause();
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
        chaos::pause();
        if self.behaviour.panic_on == Some(callback) {
            self.injections.panics.fetch_add(1, Ordering::Relaxed);
            std::panic::panic_any(InjectedPanic);
        }
    }

    fn add(&self) -> Result<(), CallbackError> {
        self.called(Callback::Add);
        if self.behaviour.fail_add {
            self.injections.add_failures.fetch_add(1, Ordering::Relaxed);
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
