//! The one schema of bypass's figures: the run result that `bypass run --json` writes and
//! `bypass compare` collects into `results.json`, and the names the figures are keyed by.
//!
//! The harness writes these types and the report reads them: there is no second copy to keep
//! in step. The module imports nothing else of this crate (only `serde`), so that it stays a
//! leaf that any crate of the workspace can use.
//!
//! Every name is an enum with one spelling, [`name`](Scenario::name), used for the command
//! line, the JSON and the report alike. The enums order as their names do, so that a map keyed
//! by one serializes and iterates in the order it did when the keys were strings.
//!
//! Fields the harness added after the first version of `results.json` default when absent, so
//! older files still read; every field is always written.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not one of a set: an unknown scenario, operation, violation or bench group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What was looked for, in the plural (`scenarios`).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The valid names.
    pub valid: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let singular = self.what.strip_suffix('s').unwrap_or(self.what);
        write!(
            f,
            "unknown {singular} `{}`; valid {}: {}",
            self.name,
            self.what,
            self.valid.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// Defines a fieldless enum whose variants each have one name: `ALL`, `name`, `Display`,
/// `FromStr`, an order by name, and serde as the name.
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $name:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $ty {
            $($(#[$vmeta])* $variant,)+
        }

        impl $ty {
            /// Every one, in the order of the definition.
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)+];

            /// The name, as the command line, the JSON and the report spell it.
            pub const fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(name: &str) -> Result<$ty, UnknownName> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|x| x.name() == name)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        name: name.to_string(),
                        valid: $ty::ALL.iter().map(|x| x.name()).collect(),
                    })
            }
        }

        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &$ty) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $ty {
            fn cmp(&self, other: &$ty) -> std::cmp::Ordering {
                self.name().cmp(other.name())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

named! {
    /// A stress scenario: a workload that production VMMs produce, of the IRQ bypass registry
    /// or of the virtio bus ([`Scenario::kind`]).
    pub enum Scenario ("scenarios") {
        /// `irqfd-flood`: irqfds created in bulk, both sides from many threads.
        IrqfdFlood = "irqfd-flood",
        /// `boot-storm`: VMs booting together.
        BootStorm = "boot-storm",
        /// `serverless-churn`: microVMs whose consumers never meet a producer, churned.
        ServerlessChurn = "serverless-churn",
        /// `vector-toggle`: a guest masking and unmasking vectors.
        VectorToggle = "vector-toggle",
        /// `hotplug-loop`: VFs hot-added and removed while vCPUs look up.
        HotplugLoop = "hotplug-loop",
        /// `restore-storm`: VMs restored in parallel.
        RestoreStorm = "restore-storm",
        /// `delivery-lookup`: the interrupt path, mostly lookups.
        DeliveryLookup = "delivery-lookup",
        /// `hot-tokens`: many threads making every kind of call on a few tokens, to race
        /// every state change against reads.
        HotTokens = "hot-tokens",
        /// `virtio-boot`: microVMs registering their virtio devices while the host loads its
        /// drivers (a bus scenario).
        VirtioBoot = "virtio-boot",
        /// `driver-reload`: a driver with every device it binds unregistered and registered
        /// again, while devices come and go (a bus scenario).
        DriverReload = "driver-reload",
        /// `virtio-hotplug`: devices hot-added and removed while "which driver serves this
        /// device" is looked up on every interrupt (a bus scenario).
        VirtioHotplug = "virtio-hotplug",
    }
}

/// Which registry a [`Scenario`] stresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScenarioKind {
    /// The IRQ bypass registry (producers and consumers paired by token).
    Registry,
    /// The virtio bus (devices bound to drivers by id table).
    Bus,
}

impl Scenario {
    /// Which registry this scenario stresses.
    ///
    /// ```
    /// use bypass_reports::schema::{Scenario, ScenarioKind};
    /// assert_eq!(Scenario::BootStorm.kind(), ScenarioKind::Registry);
    /// assert_eq!(Scenario::DriverReload.kind(), ScenarioKind::Bus);
    /// ```
    pub const fn kind(self) -> ScenarioKind {
        match self {
            Scenario::VirtioBoot | Scenario::DriverReload | Scenario::VirtioHotplug => {
                ScenarioKind::Bus
            }
            _ => ScenarioKind::Registry,
        }
    }

    /// The scenarios of `kind`, in the order of [`Scenario::ALL`].
    pub fn of_kind(kind: ScenarioKind) -> impl Iterator<Item = Scenario> {
        Scenario::ALL
            .iter()
            .copied()
            .filter(move |s| s.kind() == kind)
    }
}

named! {
    /// A kind of operation whose latency a run measures: the key of
    /// [`RunResult::latency_ns`].
    pub enum Operation ("operations") {
        /// Registering a producer or a consumer.
        Register = "register",
        /// Unregistering a producer or a consumer.
        Unregister = "unregister",
        /// The interrupt path's lookup: `is_paired` and `producer` of one token, or the
        /// driver of one bus device.
        Lookup = "lookup",
        /// Registering a bus device (its walk of the drivers included).
        RegisterDevice = "register-device",
        /// Unregistering a bus device (its driver's `remove` included).
        UnregisterDevice = "unregister-device",
        /// Registering a bus driver (its walk of the unbound devices included).
        RegisterDriver = "register-driver",
        /// Unregistering a bus driver (the `remove` of each of its devices included).
        UnregisterDriver = "unregister-driver",
        /// Offering every unbound bus device to the drivers.
        Rescan = "rescan",
    }
}

named! {
    /// A guarantee of the contract that a run found broken.
    pub enum ViolationKind ("violation kinds") {
        /// No order of a token's calls that respects real time explains what they returned
        /// and the callbacks they ran.
        Linearizability = "linearizability",
        /// The callbacks of two calls on one token interleaved.
        Exclusion = "exclusion",
        /// A callback ran outside every registry call on its token.
        StrayCallback = "stray-callback",
        /// A callback reached a participant after the registry had handed it back.
        CallAfterReturn = "call-after-return",
        /// The registry still held participants after they were all unregistered.
        Leak = "leak",
        /// An unregister or a refused registration handed back the wrong participant, or one
        /// participant twice.
        HandedBack = "handed-back",
        /// With no call in flight, `is_paired` disagreed with the registered sides.
        QuietState = "quiet-state",
        /// A lookup returned a participant of another token or side.
        Lookup = "lookup",
        /// The registry counted participants after every token was unregistered.
        NotEmpty = "not-empty",
        /// `population()` returned a count outside the bounds of the calls in flight.
        Population = "population",
        /// The registry's memory did not come back: live bytes grew over fill-and-empty
        /// cycles, or stayed above the baseline once it was dropped.
        MemoryLeak = "memory-leak",
        /// A bus device's bind was not undone exactly once by the driver that made it: probed
        /// while bound, removed while unbound or by another driver, or still bound at the end.
        UnbalancedBind = "unbalanced-bind",
    }
}

named! {
    /// What a run records ([`RunDetails::mode`]).
    pub enum RunMode ("modes") {
        /// Every call with its start, end and outcome, and every callback, for the checker:
        /// the verdict on the contract's guarantees, with chaos, faults and the memory check
        /// available. The recording is most of the cost of a call, so its throughput is the
        /// harness's more than the registry's.
        Checked = "checked",
        /// Latency histograms and counts only, per thread, with participants made before the
        /// clock starts: the registry's figures, and no verdict.
        Measured = "measured",
    }
}

named! {
    /// What the built-in sweep of `bypass compare` varies ([`SweepPoint::axis`]).
    pub enum SweepAxis ("sweep axes") {
        /// Unrelated live tokens registered before one thread cycles its own token.
        Population = "population",
        /// Threads cycling at once, each on its own token, on an empty registry.
        Threads = "threads",
    }
}

named! {
    /// A criterion benchmark group of `bypass-benches`, as named under `target/criterion`.
    pub enum BenchGroup ("bench groups") {
        /// Connect+disconnect cycles against the number of live tokens.
        CyclePopulation = "cycle_population",
        /// Connect+disconnect cycles against the number of threads.
        CycleThreads = "cycle_threads",
        /// The raw concurrent maps doing the same inserts and removes: the floor.
        Floor = "floor",
        /// Connect+disconnect cycles whose callbacks take time.
        CallbackCost = "callback_cost",
        /// Lookups among live tokens under churn.
        Lookup = "lookup",
        /// The short set CI runs in test mode.
        Track = "track",
        /// A bus device's register+unregister against the number of live devices and
        /// drivers (`live=N/drivers=M`).
        BusDevice = "bus_device",
        /// A bus driver's register+unregister against the number of devices it binds
        /// (`devices=N`).
        BusDriver = "bus_driver",
        /// Bus device register+unregister cycles against the number of threads.
        BusProbeThreads = "bus_probe_threads",
    }
}

/// Latency percentiles of one kind of operation, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Operations measured.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Percentiles {
    /// The four figures in the order a chart draws them: p50, p99, p99.9, max.
    pub fn values(&self) -> [u64; 4] {
        [self.p50, self.p99, self.p999, self.max]
    }
}

