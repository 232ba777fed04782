//! `sharded`: a [`DashMap`] keyed by token, with one writer lock per dashmap shard held
//! across the callbacks.
//!
//! # Design
//! The participants of a token live in one entry of a [`DashMap`] (a hash map split into
//! shards, each behind its own reader-writer lock). Next to each dashmap shard sits a writer
//! lock of this backend. A register or an unregister of a token takes the writer lock of the
//! token's shard ([`Sharded::shard_of`]) and holds it for the whole call: the duplicate check,
//! the pairing decision, the connect or disconnect callbacks, and the update of the entry. The
//! shard's writer lock is what gives exactly one connect and per-token exclusion; tokens of
//! other shards go on in parallel, callbacks included.
//!
//! # What it locks, and for how long
//! - **The shard's writer lock**: by registers and unregisters of the shard's tokens, for the
//!   whole call, callbacks included. A slow or blocked callback holds up the other writers of
//!   its shard (1 in [`Sharded::shards`] of the tokens), no one else.
//! - **dashmap's own shard lock**: by every call, readers included, only to look an entry up
//!   or change it: a few hash-map operations, never across a callback.
//!
//! Why not hold dashmap's guard (an `entry` or `get_mut`) across the callbacks, which would
//! save the second lock? dashmap's locks are not re-entrant: a callback touching any token of
//! the same shard, even only to read it, would deadlock on the guard its own thread holds, and
//! no safe code can read a shard through a lock its thread holds. Readers of the whole shard
//! would also wait for the slowest callback. With the writer lock apart, dashmap's guards are
//! only ever held for a few instructions, so readers never wait for a callback and a read from
//! inside a callback always gets a true answer.
//!
//! # Re-entrancy
//! A callback that registers or unregisters a token of its own shard (its own token
//! included) gets `reentrant`: the shard's writer lock is held by its own thread. A call for a
//! token of another shard works, unless it would wait for a lower-numbered shard than one its
//! thread holds while that shard is busy; then it gets `reentrant` too, the price of never
//! deadlocking (a thread holding writer locks only ever waits for a higher-numbered one, so no
//! two threads can wait for each other). Shards are picked by a seeded hash, so which of two
//! tokens share a shard differs from one registry to the next: a VMM must expect `reentrant`
//! for any token from a callback, or not call back at all. A callback that blocks until
//! *another thread* has registered or unregistered a token of its own shard still deadlocks: no
//! registry can see that wait.
//!
//! Read calls from a callback never block on a callback and always answer from the registry's
//! state at that instant, in which a register takes effect when its participant is stored, after
//! its connect callbacks, and an unregister when its participant is removed, before its
//! disconnect callbacks: inside the connect of a token, the new participant is not yet there
//! and `is_paired` is `false`; inside a disconnect, the leaving participant is already gone.
//!
//! # Memory
//! One entry per token with a participant (removed with the last one), dashmap's shards, and
//! one padded writer lock per shard. No snapshot or garbage outlives a call; unregister hands
//! back the last reference the registry held.
//!
//! # Cost per operation
//! Reads: one hash of the token (SipHash, as std's `HashMap`), a shared lock of one dashmap
//! shard, one map lookup and, for `producer` and `consumer`, a reference-count increment: O(1)
//! expected, whatever the number of tokens. Readers of one shard all write the shard's lock word, so a read-mostly hot path
//! spread over many cores pays for that cache line ([`rcu`](crate::rcu) does not). Registers
//! and unregisters: the writer lock of the shard, then one or two short dashmap operations,
//! O(1) expected; [`Registry::population`] sums two per-thread counters. Measured on one thread (release
//! build, a loaded 2-core VM): a lone register then unregister costs 0.1–0.2 µs each whether
//! 0 or 100,000 tokens are live (0.3 µs at 1,000,000), and `is_paired` 25–60 ns.
//!
//! # When to choose it
//! Choose it when many threads register and unregister at once (boot storms, parallel
//! restores, irqfd floods) and callbacks can be slow: writers of different shards never wait
//! for each other, and no callback holds up a reader. Prefer [`rcu`](crate::rcu) when lookups
//! on the interrupt path dominate and must never touch a shared cache line. Do not choose it if
//! callbacks call back into the registry for other tokens and cannot handle `reentrant`: use a
//! global-lock backend, whose re-entrant lock lets such calls through.
//!
//! ```
//! use std::sync::Arc;
//! use bypass_registry::probe::{EventLog, Probe};
//! use bypass_registry::{Population, Registry, Token};
//! use bypass_strategies::Sharded;
//!
//! let registry = Sharded::new();
//! let log = EventLog::new();
//! let t = Token::new(5).unwrap();
//! registry.register_consumer(t, Arc::new(Probe::consumer(5, &log))).unwrap();
//! registry.register_producer(t, Arc::new(Probe::producer(5, &log))).unwrap();
//! assert!(registry.is_paired(t));
//! assert_eq!(registry.population(), Population { producers: 1, consumers: 1 });
//! assert!(registry.shard_of(t) < registry.shards());
//! assert_eq!(log.take().len(), 6); // stop, stop, add, add, start, start
//! ```

