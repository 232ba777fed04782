//! The global-lock backends: every call takes one process-wide lock and runs its callbacks under
//! it, as the Linux IRQ bypass manager does. They differ only in how they store participants
//! ([`Lists`] or [`Maps`]), so the locking and the protocol are written once here.
//!
//! # Locking
//! One [`parking_lot::ReentrantMutex`] guards the state and is held for the whole call,
//! callbacks included: every call of every token is serialized, and a slow or preempted
//! callback holds up the whole registry. The state sits in a `RefCell` that is borrowed only
//! between callbacks, never across one.
//!
//! # Re-entrancy
//! The mutex is re-entrant, so a callback that calls back into the registry does not deadlock:
//! a call for the callback's own token fails with `reentrant`; a call for another token works
//! (it runs nested, under the same lock); read calls work: during a connect they do not see the
//! new participant yet (it is stored once the connect succeeds), during a disconnect they no
//! longer see the leaving one (it is removed before the disconnect runs). A callback that waits for *another thread*
//! that calls the registry still deadlocks, as in the kernel: a global lock cannot tell.
//!
//! # Panics
//! parking_lot's locks are never poisoned, and no panic can escape while the state is
//! borrowed (callbacks run under `catch_unwind` in [`bypass_registry::protocol`]), so a
//! panicking callback leaves the registry usable.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bypass_registry::protocol::{self, RegistryId};
use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterError, RegisterProducerResult,
    Registry, Token, UnregisterError,
};
use parking_lot::ReentrantMutex;

mod sealed {
    pub trait Sealed {}
}

/// Where a global-lock backend keeps its participants: [`Lists`] or [`Maps`].
pub trait Store: sealed::Sealed + Default + Send + 'static {
    /// The backend's name.
    const NAME: &'static str;
    #[doc(hidden)]
    fn producer(&self, token: Token) -> Option<&Arc<dyn Producer>>;
    #[doc(hidden)]
    fn consumer(&self, token: Token) -> Option<&Arc<dyn Consumer>>;
    #[doc(hidden)]
    fn insert_producer(&mut self, token: Token, producer: Arc<dyn Producer>);
    #[doc(hidden)]
    fn insert_consumer(&mut self, token: Token, consumer: Arc<dyn Consumer>);
    #[doc(hidden)]
    fn remove_producer(&mut self, token: Token) -> Option<Arc<dyn Producer>>;
    #[doc(hidden)]
    fn remove_consumer(&mut self, token: Token) -> Option<Arc<dyn Consumer>>;
    #[doc(hidden)]
    fn population(&self) -> Population;
}

/// Two unsorted lists scanned from the head, as in the 2015 kernel: each lookup, duplicate
/// check and removal is a linear scan, O(n) in the number of registered participants of that
/// side.
#[derive(Default)]
pub struct Lists {
    producers: Vec<(Token, Arc<dyn Producer>)>,
    consumers: Vec<(Token, Arc<dyn Consumer>)>,
}

/// Two hash maps keyed by token, as upstream since v6.17 (there: xarrays): O(1) expected per
/// lookup, insert and removal.
#[derive(Default)]
pub struct Maps {
    producers: HashMap<Token, Arc<dyn Producer>>,
    consumers: HashMap<Token, Arc<dyn Consumer>>,
}

impl fmt::Debug for Lists {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lists")
            .field("producers", &self.producers.len())
            .field("consumers", &self.consumers.len())
            .finish()
    }
}

impl fmt::Debug for Maps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maps")
            .field("producers", &self.producers.len())
            .field("consumers", &self.consumers.len())
            .finish()
    }
}

impl sealed::Sealed for Lists {}
impl sealed::Sealed for Maps {}

fn find<T: ?Sized>(list: &[(Token, Arc<T>)], token: Token) -> Option<&Arc<T>> {
    list.iter().find(|(t, _)| *t == token).map(|(_, p)| p)
}

fn take<T: ?Sized>(list: &mut Vec<(Token, Arc<T>)>, token: Token) -> Option<Arc<T>> {
    let index = list.iter().position(|(t, _)| *t == token)?;
    Some(list.swap_remove(index).1)
}

impl Store for Lists {
    const NAME: &'static str = "mutex-list";
    fn producer(&self, token: Token) -> Option<&Arc<dyn Producer>> {
        find(&self.producers, token)
    }
    fn consumer(&self, token: Token) -> Option<&Arc<dyn Consumer>> {
        find(&self.consumers, token)
    }
    fn insert_producer(&mut self, token: Token, producer: Arc<dyn Producer>) {
        self.producers.push((token, producer));
    }
    fn insert_consumer(&mut self, token: Token, consumer: Arc<dyn Consumer>) {
        self.consumers.push((token, consumer));
    }
    fn remove_producer(&mut self, token: Token) -> Option<Arc<dyn Producer>> {
        take(&mut self.producers, token)
    }
    fn remove_consumer(&mut self, token: Token) -> Option<Arc<dyn Consumer>> {
        take(&mut self.consumers, token)
    }
    fn population(&self) -> Population {
        Population {
            producers: self.producers.len(),
            consumers: self.consumers.len(),
        }
    }
}