/// The machine a result was measured on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// The compiler that built the harness (`rustc --version`).
    pub rustc: String,
    /// The CPU model.
    pub cpu: String,
    /// Total memory in bytes (0 if unknown).
    pub memory_bytes: u64,
}

/// One run: a backend over a scenario, as `bypass run --json` writes it and `bypass compare`
/// collects it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// Backend name.
    pub backend: String,
    /// The scenario.
    pub scenario: Scenario,
    /// OS threads that ran the plan.
    #[serde(default)]
    pub threads: usize,
    /// The plan's seed.
    #[serde(default)]
    pub seed: u64,
    /// Size relative to the contract's workloads (1 is their size).
    #[serde(default = "one")]
    pub scale: f64,
    /// Operations completed (registers, unregisters, lookups), setup and teardown phases of
    /// the plan included, the harness's final checks and cleanup not.
    #[serde(default)]
    pub ops: u64,
    /// Wall time of the plan, from the start barrier to the last thread's end, in seconds.
    #[serde(default)]
    pub elapsed_s: f64,
    /// `ops / elapsed_s`.
    pub ops_per_s: f64,
    /// Latency by kind of operation; kinds the plan never made are absent.
    #[serde(default)]
    pub latency_ns: BTreeMap<Operation, Percentiles>,
    /// Guarantees found broken.
    #[serde(default)]
    pub violations: usize,
    /// Peak resident memory of the process during the run.
    #[serde(default)]
    pub peak_rss_bytes: u64,
    /// Where it ran.
    #[serde(default)]
    pub machine: Machine,
    /// Whether the time cap stopped the plan early.
    #[serde(default)]
    pub capped: bool,
    /// Operations of the plan skipped because of the cap.
    #[serde(default)]
    pub skipped_ops: u64,
    /// The busy-wait of each callback, in nanoseconds.
    #[serde(default)]
    pub callback_cost_ns: u64,
    /// Injected add failures.
    #[serde(default)]
    pub fail_rate: f64,
    /// Injected panics.
    #[serde(default)]
    pub panic_rate: f64,
    /// Time the checker took, in seconds.
    #[serde(default)]
    pub check_s: f64,
    /// What the stress harness added later: chaos, injected faults, memory. Flattened, so
    /// its fields sit beside the others in the JSON.
    #[serde(flatten)]
    pub details: RunDetails,
}

