//! Shared setup for bypass's criterion benchmarks (the groups live in `benches/benches/`; see
//! `benches/README.md` for how to run them and what each group shows).
//!
//! Everything a benchmark body needs except criterion itself:
//!
//! - [`Subject`]: what a body times. Every [`Registry`] is one (the blanket impl), and so are the
//!   raw concurrent maps of the floor, [`DashMapFloor`] and [`PapayaFloor`], which do the same
//!   inserts and removes with no protocol. Bodies are generic over it; the benches instantiate
//!   them per backend through [`bypass_strategies::Backend::visit`], so the inner loop is
//!   statically dispatched and a backend added to `Backend::ALL` is measured with no edit here.
//! - Participants that cost nothing ([`NoopProducer`], [`NoopConsumer`]) and ones whose `stop`
//!   and `start` busy-wait for a set time ([`SpinProducer`], [`SpinConsumer`]), bundled as a
//!   [`Pair`].
//! - Tokens: [`token`] for the live population, [`cycle_token`] for the cycling threads and
//!   [`churn_token`] for the background churner, never overlapping.
//! - [`Subject::populate`]: the unrelated live tokens registered before a measurement.
//! - [`Cycler`]: the connect+disconnect cycle every group times.
//! - [`timed_threads`]: runs work on several threads and times it from the moment all of them
//!   are parked on a barrier; [`with_churn`]: a background thread cycling registrations while a
//!   measurement runs.
//!
//! # Example
//! ```
//! use bypass_benches::{Cycler, Pair, Subject, cycle_token, timed_threads};
//! use bypass_registry::Registry;
//! use bypass_strategies::MutexMap;
//!
//! let registry = MutexMap::new();
//! registry.populate(1_000);
//! let before = registry.population();
//! let elapsed = timed_threads(
//!     2,
//!     |thread| Cycler::new(cycle_token(thread), Pair::noop()),
//!     |_, cycler| {
//!         for _ in 0..100 {
//!             cycler.step(&registry);
//!         }
//!     },
//! );
//! assert!(elapsed.as_nanos() > 0);
//! assert_eq!(registry.population(), before);
//! ```

#![deny(missing_docs)]

pub mod bus;

use std::fmt;
use std::hash::RandomState;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use std::cell::{RefCell, RefMut};

use bypass_registry::pair::{ConsumerRole, Pair as PairOf, ProducerRole, Role, Strong};
use bypass_registry::protocol::{self, RegistryId};
use bypass_registry::registration::{self, Lock, Pairs, Vacancy};
use bypass_registry::{CallbackError, Consumer, Producer, Registry, Token};

/// The live populations `cycle_population` and `floor` measure the cycle at: unrelated tokens
/// registered before the clock starts, half of them paired ([`Subject::populate`]).
pub const POPULATIONS: [usize; 4] = [0, 1_000, 10_000, 100_000];

/// The large population `cycle_population` and `floor` also measure, for the backends built to
/// scale (and the floor): a cycle there should cost what it costs at 0.
pub const LARGE_POPULATION: usize = 1_000_000;

/// The thread counts `cycle_threads` and `floor` run the cycle from, each thread on its own
/// token. More threads than the machine has cores is deliberate: VMMs run one registering
/// thread per VM, and 16 shows what a lock does when its holder is preempted.
pub const THREADS: [usize; 4] = [1, 2, 4, 16];

/// The live tokens the `lookup` group reads from: the delivery-lookup workload of the
/// protocol's table.
pub const LOOKUP_LIVE: usize = 100_000;

/// How long each `stop` and `start` takes in the `callback_cost` group; a cycle runs eight of
/// them.
pub const CALLBACK_COST: Duration = Duration::from_micros(1);

/// Distance between consecutive benchmark tokens.
///
/// Tokens are shaped like the addresses of the eventfd contexts a VMM keys its pairs by
/// ([`Token::from_arc`]): distinct and 64-byte aligned. A backend that picks a shard from a
/// token's low bits without hashing it shows here as it would in a VMM.
pub const TOKEN_STRIDE: u64 = 64;