impl Store for Maps {
    const NAME: &'static str = "mutex-map";
    fn producer(&self, token: Token) -> Option<&Arc<dyn Producer>> {
        self.producers.get(&token)
    }
    fn consumer(&self, token: Token) -> Option<&Arc<dyn Consumer>> {
        self.consumers.get(&token)
    }
    fn insert_producer(&mut self, token: Token, producer: Arc<dyn Producer>) {
        self.producers.insert(token, producer);
    }
    fn insert_consumer(&mut self, token: Token, consumer: Arc<dyn Consumer>) {
        self.consumers.insert(token, consumer);
    }
    fn remove_producer(&mut self, token: Token) -> Option<Arc<dyn Producer>> {
        self.producers.remove(&token)
    }
    fn remove_consumer(&mut self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.consumers.remove(&token)
    }
    fn population(&self) -> Population {
        Population {
            producers: self.producers.len(),
            consumers: self.consumers.len(),
        }
    }
}

/// A registry behind one global re-entrant mutex, storing participants in `S`. Use it as
/// [`MutexList`](crate::MutexList) or [`MutexMap`](crate::MutexMap).
pub struct GlobalMutex<S: Store> {
    id: RegistryId,
    state: ReentrantMutex<RefCell<S>>,
}

impl<S: Store> GlobalMutex<S> {
    /// An empty registry.
    pub fn new() -> Self {
        GlobalMutex {
            id: RegistryId::new(),
            state: ReentrantMutex::new(RefCell::new(S::default())),
        }
    }
}

impl<S: Store> Default for GlobalMutex<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Store> fmt::Debug for GlobalMutex<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::NAME)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Registry for GlobalMutex<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn register_producer(
        &self,
        token: Token,
        producer: Arc<dyn Producer>,
    ) -> RegisterProducerResult {
        if self.id.in_callback_for(token) {
            return Err(RegisterError::Reentrant(producer));
        }
        let state = self.state.lock();
        let consumer = {
            let s = state.borrow();
            if s.producer(token).is_some() {
                return Err(RegisterError::Duplicate(producer));
            }
            s.consumer(token).cloned()
        };
        match consumer {
            None => {
                state.borrow_mut().insert_producer(token, producer);
                Ok(())
            }
            Some(consumer) => protocol::connect(self.id, token, &*producer, &*consumer)
                .commit(producer, |p| state.borrow_mut().insert_producer(token, p)),
        }
    }

    fn register_consumer(
        &self,
        token: Token,
        consumer: Arc<dyn Consumer>,
    ) -> RegisterConsumerResult {
        if self.id.in_callback_for(token) {
            return Err(RegisterError::Reentrant(consumer));
        }
        let state = self.state.lock();
        let producer = {
            let s = state.borrow();
            if s.consumer(token).is_some() {
                return Err(RegisterError::Duplicate(consumer));
            }
            s.producer(token).cloned()
        };
        match producer {
            None => {
                state.borrow_mut().insert_consumer(token, consumer);
                Ok(())
            }
            Some(producer) => protocol::connect(self.id, token, &*producer, &*consumer)
                .commit(consumer, |c| state.borrow_mut().insert_consumer(token, c)),
        }
    }

    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        if self.id.in_callback_for(token) {
            return Err(UnregisterError::Reentrant);
        }
        let state = self.state.lock();
        let (producer, consumer) = {
            let mut s = state.borrow_mut();
            let producer = s
                .remove_producer(token)
                .ok_or(UnregisterError::NotRegistered)?;
            (producer, s.consumer(token).cloned())
        };
        Ok(match consumer {
            None => producer,
            Some(consumer) => {
                protocol::disconnect(self.id, token, &*producer, &*consumer).finish(producer)
            }
        })
    }

    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        if self.id.in_callback_for(token) {
            return Err(UnregisterError::Reentrant);
        }
        let state = self.state.lock();
        let (consumer, producer) = {
            let mut s = state.borrow_mut();
            let consumer = s
                .remove_consumer(token)
                .ok_or(UnregisterError::NotRegistered)?;
            (consumer, s.producer(token).cloned())
        };
        Ok(match producer {
            None => consumer,
            Some(producer) => {
                protocol::disconnect(self.id, token, &*producer, &*consumer).finish(consumer)
            }
        })
    }

    fn is_paired(&self, token: Token) -> bool {
        let state = self.state.lock();
        let s = state.borrow();
        s.producer(token).is_some() && s.consumer(token).is_some()
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.state.lock().borrow().producer(token).cloned()
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.state.lock().borrow().consumer(token).cloned()
    }

    fn population(&self) -> Population {
        self.state.lock().borrow().population()
    }
}
