//! Benchmark bodies shared by the `cycle`, `floor` and `track` targets.
//!
//! Each body is generic over the [`Subject`] it times, so the inner loop is statically
//! dispatched; [`Population`] and [`Threads`] are the [`Visitor`]s that instantiate them for a
//! [`bypass_strategies::Backend`], and the floors call them with their own type.

use bypass_benches::{Cycler, Pair, Subject, cycle_token, timed_threads, timed_threads_cpu};
use bypass_registry::Registry;
use bypass_strategies::Visitor;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Throughput};

/// Times one thread's connect+disconnect cycle with `live` unrelated tokens registered first.
/// One iteration is one cycle.
pub(crate) fn population<S: Subject + Default>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    live: usize,
) {
    // Built on first use, so that a benchmark the filter skips costs nothing (populating
    // mutex-list with 100,000 tokens is quadratic and takes seconds), and built once, not once
    // per sample: the cycle leaves the population as it found it.
    let mut fixture: Option<(S, Cycler)> = None;
    group.throughput(Throughput::Elements(1));
    group.bench_function(id, |b| {
        let (subject, cycler) = fixture.get_or_insert_with(|| {
            let subject = S::default();
            subject.populate(live);
            (subject, Cycler::new(cycle_token(0), Pair::noop()))
        });
        b.iter(|| cycler.step(subject));
    });
}

/// Times the cycle on `threads` threads at once, each on its own token with its own
/// `pair()`, on an otherwise empty subject. One iteration is one cycle on every thread, so the
/// throughput is in cycles a second summed over the threads.
pub(crate) fn threads<S: Subject + Default>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    threads: usize,
    pair: fn() -> Pair,
) {
    let mut fixture: Option<S> = None;
    group.throughput(Throughput::Elements(
        u64::try_from(threads).expect("thread count fits in u64"),
    ));
    group.bench_function(id, |b| {
        let subject = &*fixture.get_or_insert_with(S::default);
        // The threads start and park on a barrier before the clock starts (timed_threads).
        b.iter_custom(|iters| {
            timed_threads(
                threads,
                |thread| Cycler::new(cycle_token(thread), pair()),
                |_, cycler| {
                    for _ in 0..iters {
                        cycler.step(subject);
                    }
                },
            )
        });
    });
}

/// As [`threads`], but what is reported is the threads' CPU time a cycle
/// (`CLOCK_THREAD_CPUTIME_ID`, summed over the threads, divided by the cycles they ran): one
/// iteration is one cycle, so a backend that scales keeps the same time at every thread
/// count, however many other processes share the cores.
pub(crate) fn threads_cpu<S: Subject + Default>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    threads: usize,
    pair: fn() -> Pair,
) {
    let mut fixture: Option<S> = None;
    group.throughput(Throughput::Elements(1));
    group.bench_function(id, |b| {
        let subject = &*fixture.get_or_insert_with(S::default);
        b.iter_custom(|iters| {
            let times = timed_threads_cpu(
                threads,
                |thread| Cycler::new(cycle_token(thread), pair()),
                |_, cycler| {
                    for _ in 0..iters {
                        cycler.step(subject);
                    }
                },
            );
            times.cpu / u32::try_from(threads).expect("thread count fits in u32")
        });
    });
}

/// Runs [`population`] for the visited backend.
pub(crate) struct Population<'a, 'c> {
    pub(crate) group: &'a mut BenchmarkGroup<'c, WallTime>,
    pub(crate) id: BenchmarkId,
    pub(crate) live: usize,
}

impl Visitor for Population<'_, '_> {
    type Output = ();
    fn visit<R: Registry + Default + 'static>(self) {
        population::<R>(self.group, self.id, self.live);
    }
}

/// Runs [`threads`] (or, with `cpu`, [`threads_cpu`]) for the visited backend.
pub(crate) struct Threads<'a, 'c> {
    pub(crate) group: &'a mut BenchmarkGroup<'c, WallTime>,
    pub(crate) id: BenchmarkId,
    pub(crate) threads: usize,
    pub(crate) pair: fn() -> Pair,
    pub(crate) cpu: bool,
}

impl Visitor for Threads<'_, '_> {
    type Output = ();
    fn visit<R: Registry + Default + 'static>(self) {
        if self.cpu {
            threads_cpu::<R>(self.group, self.id, self.threads, self.pair);
        } else {
            threads::<R>(self.group, self.id, self.threads, self.pair);
        }
    }
}