/// The first token, above the zero page like a real address.
const TOKEN_BASE: u64 = 0x1_0000;

/// Index of the first [`cycle_token`]: above any population a benchmark registers.
const CYCLE_INDEX: u64 = 1 << 32;

/// Index of the [`churn_token`]: above any cycling thread's.
const CHURN_INDEX: u64 = CYCLE_INDEX + (1 << 20);

/// The token of the live population's `index`-th member.
pub fn token(index: u64) -> Token {
    let id = index
        .checked_mul(TOKEN_STRIDE)
        .and_then(|offset| offset.checked_add(TOKEN_BASE))
        .expect("benchmark token index out of range");
    Token::new(id).expect("benchmark tokens start above zero")
}

/// The token that cycling thread `thread` uses: disjoint from the population, from the other
/// threads' and from the churner's.
pub fn cycle_token(thread: usize) -> Token {
    let thread = u64::try_from(thread).expect("thread index fits in u64");
    assert!(
        thread < CHURN_INDEX - CYCLE_INDEX,
        "too many cycling threads"
    );
    token(CYCLE_INDEX + thread)
}

/// The token the background churner of [`with_churn`] cycles.
pub fn churn_token() -> Token {
    token(CHURN_INDEX)
}

/// Spins until `cost` has passed, without yielding the CPU: a callback that does real work.
pub fn spin_for(cost: Duration) {
    let start = Instant::now();
    while start.elapsed() < cost {
        std::hint::spin_loop();
    }
}

/// A producer whose callbacks do nothing, so that a benchmark times the registry alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopProducer;

impl Producer for NoopProducer {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {}
}

/// A consumer whose callbacks do nothing, so that a benchmark times the registry alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopConsumer;

impl Consumer for NoopConsumer {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_producer(&self, _: &dyn Producer) {}
}

/// A producer whose `stop` and `start` each busy-wait for `cost` (see [`spin_for`]), like a
/// VFIO device quiescing and resuming its interrupt; its add and del do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpinProducer {
    /// How long `stop` and `start` each take.
    pub cost: Duration,
}

impl Producer for SpinProducer {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {}
    fn stop(&self) {
        spin_for(self.cost);
    }
    fn start(&self) {
        spin_for(self.cost);
    }
}

/// A consumer whose `stop` and `start` each busy-wait for `cost` (see [`spin_for`]); its add
/// and del do nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpinConsumer {
    /// How long `stop` and `start` each take.
    pub cost: Duration,
}

impl Consumer for SpinConsumer {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_producer(&self, _: &dyn Producer) {}
    fn stop(&self) {
        spin_for(self.cost);
    }
    fn start(&self) {
        spin_for(self.cost);
    }
}

/// A producer and a consumer that cycle together on one token. The registry hands them back on
/// every unregister, so a cycle allocates nothing and clones no `Arc`.
#[derive(Clone)]
pub struct Pair {
    /// The producer side.
    pub producer: Arc<dyn Producer>,
    /// The consumer side.
    pub consumer: Arc<dyn Consumer>,
}

impl Pair {
    /// A [`NoopProducer`] and a [`NoopConsumer`].
    pub fn noop() -> Pair {
        Pair {
            producer: Arc::new(NoopProducer),
            consumer: Arc::new(NoopConsumer),
        }
    }

    /// A [`SpinProducer`] and a [`SpinConsumer`] whose `stop` and `start` each take `cost`: a
    /// connect+disconnect cycle then spends `8 * cost` in callbacks.
    pub fn spinning(cost: Duration) -> Pair {
        Pair {
            producer: Arc::new(SpinProducer { cost }),
            consumer: Arc::new(SpinConsumer { cost }),
        }
    }
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair").finish_non_exhaustive()
    }
}

/// What a benchmark body times: a registry backend (every [`Registry`], through the blanket
/// impl) or a raw concurrent map of the floor.
pub trait Subject: Send + Sync {
    /// Registers `live` unrelated tokens, [`token`]`(0..live)`: the even ones paired, the rest
    /// alternately producer-only and consumer-only. For a registry, `live / 2` of them are
    /// connected (their callbacks ran) and `population()` counts `3 * live / 4` of each side
    /// (rounding aside).
    fn populate(&self, live: usize);

