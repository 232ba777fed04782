//! The sweep `bypass compare` makes beside its runs: connect+disconnect cycles (register
//! producer, register consumer, unregister both) made straight on each backend and on the
//! floor, with no harness around the calls, on one thread against the live tokens already
//! registered, and on 1, 2 and 4 threads on an empty registry, each thread on its own token.
//! Each point is the median of a few short samples, in wall time and in the cycling threads'
//! CPU time. It is the criterion `cycle_population` and `cycle_threads` groups in small, so
//! that the report's charts of cost against live tokens and throughput against threads have
//! figures without a `cargo bench`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use bypass_registry::{Consumer, Producer, Registry, Token};
use bypass_reports::Spread;
use bypass_reports::schema::{Sweep, SweepAxis, SweepPoint};
use bypass_strategies::{Backend, Visitor};

use crate::floor::Floor;
use crate::measure;
use crate::runner::Quiet;

/// The live tokens the one-thread cycle runs against.
pub const POPULATIONS: [u64; 3] = [0, 1_000, 100_000];

/// The thread counts that cycle at once, each on its own token.
pub const THREADS: [usize; 3] = [1, 2, 4];

/// The first live token of a population; the cycling threads use tokens 1 to 4.
const FIRST_LIVE: u64 = 1 << 20;

/// Cycles a thread makes between two looks at the stop flag.
const BATCH: u64 = 64;

/// How long the sweep samples each point, and how long a population may take to fill.
#[derive(Clone, Copy, Debug)]
pub struct SweepConfig {
    /// Samples per point; the point is their median.
    pub samples: u32,
    /// The length of one sample.
    pub sample: Duration,
    /// A population that takes longer than this to register is left out (mutex-list's O(n)
    /// scans make 100,000 live tokens take many seconds).
    pub fill_budget: Duration,
}

impl SweepConfig {
    /// `bypass compare`'s sweep: five samples of 60 ms a point (`--quick`), or of 200 ms.
    pub fn compare(quick: bool) -> SweepConfig {
        SweepConfig {
            samples: 5,
            sample: Duration::from_millis(if quick { 60 } else { 200 }),
            fill_budget: Duration::from_secs(if quick { 2 } else { 5 }),
        }
    }
}

/// Sweeps every backend of `backends`, then the floor.
pub fn sweep(backends: &[Backend], config: &SweepConfig) -> Sweep {
    struct V<'a>(&'a SweepConfig, &'a mut Sweep);
    impl Visitor for V<'_> {
        type Output = ();
        fn visit<R: Registry + Default + 'static>(self) {
            points_of(R::default, self.0, self.1);
        }
    }
    let mut out = Sweep {
        machine: measure::machine(),
        samples: config.samples,
        sample_s: config.sample.as_secs_f64(),
        points: Vec::new(),
        left_out: Vec::new(),
    };
    for backend in backends {
        backend.visit(V(config, &mut out));
    }
    points_of(Floor::default, config, &mut out);
    out
}

/// The points of the registries `make` makes, a fresh one for each point.
fn points_of<R: Registry>(make: impl Fn() -> R, config: &SweepConfig, out: &mut Sweep) {
    for live in POPULATIONS {
        let registry = make();
        let name = registry.name();
        if !populate(&registry, live, config.fill_budget) {
            out.left_out.push(format!(
                "{name} at {live} live tokens: registering them took over {:.0} s",
                config.fill_budget.as_secs_f64()
            ));
            continue;
        }
        let samples: Vec<Sample> = (0..config.samples)
            .map(|_| cycle(&registry, 1, config.sample))
            .collect();
        out.points
            .push(point(name, SweepAxis::Population, live, 1, &samples));
    }
    for threads in THREADS {
        let registry = make();
        let samples: Vec<Sample> = (0..config.samples)
            .map(|_| cycle(&registry, threads, config.sample))
            .collect();
        out.points.push(point(
            registry.name(),
            SweepAxis::Threads,
            threads as u64,
            threads,
            &samples,
        ));
    }
}

/// Registers `live` unrelated tokens, a producer on each and a consumer on every other one;
/// false if that took longer than `budget`.
fn populate<R: Registry>(registry: &R, live: u64, budget: Duration) -> bool {
    let (producer, consumer) = quiet();
    let start = Instant::now();
    for i in 0..live {
        let t = Token::new(FIRST_LIVE + i).expect("a valid token");
        let _ = registry.register_producer(t, producer.clone());
        if i % 2 == 0 {
            let _ = registry.register_consumer(t, consumer.clone());
        }
        if i % 1024 == 0 && start.elapsed() > budget {
            return false;
        }
    }
    true
}

