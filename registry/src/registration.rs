//! Register and unregister, written once: every backend runs [`register`] and [`unregister`]
//! and supplies, through [`Pairs`], only how it finds and locks the pair of a token and how it
//! stores or removes a participant.
//!
//! **register**, for a participant of a [`Role`]:
//! 1. re-entrancy: from a callback of this registry for the same token, `reentrant`;
//! 2. find the token's pair ([`Pairs::find_for_register`]); a lock-free backend may decide
//!    here, without a lock: the participant stored (the token had nothing), or `duplicate`;
//! 3. lock it ([`Pairs::lock`]): `reentrant` if waiting could deadlock, or start over from 2
//!    if the pair was removed before the lock was had;
//! 4. under the lock ([`Pairs::look`]): `duplicate` if my side is taken; else, if the partner
//!    is there, connect ([`protocol::connect`]);
//! 5. store the participant ([`Pairs::store`]) if it has no partner or the connect succeeded,
//!    or hand it back in `connect-failed`;
//! 6. release the lock, and only then hand back the refused participant, or resume a
//!    callback's panic.
//!
//! **unregister**, for a [`Role`]:
//! 1. re-entrancy, as above;
//! 2. find the token's pair ([`Pairs::find_for_unregister`]), or `not-registered`;
//! 3. lock it, as above;
//! 4. under the lock, take my participant out ([`Pairs::take`]), or `not-registered`, and
//!    disconnect it from the partner if there is one; the backend removes it from what
//!    readers see before or after the disconnect, as it documents;
//! 5. release the lock, and only then hand the participant back, or resume a callback's panic.
//!
//! # Nothing is dropped under a lock
//! Every participant the registry gives up (refused, unregistered, or dropped because a
//! callback's panic unwinds) leaves only once the backend's lock is released. A participant
//! whose `Drop` calls the registry, even for its own token, therefore never waits for a lock
//! its own thread holds.

use std::panic::resume_unwind;
use std::sync::Arc;

use crate::error::{RegisterError, UnregisterError};
use crate::pair::Role;
use crate::protocol::{self, Connection, Disconnection, RegistryId};
use crate::token::Token;

/// Where a register goes after its first look ([`Pairs::find_for_register`]).
#[derive(Debug)]
pub enum Vacancy<H> {
    /// The token's pair is at this handle: lock it ([`Pairs::lock`]) to decide.
    At(H),
    /// The token had no pair: the arriving participant was stored without a lock.
    Inserted,
    /// A lock-free look saw the arriving participant's side taken: `duplicate`.
    Taken,
}

/// The outcome of [`Pairs::lock`].
#[derive(Debug)]
pub enum Lock<G> {
    /// Locked: no other register or unregister of the token runs until `G` is dropped.
    Held(G),
    /// Waiting could deadlock (this thread is inside a callback): `reentrant`.
    Reentrant,
    /// The pair was removed between the look and the lock: look again.
    Retry,
}

/// Where a backend keeps the pairs of its tokens, and how it locks one: all that [`register`]
/// and [`unregister`] need of it.
///
/// Every method but [`Pairs::find_for_register`], [`Pairs::find_for_unregister`] and
/// [`Pairs::lock`] runs with the token's lock held, and no callback runs inside them except
/// `f` of [`Pairs::look`] and [`Pairs::take`].
pub trait Pairs {
    /// Where a token's pair is, found before locking it (a shard index, a node).
    type Handle;
    /// Held while a register or unregister decides and changes a token's pair; dropping it
    /// releases the lock.
    type Guard<'h>
    where
        Self: 'h;

    /// The registry, for re-entrancy detection.
    fn id(&self) -> RegistryId;

    /// Finds the pair of `token` for a register of `R`'s `arriving` participant (always
    /// `Some` on entry). A backend that can insert without a lock may take it out of
    /// `arriving` and store it ([`Vacancy::Inserted`]); otherwise it must leave it there.
    fn find_for_register<R: Role>(
        &self,
        token: Token,
        arriving: &mut Option<Arc<R::Me>>,
    ) -> Vacancy<Self::Handle>;

    /// Finds the pair of `token` for an unregister of `R`'s participant, or `None` if a
    /// lock-free look saw that side empty (`not-registered`).
    fn find_for_unregister<R: Role>(&self, token: Token) -> Option<Self::Handle>;

    /// Locks the pair at `at`.
    fn lock<'h>(&'h self, at: &'h Self::Handle) -> Lock<Self::Guard<'h>>;

