//! How much each measure counts, per workload, and the margins a winner needs: the one place
//! the method's judgement is written down, as data the report prints.

use super::Workload;
use crate::schema::{Operation, ScenarioKind};

/// A statistic of an operation's latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stat {
    /// The 99.9th percentile.
    P999,
    /// The slowest operation of the run.
    Max,
}

/// A figure a backend is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// Operations (or criterion iterations) a second.
    Throughput,
    /// A latency statistic of one kind of operation.
    Latency(Operation, Stat),
}

/// Which way a measure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// More is better (throughput).
    HigherIsBetter,
    /// Less is better (latency).
    LowerIsBetter,
}

impl Measure {
    /// Which way the measure is better.
    pub const fn direction(self) -> Direction {
        match self {
            Measure::Throughput => Direction::HigherIsBetter,
            Measure::Latency(..) => Direction::LowerIsBetter,
        }
    }

    /// Below this ratio of medians two backends tie on the measure, whatever their ranges:
    /// [`MIN_MARGIN`] for throughput, [`TAIL_BAND`] for a latency tail.
    pub const fn band(self) -> f64 {
        match self {
            Measure::Throughput => MIN_MARGIN,
            Measure::Latency(..) => TAIL_BAND,
        }
    }

    /// The name the report gives it: `throughput`, `register p99.9`.
    pub fn name(self) -> String {
        match self {
            Measure::Throughput => "throughput".into(),
            Measure::Latency(op, Stat::P999) => format!("{op} p99.9"),
            Measure::Latency(op, Stat::Max) => format!("{op} max"),
        }
    }
}

/// One row of the weighting table: a measure and how much it counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weight {
    /// The measure.
    pub measure: Measure,
    /// Its weight among the workload's measures.
    pub weight: f64,
}

/// The measures of one workload, and how common the workload is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weighting {
    /// The workload.
    pub workload: Workload,
    /// How common the workload is among VMMs' loads, as the weight of its verdict in the
    /// overall default.
    pub prevalence: f64,
    /// Its measures, heaviest first.
    pub weights: &'static [Weight],
}

const fn w(measure: Measure, weight: f64) -> Weight {
    Weight { measure, weight }
}

const THROUGHPUT: Measure = Measure::Throughput;
const REGISTER_P999: Measure = Measure::Latency(Operation::Register, Stat::P999);
const REGISTER_MAX: Measure = Measure::Latency(Operation::Register, Stat::Max);
const UNREGISTER_P999: Measure = Measure::Latency(Operation::Unregister, Stat::P999);
const UNREGISTER_MAX: Measure = Measure::Latency(Operation::Unregister, Stat::Max);
const LOOKUP_P999: Measure = Measure::Latency(Operation::Lookup, Stat::P999);
const DEVICE_REGISTER_P999: Measure = Measure::Latency(Operation::RegisterDevice, Stat::P999);
const DEVICE_REGISTER_MAX: Measure = Measure::Latency(Operation::RegisterDevice, Stat::Max);
const DEVICE_UNREGISTER_P999: Measure = Measure::Latency(Operation::UnregisterDevice, Stat::P999);
const DEVICE_UNREGISTER_MAX: Measure = Measure::Latency(Operation::UnregisterDevice, Stat::Max);
const DRIVER_REGISTER_MAX: Measure = Measure::Latency(Operation::RegisterDriver, Stat::Max);
const DRIVER_UNREGISTER_MAX: Measure = Measure::Latency(Operation::UnregisterDriver, Stat::Max);

/// The weighting table: per workload, its measures and their weights, and how common it is.
///
/// - Boot storms: how long the storm takes (throughput) and how long the unluckiest VM waits
///   to register its irqfds (register tail) count alike; the teardown half of restore and
///   flood counts half as much.
/// - Churn: create and destroy are the load in equal parts, so throughput and both tails.
/// - Read-heavy delivery: the lookup on every interrupt is what the guest feels, so its p99.9
///   weighs as much as throughput; the churning registrations around it count little.
/// - Slow callbacks: the question is whether other tokens wait behind a slow callback, which
///   shows in the tails of both operations; throughput counts half.
///
/// Maxima are single samples, noisier than p99.9, so they weigh half of it. Delivery is the
/// most common load (every interrupt of every VM), boot storms and churn come with a fleet's
/// deployments, slow callbacks only with interrupt-remapping hardware.
pub const WEIGHTING: [Weighting; 4] = [
    Weighting {
        workload: Workload::BootStorms,
        prevalence: 2.0,
        weights: &[
            w(THROUGHPUT, 2.0),
            w(REGISTER_P999, 2.0),
            w(REGISTER_MAX, 1.0),
            w(UNREGISTER_P999, 1.0),
            w(UNREGISTER_MAX, 0.5),
        ],
    },
    Weighting {
        workload: Workload::Churn,
        prevalence: 2.0,
        weights: &[
            w(THROUGHPUT, 2.0),
            w(REGISTER_P999, 1.0),
            w(UNREGISTER_P999, 1.0),
            w(REGISTER_MAX, 0.5),
            w(UNREGISTER_MAX, 0.5),
        ],
    },
    Weighting {
        workload: Workload::Delivery,
        prevalence: 3.0,
        weights: &[
            w(THROUGHPUT, 2.0),
            w(LOOKUP_P999, 2.0),
            w(REGISTER_P999, 0.5),
            w(UNREGISTER_P999, 0.5),
            w(REGISTER_MAX, 0.25),
            w(UNREGISTER_MAX, 0.25),
        ],
    },
    Weighting {
        workload: Workload::SlowCallbacks,
        prevalence: 1.0,
        weights: &[
            w(REGISTER_P999, 1.0),
            w(UNREGISTER_P999, 1.0),
            w(THROUGHPUT, 0.5),
            w(REGISTER_MAX, 0.5),
            w(UNREGISTER_MAX, 0.5),
        ],
    },
];