    /// One connect+disconnect cycle on `token`, which must be free: register the producer,
    /// register the consumer (which connects them), unregister the producer (which
    /// disconnects), unregister the consumer. Hands the pair back.
    ///
    /// # Panics
    /// If any step fails, which a free token and well-behaved participants never cause.
    fn cycle(&self, token: Token, pair: Pair) -> Pair;

    /// Whether both sides of `token` are present.
    fn is_paired(&self, token: Token) -> bool;

    /// The producer of `token`, if any.
    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>>;
}

/// Which sides of population member `index` [`Subject::populate`] registers.
fn sides(index: u64) -> (bool, bool) {
    match index % 4 {
        0 | 2 => (true, true),
        1 => (true, false),
        _ => (false, true),
    }
}

fn indices(live: usize) -> std::ops::Range<u64> {
    0..u64::try_from(live).expect("population fits in u64")
}

impl<R: Registry + ?Sized> Subject for R {
    fn populate(&self, live: usize) {
        for index in indices(live) {
            let (producer, consumer) = sides(index);
            let t = token(index);
            if producer {
                if let Err(e) = self.register_producer(t, Arc::new(NoopProducer)) {
                    panic!("populating {}: producer {t}: {e}", self.name());
                }
            }
            if consumer {
                if let Err(e) = self.register_consumer(t, Arc::new(NoopConsumer)) {
                    panic!("populating {}: consumer {t}: {e}", self.name());
                }
            }
        }
    }

    #[inline]
    fn cycle(&self, token: Token, pair: Pair) -> Pair {
        let Pair { producer, consumer } = pair;
        if let Err(e) = self.register_producer(token, producer) {
            panic!("{}: register producer {token}: {e}", self.name());
        }
        if let Err(e) = self.register_consumer(token, consumer) {
            panic!("{}: register consumer {token}: {e}", self.name());
        }
        let producer = self
            .unregister_producer(token)
            .unwrap_or_else(|e| panic!("{}: unregister producer {token}: {e}", self.name()));
        let consumer = self
            .unregister_consumer(token)
            .unwrap_or_else(|e| panic!("{}: unregister consumer {token}: {e}", self.name()));
        Pair { producer, consumer }
    }

    #[inline]
    fn is_paired(&self, token: Token) -> bool {
        Registry::is_paired(self, token)
    }

    #[inline]
    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        Registry::producer(self, token)
    }
}

/// A raw concurrent map pair of the floor: a producer map and a consumer map keyed by token,
/// with no protocol, no callbacks and no duplicate or partner checks beyond what the map does.
///
/// Both floors are also [`Subject`]s; the benches name them with [`Floor::NAME`].
pub trait Floor: Default + Send + Sync + 'static {
    /// The name in benchmark ids: `dashmap`, `papaya`.
    const NAME: &'static str;
    /// Inserts the producer of `token`.
    fn insert_producer(&self, token: Token, producer: Arc<dyn Producer>);
    /// Inserts the consumer of `token`.
    fn insert_consumer(&self, token: Token, consumer: Arc<dyn Consumer>);
    /// Removes and returns the producer of `token`.
    fn remove_producer(&self, token: Token) -> Option<Arc<dyn Producer>>;
    /// Removes and returns the consumer of `token`.
    fn remove_consumer(&self, token: Token) -> Option<Arc<dyn Consumer>>;
    /// Whether both sides of `token` are present.
    fn both(&self, token: Token) -> bool;
    /// A clone of the producer of `token`, if any.
    fn get_producer(&self, token: Token) -> Option<Arc<dyn Producer>>;
}

/// The floor on [`dashmap`]: two sharded `RwLock` hash maps, std's default hasher.
#[derive(Default)]
pub struct DashMapFloor {
    producers: dashmap::DashMap<Token, Arc<dyn Producer>, RandomState>,
    consumers: dashmap::DashMap<Token, Arc<dyn Consumer>, RandomState>,
}

