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
use crate::protocol::{self, Connection, Disconnection, RegistryId};
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

/// A bug of a [`Sharded`] or [`Snapshots`] backend: the classes of one-edit bugs found in real
/// sharded, copy-on-write and lock-free designs, each breaking one guarantee. `Bug::None` is the
/// design without a bug, to show the checkers accept it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// No bug.
    None,
    /// [`Sharded`]: a register stores its participant and releases the shard lock before the
    /// connect callbacks run, so another call of the token runs its callbacks meanwhile.
    EarlyUnlock,
    /// [`Sharded`]: an unregister removes its participant and releases the shard lock before
    /// the disconnect, which then races the token's next calls.
    UnlockBeforeDisconnect,
    /// [`Sharded`]: `is_paired` reads the two sides under two acquisitions of the lock (and
    /// yields between them, as a preemption would), so it can answer `true` for a pairing that
    /// never existed.
    TornRead,
    /// [`Sharded`]: an emptied entry is never removed from its shard.
    LeaksEntry,
    /// [`Sharded`]: an unregister marks its side retired instead of removing it, and the reads
    /// ignore the mark.
    IgnoresRetired,
    /// [`Sharded`]: an unregister removes its participant only once the disconnect returned
    /// without a panic, so a panicking disconnect leaves it registered.
    PublishAfterPanic,
    /// [`Snapshots`]: writers lock only their token while they copy, change and publish the
    /// snapshot, so writers of two tokens lose one another's update.
    LostUpdate,
    /// [`Snapshots`]: a replaced snapshot is never freed.
    LeaksSnapshot,
}

/// One token's participants in a [`Sharded`] shard; `retired` marks a side that
/// [`Bug::IgnoresRetired`] unregistered without removing it.
#[derive(Default)]
struct Entry {
    producer: Option<Arc<dyn Producer>>,
    consumer: Option<Arc<dyn Consumer>>,
    retired: [bool; 2],
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.producer.is_none() && self.consumer.is_none()
    }

    /// The side of `S`, if registered (a retired one is not).
    fn live<S: SideOf + ?Sized>(&self) -> Option<&Arc<S>> {
        S::slot_ref(self).filter(|_| !self.retired[S::INDEX])
    }
}

/// Producer or consumer: where each lives in an [`Entry`] and in a snapshot, and how it
/// connects to the other.
trait SideOf: Send + Sync + 'static {
    type Other: SideOf<Other = Self> + ?Sized;
    const INDEX: usize;
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>>;
    fn slot_ref(entry: &Entry) -> Option<&Arc<Self>>;
    fn connect(id: RegistryId, t: Token, me: &Self, other: &Self::Other) -> Connection;
    fn disconnect(id: RegistryId, t: Token, me: &Self, other: &Self::Other) -> Disconnection;
}

impl SideOf for dyn Producer {
    type Other = dyn Consumer;
    const INDEX: usize = 0;
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>> {
        &mut entry.producer
    }
    fn slot_ref(entry: &Entry) -> Option<&Arc<Self>> {
        entry.producer.as_ref()
    }
    fn connect(id: RegistryId, t: Token, me: &Self, other: &Self::Other) -> Connection {
        protocol::connect(id, t, me, other)
    }
    fn disconnect(id: RegistryId, t: Token, me: &Self, other: &Self::Other) -> Disconnection {
        protocol::disconnect(id, t, me, other)
    }
}

impl SideOf for dyn Consumer {
    type Other = dyn Producer;
    const INDEX: usize = 1;
    fn slot(entry: &mut Entry) -> &mut Option<Arc<Self>> {
        &mut entry.consumer
    }
    fn slot_ref(entry: &Entry) -> Option<&Arc<Self>> {
        entry.consumer.as_ref()
    }
    fn connect(id: RegistryId, t: Token, me: &Self, other: &Self::Other) -> Connection {
        protocol::connect(id, t, other, me)
    }
    fn disconnect(id: RegistryId, t: Token, me: &Self, other: &Self::Other) -> Disconnection {
        protocol::disconnect(id, t, other, me)
    }
}

