//! The connect+disconnect cycle on every backend of `Backend::ALL`, and its floor:
//!
//! - `cycle_population`: one thread, with 0 to 100,000 unrelated live tokens registered first.
//! - `cycle_population` also runs the backends built to scale (and the floor) with 1,000,000
//!   live tokens.
//! - `cycle_threads`: 1 to 16 threads at once, each on its own token.
//! - `cycle_threads_cpu`: the same, and the floor's, in thread CPU time a cycle (summed over
//!   the threads): what scaling is judged on, since a loaded machine's wait for a core is not
//!   counted.
//! - `protocol`: the callback protocol's own cost, on one thread with no-op callbacks: a cycle
//!   through `registration` over a pair with no concurrency, the same connect and disconnect
//!   through `protocol` alone, and the twelve callbacks called directly.
//! - `floor`: the same inserts and removes on raw concurrent maps (dashmap, papaya), with no
//!   protocol, at the same populations and thread counts: what a backend would cost if the
//!   registry were only its map.
//! - `callback_cost`: 2 threads whose `stop` and `start` callbacks take 1 µs each.

mod common;

use std::time::Duration;

use std::hint::black_box;

use bypass_benches::{
    CALLBACK_COST, DashMapFloor, Floor, LARGE_POPULATION, POPULATIONS, Pair, PapayaFloor, SolePair,
    Subject, THREADS, cycle_token,
};
use bypass_strategies::Backend;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

use common::{Population, Threads, population, threads, threads_cpu};

/// Samples per benchmark in the full groups: fewer than criterion's 100, because the whole run
/// has to fit in about a quarter of an hour on two shared cores; 30 still gives a usable median.
const SAMPLES: usize = 30;

/// Sets the timing of a full group: about 5 s a benchmark with the analysis, so the default
/// `cargo bench -p bypass-benches` stays well under 20 minutes with five backends.
fn full_timing(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn cycle_population(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle_population");
    for &backend in Backend::ALL {
        for live in POPULATIONS {
            full_timing(&mut group);
            if backend == Backend::MutexList && live >= 100_000 {
                // mutex-list scans its lists on every call: at 100,000 live tokens one cycle
                // costs hundreds of µs (and populating it, seconds). Keep the point, the whole
                // reason upstream left lists, but with the fewest samples criterion allows and
                // a short measurement, so the group stays practical.
                group
                    .sample_size(10)
                    .warm_up_time(Duration::from_millis(500))
                    .measurement_time(Duration::from_secs(2));
            }
            backend.visit(Population {
                group: &mut group,
                id: BenchmarkId::new(backend.name(), live),
                live,
            });
        }
    }
    // The backends built to scale, at a population none of the others reaches in time.
    for backend in [Backend::LockFree, Backend::Sharded] {
        full_timing(&mut group);
        backend.visit(Population {
            group: &mut group,
            id: BenchmarkId::new(backend.name(), LARGE_POPULATION),
            live: LARGE_POPULATION,
        });
    }
    group.finish();
}

/// Every backend at every thread count, in wall time or (`cpu`) in thread CPU time a cycle.
fn backends_by_threads(group: &mut BenchmarkGroup<'_, WallTime>, cpu: bool) {
    for &backend in Backend::ALL {
        for count in THREADS {
            backend.visit(Threads {
                group: &mut *group,
                id: BenchmarkId::new(backend.name(), count),
                threads: count,
                pair: Pair::noop,
                cpu,
            });
        }
    }
}

fn cycle_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle_threads");
    full_timing(&mut group);
    backends_by_threads(&mut group, false);
    group.finish();
}

fn cycle_threads_cpu(c: &mut Criterion) {
    let mut group = c.benchmark_group("cycle_threads_cpu");
    full_timing(&mut group);
    backends_by_threads(&mut group, true);
    for count in THREADS {
        let id = BenchmarkId::new(DashMapFloor::NAME, format!("threads={count}"));
        threads_cpu::<DashMapFloor>(&mut group, id, count, Pair::noop);
        let id = BenchmarkId::new(PapayaFloor::NAME, format!("threads={count}"));
        threads_cpu::<PapayaFloor>(&mut group, id, count, Pair::noop);
    }
    group.finish();
}

fn protocol(c: &mut Criterion) {
    let mut group = c.benchmark_group("protocol");
    full_timing(&mut group);
    let token = cycle_token(0);
    group.bench_function("direct", |b| {
        let pair = Pair::noop();
        b.iter(|| SolePair::direct_cycle(black_box(&pair)));
    });
    group.bench_function("connect", |b| {
        let (sole, pair) = (SolePair::new(), Pair::noop());
        b.iter(|| sole.connect_cycle(token, black_box(&pair)));
    });
    group.bench_function("registration", |b| {
        let sole = SolePair::new();
        let mut pair = Some(Pair::noop());
        b.iter(|| pair = Some(sole.registration_cycle(token, black_box(pair.take().unwrap()))));
    });
    group.finish();
}

fn floor_of<F: Floor + Subject>(group: &mut BenchmarkGroup<'_, WallTime>) {
    for live in POPULATIONS.into_iter().chain([LARGE_POPULATION]) {
        let id = BenchmarkId::new(F::NAME, format!("population={live}"));
        population::<F>(group, id, live);
    }
    for count in THREADS {
        let id = BenchmarkId::new(F::NAME, format!("threads={count}"));
        threads::<F>(group, id, count, Pair::noop);
    }
}

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    full_timing(&mut group);
    floor_of::<DashMapFloor>(&mut group);
    floor_of::<PapayaFloor>(&mut group);
    group.finish();
}

fn callback_pair() -> Pair {
    Pair::spinning(CALLBACK_COST)
}

fn callback_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("callback_cost");
    full_timing(&mut group);
    for &backend in Backend::ALL {
        // Each cycle spends 8 µs in callbacks (stop and start on both sides, at connect and at
        // disconnect): a backend that runs different tokens' callbacks in parallel approaches
        // 8 µs an iteration on two cores, a global lock 16 µs.
        backend.visit(Threads {
            group: &mut group,
            id: BenchmarkId::new(backend.name(), "threads=2,callback=1us"),
            threads: 2,
            pair: callback_pair,
            cpu: false,
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    cycle_population,
    cycle_threads,
    cycle_threads_cpu,
    floor,
    protocol,
    callback_cost
);
criterion_main!(benches);