impl fmt::Debug for DashMapFloor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashMapFloor")
            .field("producers", &self.producers.len())
            .field("consumers", &self.consumers.len())
            .finish()
    }
}

impl Floor for DashMapFloor {
    const NAME: &'static str = "dashmap";
    #[inline]
    fn insert_producer(&self, token: Token, producer: Arc<dyn Producer>) {
        self.producers.insert(token, producer);
    }
    #[inline]
    fn insert_consumer(&self, token: Token, consumer: Arc<dyn Consumer>) {
        self.consumers.insert(token, consumer);
    }
    #[inline]
    fn remove_producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.producers.remove(&token).map(|(_, p)| p)
    }
    #[inline]
    fn remove_consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.consumers.remove(&token).map(|(_, c)| c)
    }
    #[inline]
    fn both(&self, token: Token) -> bool {
        self.producers.contains_key(&token) && self.consumers.contains_key(&token)
    }
    #[inline]
    fn get_producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.producers.get(&token).map(|p| Arc::clone(&p))
    }
}

/// The floor on [`papaya`]: two lock-free hash maps, std's default hasher. A removed value is
/// reclaimed later, so `remove` hands back a clone of the `Arc` (one more atomic increment than
/// a map that moves it out).
#[derive(Default)]
pub struct PapayaFloor {
    producers: papaya::HashMap<Token, Arc<dyn Producer>, RandomState>,
    consumers: papaya::HashMap<Token, Arc<dyn Consumer>, RandomState>,
}

impl fmt::Debug for PapayaFloor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PapayaFloor")
            .field("producers", &self.producers.len())
            .field("consumers", &self.consumers.len())
            .finish()
    }
}

impl Floor for PapayaFloor {
    const NAME: &'static str = "papaya";
    #[inline]
    fn insert_producer(&self, token: Token, producer: Arc<dyn Producer>) {
        self.producers.pin().insert(token, producer);
    }
    #[inline]
    fn insert_consumer(&self, token: Token, consumer: Arc<dyn Consumer>) {
        self.consumers.pin().insert(token, consumer);
    }
    #[inline]
    fn remove_producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.producers.pin().remove(&token).cloned()
    }
    #[inline]
    fn remove_consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.consumers.pin().remove(&token).cloned()
    }
    #[inline]
    fn both(&self, token: Token) -> bool {
        self.producers.pin().contains_key(&token) && self.consumers.pin().contains_key(&token)
    }
    #[inline]
    fn get_producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.producers.pin().get(&token).cloned()
    }
}

/// A floor as a [`Subject`]. Not a blanket impl over [`Floor`]: that would overlap the one over
/// [`Registry`] as far as coherence can tell.
macro_rules! floor_subject {
    ($floor:ty) => {
        impl Subject for $floor {
            fn populate(&self, live: usize) {
                for index in indices(live) {
                    let (producer, consumer) = sides(index);
                    if producer {
                        self.insert_producer(token(index), Arc::new(NoopProducer));
                    }
                    if consumer {
                        self.insert_consumer(token(index), Arc::new(NoopConsumer));
                    }
                }
            }

            #[inline]
            fn cycle(&self, token: Token, pair: Pair) -> Pair {
                let Pair { producer, consumer } = pair;
                self.insert_producer(token, producer);
                self.insert_consumer(token, consumer);
                let producer = self
                    .remove_producer(token)
                    .unwrap_or_else(|| panic!("{}: producer {token} vanished", Self::NAME));
                let consumer = self
                    .remove_consumer(token)
                    .unwrap_or_else(|| panic!("{}: consumer {token} vanished", Self::NAME));
                Pair { producer, consumer }
            }

            #[inline]
            fn is_paired(&self, token: Token) -> bool {
                self.both(token)
            }

            #[inline]
            fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
                self.get_producer(token)
            }
        }
    };
}

floor_subject!(DashMapFloor);
floor_subject!(PapayaFloor);