    /// Calls `f` with whether `R`'s side of `token` is taken and with `R`'s partner, if any.
    /// `f` runs the connect's callbacks: no lock but the guard's may be held across it.
    fn look<R: Role, T>(
        &self,
        guard: &Self::Guard<'_>,
        token: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T;

    /// Stores `me` on `R`'s side of `token`, which [`Pairs::look`] found free.
    fn store<R: Role>(&self, guard: &mut Self::Guard<'_>, token: Token, me: Arc<R::Me>);

    /// Takes `R`'s participant of `token` out, calling `f` with it and its partner, if any,
    /// at the point the backend documents (before or after readers stop seeing it); or
    /// `None` if that side is empty. `f` runs the disconnect's callbacks.
    fn take<R: Role, T>(
        &self,
        guard: &mut Self::Guard<'_>,
        token: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(Arc<R::Me>, T)>;
}

/// Registers `me` on `R`'s side of `token` in `pairs`, connecting it to the partner there.
#[inline]
pub fn register<R: Role, S: Pairs>(
    pairs: &S,
    token: Token,
    me: Arc<R::Me>,
) -> Result<(), RegisterError<Arc<R::Me>>> {
    let id = pairs.id();
    if id.in_callback_for(token) {
        return Err(RegisterError::Reentrant(me));
    }
    let mut arriving = Some(me);
    loop {
        let at = match pairs.find_for_register::<R>(token, &mut arriving) {
            Vacancy::At(at) => at,
            Vacancy::Inserted => return Ok(()),
            Vacancy::Taken => return Err(RegisterError::Duplicate(held(arriving))),
        };
        let me = held(arriving.take());
        return match pairs.lock(&at) {
            Lock::Held(guard) => register_locked::<R, S>(pairs, guard, id, token, me),
            Lock::Reentrant => Err(RegisterError::Reentrant(me)),
            Lock::Retry => {
                arriving = Some(me);
                continue;
            }
        };
    }
}

/// The participant a register holds between its attempts.
fn held<T>(arriving: Option<T>) -> T {
    arriving.expect("the arriving participant is held until stored or handed back")
}

/// Steps 4 to 6 of a register, with the token's pair locked by `guard`.
#[inline]
fn register_locked<R: Role, S: Pairs>(
    pairs: &S,
    mut guard: S::Guard<'_>,
    id: RegistryId,
    token: Token,
    me: Arc<R::Me>,
) -> Result<(), RegisterError<Arc<R::Me>>> {
    // `None`: my side is taken; `Some(None)`: free, with no partner; else the connect.
    let looked = pairs.look::<R, _>(&guard, token, |taken, partner| match partner {
        _ if taken => None,
        None => Some(None),
        Some(partner) => {
            let (p, c) = R::order(&me, partner);
            Some(Some(protocol::connect(id, token, p, c)))
        }
    });
    let Some(connection) = looked else {
        drop(guard);
        return Err(RegisterError::Duplicate(me));
    };
    let (outcome, panic) = connection.map_or((Ok(()), None), Connection::into_parts);
    let mut refused = None;
    let result = match outcome {
        Ok(()) => {
            pairs.store::<R>(&mut guard, token, me);
            Ok(())
        }
        Err(Some(error)) => Err(RegisterError::ConnectFailed {
            participant: me,
            error,
        }),
        // Failed by a panic, which resumes below.
        Err(None) => {
            refused = Some(me);
            Ok(())
        }
    };
    drop(guard);
    if let Some(payload) = panic {
        // The lock is released: a participant dropped here may call the registry.
        drop((result, refused));
        resume_unwind(payload);
    }
    result
}

/// Unregisters `R`'s participant of `token` from `pairs`, disconnecting it from its partner
/// first if there is one, and hands it back.
#[inline]
pub fn unregister<R: Role, S: Pairs>(
    pairs: &S,
    token: Token,
) -> Result<Arc<R::Me>, UnregisterError> {
    let id = pairs.id();
    if id.in_callback_for(token) {
        return Err(UnregisterError::Reentrant);
    }
    loop {
        let at = pairs
            .find_for_unregister::<R>(token)
            .ok_or(UnregisterError::NotRegistered)?;
        let mut guard = match pairs.lock(&at) {
            Lock::Held(guard) => guard,
            Lock::Reentrant => return Err(UnregisterError::Reentrant),
            Lock::Retry => continue,
        };
        let taken = pairs.take::<R, _>(&mut guard, token, |me, partner| {
            partner.map(|partner| {
                let (p, c) = R::order(me, partner);
                protocol::disconnect(id, token, p, c)
            })
        });
        drop(guard);
        let (me, disconnection) = taken.ok_or(UnregisterError::NotRegistered)?;
        if let Some(payload) = disconnection.and_then(Disconnection::into_panic) {
            // The lock is released: `me` may call the registry from its `Drop`.
            drop(me);
            resume_unwind(payload);
        }
        return Ok(me);
    }
}

/// Writes the four register and unregister methods of a [`Registry`](crate::Registry) impl
/// whose backend implements [`Pairs`] on `$pairs(self)` (a wrapper that keeps the `Pairs`
/// methods private): each is one call of [`register`] or [`unregister`] with its [`Role`].
///
/// ```ignore
/// impl Registry for MyBackend {
///     bypass_registry::registration_methods!(Writes);
///     // name, is_paired, producer, consumer, population
/// }
/// ```
#[macro_export]
macro_rules! registration_methods {
    ($pairs:path) => {
        fn register_producer(
            &self,
            token: $crate::Token,
            producer: ::std::sync::Arc<dyn $crate::Producer>,
        ) -> $crate::RegisterProducerResult {
            $crate::registration::register::<$crate::pair::ProducerRole, _>(
                &$pairs(self),
                token,
                producer,
            )
        }

        fn register_consumer(
            &self,
            token: $crate::Token,
            consumer: ::std::sync::Arc<dyn $crate::Consumer>,
        ) -> $crate::RegisterConsumerResult {
            $crate::registration::register::<$crate::pair::ConsumerRole, _>(
                &$pairs(self),
                token,
                consumer,
            )
        }

        fn unregister_producer(
            &self,
            token: $crate::Token,
        ) -> ::std::result::Result<::std::sync::Arc<dyn $crate::Producer>, $crate::UnregisterError>
        {
            $crate::registration::unregister::<$crate::pair::ProducerRole, _>(&$pairs(self), token)
        }

        fn unregister_consumer(
            &self,
            token: $crate::Token,
        ) -> ::std::result::Result<::std::sync::Arc<dyn $crate::Consumer>, $crate::UnregisterError>
        {
            $crate::registration::unregister::<$crate::pair::ConsumerRole, _>(&$pairs(self), token)
        }
    };
}
