//! The bus scenarios: the virtio bus workloads (the `Bus` trait's rustdoc in bypass-registry) as plans of operations for actors
//! (a VM, the host, a loader, a churner), each on its own OS thread.
//!
//! As for the registry's scenarios, a plan is fixed before the run from the seed, every actor
//! has the same phases, and all threads finish a phase before any starts the next. Device keys
//! are never reused: each registration of a device has a fresh key. Each registration of a
//! driver is a new driver object, an **instance**, numbered by the plan; whether its probe of a
//! device fails or panics is [`probe_fault`] of the instance and the key, so that the checker
//! knows each probe's answer without being told.

use bypass_registry::bus::{ANY, DeviceId, DriverName, IdTable, Pattern};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::scenario::{Faults, Scenario};

/// The vendor of every device of the plans (Red Hat's, as virtio devices report).
pub const VENDOR: u32 = 0x1af4;

/// One operation of a bus plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusAction {
    /// Register a device under `key` (fresh).
    RegisterDevice {
        /// The key.
        key: u64,
        /// Its id.
        id: DeviceId,
    },
    /// Unregister the device under `key`.
    UnregisterDevice {
        /// The key.
        key: u64,
    },
    /// Register a new instance of driver `driver` (an index of [`BusPlan::drivers`]).
    RegisterDriver {
        /// The driver.
        driver: usize,
        /// The instance, unique in the plan.
        instance: u32,
    },
    /// Unregister driver `driver`.
    UnregisterDriver {
        /// The driver.
        driver: usize,
    },
    /// Offer every unbound device to the drivers.
    Rescan,
    /// Which driver the device under `key` is bound to: the interrupt path's lookup.
    DriverOf {
        /// The key.
        key: u64,
    },
}

/// A driver of a plan: its name and id table. Each registration makes a new instance.
#[derive(Clone, Debug)]
pub struct DriverSpec {
    /// The name.
    pub name: DriverName,
    /// The devices it serves.
    pub table: IdTable,
}

/// Devices added and removed at a steady rate while another actor works: the churn of
/// `driver-reload`. Unlike the rest of a plan, how many a churner makes depends on time: it
/// stops when the actor it runs beside has finished its phase, or its keys run out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Churn {
    /// Its keys are `first..first + keys`, in order; each is added, then removed once the
    /// churner holds `hold` devices.
    pub first: u64,
    /// How many keys it may use.
    pub keys: u64,
    /// Devices it holds at once.
    pub hold: usize,
    /// The id of its devices.
    pub id: DeviceId,
    /// Nanoseconds between two of its operations.
    pub interval_ns: u64,
    /// The phase it churns in.
    pub phase: usize,
}

/// The script of one actor: its phases, each a list of actions, and, for a churner, its churn.
#[derive(Clone, Debug, Default)]
pub struct BusActor {
    /// The phases.
    pub phases: Vec<Vec<BusAction>>,
    /// Devices it adds and removes in its churn phase, after that phase's actions.
    pub churn: Option<Churn>,
}

/// What a bus scenario makes.
#[derive(Debug)]
pub struct BusPlan {
    /// The actors, each on a thread unless `--threads` is smaller. The first is the one the
    /// churners run beside.
    pub actors: Vec<BusActor>,
    /// The drivers.
    pub drivers: Vec<DriverSpec>,
    /// Keys used are `1..=keys` (the churners' included).
    pub keys: u64,
    /// Driver instances are `0..instances`.
    pub instances: u32,
    /// The faults of the probes.
    pub faults: Faults,
    /// The seed, which [`probe_fault`] mixes in.
    pub seed: u64,
}

impl BusPlan {
    /// The number of operations of the plan, churn left out.
    pub fn ops(&self) -> u64 {
        self.actors
            .iter()
            .flat_map(|a| &a.phases)
            .map(|p| p.len() as u64)
            .sum()
    }

    /// The number of phases.
    pub fn phases(&self) -> usize {
        self.actors.first().map_or(0, |a| a.phases.len())
    }
}

/// What a probe does, as the plan's faults say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeFault {
    /// It succeeds.
    None,
    /// It returns an error.
    Fail,
    /// It panics.
    Panic,
}

/// What the probe of the device under `key` by driver instance `instance` does: a hash of
/// the seed, the instance and the key against the fault rates, so that the same probe always
/// answers the same and the checker can tell.
pub fn probe_fault(seed: u64, faults: Faults, instance: u32, key: u64) -> ProbeFault {
    if faults.fail_rate == 0.0 && faults.panic_rate == 0.0 {
        return ProbeFault::None;
    }
    // splitmix64's finalizer over the three.
    let mut z = seed ^ (u64::from(instance) << 40) ^ key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let share = (z >> 11) as f64 / (1u64 << 53) as f64;
    if share < faults.fail_rate {
        ProbeFault::Fail
    } else if share < faults.fail_rate + faults.panic_rate {
        ProbeFault::Panic
    } else {
        ProbeFault::None
    }
}