/// The cost of the callback protocol alone, for the `protocol` group: one token's pair with no
/// concurrency at all (a `RefCell`, so single-threaded), the least a backend can give
/// [`registration`]. A cycle through it costs the registration driver and the callback
/// sequences of [`protocol`], and nothing else; [`SolePair::connect_cycle`] costs the
/// sequences alone and [`SolePair::direct_cycle`] the same twelve callbacks called directly.
pub struct SolePair {
    id: RegistryId,
    pair: RefCell<PairOf<Strong>>,
}

impl SolePair {
    /// An empty pair.
    pub fn new() -> SolePair {
        SolePair {
            id: RegistryId::new(),
            pair: RefCell::new(PairOf::default()),
        }
    }

    /// One cycle through [`registration::register`] and [`registration::unregister`].
    ///
    /// # Panics
    /// If a step fails, which no-op participants never cause.
    #[inline]
    pub fn registration_cycle(&self, token: Token, pair: Pair) -> Pair {
        let Pair { producer, consumer } = pair;
        assert!(registration::register::<ProducerRole, _>(self, token, producer).is_ok());
        assert!(registration::register::<ConsumerRole, _>(self, token, consumer).is_ok());
        let producer = registration::unregister::<ProducerRole, _>(self, token).expect("producer");
        let consumer = registration::unregister::<ConsumerRole, _>(self, token).expect("consumer");
        Pair { producer, consumer }
    }

    /// One connect and one disconnect through [`protocol::connect`] and
    /// [`protocol::disconnect`], with no pair kept.
    #[inline]
    pub fn connect_cycle(&self, token: Token, pair: &Pair) {
        let (p, c) = (&*pair.producer, &*pair.consumer);
        assert!(protocol::connect(self.id, token, p, c).is_connected());
        assert!(
            protocol::disconnect(self.id, token, p, c)
                .into_panic()
                .is_none()
        );
    }

    /// The twelve callbacks of a connect and a disconnect, called directly in the protocol's
    /// order: the floor of the two cycles above.
    #[inline]
    pub fn direct_cycle(pair: &Pair) {
        let (p, c) = (&*pair.producer, &*pair.consumer);
        p.stop();
        c.stop();
        assert!(p.add_consumer(c).is_ok() && c.add_producer(p).is_ok());
        c.start();
        p.start();
        p.stop();
        c.stop();
        c.del_producer(p);
        p.del_consumer(c);
        c.start();
        p.start();
    }
}

impl Default for SolePair {
    fn default() -> SolePair {
        SolePair::new()
    }
}

impl fmt::Debug for SolePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SolePair")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Pairs for SolePair {
    type Handle = ();
    type Guard<'h> = RefMut<'h, PairOf<Strong>>;

    fn id(&self) -> RegistryId {
        self.id
    }

    #[inline]
    fn find_for_register<R: Role>(&self, _: Token, _: &mut Option<Arc<R::Me>>) -> Vacancy<()> {
        Vacancy::At(())
    }

    #[inline]
    fn find_for_unregister<R: Role>(&self, _: Token) -> Option<()> {
        Some(())
    }

    #[inline]
    fn lock<'h>(&'h self, (): &'h ()) -> Lock<Self::Guard<'h>> {
        Lock::Held(self.pair.borrow_mut())
    }

    #[inline]
    fn look<R: Role, T>(
        &self,
        guard: &Self::Guard<'_>,
        _: Token,
        f: impl FnOnce(bool, Option<&R::Partner>) -> T,
    ) -> T {
        f(R::mine(guard).is_some(), R::partner(guard).as_deref())
    }

    #[inline]
    fn store<R: Role>(&self, guard: &mut Self::Guard<'_>, _: Token, me: Arc<R::Me>) {
        *R::mine_mut(guard) = Some(me);
    }

    #[inline]
    fn take<R: Role, T>(
        &self,
        guard: &mut Self::Guard<'_>,
        _: Token,
        f: impl FnOnce(&R::Me, Option<&R::Partner>) -> T,
    ) -> Option<(Arc<R::Me>, T)> {
        let me = R::mine_mut(guard).take()?;
        let done = f(&me, R::partner(guard).as_deref());
        Some((me, done))
    }
}

