//! `lookup`: the read path ("is this vector bypassed, and by whom?") on 100,000 live tokens
//! while a background thread cycles registrations as fast as it can, on every backend of
//! `Backend::ALL` and on the floor maps. One iteration is one lookup.

use std::hint::black_box;

use bypass_benches::{DashMapFloor, Floor, LOOKUP_LIVE, PapayaFloor, Subject, token, with_churn};
use bypass_registry::Registry;
use bypass_strategies::{Backend, Visitor};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};

/// Walks every live token in a scattered order, half of them paired: a step is an add and a
/// compare, the same for every subject.
struct Walk {
    index: u64,
    live: u64,
}

impl Walk {
    /// A prime that does not divide the population, so the walk visits every token.
    const STRIDE: u64 = 7_919;

    fn new(live: usize) -> Walk {
        let live = u64::try_from(live).expect("population fits in u64");
        assert!(live > 0 && live % Walk::STRIDE != 0);
        Walk { index: 0, live }
    }

    #[inline]
    fn next(&mut self) -> bypass_registry::Token {
        self.index += Walk::STRIDE;
        if self.index >= self.live {
            self.index -= self.live;
        }
        token(self.index)
    }
}

fn lookup<S: Subject + Default>(group: &mut BenchmarkGroup<'_, WallTime>, function: &str) {
    // Built on first use and shared by both lookups: populating mutex-list with 100,000 tokens
    // is quadratic and takes seconds. The churner thread runs only while a sample is taken.
    let mut fixture: Option<S> = None;
    let build = || {
        let subject = S::default();
        subject.populate(LOOKUP_LIVE);
        subject
    };
    group.bench_function(BenchmarkId::new(function, "is_paired"), |b| {
        let subject = &*fixture.get_or_insert_with(build);
        let mut walk = Walk::new(LOOKUP_LIVE);
        with_churn(subject, || {
            b.iter(|| subject.is_paired(black_box(walk.next())))
        });
    });
    group.bench_function(BenchmarkId::new(function, "producer"), |b| {
        let subject = &*fixture.get_or_insert_with(build);
        let mut walk = Walk::new(LOOKUP_LIVE);
        with_churn(subject, || {
            b.iter(|| subject.producer(black_box(walk.next())))
        });
    });
}

struct Lookup<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    function: &'static str,
}

impl Visitor for Lookup<'_, '_> {
    type Output = ();
    fn visit<R: Registry + Default + 'static>(self) {
        lookup::<R>(self.group, self.function);
    }
}

fn lookup_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    // The timing of the other full groups (`full_timing` in cycle.rs): the whole default run
    // has to fit in about a quarter of an hour on two shared cores. mutex-list's O(n) scans
    // make its lookups slow, but criterion's sampling keeps each benchmark near its
    // measurement time regardless.
    group
        .throughput(Throughput::Elements(1))
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    for &backend in Backend::ALL {
        backend.visit(Lookup {
            group: &mut group,
            function: backend.name(),
        });
    }
    lookup::<DashMapFloor>(&mut group, DashMapFloor::NAME);
    lookup::<PapayaFloor>(&mut group, PapayaFloor::NAME);
    group.finish();
}

criterion_group!(benches, lookup_group);
criterion_main!(benches);