/// The virtio bus's rows of the weighting table, read as [`WEIGHTING`]'s are.
///
/// - VM boots: as the registry's boot storms, on the device's operations: how long the
///   storm takes and how long the unluckiest VM waits to register a device (its walk of the
///   drivers included) count alike; the teardown half counts half as much.
/// - Driver upgrades: how long the fleet's devices keep arriving and leaving while a driver
///   reloads (throughput and the device tails), and how long the reload itself takes: a
///   reload is a handful of calls, each walking every device it binds, so its maxima stand
///   for its tails.
/// - Hot-plug with lookups: as read-heavy delivery, the "which driver serves this device"
///   asked on every interrupt weighs as much as throughput; the hot-plugs count little.
///
/// Hot-plug lookups are the most common (every interrupt of every VM), VM boots come with a
/// fleet's deployments, driver upgrades only with a host's maintenance.
pub const BUS_WEIGHTING: [Weighting; 3] = [
    Weighting {
        workload: Workload::VmBoots,
        prevalence: 2.0,
        weights: &[
            w(THROUGHPUT, 2.0),
            w(DEVICE_REGISTER_P999, 2.0),
            w(DEVICE_REGISTER_MAX, 1.0),
            w(DEVICE_UNREGISTER_P999, 1.0),
            w(DEVICE_UNREGISTER_MAX, 0.5),
        ],
    },
    Weighting {
        workload: Workload::DriverUpgrades,
        prevalence: 1.0,
        weights: &[
            w(THROUGHPUT, 2.0),
            w(DRIVER_UNREGISTER_MAX, 1.0),
            w(DRIVER_REGISTER_MAX, 1.0),
            w(DEVICE_REGISTER_P999, 1.0),
            w(DEVICE_UNREGISTER_P999, 1.0),
            w(DEVICE_REGISTER_MAX, 0.5),
            w(DEVICE_UNREGISTER_MAX, 0.5),
        ],
    },
    Weighting {
        workload: Workload::HotplugLookups,
        prevalence: 3.0,
        weights: &[
            w(THROUGHPUT, 2.0),
            w(LOOKUP_P999, 2.0),
            w(DEVICE_REGISTER_P999, 0.5),
            w(DEVICE_UNREGISTER_P999, 0.5),
            w(DEVICE_REGISTER_MAX, 0.25),
            w(DEVICE_UNREGISTER_MAX, 0.25),
        ],
    },
];

/// The rows of the weighting table for the workloads of one registry.
pub const fn weighting_of(kind: ScenarioKind) -> &'static [Weighting] {
    match kind {
        ScenarioKind::Registry => &WEIGHTING,
        ScenarioKind::Bus => &BUS_WEIGHTING,
    }
}

impl Workload {
    /// The workload's row of [`WEIGHTING`] or [`BUS_WEIGHTING`].
    pub fn weighting(self) -> &'static Weighting {
        weighting_of(self.kind())
            .iter()
            .find(|w| w.workload == self)
            .expect("every workload has a row")
    }
}

/// Below this ratio of medians two backends tie on throughput: two cores shared with other
/// jobs give a few percent of noise between runs.
pub const MIN_MARGIN: f64 = 1.05;

/// Below this ratio of medians two backends tie on a latency tail: a p99.9 or a maximum is a
/// handful of samples, and in the full-size results of 2026-11-21 the median backend ×
/// scenario moves its tails by 1.4× to 1.6× between repeats (2× to 2.8× at the 75th
/// percentile).
pub const TAIL_BAND: f64 = 2.0;

/// The most one measure counts, as a ratio: a lead beyond 4× counts as 4×, so that one tail
/// hiccup (up to 200× between repeats in the results of 2026-11-21) cannot outweigh every other
/// measure.
pub const CAP: f64 = 4.0;

/// The weighted lead a winner needs over the runner-up when every figure has a measured
/// spread (repeats, or criterion's confidence interval).
pub const MEASURED_MARGIN: f64 = MIN_MARGIN;

/// The weighted lead a winner needs when some figure comes from a single run: with no spread
/// to tell noise from difference, the lead must exceed the run-to-run noise of a whole
/// comparison. 1.5× is what it takes for each repeat of the results of 2026-11-21, scored alone,
/// to give the same verdicts.
pub const SINGLE_RUN_MARGIN: f64 = 1.5;