/// Finishes a register that ran `connection`: `keep` stores the participant if connected,
/// else it is handed back; then a callback's panic resumes. (The real backends go through
/// [`crate::registration`]; these broken ones keep their flawed locking in view.)
fn commit<T>(
    connection: Connection,
    participant: T,
    keep: impl FnOnce(T),
) -> Result<(), RegisterError<T>> {
    let (outcome, panic) = connection.into_parts();
    let result = match outcome {
        Ok(()) => {
            keep(participant);
            Ok(())
        }
        Err(Some(error)) => Err(RegisterError::ConnectFailed { participant, error }),
        Err(None) => Ok(()),
    };
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
    result
}

/// Returns `value` once `disconnection` is over, or resumes a callback's panic.
fn finish<T>(disconnection: Disconnection, value: T) -> T {
    if let Some(payload) = disconnection.into_panic() {
        std::panic::resume_unwind(payload);
    }
    value
}

type Shard = Mutex<HashMap<Token, Entry>>;

/// A sharded registry: tokens hashed over 16 shards, each a std mutex over a map, held for
/// a whole call, callbacks included; correct but for its [`Bug`]. Like [`Broken`], it has no
/// re-entrancy detection.
pub struct Sharded {
    bug: Bug,
    id: RegistryId,
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded").field("bug", &self.bug).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sharded {
    /// An empty registry with `bug`.
    pub fn new(bug: Bug) -> Sharded {
        Sharded {
            bug,
            id: RegistryId::new(),
            shards: (0..16).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, token: Token) -> &Shard {
        &self.shards[(token.get() % self.shards.len() as u64) as usize]
    }

    /// Removes `token`'s entry if it is empty (never, with [`Bug::LeaksEntry`]).
    fn tidy(&self, shard: &mut HashMap<Token, Entry>, token: Token) {
        if self.bug != Bug::LeaksEntry && shard.get(&token).is_some_and(Entry::is_empty) {
            shard.remove(&token);
        }
    }

    fn register<S: SideOf + ?Sized>(
        &self,
        token: Token,
        new: Arc<S>,
    ) -> Result<(), RegisterError<Arc<S>>> {
        let mut shard = lock(self.shard(token));
        let entry = shard.entry(token).or_default();
        if entry.retired[S::INDEX] {
            *S::slot(entry) = None;
            entry.retired[S::INDEX] = false;
        }
        if S::slot(entry).is_some() {
            return Err(RegisterError::Duplicate(new));
        }
        let Some(partner) = S::Other::slot_ref(entry).cloned() else {
            *S::slot(entry) = Some(new);
            return Ok(());
        };
        if self.bug == Bug::EarlyUnlock {
            *S::slot(entry) = Some(new.clone());
            drop(shard);
            let connection = S::connect(self.id, token, &new, &partner);
            if !connection.is_connected() {
                let mut shard = lock(self.shard(token));
                if let Some(entry) = shard.get_mut(&token) {
                    if S::slot(entry)
                        .as_ref()
                        .is_some_and(|p| Arc::ptr_eq(p, &new))
                    {
                        *S::slot(entry) = None;
                    }
                }
                self.tidy(&mut shard, token);
            }
            return commit(connection, new, drop);
        }
        let connection = S::connect(self.id, token, &new, &partner);
        commit(connection, new, |new| *S::slot(entry) = Some(new))
    }

    fn unregister<S: SideOf + ?Sized>(&self, token: Token) -> Result<Arc<S>, UnregisterError> {
        let mut shard = lock(self.shard(token));
        let entry = shard
            .get_mut(&token)
            .filter(|e| e.live::<S>().is_some())
            .ok_or(UnregisterError::NotRegistered)?;
        let partner = entry.live::<S::Other>().cloned();
        let leaving = match self.bug {
            Bug::IgnoresRetired => {
                entry.retired[S::INDEX] = true;
                S::slot(entry).clone()
            }
            Bug::PublishAfterPanic if partner.is_some() => S::slot(entry).clone(),
            _ => S::slot(entry).take(),
        }
        .expect("checked above");
        let Some(partner) = partner else {
            self.tidy(&mut shard, token);
            return Ok(leaving);
        };
        match self.bug {
            Bug::UnlockBeforeDisconnect => {
                self.tidy(&mut shard, token);
                drop(shard);
                Ok(finish(
                    S::disconnect(self.id, token, &leaving, &partner),
                    leaving,
                ))
            }
            Bug::PublishAfterPanic => {
                // The bug: a disconnect callback's panic resumes here, before the removal.
                finish(S::disconnect(self.id, token, &leaving, &partner), ());
                *S::slot(entry) = None;
                self.tidy(&mut shard, token);
                Ok(leaving)
            }
            _ => {
                let disconnection = S::disconnect(self.id, token, &leaving, &partner);
                self.tidy(&mut shard, token);
                drop(shard);
                Ok(finish(disconnection, leaving))
            }
        }
    }

    /// Reads `token`'s entry (an empty one if it has none), ignoring retired marks with
    /// [`Bug::IgnoresRetired`].
    fn read<T>(&self, token: Token, read: impl FnOnce(&Entry) -> T) -> T {
        let shard = lock(self.shard(token));
        let empty = Entry::default();
        let entry = shard.get(&token).unwrap_or(&empty);
        if self.bug == Bug::IgnoresRetired {
            read(entry)
        } else {
            read(&Entry {
                producer: entry.live::<dyn Producer>().cloned(),
                consumer: entry.live::<dyn Consumer>().cloned(),
                retired: [false; 2],
            })
        }
    }
}

impl Registry for Sharded {
    fn name(&self) -> &'static str {
        "broken-sharded"
    }
    fn register_producer(&self, token: Token, p: Arc<dyn Producer>) -> RegisterProducerResult {
        self.register(token, p)
    }
    fn register_consumer(&self, token: Token, c: Arc<dyn Consumer>) -> RegisterConsumerResult {
        self.register(token, c)
    }
    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        self.unregister::<dyn Producer>(token)
    }
    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        self.unregister::<dyn Consumer>(token)
    }
    fn is_paired(&self, token: Token) -> bool {
        if self.bug == Bug::TornRead {
            // The bug: two loads, each under its own acquisition of the lock. The yield stands
            // for a preemption between them, which a loaded host makes at any time.
            self.read(token, |e| e.producer.is_some()) && {
                thread::yield_now();
                self.read(token, |e| e.consumer.is_some())
            }
        } else {
            self.read(token, |e| e.producer.is_some() && e.consumer.is_some())
        }
    }
    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.read(token, |e| e.producer.clone())
    }
    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.read(token, |e| e.consumer.clone())
    }
    fn population(&self) -> Population {
        let mut count = Population::default();
        for shard in self.shards.iter() {
            for e in lock(shard).values() {
                count.producers += usize::from(e.live::<dyn Producer>().is_some());
                count.consumers += usize::from(e.live::<dyn Consumer>().is_some());
            }
        }
        count
    }
}

