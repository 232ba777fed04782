//! Participants for tests and replays: they record every callback they receive and can be
//! told to fail, panic or call back into the registry. [`apply`] runs one [`Op`] on a
//! registry with them.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::op::{Behaviour, Op, Outcome};
use crate::participant::{Callback, CallbackError, Consumer, Event, Producer, Side};
use crate::registry::Registry;
use crate::token::Token;

/// An ordered record of callbacks, shared by the probes of a test.
#[derive(Debug, Default)]
pub struct EventLog(Mutex<Vec<Event>>);

impl EventLog {
    /// An empty log, ready to share.
    pub fn new() -> Arc<EventLog> {
        Arc::new(EventLog::default())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        // A probe that panics on purpose does so before it logs, never while holding the lock;
        // recover anyway so one broken test cannot hide the events of another.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event.
    pub fn push(&self, event: Event) {
        self.lock().push(event);
    }

    /// Removes and returns every event logged so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.lock())
    }
}

/// What a probe does when called back, besides logging.
pub type Hook = Arc<dyn Fn(&Probe, Callback) + Send + Sync>;

/// A participant that logs each callback it receives into an [`EventLog`].
///
/// One type serves both sides: `Arc<Probe>` coerces to `Arc<dyn Producer>` and to
/// `Arc<dyn Consumer>`; build it with [`Probe::producer`] or [`Probe::consumer`] so that its
/// events name the right side.
///
#[cfg_attr(feature = "kit", doc = "```")]
#[cfg_attr(not(feature = "kit"), doc = "```ignore")]
/// use std::sync::Arc;
/// use bypass_registry::probe::{EventLog, Probe};
/// use bypass_registry::{Callback, Consumer, Producer};
///
/// let log = EventLog::new();
/// let p = Arc::new(Probe::producer(7, &log));
/// let c = Arc::new(Probe::consumer(7, &log).failing_add());
/// assert!(p.add_consumer(&*c).is_ok());
/// assert!(c.add_producer(&*p).is_err());
/// let lines: Vec<String> = log.take().iter().map(|e| e.to_string()).collect();
/// assert_eq!(lines, ["producer 7 add_consumer", "consumer 7 add_producer"]);
/// ```
pub struct Probe {
    side: Side,
    token: u64,
    log: Arc<EventLog>,
    fail_add: bool,
    panic_on: Option<Callback>,
    hook: Option<Hook>,
    retired: AtomicBool,
    late_calls: AtomicUsize,
    wrong_partner: AtomicUsize,
}

impl Probe {
    /// A producer probe for `token`.
    pub fn producer(token: u64, log: &Arc<EventLog>) -> Probe {
        Probe::new(Side::Producer, token, log)
    }

    /// A consumer probe for `token`.
    pub fn consumer(token: u64, log: &Arc<EventLog>) -> Probe {
        Probe::new(Side::Consumer, token, log)
    }

    /// A probe for `side` of `token`.
    pub fn new(side: Side, token: u64, log: &Arc<EventLog>) -> Probe {
        Probe {
            side,
            token,
            log: Arc::clone(log),
            fail_add: false,
            panic_on: None,
            hook: None,
            retired: AtomicBool::new(false),
            late_calls: AtomicUsize::new(0),
            wrong_partner: AtomicUsize::new(0),
        }
    }

    /// Makes the `add_*` callback return an error (the trace's `fail-add`).
    #[must_use]
    pub fn failing_add(mut self) -> Probe {
        self.fail_add = true;
        self
    }

    /// Sets whether the `add_*` callback returns an error.
    #[must_use]
    pub fn fail_add(mut self, fail: bool) -> Probe {
        self.fail_add = fail;
        self
    }

    /// Makes `callback` panic, after it is logged.
    #[must_use]
    pub fn panicking_on(mut self, callback: Callback) -> Probe {
        self.panic_on = Some(callback);
        self
    }

    /// Runs `hook` in every callback, after logging it (and before a panic or failure).
    #[must_use]
    pub fn with_hook(mut self, hook: Hook) -> Probe {
        self.hook = Some(hook);
        self
    }

