//! Deliberately broken backends: each breaks one guarantee of the contract, so that the tools
//! that check the contract can show they catch it. The conformance kit's own tests run its
//! cases on them, and so do the stress checker's; a backend author can do the same with a new
//! checker. Never use them for anything else.
//!
//! ```
//! use bypass_registry::broken::{Broken, Flaw};
//! use bypass_registry::conformance;
//!
//! let case = conformance::CASES.iter().find(|c| c.name == "connect_order_producer_first").unwrap();
//! let make = || std::sync::Arc::new(Broken::new(Flaw::WrongOrder)) as _;
//! let failed = std::panic::catch_unwind(|| (case.run)(&make));
//! assert!(failed.is_err(), "the kit catches a wrong callback order");
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::error::{RegisterError, UnregisterError};
use crate::participant::{CallbackError, Consumer, Producer};
use crate::registry::{Population, RegisterConsumerResult, RegisterProducerResult, Registry};
use crate::token::Token;

/// The guarantee a [`Broken`] backend breaks. Each also lacks re-entrancy detection: a callback
/// that calls back into it deadlocks on its (std, non-re-entrant) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flaw {
    /// Calls the consumer's `stop` before the producer's.
    WrongOrder,
    /// Skips the `start`s when the connect fails.
    SkipStartsOnFailure,
    /// Does not call `del_consumer` when the consumer's add fails.
    NoRollback,
    /// Keeps a reference to a producer refused as a duplicate.
    KeepsRefused,
    /// Decides on a partner and stores the participant in two critical sections: racing
    /// registrations of one token lose the pairing or connect twice.
    CheckThenAct,
    /// Registers one participant in twenty without connecting it to its partner.
    LosesPairing,
    /// Returns from unregister before the disconnect, which runs later on another thread.
    LateDisconnect,
    /// Stores a participant before connecting it and runs callbacks outside its lock, so a
    /// connect and a disconnect of one token can interleave.
    Interleaves,
    /// Lets a callback's panic unwind through its std lock, which poisons it.
    PoisonsOnPanic,
    /// Nothing more than the missing re-entrancy detection every flaw has: a re-entrant call
    /// deadlocks.
    DeadlocksOnReentry,
}

type Slot = (Option<Arc<dyn Producer>>, Option<Arc<dyn Consumer>>);

/// A registry behind one std mutex, correct but for its [`Flaw`].
#[derive(Debug)]
pub struct Broken {
    flaw: Flaw,
    state: Mutex<HashMap<Token, SlotDebug>>,
    kept: Mutex<Vec<KeptDebug>>,
    connects: AtomicU64,
}

/// A slot, printable.
struct SlotDebug(Slot);
/// A kept producer, printable.
struct KeptDebug(#[allow(dead_code)] Arc<dyn Producer>);

impl std::fmt::Debug for SlotDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.0.0.is_some(), self.0.1.is_some())
    }
}

impl std::fmt::Debug for KeptDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("producer")
    }
}

fn disconnect(p: &dyn Producer, c: &dyn Consumer) {
    p.stop();
    c.stop();
    c.del_producer(p);
    p.del_consumer(c);
    c.start();
    p.start();
}

