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

use bypass_registry::pair::{Hold, Pair, Role};
use bypass_registry::protocol::RegistryId;
use bypass_registry::registration::{Lock, Pairs, Vacancy};
use bypass_registry::{Consumer, Population, Producer, Registry, Token};
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

mod sealed {
    pub trait Sealed {}
}

/// Where a global-lock backend keeps its participants, one collection per side of a [`Pair`]:
/// [`Lists`] or [`Maps`].
pub trait Store: sealed::Sealed + Hold + Sized + Send + 'static {
    /// The backend's name.
    const NAME: &'static str;
    #[doc(hidden)]
    fn find<T: ?Sized + 'static>(side: &Self::Of<T>, token: Token) -> Option<&Arc<T>>;
    #[doc(hidden)]
    fn insert<T: ?Sized + 'static>(side: &mut Self::Of<T>, token: Token, participant: Arc<T>);
    #[doc(hidden)]
    fn remove<T: ?Sized + 'static>(side: &mut Self::Of<T>, token: Token) -> Option<Arc<T>>;
    #[doc(hidden)]
    fn len<T: ?Sized + 'static>(side: &Self::Of<T>) -> usize;
}

/// Two unsorted lists scanned from the head, as in the 2015 kernel: each lookup, duplicate
/// check and removal is a linear scan, O(n) in the number of registered participants of that
/// side.
#[derive(Debug)]
pub struct Lists;

/// Two hash maps keyed by token, as upstream since v6.17 (there: xarrays): O(1) expected per
/// lookup, insert and removal.
#[derive(Debug)]
pub struct Maps;

impl Hold for Lists {
    type Of<T: ?Sized + 'static> = Vec<(Token, Arc<T>)>;
}

impl Hold for Maps {
    type Of<T: ?Sized + 'static> = HashMap<Token, Arc<T>>;
}

impl sealed::Sealed for Lists {}
impl sealed::Sealed for Maps {}

impl Store for Lists {
    const NAME: &'static str = "mutex-list";
    fn find<T: ?Sized + 'static>(list: &Vec<(Token, Arc<T>)>, token: Token) -> Option<&Arc<T>> {
        list.iter().find(|(t, _)| *t == token).map(|(_, p)| p)
    }
    fn insert<T: ?Sized + 'static>(list: &mut Vec<(Token, Arc<T>)>, token: Token, p: Arc<T>) {
        list.push((token, p));
    }
    fn remove<T: ?Sized + 'static>(
        list: &mut Vec<(Token, Arc<T>)>,
        token: Token,
    ) -> Option<Arc<T>> {
        let index = list.iter().position(|(t, _)| *t == token)?;
        Some(list.swap_remove(index).1)
    }
    fn len<T: ?Sized + 'static>(list: &Vec<(Token, Arc<T>)>) -> usize {
        list.len()
    }
}

impl Store for Maps {
    const NAME: &'static str = "mutex-map";
    fn find<T: ?Sized + 'static>(map: &HashMap<Token, Arc<T>>, token: Token) -> Option<&Arc<T>> {
        map.get(&token)
    }
    fn insert<T: ?Sized + 'static>(map: &mut HashMap<Token, Arc<T>>, token: Token, p: Arc<T>) {
        map.insert(token, p);
    }
    fn remove<T: ?Sized + 'static>(
        map: &mut HashMap<Token, Arc<T>>,
        token: Token,
    ) -> Option<Arc<T>> {
        map.remove(&token)
    }
    fn len<T: ?Sized + 'static>(map: &HashMap<Token, Arc<T>>) -> usize {
        map.len()
    }
}

/// A registry behind one global re-entrant mutex, storing participants in `S`. Use it as
/// [`MutexList`](crate::MutexList) or [`MutexMap`](crate::MutexMap).
pub struct GlobalMutex<S: Store> {
    id: RegistryId,
    state: ReentrantMutex<RefCell<Pair<S>>>,
}

impl<S: Store> GlobalMutex<S>
where
    Pair<S>: Default + Send,
{
    /// An empty registry.
    pub fn new() -> Self {
        GlobalMutex {
            id: RegistryId::new(),
            state: ReentrantMutex::new(RefCell::new(Pair::default())),
        }
    }
}

impl<S: Store> Default for GlobalMutex<S>
where
    Pair<S>: Default + Send,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Store> fmt::Debug for GlobalMutex<S>
where
    Pair<S>: Default + Send,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::NAME)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Registry for GlobalMutex<S>
where
    Pair<S>: Default + Send,
{
    fn name(&self) -> &'static str {
        S::NAME
    }

    bypass_registry::registration_methods!(Writes);

    fn is_paired(&self, token: Token) -> bool {
        let state = self.state.lock();
        let s = state.borrow();
        S::find(&s.producer, token).is_some() && S::find(&s.consumer, token).is_some()
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        S::find(&self.state.lock().borrow().producer, token).cloned()
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        S::find(&self.state.lock().borrow().consumer, token).cloned()
    }

    fn population(&self) -> Population {
        let state = self.state.lock();
        let s = state.borrow();
        Population {
            producers: S::len(&s.producer),
            consumers: S::len(&s.consumer),
        }
    }
}

/// The state is borrowed only inside these methods, never across a callback: [`Pairs::look`]
/// and [`Pairs::take`] clone the partner and let the borrow go before the callbacks run.
/// The global lock, held, and the state behind it.
type Held<'h, S> = ReentrantMutexGuard<'h, RefCell<Pair<S>>>;

/// [`GlobalMutex`] as [`Pairs`] for [`registration`]: private, so that only the registry's
/// own calls reach its store.
struct Writes<'r, S: Store>(&'r GlobalMutex<S>);

impl<S: Store> Pairs for Writes<'_, S>
where
    Pair<S>: Default + Send,
{
    type Handle = ();
    type Guard<'h>
        = Held<'h, S>
    where
        Self: 'h;

    fn id(&self) -> RegistryId {
        self.0.id
    }

    fn find_for_register<R: Role>(&self, _: Token, _: &mut Option<Arc<R::Me>>) -> Vacancy<()> {
        Vacancy::At(())
    }

    fn find_for_unregister<R: Role>(&self, _: Token) -> Option<()> {
        Some(())
    }

    fn lock<'h>(&'h self, _: &'h ()) -> Lock<Self::Guard<'h>> {
        // Re-entrant: a callback's call for another token runs nested, under the same lock.
        Lock::Held(self.0.state.lock())
    }

    fn look<R: Role, T>(
        &self,
        guard: &Held<'_, S>,
        token: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T {
        let (taken, partner) = {
            let s = guard.borrow();
            (
                S::find(R::mine(&s), token).is_some(),
                S::find(R::partner(&s), token).cloned(),
            )
        };
        f(taken, partner.as_deref())
    }

    fn store<R: Role>(&self, guard: &mut Held<'_, S>, token: Token, me: Arc<R::Me>) {
        S::insert(R::mine_mut(&mut guard.borrow_mut()), token, me);
    }

    fn take<R: Role, T>(
        &self,
        guard: &mut Held<'_, S>,
        token: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(Arc<R::Me>, T)> {
        // Removed before the disconnect: reads from its callbacks no longer see it.
        let (me, partner) = {
            let mut s = guard.borrow_mut();
            let (mine, partner) = R::split_mut(&mut s);
            (S::remove(mine, token)?, S::find(partner, token).cloned())
        };
        let done = f(&me, partner.as_deref());
        Some((me, done))
    }
}