/// The figures of a run added after the first version of `results.json`; each is absent from
/// the JSON when the run did not make it, so older files read and reserialize unchanged.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunDetails {
    /// The seed of the random yields and spins injected into callbacks and between calls
    /// (`--chaos`); absent when the run injected none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos_seed: Option<u64>,
    /// The faults the run injected, counted as they fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<Injected>,
    /// The registry's heap bytes per live token (a producer and a consumer each), measured by
    /// filling a fresh registry; absent when the run did not measure memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_token: Option<f64>,
    /// What the run recorded; absent in files written before runs had modes, whose runs
    /// were all checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RunMode>,
}

impl RunResult {
    /// What the run recorded: [`RunMode::Checked`] unless it says otherwise.
    pub fn mode(&self) -> RunMode {
        self.details.mode.unwrap_or(RunMode::Checked)
    }
}

/// The name `bypass compare` gives the harness's floor in results and sweeps: its plans run
/// on a raw concurrent map with no protocol, to show what the harness costs by itself. Never
/// a candidate.
pub const FLOOR: &str = "floor";

/// The built-in sweep `bypass compare` writes next to `results.json` (`sweep.json`): the cost
/// of a connect+disconnect cycle (register producer, register consumer, unregister both) made
/// straight on each backend and on the floor, with no harness around the calls, against live
/// tokens and against threads. The report draws it where criterion's `cycle_population` and
/// `cycle_threads` groups are absent.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Sweep {
    /// Where it ran.
    pub machine: Machine,
    /// Samples per point; each point's figures are their medians.
    pub samples: u32,
    /// The time each sample ran for, in seconds.
    pub sample_s: f64,
    /// The points, backend by backend.
    pub points: Vec<SweepPoint>,
    /// Points left out, and why (`mutex-list at 100000 live tokens: …`).
    #[serde(default)]
    pub left_out: Vec<String>,
}