/// The plan of bus scenario `scenario` at `scale` (1 is the contract's size), from `seed`.
///
/// # Panics
/// If `scenario` is not a bus scenario.
pub fn plan(scenario: Scenario, scale: f64, seed: u64, faults: Faults) -> BusPlan {
    let mut b = Builder {
        rng: StdRng::seed_from_u64(seed),
        next_key: 0,
        instances: 0,
        drivers: Vec::new(),
    };
    let n = |size: f64| ((size * scale).round() as u64).max(1);
    let actors = match scenario {
        Scenario::VirtioBoot => b.virtio_boot(n(4_000.0)),
        Scenario::DriverReload => b.driver_reload(n(20_000.0), n(20.0), 4, 2),
        Scenario::VirtioHotplug => b.virtio_hotplug(n(50_000.0), n(1_000_000.0), 8),
        other => panic!("{other} is not a bus scenario"),
    };
    BusPlan {
        actors,
        drivers: b.drivers,
        keys: b.next_key,
        instances: b.instances,
        faults,
        seed,
    }
}

/// The virtio device types the plans use (virtio spec §5).
mod kind {
    pub(super) const NET: u32 = 1;
    pub(super) const BLOCK: u32 = 2;
    pub(super) const CONSOLE: u32 = 3;
    pub(super) const RNG: u32 = 4;
    pub(super) const BALLOON: u32 = 5;
    pub(super) const SCSI: u32 = 8;
    pub(super) const INPUT: u32 = 18;
    pub(super) const VSOCK: u32 = 19;
}

/// The drivers every host loads, each with the device type it serves (any vendor).
const BASE_DRIVERS: [(&str, u32); 6] = [
    ("virtio_net", kind::NET),
    ("virtio_blk", kind::BLOCK),
    ("virtio_console", kind::CONSOLE),
    ("virtio_rng", kind::RNG),
    ("virtio_balloon", kind::BALLOON),
    ("vmw_vsock_virtio", kind::VSOCK),
];

struct Builder {
    rng: StdRng,
    next_key: u64,
    instances: u32,
    drivers: Vec<DriverSpec>,
}

impl Builder {
    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn id(device: u32) -> DeviceId {
        DeviceId::new(device, VENDOR).expect("the plans' device types are valid")
    }

    /// A driver named `name` serving `patterns`; its index.
    fn driver(&mut self, name: &str, patterns: &[(u32, u32)]) -> usize {
        let patterns: Vec<Pattern> = patterns.iter().map(|&(d, v)| Pattern::new(d, v)).collect();
        self.drivers.push(DriverSpec {
            name: DriverName::new(name).expect("the plans' driver names are valid"),
            table: IdTable::new(patterns).expect("the plans' id tables are not empty"),
        });
        self.drivers.len() - 1
    }

    fn register_driver(&mut self, driver: usize) -> BusAction {
        self.instances += 1;
        BusAction::RegisterDriver {
            driver,
            instance: self.instances - 1,
        }
    }