    /// The side this probe was built for.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The token this probe was built for.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// Declares that the registry has handed this probe back: any later callback is counted
    /// in [`Probe::late_calls`].
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Callbacks received after [`Probe::retire`]: each one breaks "no call after return".
    pub fn late_calls(&self) -> usize {
        self.late_calls.load(Ordering::SeqCst)
    }

    /// `add_*`/`del_*` callbacks whose partner was not a probe of the same token.
    pub fn wrong_partner_calls(&self) -> usize {
        self.wrong_partner.load(Ordering::SeqCst)
    }

    fn called(&self, callback: Callback, partner: Option<&dyn Any>) {
        if self.retired.load(Ordering::SeqCst) {
            self.late_calls.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(partner) = partner {
            let ok = partner
                .downcast_ref::<Probe>()
                .is_some_and(|p| p.token == self.token && p.side != self.side);
            if !ok {
                self.wrong_partner.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.log.push(Event {
            side: self.side,
            token: self.token,
            callback,
        });
        if let Some(hook) = &self.hook {
            hook(self, callback);
        }
        if self.panic_on == Some(callback) {
            panic!(
                "probe {} {} panics in {:?}",
                self.side, self.token, callback
            );
        }
    }

    fn add(&self, partner: &dyn Any) -> Result<(), CallbackError> {
        self.called(Callback::Add, Some(partner));
        if self.fail_add {
            Err(CallbackError::new(format!(
                "{} {} refuses the connection",
                self.side, self.token
            )))
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("side", &self.side)
            .field("token", &self.token)
            .field("fail_add", &self.fail_add)
            .field("panic_on", &self.panic_on)
            .finish_non_exhaustive()
    }
}

impl Producer for Probe {
    fn add_consumer(&self, consumer: &dyn Consumer) -> Result<(), CallbackError> {
        self.add(consumer)
    }
    fn del_consumer(&self, consumer: &dyn Consumer) {
        self.called(Callback::Del, Some(consumer));
    }
    fn stop(&self) {
        self.called(Callback::Stop, None);
    }
    fn start(&self) {
        self.called(Callback::Start, None);
    }
}

impl Consumer for Probe {
    fn add_producer(&self, producer: &dyn Producer) -> Result<(), CallbackError> {
        self.add(producer)
    }
    fn del_producer(&self, producer: &dyn Producer) {
        self.called(Callback::Del, Some(producer));
    }
    fn stop(&self) {
        self.called(Callback::Stop, None);
    }
    fn start(&self) {
        self.called(Callback::Start, None);
    }
}

/// Runs one operation on `registry`, a registration with a [`Probe`] logging into `log` and
/// behaving as the operation says ([`Op::behaviour`]).
pub fn apply<R: Registry + ?Sized>(registry: &R, log: &Arc<EventLog>, op: &Op) -> Outcome {
    apply_with(registry, log, op, op.behaviour())
}

/// Like [`apply`], the registering probe behaving as `behaviour` (which overrides the
/// operation's `fail_add`). A panic that reaches the caller is caught and reported as
/// [`Outcome::Panicked`].
pub fn apply_with<R: Registry + ?Sized>(
    registry: &R,
    log: &Arc<EventLog>,
    op: &Op,
    behaviour: Behaviour,
) -> Outcome {
    let token = match Token::new(op.token()) {
        Ok(token) => token,
        Err(e) => return Outcome::Err(e.kind()),
    };
    let call = || match *op {
        Op::Register {
            side, token: id, ..
        } => {
            let mut probe = Probe::new(side, id, log).fail_add(behaviour.fail_add);
            if let Some(callback) = behaviour.panic_on {
                probe = probe.panicking_on(callback);
            }
            let probe = Arc::new(probe);
            match side {
                Side::Producer => registry
                    .register_producer(token, probe)
                    .map_err(|e| e.kind()),
                Side::Consumer => registry
                    .register_consumer(token, probe)
                    .map_err(|e| e.kind()),
            }
        }
        Op::Unregister { side, .. } => match side {
            Side::Producer => registry.unregister_producer(token).map(drop),
            Side::Consumer => registry.unregister_consumer(token).map(drop),
        }
        .map_err(|e| e.kind()),
    };
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(kind)) => Outcome::Err(kind),
        Err(_) => Outcome::Panicked,
    }
}