/// A [`Pair`] cycling on its own token of a [`Subject`]: each [`Cycler::step`] is one
/// connect+disconnect cycle.
#[derive(Debug)]
pub struct Cycler {
    token: Token,
    // Invariant: `Some` between steps; a step that panicked leaves `None`.
    pair: Option<Pair>,
}

impl Cycler {
    /// A cycler of `pair` on `token`, which must be free in the subjects it steps.
    pub fn new(token: Token, pair: Pair) -> Cycler {
        Cycler {
            token,
            pair: Some(pair),
        }
    }

    /// The token this cycler uses.
    pub fn token(&self) -> Token {
        self.token
    }

    /// One connect+disconnect cycle ([`Subject::cycle`]) on `subject`.
    ///
    /// # Panics
    /// If the cycle fails, and on every later step after that.
    #[inline]
    pub fn step<S: Subject + ?Sized>(&mut self, subject: &S) {
        let pair = self
            .pair
            .take()
            .expect("a previous cycle of this cycler panicked");
        self.pair = Some(subject.cycle(self.token, pair));
    }
}

/// Runs `work` on `threads` threads and returns how long they took together.
///
/// Each thread first builds its state with `setup(thread)`, then parks on a barrier; the clock
/// starts when the first thread leaves it, once every thread has reached it, and stops when the
/// last thread has finished `work(thread, &mut state)`. The threads read the clock themselves,
/// so a late wake-up of the caller is never counted or missed. Thread start-up, `setup` and
/// dropping the states (after every thread is done) are not timed. A panic in `setup` or
/// `work` reaches the caller once every thread is done, never a deadlock.
pub fn timed_threads<S, Setup, Work>(threads: usize, setup: Setup, work: Work) -> Duration
where
    Setup: Fn(usize) -> S + Sync,
    Work: Fn(usize, &mut S) + Sync,
{
    timed_threads_cpu(threads, setup, work).wall
}

/// Wall time and CPU time of a run of [`timed_threads_cpu`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Times {
    /// From the moment the first thread starts `work`, every thread being ready, to the moment
    /// the last one is done: never less than any one thread's time in `work`.
    pub wall: Duration,
    /// The CPU time the threads spent in `work`, summed over them ([`thread_cpu_time`]): what
    /// scaling is judged on, since waiting for a core of a loaded machine is not counted.
    pub cpu: Duration,
}

/// The CPU time this thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: `now` is a valid `timespec` to write to; the clock exists on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(
        u64::try_from(now.tv_sec).expect("CPU time is positive"),
        u32::try_from(now.tv_nsec).expect("nanoseconds below a second"),
    )
}

/// [`timed_threads`], also summing the CPU time each thread spends in `work`.
pub fn timed_threads_cpu<S, Setup, Work>(threads: usize, setup: Setup, work: Work) -> Times
where
    Setup: Fn(usize) -> S + Sync,
    Work: Fn(usize, &mut S) + Sync,
{
    assert!(threads > 0, "timed_threads needs at least one thread");
    let start_line = Barrier::new(threads);
    let finish_line = Barrier::new(threads);
    // Each worker reads the clocks itself, right after the start line and right before the
    // finish line: the caller's thread may be scheduled late, and a clock it read would then
    // miss part of the work.
    let results: Vec<_> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let (setup, work) = (&setup, &work);
                let (start_line, finish_line) = (&start_line, &finish_line);
                scope.spawn(move || {
                    // Every thread reaches both barriers whatever happens, so that a panic
                    // cannot leave the others waiting; the caller re-raises it.
                    let state = panic::catch_unwind(AssertUnwindSafe(|| setup(thread)));
                    start_line.wait();
                    let (started, cpu_start) = (Instant::now(), thread_cpu_time());
                    let done = state.and_then(|mut state| {
                        panic::catch_unwind(AssertUnwindSafe(|| work(thread, &mut state)))
                            .map(|()| state)
                    });
                    let cpu = thread_cpu_time().saturating_sub(cpu_start);
                    let finished = Instant::now();
                    finish_line.wait();
                    done.map(|state| {
                        drop(state);
                        (started, finished, cpu)
                    })
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().and_then(|done| done))
            .collect()
    });
    let (mut first_start, mut last_finish, mut cpu) =
        (None::<Instant>, None::<Instant>, Duration::ZERO);
    for result in results {
        match result {
            Ok((started, finished, spent)) => {
                first_start = Some(first_start.map_or(started, |first| first.min(started)));
                last_finish = Some(last_finish.map_or(finished, |last| last.max(finished)));
                cpu += spent;
            }
            Err(panic) => panic::resume_unwind(panic),
        }
    }
    let wall = match (first_start, last_finish) {
        (Some(start), Some(finish)) => finish.saturating_duration_since(start),
        _ => Duration::ZERO,
    };
    Times { wall, cpu }
}