    /// The host registers six drivers; then each VM, on its own thread, registers its 6-10
    /// devices (the six kinds, and up to four more net, block, SCSI or input devices) and
    /// looks up the driver of each, while the host looks up devices, registers two more
    /// drivers (input, and a vendor's net driver that matches what `virtio_net` already
    /// serves) and rescans; then the host upgrades `virtio_net` (unregisters it and registers
    /// a new instance) with every VM up, and adds a net device of its own (offered to
    /// `vendor_net` first now); then each VM unregisters its devices while the host
    /// unregisters every driver. No driver serves SCSI: those devices stay unbound.
    fn virtio_boot(&mut self, vms: u64) -> Vec<BusActor> {
        let base = BASE_DRIVERS;
        let boot: Vec<usize> = base
            .iter()
            .map(|&(name, device)| self.driver(name, &[(device, ANY)]))
            .collect();
        let input = self.driver("virtio_input", &[(kind::INPUT, ANY)]);
        let vendor_net = self.driver("vendor_net", &[(kind::NET, VENDOR)]);
        let mut host = BusActor::default();
        let net = boot[0];
        let management = self.key();
        let upgrade = vec![
            BusAction::UnregisterDriver { driver: net },
            self.register_driver(net),
            BusAction::RegisterDevice {
                key: management,
                id: Self::id(kind::NET),
            },
        ];
        host.phases = vec![
            boot.iter().map(|&d| self.register_driver(d)).collect(),
            Vec::new(),
            upgrade,
            Vec::new(),
        ];
        let mut actors = vec![host];
        let mut keys = Vec::new();
        for _ in 0..vms {
            let mut kinds: Vec<u32> = base.iter().map(|&(_, d)| d).collect();
            let extra = self.rng.random_range(0..=4);
            for _ in 0..extra {
                let more = [kind::NET, kind::BLOCK, kind::SCSI, kind::INPUT];
                kinds.push(more[self.rng.random_range(0..more.len())]);
            }
            kinds.shuffle(&mut self.rng);
            let devices: Vec<(u64, DeviceId)> =
                kinds.iter().map(|&d| (self.key(), Self::id(d))).collect();
            let mut up: Vec<BusAction> = devices
                .iter()
                .map(|&(key, id)| BusAction::RegisterDevice { key, id })
                .collect();
            up.extend(devices.iter().map(|&(key, _)| BusAction::DriverOf { key }));
            let down = devices
                .iter()
                .map(|&(key, _)| BusAction::UnregisterDevice { key })
                .collect();
            keys.extend(devices.iter().map(|&(key, _)| key));
            actors.push(BusActor {
                phases: vec![Vec::new(), up, Vec::new(), down],
                churn: None,
            });
        }
        // The host, meanwhile: lookups, a driver, lookups, a driver, a rescan.
        let mut storm = Vec::new();
        for driver in [input, vendor_net] {
            for _ in 0..vms / 2 {
                let key = keys[self.rng.random_range(0..keys.len())];
                storm.push(BusAction::DriverOf { key });
            }
            let register = self.register_driver(driver);
            storm.push(register);
        }
        storm.push(BusAction::Rescan);
        actors[0].phases[1] = storm;
        actors[0].phases[3] = std::iter::once(BusAction::UnregisterDevice { key: management })
            .chain((0..self.drivers.len()).map(|driver| BusAction::UnregisterDriver { driver }))
            .collect();
        actors
    }

    /// `loaders` threads register `devices` net devices while the admin registers the net
    /// driver; then the admin reloads it `reloads` times (unregister, register a new instance)
    /// while `churners` threads add and remove net devices, 1,000 operations a second in all;
    /// then everything is unregistered.
    fn driver_reload(
        &mut self,
        devices: u64,
        reloads: u64,
        loaders: usize,
        churners: usize,
    ) -> Vec<BusActor> {
        let net = self.driver("virtio_net", &[(kind::NET, ANY)]);
        let mut admin = BusActor::default();
        let first = self.register_driver(net);
        let mut reload = Vec::new();
        for _ in 0..reloads {
            reload.push(BusAction::UnregisterDriver { driver: net });
            let again = self.register_driver(net);
            reload.push(again);
        }
        admin.phases = vec![
            vec![first],
            reload,
            vec![BusAction::UnregisterDriver { driver: net }],
        ];
        let mut actors = vec![admin];
        let keys: Vec<u64> = (0..devices).map(|_| self.key()).collect();
        let loaders = loaders.min(keys.len()).max(1);
        for i in 0..loaders {
            let mine: Vec<u64> = keys.iter().copied().skip(i).step_by(loaders).collect();
            actors.push(BusActor {
                phases: vec![
                    mine.iter()
                        .map(|&key| BusAction::RegisterDevice {
                            key,
                            id: Self::id(kind::NET),
                        })
                        .collect(),
                    Vec::new(),
                    mine.iter()
                        .map(|&key| BusAction::UnregisterDevice { key })
                        .collect(),
                ],
                churn: None,
            });
        }
        // Enough keys for each churner to go on for a second per reload (reloads take far
        // less on a scalable backend).
        let per_churner = reloads * 1_000 / churners as u64 / 2 + 1;
        for _ in 0..churners {
            let first = self.next_key + 1;
            self.next_key += per_churner;
            actors.push(BusActor {
                phases: vec![Vec::new(); 3],
                churn: Some(Churn {
                    first,
                    keys: per_churner,
                    hold: 8,
                    id: Self::id(kind::NET),
                    interval_ns: 1_000_000 * churners as u64,
                    phase: 1,
                }),
            });
        }
        actors
    }