/// The state a [`Snapshots`] backend publishes: every token's entry.
type Snapshot = HashMap<Token, Entry>;

/// A copy-on-write registry, as an RCU design: readers take the current snapshot; a writer
/// holds the writer lock for its whole call, callbacks included, copies the snapshot, changes
/// the copy and publishes it. Correct but for its [`Bug`].
pub struct Snapshots {
    bug: Bug,
    id: RegistryId,
    writer: Mutex<()>,
    /// The per-token locks that [`Bug::LostUpdate`] takes instead of the writer lock.
    token_locks: Box<[Mutex<()>]>,
    current: Mutex<Arc<Snapshot>>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots").field("bug", &self.bug).finish()
    }
}

impl Snapshots {
    /// An empty registry with `bug`.
    pub fn new(bug: Bug) -> Snapshots {
        Snapshots {
            bug,
            id: RegistryId::new(),
            writer: Mutex::default(),
            token_locks: (0..64).map(|_| Mutex::default()).collect(),
            current: Mutex::new(Arc::default()),
        }
    }

    fn load(&self) -> Arc<Snapshot> {
        lock(&self.current).clone()
    }

    /// Publishes `token`'s new entry, in a copy of `base`.
    fn publish(&self, base: &Snapshot, token: Token, entry: Entry) {
        let mut next: Snapshot = base
            .iter()
            .filter(|(t, _)| **t != token)
            .map(|(t, e)| {
                let copy = Entry {
                    producer: e.producer.clone(),
                    consumer: e.consumer.clone(),
                    retired: e.retired,
                };
                (*t, copy)
            })
            .collect();
        if !entry.is_empty() {
            next.insert(token, entry);
        }
        let old = std::mem::replace(&mut *lock(&self.current), Arc::new(next));
        if self.bug == Bug::LeaksSnapshot {
            // The bug: the replaced snapshot is never retired.
            std::mem::forget(old);
        }
    }