/// One point of the [`Sweep`]: a backend at one population or thread count.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SweepPoint {
    /// Backend name, or `floor`.
    pub backend: String,
    /// What this point varies.
    pub axis: SweepAxis,
    /// The live tokens ([`SweepAxis::Population`]) or threads ([`SweepAxis::Threads`]).
    pub x: u64,
    /// Cycles a second, summed over the threads (median sample).
    pub cycles_per_s: f64,
    /// Wall time per cycle of one thread, in nanoseconds: threads over cycles a second.
    pub wall_ns_per_cycle: f64,
    /// CPU time the cycling threads spent per cycle, in nanoseconds (median sample); absent
    /// where the system does not give a thread's CPU time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ns_per_cycle: Option<f64>,
}

/// The faults a run injected, counted as they fired.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Injected {
    /// `add_*` callbacks that returned an error.
    pub add_failures: u64,
    /// Callbacks that panicked.
    pub panics: u64,
}

fn one() -> f64 {
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_as_strings() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>(), Ok(*s));
        }
        let err = "boot".parse::<Scenario>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown scenario `boot`; valid scenarios: irqfd-flood, boot-storm"),
            "{err}"
        );
        let mut ops = Operation::ALL[..3].to_vec();
        ops.sort();
        assert_eq!(
            ops,
            [
                Operation::Lookup,
                Operation::Register,
                Operation::Unregister
            ]
        );
        let bus: Vec<Scenario> = Scenario::of_kind(ScenarioKind::Bus).collect();
        assert_eq!(
            bus,
            [
                Scenario::VirtioBoot,
                Scenario::DriverReload,
                Scenario::VirtioHotplug
            ]
        );
        assert_eq!(
            Scenario::of_kind(ScenarioKind::Registry).count() + bus.len(),
            Scenario::ALL.len()
        );
        assert_eq!(
            serde_json::to_string(&ViolationKind::CallAfterReturn).unwrap(),
            "\"call-after-return\""
        );
        assert!(serde_json::from_str::<BenchGroup>("\"cycle_threads\"").is_ok());
        assert_eq!(format!("{:<12}|", Operation::Lookup), "lookup      |");
        assert!(serde_json::from_str::<BenchGroup>("\"nope\"").is_err());
    }

    /// Results written before runs had modes, chaos seeds or memory figures (the reference
    /// results of 2026-11-21, kept as they were).
    const BEFORE_MODES: &str = include_str!("../fixtures/results-before-modes.json");

    #[test]
    fn the_reference_results_reserialize_byte_for_byte() {
        for text in [include_str!("../reference/results.json"), BEFORE_MODES] {
            let results: Vec<RunResult> = serde_json::from_str(text).unwrap();
            assert!(results.len() > 100);
            assert_eq!(serde_json::to_string_pretty(&results).unwrap() + "\n", text);
        }
    }

    #[test]
    fn the_optional_figures_round_trip() {
        let text = BEFORE_MODES;
        let mut result = serde_json::from_str::<Vec<RunResult>>(text).unwrap()[0].clone();
        assert_eq!(result.details, RunDetails::default());
        result.details = RunDetails {
            chaos_seed: Some(7),
            injected: Some(Injected {
                add_failures: 3,
                panics: 1,
            }),
            bytes_per_token: Some(212.5),
            mode: Some(RunMode::Measured),
        };
        let text = serde_json::to_string(&result).unwrap();
        assert!(text.contains("\"chaos_seed\":7"), "{text}");
        assert!(text.contains("\"mode\":\"measured\""), "{text}");
        let again: RunResult = serde_json::from_str(&text).unwrap();
        assert_eq!(again, result);
        assert_eq!(again.mode(), RunMode::Measured);
    }

    #[test]
    fn a_run_without_a_mode_was_checked() {
        let text = BEFORE_MODES;
        let results: Vec<RunResult> = serde_json::from_str(text).unwrap();
        assert!(results.iter().all(|r| r.mode() == RunMode::Checked));
    }
}
