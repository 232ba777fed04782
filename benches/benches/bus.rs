//! The virtio bus on every backend of `Backend::ALL` (`Backend::visit_bus`):
//!
//! - `bus_device`: one thread registers then unregisters a device that binds to the last of
//!   the registered drivers (its offer matches every driver's table), against the live devices
//!   (1, 1,000, 100,000, with 8 drivers) and the drivers (1, 8, 64, with 1,000 live devices).
//! - `bus_driver`: a driver registered then unregistered, binding and then removing every one
//!   of 1, 1,000 or 100,000 unbound devices.
//! - `bus_probe_threads`: 1, 2 and 4 threads, each registering and unregistering its own device
//!   (one probe and one remove a cycle), on a bus with one driver.

use std::sync::Arc;
use std::time::Duration;

use bypass_benches::bus::{DeviceCycle, NoopDriver, device, driver_name, populate_bus};
use bypass_benches::timed_threads;
use bypass_registry::bus::Bus;
use bypass_strategies::Backend;
use bypass_strategies::bus::BusVisitor;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};

/// Samples per benchmark, as in `cycle`.
const SAMPLES: usize = 30;

fn full_timing(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// The fewest samples criterion allows and a short measurement, for points whose iteration
/// (or setup) takes milliseconds.
fn short_timing(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// `bus_device` for one backend and point.
struct DevicePoint<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    id: BenchmarkId,
    live: usize,
    drivers: usize,
}

impl BusVisitor for DevicePoint<'_, '_> {
    type Output = ();
    fn visit<B: Bus + Default + 'static>(self) {
        // Built on first use (a filtered-out point costs nothing) and once: the cycle leaves
        // the bus as it found it.
        let mut fixture: Option<(B, DeviceCycle)> = None;
        let (live, drivers) = (self.live, self.drivers);
        self.group.throughput(Throughput::Elements(1));
        self.group.bench_function(self.id, |b| {
            let (bus, cycle) = fixture.get_or_insert_with(|| {
                let bus = B::default();
                populate_bus(&bus, live, drivers);
                let last = u32::try_from(drivers).expect("few drivers");
                (bus, DeviceCycle::new(0, last))
            });
            b.iter(|| cycle.step(bus));
        });
    }
}

fn bus_device(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus_device");
    let points = [(1, 8), (1_000, 8), (100_000, 8), (1_000, 1), (1_000, 64)];
    for &backend in Backend::ALL {
        for (live, drivers) in points {
            full_timing(&mut group);
            if backend == Backend::MutexList && live >= 100_000 {
                // mutex-list scans its device list on every call.
                short_timing(&mut group);
            }
            backend.visit_bus(DevicePoint {
                group: &mut group,
                id: BenchmarkId::new(backend.name(), format!("live={live}/drivers={drivers}")),
                live,
                drivers,
            });
        }
    }
    group.finish();
}

/// `bus_driver` for one backend and number of devices.
struct DriverPoint<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    id: BenchmarkId,
    devices: usize,
}

impl BusVisitor for DriverPoint<'_, '_> {
    type Output = ();
    fn visit<B: Bus + Default + 'static>(self) {
        let mut fixture: Option<B> = None;
        let devices = self.devices;
        self.group
            .throughput(Throughput::Elements(devices.try_into().expect("fits")));
        self.group.bench_function(self.id, |b| {
            let bus = &*fixture.get_or_insert_with(|| {
                let bus = B::default();
                for k in 1..=devices as u64 {
                    bus.register_device(device(k, 1))
                        .expect("register a device");
                }
                bus
            });
            let name = driver_name(0);
            let mut driver =
                Some(Arc::new(NoopDriver::of_type(1)) as Arc<dyn bypass_registry::bus::Driver>);
            b.iter(|| {
                let d = driver.take().expect("the loop holds the driver");
                bus.register_driver(name, d).expect("register the driver");
                driver = Some(bus.unregister_driver(name).expect("unregister it"));
            });
        });
    }
}

fn bus_driver(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus_driver");
    for &backend in Backend::ALL {
        for devices in [1, 1_000, 100_000] {
            if backend == Backend::MutexList && devices >= 100_000 {
                // Each bind and unbind scans mutex-list's device list: quadratic, minutes an
                // iteration. The 1,000 point shows the trend.
                continue;
            }
            if devices >= 100_000 {
                short_timing(&mut group);
            } else {
                full_timing(&mut group);
            }
            backend.visit_bus(DriverPoint {
                group: &mut group,
                id: BenchmarkId::new(backend.name(), format!("devices={devices}")),
                devices,
            });
        }
    }
    group.finish();
}

/// `bus_probe_threads` for one backend and thread count.
struct ThreadsPoint<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    id: BenchmarkId,
    threads: usize,
}

impl BusVisitor for ThreadsPoint<'_, '_> {
    type Output = ();
    fn visit<B: Bus + Default + 'static>(self) {
        let mut fixture: Option<B> = None;
        let threads = self.threads;
        self.group
            .throughput(Throughput::Elements(threads.try_into().expect("fits")));
        self.group.bench_function(self.id, |b| {
            let bus = &*fixture.get_or_insert_with(|| {
                let bus = B::default();
                populate_bus(&bus, 0, 1);
                bus
            });
            // The threads start and park on a barrier before the clock starts.
            b.iter_custom(|iters| {
                timed_threads(
                    threads,
                    |thread| DeviceCycle::new(thread, 1),
                    |_, cycle| {
                        for _ in 0..iters {
                            cycle.step(bus);
                        }
                    },
                )
            });
        });
    }
}

fn bus_probe_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus_probe_threads");
    full_timing(&mut group);
    for &backend in Backend::ALL {
        for threads in [1, 2, 4] {
            backend.visit_bus(ThreadsPoint {
                group: &mut group,
                id: BenchmarkId::new(backend.name(), threads),
                threads,
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bus_device, bus_driver, bus_probe_threads);
criterion_main!(benches);