use std::fmt;
use std::sync::Arc;

use bypass_registry::pair::{Pair, Role, Strong};
use bypass_registry::protocol::RegistryId;
use bypass_registry::registration::{Lock, Pairs, Vacancy};
use bypass_registry::{Consumer, Population, Producer, Registry, Token};
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use parking_lot::MutexGuard;

use crate::counter::{self, Counts};

use crate::writer_lock::{self, WriterLock};

/// The default number of shards.
///
/// dashmap sizes its shards for short critical sections (4 per CPU). Here a shard's writer lock
/// is held across callbacks, which can take milliseconds (an IRTE update, a stopped vCPU), and
/// every writer of the shard waits for them: 256 shards keep the chance that an unrelated
/// token waits for a given slow callback at 1 in 256, for some 64 KiB of locks and empty
/// tables per registry.
pub const DEFAULT_SHARDS: usize = 256;

/// The participants of one token. Invariant: an entry in the map has at least one of them.
type Slot = Pair<Strong>;

/// A registry in a [`DashMap`] keyed by token, with one writer lock per dashmap shard held
/// across the callbacks: see the [module docs](self).
pub struct Sharded {
    id: RegistryId,
    map: DashMap<Token, Slot>,
    /// One per dashmap shard, same index. Invariant: the entries of a shard change only under
    /// its writer lock, so a writer's decision holds until it updates the entry.
    writers: Box<[CachePadded<WriterLock>]>,
    counts: Counts,
}

impl Sharded {
    /// An empty registry with [`DEFAULT_SHARDS`] shards.
    pub fn new() -> Sharded {
        Sharded::with_shards(DEFAULT_SHARDS)
    }

    /// An empty registry with `shards` shards, rounded up to a power of two, at least 2
    /// (dashmap's constraints).
    pub fn with_shards(shards: usize) -> Sharded {
        let shards = shards.max(2).next_power_of_two();
        Sharded {
            id: RegistryId::new(),
            map: DashMap::with_shard_amount(shards),
            writers: (0..shards).map(|_| CachePadded::default()).collect(),
            counts: counter::counts(),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.writers.len()
    }

    /// The shard of `token`, below [`Sharded::shards`]: tokens of different shards never wait
    /// for each other's callbacks. Fixed for the life of the registry, but seeded per registry,
    /// so two registries place a token differently.
    pub fn shard_of(&self, token: Token) -> usize {
        self.map.determine_map(&token)
    }
}

impl Default for Sharded {
    fn default() -> Sharded {
        Sharded::new()
    }
}

impl fmt::Debug for Sharded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sharded")
            .field("id", &self.id)
            .field("shards", &self.shards())
            .field("population", &self.population())
            .finish_non_exhaustive()
    }
}

