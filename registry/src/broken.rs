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
use crate::pair::{ConsumerRole, Pair, ProducerRole, Role, Strong};
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

type Slot = Pair<Strong>;

/// A registry behind one std mutex, correct but for its [`Flaw`].
#[derive(Debug)]
pub struct Broken {
    flaw: Flaw,
    state: Mutex<HashMap<Token, SlotDebug>>,
    kept: Mutex<Vec<KeptDebug>>,
    connects: AtomicU64,
}

/// A slot, printable.
#[derive(Default)]
struct SlotDebug(Slot);
/// A kept producer, printable.
struct KeptDebug(#[allow(dead_code)] Arc<dyn Producer>);

impl std::fmt::Debug for SlotDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({}, {})",
            self.0.producer.is_some(),
            self.0.consumer.is_some()
        )
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

    /// Registers `new` on `R`'s side of `token`.
    fn register<R: Role>(
        &self,
        token: Token,
        new: Arc<R::Me>,
    ) -> Result<(), RegisterError<Arc<R::Me>>> {
        let mut state = self.lock();
        let slot = &mut state.entry(token).or_default().0;
        let (mine, other) = R::split_mut(slot);
        if mine.is_some() {
            return Err(RegisterError::Duplicate(new));
        }
        let partner = other.clone();
        let connect = |partner: &R::Partner| {
            let (p, c) = R::order(&new, partner);
            self.connect(p, c)
        };
        if matches!(self.flaw, Flaw::CheckThenAct | Flaw::Interleaves) {
            if self.flaw == Flaw::Interleaves {
                *mine = Some(new.clone());
            }
            // The flaw: the decision above no longer holds once the lock is let go.
            drop(state);
            thread::yield_now();
            let result = partner.as_deref().map_or(Ok(()), connect);
            let mut state = self.lock();
            let mine = R::mine_mut(&mut state.entry(token).or_default().0);
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
        match connect(&partner) {
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

    /// Unregisters `R`'s side of `token`.
    fn unregister<R: Role>(&self, token: Token) -> Result<Arc<R::Me>, UnregisterError> {
        let mut state = self.lock();
        let slot = &mut state.entry(token).or_default().0;
        let (mine, other) = R::split_mut(slot);
        let leaving = mine.take().ok_or(UnregisterError::NotRegistered)?;
        if let Some(partner) = other.clone() {
            let disconnect = |me: &R::Me, partner: &R::Partner| {
                let (p, c) = R::order(me, partner);
                disconnect(p, c);
            };
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
        read(state.get(&token).map_or(&Slot::default(), |s| &s.0))
    }
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
        let result = self.register::<ProducerRole>(token, producer.clone());
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
        self.register::<ConsumerRole>(token, consumer)
    }

    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        self.unregister::<ProducerRole>(token)
    }

    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        self.unregister::<ConsumerRole>(token)
    }

    fn is_paired(&self, token: Token) -> bool {
        self.read(token, Slot::is_paired)
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.read(token, |s| s.producer.clone())
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.read(token, |s| s.consumer.clone())
    }

    fn population(&self) -> Population {
        let state = self.lock();
        Population {
            producers: state.values().filter(|s| s.0.producer.is_some()).count(),
            consumers: state.values().filter(|s| s.0.consumer.is_some()).count(),
        }
    }
}