    /// Runs a write of `token` under the writer lock (only the token's lock with
    /// [`Bug::LostUpdate`]): `write` gets the snapshot and returns the token's new entry.
    fn write<T>(&self, token: Token, write: impl FnOnce(&Snapshot) -> (Option<Entry>, T)) -> T {
        let _guard = if self.bug == Bug::LostUpdate {
            lock(&self.token_locks[(token.get() % self.token_locks.len() as u64) as usize])
        } else {
            lock(&self.writer)
        };
        let base = self.load();
        let (entry, out) = write(&base);
        if let Some(entry) = entry {
            self.publish(&base, token, entry);
        }
        out
    }

    fn register<S: SideOf + ?Sized>(
        &self,
        token: Token,
        new: Arc<S>,
    ) -> Result<(), RegisterError<Arc<S>>> {
        // `Err`: a duplicate; `Ok(None)`: registered alone; `Ok(Some)`: the connect, its
        // participant already published if it connected.
        let connection = self.write(token, |base| {
            let mut entry = copy_entry(base.get(&token));
            if S::slot(&mut entry).is_some() {
                return (None, Err(()));
            }
            let Some(partner) = S::Other::slot_ref(&entry).cloned() else {
                *S::slot(&mut entry) = Some(new.clone());
                return (Some(entry), Ok(None));
            };
            let connection = S::connect(self.id, token, &new, &partner);
            if !connection.is_connected() {
                return (None, Ok(Some(connection)));
            }
            *S::slot(&mut entry) = Some(new.clone());
            (Some(entry), Ok(Some(connection)))
        });
        match connection {
            Err(()) => Err(RegisterError::Duplicate(new)),
            Ok(None) => Ok(()),
            Ok(Some(connection)) => commit(connection, new, drop),
        }
    }

    fn unregister<S: SideOf + ?Sized>(&self, token: Token) -> Result<Arc<S>, UnregisterError> {
        let (leaving, disconnection) = self.write(token, |base| {
            let mut entry = copy_entry(base.get(&token));
            let Some(leaving) = S::slot(&mut entry).take() else {
                return (None, Err(UnregisterError::NotRegistered));
            };
            let disconnection = S::Other::slot_ref(&entry)
                .cloned()
                .map(|partner| S::disconnect(self.id, token, &leaving, &partner));
            (Some(entry), Ok((leaving, disconnection)))
        })?;
        Ok(match disconnection {
            Some(d) => finish(d, leaving),
            None => leaving,
        })
    }
}

fn copy_entry(entry: Option<&Entry>) -> Entry {
    entry.map_or_else(Entry::default, |e| Entry {
        producer: e.producer.clone(),
        consumer: e.consumer.clone(),
        retired: e.retired,
    })
}

impl Registry for Snapshots {
    fn name(&self) -> &'static str {
        "broken-snapshots"
    }
    fn register_producer(&self, token: Token, p: Arc<dyn Producer>) -> RegisterProducerResult {
        self.register(token, p)
    }
    fn register_consumer(&self, token: Token, c: Arc<dyn Consumer>) -> RegisterConsumerResult {
        self.register(token, c)
    }
    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        self.unregister::<dyn Producer>(token)
    }
    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        self.unregister::<dyn Consumer>(token)
    }
    fn is_paired(&self, token: Token) -> bool {
        self.load()
            .get(&token)
            .is_some_and(|e| e.producer.is_some() && e.consumer.is_some())
    }
    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.load().get(&token).and_then(|e| e.producer.clone())
    }
    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.load().get(&token).and_then(|e| e.consumer.clone())
    }
    fn population(&self) -> Population {
        let snapshot = self.load();
        Population {
            producers: snapshot.values().filter(|e| e.producer.is_some()).count(),
            consumers: snapshot.values().filter(|e| e.consumer.is_some()).count(),
        }
    }
}
