//! The report's charts, drawn as SVG with plotters.
//!
//! Each chart function returns the chart, or why it cannot be drawn (the data it needs is
//! missing), which the report prints in its place. Text in the SVG is laid out by whatever
//! displays it (plotters is built without a font engine), so labels use generic font families.
//!
//! | module | what it holds |
//! |---|---|
//! | `axis` | linear, log and category axes, their ticks and labels |
//! | `frame` | the SVG document, titles and grids in the report's style, the legend, line and bar plots |
//! | `series` | each backend's colour, the lines and bars, the lines read from criterion |
//! | `threads` | throughput against threads |
//! | `population` | connect+disconnect cost against live tokens |
//! | `lookup` | lookup throughput under churn |
//! | `latency` | latency percentiles, a chart per scenario |
//! | `bus` | the virtio bus's device and driver costs against its population |

mod axis;
mod bus;
mod frame;
mod latency;
mod lookup;
mod population;
mod series;
mod threads;

pub(crate) use bus::{device_population, driver_population};
pub(crate) use latency::latency;
pub(crate) use lookup::lookup;
pub(crate) use population::cost_population;
pub(crate) use series::Colors;
pub(crate) use threads::throughput_threads;

/// One chart: its file name, title, caption and SVG text.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The file name the report writes it to (`throughput-threads.svg`, …).
    pub file: String,
    /// The title, also drawn in the chart.
    pub title: String,
    /// What it shows and where the figures come from.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::Colors;
    use crate::criterion::CriterionData;
    use crate::criterion::tests::{temp_dir, write_benchmark};
    use crate::recommend::tests::repeats;
    use crate::schema::{FLOOR, RunResult, Scenario, Sweep, SweepAxis, SweepPoint};

    /// Criterion data for backends `mutex-map` and `rcu` in every group the charts read, and
    /// the dashmap floor, in a temporary directory named after `name` (removed by the caller).
    pub(crate) fn criterion_fixture(name: &str) -> (PathBuf, CriterionData, Vec<String>, Colors) {
        let root = temp_dir(name);
        for (backend, ns) in [("mutex-map", 400.0), ("rcu", 300.0)] {
            for t in [1u64, 2, 4, 16] {
                write_benchmark(
                    &root,
                    "cycle_threads",
                    backend,
                    &t.to_string(),
                    t,
                    ns * t as f64,
                );
            }
            for live in [0u64, 1000, 10_000, 100_000] {
                write_benchmark(&root, "cycle_population", backend, &live.to_string(), 1, ns);
            }
            write_benchmark(&root, "lookup", backend, "is_paired", 1, ns / 10.0);
        }
        write_benchmark(&root, "floor", "dashmap", "threads=2", 2, 100.0);
        write_benchmark(&root, "floor", "dashmap", "population=1000", 1, 90.0);
        let criterion = CriterionData::read(&root);
        let backends = vec!["mutex-map".to_string(), "rcu".to_string()];
        let colors = Colors::new(&backends);
        (root, criterion, backends, colors)
    }

    /// A sweep of `backends` and the floor, each a point at every population and thread
    /// count, the floor cheapest.
    pub(crate) fn sweep_fixture(backends: &[String]) -> Sweep {
        let mut points = Vec::new();
        let names = backends.iter().map(String::as_str).chain([FLOOR]);
        for (i, backend) in names.enumerate() {
            let ns = if backend == FLOOR {
                50.0
            } else {
                200.0 * (i + 1) as f64
            };
            for (axis, x) in [0, 1_000, 100_000]
                .map(|x| (SweepAxis::Population, x))
                .into_iter()
                .chain([1, 2, 4].map(|x| (SweepAxis::Threads, x)))
            {
                let threads = if axis == SweepAxis::Threads { x } else { 1 };
                points.push(SweepPoint {
                    backend: backend.to_string(),
                    axis,
                    x,
                    cycles_per_s: threads as f64 * 1e9 / ns,
                    wall_ns_per_cycle: ns,
                    cpu_ns_per_cycle: Some(ns),
                });
            }
        }
        Sweep {
            machine: Default::default(),
            samples: 5,
            sample_s: 0.06,
            points,
            left_out: Vec::new(),
        }
    }

    /// Three repeats of delivery-lookup and boot-storm for backends `a` and `b`, at one
    /// thread count.
    pub(crate) fn results_fixture() -> (Vec<RunResult>, Vec<String>, Colors) {
        let mut results = Vec::new();
        repeats(
            &mut results,
            Scenario::DeliveryLookup,
            &[("a", 1e6), ("b", 2e6)],
            0.1,
        );
        repeats(
            &mut results,
            Scenario::BootStorm,
            &[("a", 1e5), ("b", 3e5)],
            0.1,
        );
        let backends = vec!["a".to_string(), "b".to_string()];
        let colors = Colors::new(&backends);
        (results, backends, colors)
    }
}
