//! `track`: a short set for CI, every backend of `Backend::ALL` and the floor maps at a small
//! population on one thread and on two threads. CI runs it in criterion's test mode (each
//! benchmark once, no measurement) as a smoke test:
//! `cargo bench -p bypass-benches --bench track -- --test`.
//! Without `--test` it measures briefly, enough to spot a large regression against a saved
//! baseline.

mod common;

use std::time::Duration;

use bypass_benches::{DashMapFloor, Floor, Pair, PapayaFloor, Subject};
use bypass_strategies::Backend;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

use common::{Population, Threads, population, threads};

/// Live tokens for the one-thread cycle: enough to leave the empty-map fast paths.
const LIVE: usize = 1_000;
/// Threads for the concurrent cycle: one per core of a CI machine.
const THREADS: usize = 2;

fn floor_of<F: Floor + Subject>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let id = BenchmarkId::new(F::NAME, format!("population={LIVE}"));
    population::<F>(group, id, LIVE);
    let id = BenchmarkId::new(F::NAME, format!("threads={THREADS}"));
    threads::<F>(group, id, THREADS, Pair::noop);
}

fn track(c: &mut Criterion) {
    let mut group = c.benchmark_group("track");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for &backend in Backend::ALL {
        backend.visit(Population {
            group: &mut group,
            id: BenchmarkId::new(backend.name(), format!("population={LIVE}")),
            live: LIVE,
        });
        backend.visit(Threads {
            group: &mut group,
            id: BenchmarkId::new(backend.name(), format!("threads={THREADS}")),
            threads: THREADS,
            pair: Pair::noop,
            cpu: false,
        });
    }
    floor_of::<DashMapFloor>(&mut group);
    floor_of::<PapayaFloor>(&mut group);
    group.finish();
}

criterion_group!(benches, track);
criterion_main!(benches);