impl Broken {
    /// An empty registry with `flaw`.
    pub fn new(flaw: Flaw) -> Broken {
        Broken {
            flaw,
            state: Mutex::default(),
            kept: Mutex::default(),
            connects: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Token, SlotDebug>> {
        match self.flaw {
            Flaw::PoisonsOnPanic => self.state.lock().expect("poisoned by a callback's panic"),
            _ => self.state.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    fn connect(&self, p: &dyn Producer, c: &dyn Consumer) -> Result<(), CallbackError> {
        if self.flaw == Flaw::WrongOrder {
            c.stop();
            p.stop();
        } else {
            p.stop();
            c.stop();
        }
        let result = p.add_consumer(c).and_then(|()| {
            c.add_producer(p).inspect_err(|_| {
                if self.flaw != Flaw::NoRollback {
                    p.del_consumer(c);
                }
            })
        });
        if result.is_ok() || self.flaw != Flaw::SkipStartsOnFailure {
            c.start();
            p.start();
        }
        result
    }

    /// Whether this connect is the one in twenty that [`Flaw::LosesPairing`] skips.
    fn skips_connect(&self) -> bool {
        self.flaw == Flaw::LosesPairing && self.connects.fetch_add(1, Ordering::Relaxed) % 20 == 7
    }

    /// Registers `new` on one side of `token`; `side` picks that side of a slot, `pair` orders
    /// (new, partner) as (producer, consumer).
    fn register<T: ?Sized, U: ?Sized>(
        &self,
        token: Token,
        new: Arc<T>,
        side: impl Fn(&mut Slot) -> Sides<'_, T, U>,
        connect: impl Fn(&Self, &T, &U) -> Result<(), CallbackError>,
    ) -> Result<(), RegisterError<Arc<T>>> {
        let mut state = self.lock();
        let slot = &mut state.entry(token).or_insert(SlotDebug((None, None))).0;
        let (mine, other) = side(slot);
        if mine.is_some() {
            return Err(RegisterError::Duplicate(new));
        }
        let partner = other.clone();
        if matches!(self.flaw, Flaw::CheckThenAct | Flaw::Interleaves) {
            if self.flaw == Flaw::Interleaves {
                *mine = Some(new.clone());
            }
            // The flaw: the decision above no longer holds once the lock is let go.
            drop(state);
            thread::yield_now();
            let result = match &partner {
                Some(partner) => connect(self, &new, partner),
                None => Ok(()),
            };
            let mut state = self.lock();
            let slot = &mut state.entry(token).or_insert(SlotDebug((None, None))).0;
            let (mine, _) = side(slot);
            return match result {
                Ok(()) => {
                    *mine = Some(new);
                    Ok(())
                }
                Err(error) => {
                    *mine = None;
                    Err(RegisterError::ConnectFailed {
                        participant: new,
                        error,
                    })
                }
            };
        }
        let Some(partner) = partner else {
            *mine = Some(new);
            return Ok(());
        };
        if self.skips_connect() {
            *mine = Some(new);
            return Ok(());
        }
        match connect(self, &new, &partner) {
            Ok(()) => {
                *mine = Some(new);
                Ok(())
            }
            Err(error) => Err(RegisterError::ConnectFailed {
                participant: new,
                error,
            }),
        }
    }

    /// Unregisters one side of `token`; `disconnect` runs the sequence on (leaving, partner).
    fn unregister<T: ?Sized + Send + Sync + 'static, U: ?Sized + Send + Sync + 'static>(
        &self,
        token: Token,
        side: impl Fn(&mut Slot) -> Sides<'_, T, U>,
        disconnect: fn(&T, &U),
    ) -> Result<Arc<T>, UnregisterError> {
        let mut state = self.lock();
        let slot = &mut state.entry(token).or_insert(SlotDebug((None, None))).0;
        let (mine, other) = side(slot);
        let leaving = mine.take().ok_or(UnregisterError::NotRegistered)?;
        if let Some(partner) = other.clone() {
            match self.flaw {
                Flaw::LateDisconnect => {
                    let late = leaving.clone();
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(1));
                        disconnect(&late, &partner);
                    });
                }
                Flaw::Interleaves => {
                    drop(state);
                    disconnect(&leaving, &partner);
                }
                _ => disconnect(&leaving, &partner),
            }
        }
        Ok(leaving)
    }

    fn read<T>(&self, token: Token, read: impl FnOnce(&Slot) -> T) -> T {
        let state = self.lock();
        read(state.get(&token).map_or(&(None, None), |s| &s.0))
    }
}

/// Both sides of a slot, the registering or leaving one first.
type Sides<'a, T, U> = (&'a mut Option<Arc<T>>, &'a mut Option<Arc<U>>);

fn producer_side(s: &mut Slot) -> Sides<'_, dyn Producer, dyn Consumer> {
    (&mut s.0, &mut s.1)
}

fn consumer_side(s: &mut Slot) -> Sides<'_, dyn Consumer, dyn Producer> {
    (&mut s.1, &mut s.0)
}

impl Registry for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn register_producer(
        &self,
        token: Token,
        producer: Arc<dyn Producer>,
    ) -> RegisterProducerResult {
        let result = self.register(token, producer.clone(), producer_side, |r, p, c| {
            r.connect(p, c)
        });
        if self.flaw == Flaw::KeepsRefused && matches!(result, Err(RegisterError::Duplicate(_))) {
            self.kept
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(KeptDebug(producer));
        }
        result
    }

    fn register_consumer(
        &self,
        token: Token,
        consumer: Arc<dyn Consumer>,
    ) -> RegisterConsumerResult {
        self.register(token, consumer, consumer_side, |r, c, p| r.connect(p, c))
    }

    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        self.unregister(token, producer_side, disconnect)
    }

    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        self.unregister(token, consumer_side, |c, p| disconnect(p, c))
    }

    fn is_paired(&self, token: Token) -> bool {
        self.read(token, |s| s.0.is_some() && s.1.is_some())
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.read(token, |s| s.0.clone())
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.read(token, |s| s.1.clone())
    }

    fn population(&self) -> Population {
        let state = self.lock();
        Population {
            producers: state.values().filter(|s| s.0.0.is_some()).count(),
            consumers: state.values().filter(|s| s.0.1.is_some()).count(),
        }
    }
}