    /// `threads` threads register `live` devices of the six kinds (the first registers the
    /// drivers first); then `ops` operations, 99% lookups of the driver of a random device,
    /// 1% hot-remove of one of a thread's devices and hot-add of a new one; then teardown,
    /// the drivers last by the first thread.
    fn virtio_hotplug(&mut self, live: u64, ops: u64, threads: usize) -> Vec<BusActor> {
        let kinds = BASE_DRIVERS;
        let drivers: Vec<usize> = kinds
            .iter()
            .map(|&(name, device)| self.driver(name, &[(device, ANY)]))
            .collect();
        let pick = |rng: &mut StdRng| Self::id(kinds[rng.random_range(0..kinds.len())].1);
        let keys: Vec<(u64, DeviceId)> = (0..live)
            .map(|_| {
                let id = pick(&mut self.rng);
                (self.key(), id)
            })
            .collect();
        let threads = threads.min(keys.len()).max(1);
        let mut actors = Vec::new();
        for i in 0..threads {
            let mut setup = Vec::new();
            if i == 0 {
                for &d in &drivers {
                    let register = self.register_driver(d);
                    setup.push(register);
                }
            }
            let mut mine: Vec<(u64, DeviceId)> =
                keys.iter().copied().skip(i).step_by(threads).collect();
            setup.extend(
                mine.iter()
                    .map(|&(key, id)| BusAction::RegisterDevice { key, id }),
            );
            let mut work = Vec::new();
            for _ in 0..ops / threads as u64 {
                if self.rng.random_ratio(1, 100) && !mine.is_empty() {
                    let (gone, _) = mine.swap_remove(self.rng.random_range(0..mine.len()));
                    work.push(BusAction::UnregisterDevice { key: gone });
                    let (key, id) = (self.key(), pick(&mut self.rng));
                    work.push(BusAction::RegisterDevice { key, id });
                    mine.push((key, id));
                } else {
                    let key = self.rng.random_range(1..=self.next_key);
                    work.push(BusAction::DriverOf { key });
                }
            }
            let mut down: Vec<BusAction> = mine
                .iter()
                .map(|&(key, _)| BusAction::UnregisterDevice { key })
                .collect();
            if i == 0 {
                down.extend(
                    drivers
                        .iter()
                        .map(|&driver| BusAction::UnregisterDriver { driver }),
                );
            }
            actors.push(BusActor {
                phases: vec![setup, work, down],
                churn: None,
            });
        }
        actors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_at_scale_one_are_the_contracts() {
        let boot = plan(Scenario::VirtioBoot, 1.0, 1, Faults::default());
        assert_eq!(boot.actors.len(), 4_001, "one thread per VM, and the host");
        assert_eq!(boot.drivers.len(), 8);
        assert!((24_001..=40_001).contains(&boot.keys), "{}", boot.keys);
        let reload = plan(Scenario::DriverReload, 1.0, 1, Faults::default());
        let reloads = reload.actors[0].phases[1]
            .iter()
            .filter(|a| matches!(a, BusAction::UnregisterDriver { .. }))
            .count();
        assert_eq!(reloads, 20);
        let loaded: usize = reload.actors.iter().map(|a| a.phases[0].len()).sum();
        assert_eq!(loaded, 20_001, "20,000 devices and the driver");
        let hotplug = plan(Scenario::VirtioHotplug, 1.0, 1, Faults::default());
        let setup: usize = hotplug.actors.iter().map(|a| a.phases[0].len()).sum();
        assert_eq!(setup, 50_006, "50,000 devices and 6 drivers");
        let work: Vec<&BusAction> = hotplug.actors.iter().flat_map(|a| &a.phases[1]).collect();
        let reads = work
            .iter()
            .filter(|a| matches!(a, BusAction::DriverOf { .. }))
            .count();
        assert!(reads * 100 / work.len() >= 97, "{reads} of {}", work.len());
    }

    #[test]
    fn probe_faults_follow_the_rates() {
        let faults = Faults {
            fail_rate: 0.1,
            panic_rate: 0.05,
        };
        let all: Vec<ProbeFault> = (1..=100_000)
            .map(|k| probe_fault(7, faults, 3, k))
            .collect();
        let fails = all.iter().filter(|f| **f == ProbeFault::Fail).count();
        let panics = all.iter().filter(|f| **f == ProbeFault::Panic).count();
        assert!((9_000..11_000).contains(&fails), "{fails}");
        assert!((4_000..6_000).contains(&panics), "{panics}");
        assert_eq!(probe_fault(7, faults, 3, 5), probe_fault(7, faults, 3, 5));
        assert_eq!(
            probe_fault(7, Faults::default(), 3, 5),
            ProbeFault::None,
            "no faults, no hashing"
        );
    }
}