impl Registry for Sharded {
    fn name(&self) -> &'static str {
        "sharded"
    }

    bypass_registry::registration_methods!(Writes);

    fn is_paired(&self, token: Token) -> bool {
        self.map.get(&token).is_some_and(|slot| slot.is_paired())
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.map.get(&token).and_then(|slot| slot.producer.clone())
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.map.get(&token).and_then(|slot| slot.consumer.clone())
    }

    fn population(&self) -> Population {
        // Two counters, never a lock.
        counter::population(&self.counts)
    }
}

/// A token's pair is its dashmap entry; its lock, the writer lock of its shard. dashmap's own
/// shard lock is held only inside these methods, never across a callback.
/// [`Sharded`] as [`Pairs`] for [`registration`]: private, so that only the registry's own
/// calls reach its pairs.
struct Writes<'r>(&'r Sharded);

impl Pairs for Writes<'_> {
    /// The token's shard.
    type Handle = usize;
    type Guard<'h>
        = MutexGuard<'h, ()>
    where
        Self: 'h;

    fn id(&self) -> RegistryId {
        self.0.id
    }

    fn find_for_register<R: Role>(
        &self,
        token: Token,
        _: &mut Option<Arc<R::Me>>,
    ) -> Vacancy<usize> {
        Vacancy::At(self.0.shard_of(token))
    }

    fn find_for_unregister<R: Role>(&self, token: Token) -> Option<usize> {
        Some(self.0.shard_of(token))
    }

    /// The writer lock of the shard, or `reentrant` if this thread must not wait for it (see
    /// [`crate::writer_lock`]).
    fn lock<'h>(&'h self, &shard: &'h usize) -> Lock<MutexGuard<'h, ()>> {
        writer_lock::lock(self.0.id, &self.0.writers[shard], shard, |t| {
            self.0.shard_of(t)
        })
        .map_or(Lock::Reentrant, Lock::Held)
    }

    fn look<R: Role, T>(
        &self,
        _: &MutexGuard<'_, ()>,
        token: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T {
        let (taken, partner) = match self.0.map.get(&token) {
            Some(slot) => (R::mine(&slot).is_some(), R::partner(&slot).clone()),
            None => (false, None),
        };
        f(taken, partner.as_deref())
    }

    fn store<R: Role>(&self, _: &mut MutexGuard<'_, ()>, token: Token, me: Arc<R::Me>) {
        *R::mine_mut(&mut self.0.map.entry(token).or_default()) = Some(me);
        // Relaxed: the counters are statistics; the map, not they, decides every call.
        R::mine(&self.0.counts).increment();
    }

    fn take<R: Role, T>(
        &self,
        _: &mut MutexGuard<'_, ()>,
        token: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(Arc<R::Me>, T)> {
        // Removed before the disconnect: reads from its callbacks no longer see it.
        let (me, partner) = match self.0.map.entry(token) {
            Entry::Occupied(mut entry) => {
                let me = R::mine_mut(entry.get_mut()).take()?;
                let partner = R::partner(entry.get()).clone();
                if partner.is_none() {
                    // The slot is empty now: drop it, keeping the invariant.
                    entry.remove();
                }
                (me, partner)
            }
            Entry::Vacant(_) => return None,
        };
        R::mine(&self.0.counts).decrement();
        let done = f(&me, partner.as_deref());
        Some((me, done))
    }
}

#[cfg(test)]
mod tests {
    use dashmap::try_result::TryResult;

    use super::*;

    /// The writer lock of a token is the one of the dashmap shard that stores it.
    #[test]
    fn shard_of_is_the_dashmap_shard() {
        let registry = Sharded::with_shards(8);
        for shard in 0..registry.shards() {
            let _held = registry.map.shards()[shard].write();
            for id in 1..200 {
                let token = Token::new(id).unwrap();
                let locked = matches!(registry.map.try_get(&token), TryResult::Locked);
                assert_eq!(
                    locked,
                    registry.shard_of(token) == shard,
                    "token {id}, shard {shard}"
                );
            }
        }
    }
}