/// Runs `measure` while a background thread cycles [`churn_token`] on `subject` as fast as it
/// can (one connect+disconnect after another), as arc-swap's `benches/background.rs` loads its
/// readers. The churner stops and is joined before this returns, also when `measure` panics.
pub fn with_churn<S: Subject + ?Sized, T>(subject: &S, measure: impl FnOnce() -> T) -> T {
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| {
            let mut churner = Cycler::new(churn_token(), Pair::noop());
            while !stop.load(Ordering::Relaxed) {
                churner.step(subject);
            }
        });
        let _stop = StopOnDrop(&stop);
        measure()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bypass_strategies::Backend;

    fn check<S: Subject + ?Sized>(subject: &S) {
        subject.populate(10);
        for index in 0..10 {
            assert_eq!(
                subject.is_paired(token(index)),
                index % 2 == 0,
                "token {index}"
            );
            assert_eq!(subject.producer(token(index)).is_some(), index % 4 != 3);
        }
        let mut cycler = Cycler::new(cycle_token(0), Pair::noop());
        for _ in 0..3 {
            cycler.step(subject);
        }
        assert!(!subject.is_paired(cycler.token()));
        assert!(subject.producer(cycler.token()).is_none());
        let elapsed = with_churn(subject, || {
            timed_threads(
                3,
                |thread| Cycler::new(cycle_token(thread + 1), Pair::spinning(Duration::ZERO)),
                |_, cycler| {
                    for _ in 0..50 {
                        cycler.step(subject);
                    }
                },
            )
        });
        assert!(elapsed > Duration::ZERO);
        assert!(!subject.is_paired(churn_token()));
    }

    #[test]
    fn every_backend_and_floor_cycles() {
        for backend in Backend::ALL {
            let registry = backend.make();
            check(&*registry);
            let population = registry.population();
            assert_eq!((population.producers, population.consumers), (8, 7));
        }
        check(&DashMapFloor::default());
        check(&PapayaFloor::default());
    }

    #[test]
    fn the_protocol_cycles_agree() {
        let sole = SolePair::new();
        let mut pair = Pair::noop();
        for _ in 0..3 {
            pair = sole.registration_cycle(cycle_token(0), pair);
            sole.connect_cycle(cycle_token(0), &pair);
            SolePair::direct_cycle(&pair);
        }
        assert!(sole.pair.borrow().is_empty());
        // Each thread burns 5 ms of its own CPU time: 10 ms in all, in at least 5 ms of wall
        // time however loaded the machine.
        let burn = Duration::from_millis(5);
        let times = timed_threads_cpu(
            2,
            |_| (),
            |_, ()| {
                let start = thread_cpu_time();
                while thread_cpu_time() - start < burn {}
            },
        );
        assert!(times.cpu >= 2 * burn && times.wall >= burn, "{times:?}");
    }

    #[test]
    fn tokens_do_not_overlap() {
        assert!(token(u64::from(u32::MAX)) < cycle_token(0));
        assert!(cycle_token(1 << 19) < churn_token());
        assert_eq!(token(1).get() - token(0).get(), TOKEN_STRIDE);
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn timed_threads_propagates_a_panic() {
        timed_threads(
            2,
            |_| (),
            |thread, ()| {
                if thread == 1 {
                    panic!("boom");
                }
            },
        );
    }
}