fn quiet() -> (Arc<dyn Producer>, Arc<dyn Consumer>) {
    (Arc::new(Quiet::default()), Arc::new(Quiet::default()))
}

/// One sample: cycles made, the wall time they took, the threads' CPU time.
struct Sample {
    cycles: u64,
    wall: Duration,
    cpu: Option<Duration>,
}

/// `threads` threads cycling tokens 1 to `threads` on `registry` for `length`.
fn cycle<R: Registry>(registry: &R, threads: usize, length: Duration) -> Sample {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    thread::scope(|s| {
        let handles: Vec<_> = (1..=threads as u64)
            .map(|t| {
                let (stop, barrier) = (&stop, &barrier);
                s.spawn(move || {
                    let t = Token::new(t).expect("a valid token");
                    let (producer, consumer) = quiet();
                    barrier.wait();
                    let cpu = thread_cpu();
                    let mut cycles = 0;
                    // At least one batch, so that a thread the scheduler started late still
                    // counts.
                    loop {
                        for _ in 0..BATCH {
                            let connected = registry.register_producer(t, producer.clone());
                            let paired = registry.register_consumer(t, consumer.clone());
                            debug_assert!(connected.is_ok() && paired.is_ok());
                            let _ = registry.unregister_producer(t);
                            let _ = registry.unregister_consumer(t);
                        }
                        cycles += BATCH;
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    let cpu = thread_cpu().zip(cpu).map(|(end, start)| end - start);
                    (cycles, cpu)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        thread::sleep(length);
        stop.store(true, Ordering::Relaxed);
        let mut sample = Sample {
            cycles: 0,
            wall: Duration::ZERO,
            cpu: Some(Duration::ZERO),
        };
        for handle in handles {
            let (cycles, cpu) = handle.join().expect("a cycling thread panicked");
            sample.cycles += cycles;
            sample.cpu = sample.cpu.zip(cpu).map(|(a, b)| a + b);
        }
        sample.wall = start.elapsed();
        sample
    })
}

/// The median of `values` (0 if there are none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    Spread::of(values).map_or(0.0, |s| s.median)
}

/// A point from its samples' medians.
fn point(backend: &str, axis: SweepAxis, x: u64, threads: usize, samples: &[Sample]) -> SweepPoint {
    let rate = |s: &Sample| s.cycles as f64 / s.wall.as_secs_f64();
    let cycles_per_s = median(samples.iter().map(rate));
    let cpu: Option<Vec<f64>> = samples
        .iter()
        .map(|s| Some(s.cpu?.as_nanos() as f64 / s.cycles.max(1) as f64))
        .collect();
    SweepPoint {
        backend: backend.to_string(),
        axis,
        x,
        cycles_per_s,
        wall_ns_per_cycle: threads as f64 * 1e9 / cycles_per_s,
        cpu_ns_per_cycle: cpu.map(|c| median(c.into_iter())),
    }
}

/// The CPU time the calling thread has spent, where the system says.
#[cfg(unix)]
fn thread_cpu() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Safety: `now` is a valid timespec to write to, and the clock id is a constant of the
    // system's headers.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (rc == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// The CPU time the calling thread has spent: not known here.
#[cfg(not(unix))]
fn thread_cpu() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_of_a_backend_and_the_floor() {
        let config = SweepConfig {
            samples: 1,
            sample: Duration::from_millis(2),
            fill_budget: Duration::from_secs(30),
        };
        let sweep = sweep(&[Backend::MutexMap], &config);
        assert!(sweep.left_out.is_empty(), "{:?}", sweep.left_out);
        for name in ["mutex-map", "floor"] {
            let mine: Vec<&SweepPoint> =
                sweep.points.iter().filter(|p| p.backend == name).collect();
            assert_eq!(mine.len(), POPULATIONS.len() + THREADS.len(), "{name}");
            assert!(
                mine.iter()
                    .all(|p| p.cycles_per_s > 0.0 && p.wall_ns_per_cycle > 0.0)
            );
        }
        let text = serde_json::to_string(&sweep).unwrap();
        let again: Sweep = serde_json::from_str(&text).unwrap();
        assert_eq!(again.points.len(), sweep.points.len());
        assert!(again.points.iter().zip(&sweep.points).all(|(a, b)| {
            (a.backend.as_str(), a.axis, a.x) == (b.backend.as_str(), b.axis, b.x)
        }));
    }
}
