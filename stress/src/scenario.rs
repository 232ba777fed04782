//! The stress scenarios: the workloads of the contract (docs/registry.md) that production VMMs
//! produce, as plans of operations for actors (a VM, a vCPU, a device) that run on their own
//! threads.
//!
//! A plan is fixed before the run from the seed, so a run can be repeated exactly. Each actor
//! has the same number of phases; all threads finish a phase before any starts the next
//! (setup, the workload, teardown).
//!
//! The scenarios themselves are named by [`Scenario`], the results schema's id, so that a run
//! result and the report name them the same way; this module makes their plans.

use bypass_registry::Callback;
use bypass_registry::Side;
use bypass_registry::op::Behaviour;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use bypass_reports::schema::Scenario;

/// One operation of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Register a new participant of `side` under `token`.
    Register {
        /// The side.
        side: Side,
        /// The token id.
        token: u64,
        /// Its injected faults.
        behaviour: Behaviour,
    },
    /// Unregister `side` of `token`.
    Unregister {
        /// The side.
        side: Side,
        /// The token id.
        token: u64,
    },
    /// Ask whether `token` is paired and who its producer is: the interrupt path.
    Lookup {
        /// The token id.
        token: u64,
    },
    /// One read of `token`.
    Read {
        /// The token id.
        token: u64,
        /// Which read.
        read: Read,
    },
    /// Count the registered participants.
    Population,
}

/// A read of one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// `is_paired(token)`.
    IsPaired,
    /// `producer(token)` or `consumer(token)`: who is registered on that side.
    Who(Side),
}

/// The script of one actor: its phases, each a list of actions.
pub type Actor = Vec<Vec<Action>>;

/// What a scenario makes: the actors, and the number of tokens they use (ids `1..=tokens`).
#[derive(Debug)]
pub struct Plan {
    /// The actors, each on a thread unless `--threads` is smaller.
    pub actors: Vec<Actor>,
    /// Token ids used are `1..=tokens`.
    pub tokens: u64,
}

impl Plan {
    /// The number of operations in the plan.
    pub fn ops(&self) -> u64 {
        self.actors
            .iter()
            .flat_map(|a| a.iter())
            .map(|p| p.len() as u64)
            .sum()
    }
}

/// The injected faults of a run: the share of participants whose add fails, and of those
/// that panic in one of their callbacks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Share of participants whose `add_*` returns an error, in `0..=1`.
    pub fail_rate: f64,
    /// Share of participants that panic in one callback, in `0..=1`.
    pub panic_rate: f64,
}

/// What each scenario models and its size at scale 1.
pub const fn description(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::IrqfdFlood => {
            "87,000 tokens, a consumer and a producer each, registered from 1,024 threads, then all unregistered"
        }
        Scenario::BootStorm => {
            "64 VMs boot together, a device thread and a vCPU thread each: producers per VF in a batch, consumers one vector at a time as the guest unmasks 25-50%"
        }
        Scenario::ServerlessChurn => {
            "4,000 live virtio-only microVMs of 10 consumers that never meet a producer; 4,000 VMs destroyed and created by 64 threads"
        }
        Scenario::VectorToggle => {
            "one VM, 2,048-entry MSI-X table, 128 vectors used: 8 vCPUs mask and unmask, unregistering and re-registering consumers (20,000 toggles)"
        }
        Scenario::HotplugLoop => {
            "600 hot-add/remove cycles of a 257-vector VF, up to 17 resident, producers removed in bulk before consumers, while 4 vCPUs look up, mask and unmask"
        }
        Scenario::RestoreStorm => {
            "250 VMs restored in parallel, each from its own thread, 12 devices x 3-9 vectors, consumers first then producers"
        }
        Scenario::DeliveryLookup => {
            "the interrupt path on 8 threads: 99% lookups, 1% register/unregister, over 100,000 live paired tokens"
        }
        Scenario::HotTokens => {
            "64 threads make every kind of call (both sides' register and unregister, is_paired, producer, consumer, population) on 4-16 tokens, 4,000 calls each"
        }
        Scenario::VirtioBoot => {
            "4,000 microVMs boot, each registering its 6-10 virtio devices from its own thread while the host loads 8 drivers, 2 of them mid-storm, then a rescan; the host upgrades virtio_net and adds a net device; then all shut down as the host unloads its drivers"
        }
        Scenario::DriverReload => {
            "a driver bound to 20,000 devices reloaded (unregistered, registered again) 20 times while 2 threads add and remove devices, 1,000 a second"
        }
        Scenario::VirtioHotplug => {
            "50,000 live devices on 8 threads: 99% lookups of which driver serves a device, 1% hot-remove and hot-add (1,000,000 operations)"
        }
    }
}

/// The plan of `scenario` at `scale` (1 is the contract's size, docs/registry.md), from `seed`.
pub fn plan(scenario: Scenario, scale: f64, seed: u64, faults: Faults) -> Plan {
    let mut b = Builder {
        rng: StdRng::seed_from_u64(seed),
        faults,
        next_token: 0,
    };
    let n = |size: f64| ((size * scale).round() as u64).max(1);
    let actors = match scenario {
        Scenario::IrqfdFlood => b.irqfd_flood(n(87_000.0), 1_024),
        Scenario::BootStorm => b.boot_storm(n(64.0)),
        Scenario::ServerlessChurn => b.serverless_churn(n(4_000.0), n(4_000.0), 64),
        Scenario::VectorToggle => b.vector_toggle(n(20_000.0), 8),
        Scenario::HotplugLoop => b.hotplug_loop(n(600.0), 17, 4),
        Scenario::RestoreStorm => b.restore_storm(n(250.0)),
        Scenario::DeliveryLookup => b.delivery_lookup(n(100_000.0), n(1_000_000.0), 8),
        Scenario::HotTokens => b.hot_tokens(n(4_000.0), 64),
        Scenario::VirtioBoot | Scenario::DriverReload | Scenario::VirtioHotplug => {
            panic!("{scenario} is a bus scenario: bus::scenario::plan makes its plan")
        }
    };
    Plan {
        actors,
        tokens: b.next_token,
    }
}

struct Builder {
    rng: StdRng,
    faults: Faults,
    next_token: u64,
}

const CALLBACKS: [Callback; 4] = [
    Callback::Stop,
    Callback::Add,
    Callback::Del,
    Callback::Start,
];

impl Builder {
    fn tokens(&mut self, n: u64) -> Vec<u64> {
        let first = self.next_token + 1;
        self.next_token += n;
        (first..=self.next_token).collect()
    }

    fn behaviour(&mut self) -> Behaviour {
        let fail_add = self.faults.fail_rate > 0.0 && self.rng.random_bool(self.faults.fail_rate);
        let panic_on = (self.faults.panic_rate > 0.0
            && self.rng.random_bool(self.faults.panic_rate))
        .then(|| CALLBACKS[self.rng.random_range(0..CALLBACKS.len())]);
        Behaviour { fail_add, panic_on }
    }

    fn register(&mut self, side: Side, token: u64) -> Action {
        Action::Register {
            side,
            token,
            behaviour: self.behaviour(),
        }
    }

    /// Each thread registers the consumers of its share of the tokens and the producers of
    /// another thread's share, interleaved, so that pairs meet from two threads at once; then
    /// all unregister, producers first.
    fn irqfd_flood(&mut self, tokens: u64, threads: usize) -> Vec<Actor> {
        let all = self.tokens(tokens);
        let threads = threads.min(all.len()).max(1);
        let chunks: Vec<Vec<u64>> = (0..threads)
            .map(|i| all.iter().copied().skip(i).step_by(threads).collect())
            .collect();
        (0..threads)
            .map(|i| {
                let other = &chunks[(i + threads / 2) % threads];
                let mine = &chunks[i];
                let mut register = Vec::new();
                for k in 0..mine.len().max(other.len()) {
                    if let Some(&t) = mine.get(k) {
                        register.push(self.register(Side::Consumer, t));
                    }
                    if let Some(&t) = other.get(k) {
                        register.push(self.register(Side::Producer, t));
                    }
                }
                let mut unregister: Vec<Action> = other
                    .iter()
                    .map(|&token| Action::Unregister {
                        side: Side::Producer,
                        token,
                    })
                    .collect();
                unregister.extend(mine.iter().map(|&token| Action::Unregister {
                    side: Side::Consumer,
                    token,
                }));
                vec![register, unregister]
            })
            .collect()
    }

    /// Per VM: a device thread registers each VF's 257 producers in a batch; a vCPU thread
    /// registers consumers one vector at a time, for the 25-50% the guest unmasks, virtio
    /// vectors (consumers only) included. Then the VM shuts down.
    fn boot_storm(&mut self, vms: u64) -> Vec<Actor> {
        let mut actors = Vec::new();
        for _ in 0..vms {
            let vfs: Vec<Vec<u64>> = (0..4).map(|_| self.tokens(257)).collect();
            let virtio: Vec<u64> = self.tokens(4 * 9);
            let share = self.rng.random_range(0.25..=0.5);
            let mut device = Vec::new();
            for vf in &vfs {
                for &t in vf {
                    device.push(self.register(Side::Producer, t));
                }
            }
            let mut unmasked: Vec<u64> = vfs
                .iter()
                .flatten()
                .chain(&virtio)
                .copied()
                .filter(|_| self.rng.random_bool(share))
                .collect();
            unmasked.shuffle(&mut self.rng);
            let vcpu: Vec<Action> = unmasked
                .iter()
                .map(|&t| self.register(Side::Consumer, t))
                .collect();
            let device_down = vfs
                .iter()
                .flatten()
                .map(|&token| Action::Unregister {
                    side: Side::Producer,
                    token,
                })
                .collect();
            let vcpu_down = unmasked
                .iter()
                .map(|&token| Action::Unregister {
                    side: Side::Consumer,
                    token,
                })
                .collect();
            actors.push(vec![device, device_down]);
            actors.push(vec![vcpu, vcpu_down]);
        }
        actors
    }

    /// `live` VMs of 10 consumers are created; then `churn` VMs are destroyed and new ones
    /// created (fresh tokens, as new eventfds), spread over `threads`; then all are destroyed.
    fn serverless_churn(&mut self, live: u64, churn: u64, threads: usize) -> Vec<Actor> {
        let threads = threads.min(live as usize).max(1);
        let mut actors: Vec<Actor> = vec![vec![Vec::new(), Vec::new(), Vec::new()]; threads];
        let mut vms: Vec<Vec<Vec<u64>>> = vec![Vec::new(); threads];
        for vm in 0..live as usize {
            let tokens = self.tokens(10);
            let a = vm % threads;
            for &t in &tokens {
                let action = self.register(Side::Consumer, t);
                actors[a][0].push(action);
            }
            vms[a].push(tokens);
        }
        for k in 0..churn as usize {
            let a = k % threads;
            let slot = self.rng.random_range(0..vms[a].len());
            let old = std::mem::take(&mut vms[a][slot]);
            for token in old {
                actors[a][1].push(Action::Unregister {
                    side: Side::Consumer,
                    token,
                });
            }
            let new = self.tokens(10);
            for &t in &new {
                let action = self.register(Side::Consumer, t);
                actors[a][1].push(action);
            }
            vms[a][slot] = new;
        }
        for (a, vms) in vms.into_iter().enumerate() {
            for token in vms.into_iter().flatten() {
                actors[a][2].push(Action::Unregister {
                    side: Side::Consumer,
                    token,
                });
            }
        }
        actors
    }

    /// One VM, 128 of its 2,048 vectors used: a device thread registers their producers while
    /// each vCPU unmasks its vectors; then the vCPUs mask and unmask at random (`toggles` in
    /// all); then everything is unregistered.
    fn vector_toggle(&mut self, toggles: u64, vcpus: usize) -> Vec<Actor> {
        let vectors = self.tokens(128);
        let mut device: Actor = vec![Vec::new(), Vec::new(), Vec::new()];
        for &t in &vectors {
            let action = self.register(Side::Producer, t);
            device[0].push(action);
            device[2].push(Action::Unregister {
                side: Side::Producer,
                token: t,
            });
        }
        let mut actors = vec![device];
        for v in 0..vcpus {
            let mine: Vec<u64> = vectors.iter().copied().skip(v).step_by(vcpus).collect();
            let mut actor: Actor = vec![Vec::new(), Vec::new(), Vec::new()];
            for &t in &mine {
                let action = self.register(Side::Consumer, t);
                actor[0].push(action);
            }
            for _ in 0..toggles / vcpus as u64 {
                let t = mine[self.rng.random_range(0..mine.len())];
                actor[1].push(Action::Unregister {
                    side: Side::Consumer,
                    token: t,
                });
                let action = self.register(Side::Consumer, t);
                actor[1].push(action);
            }
            for &t in &mine {
                actor[2].push(Action::Unregister {
                    side: Side::Consumer,
                    token: t,
                });
            }
            actors.push(actor);
        }
        actors
    }

    /// `slots` hotplug threads share `cycles`: each cycle adds a VF (fresh tokens), registers
    /// its 257 producers in a batch and consumers for the 25-50% of vectors the guest unmasks,
    /// then removes it, producers in bulk before consumers. Meanwhile `vcpus` threads look up,
    /// mask and unmask vectors of every cycle, racing the hot-add and the removal.
    fn hotplug_loop(&mut self, cycles: u64, slots: usize, vcpus: usize) -> Vec<Actor> {
        let mut actors: Vec<Actor> = vec![vec![Vec::new()]; slots.min(cycles as usize).max(1)];
        let n = actors.len();
        let mut all = Vec::new();
        for cycle in 0..cycles as usize {
            let vf = self.tokens(257);
            let share = self.rng.random_range(0.25..=0.5);
            let unmasked: Vec<u64> = vf
                .iter()
                .copied()
                .filter(|_| self.rng.random_bool(share))
                .collect();
            let phase = &mut Vec::new();
            for &t in &vf {
                phase.push(self.register(Side::Producer, t));
            }
            for &t in &unmasked {
                phase.push(self.register(Side::Consumer, t));
            }
            phase.extend(vf.iter().map(|&token| Action::Unregister {
                side: Side::Producer,
                token,
            }));
            phase.extend(unmasked.iter().map(|&token| Action::Unregister {
                side: Side::Consumer,
                token,
            }));
            actors[cycle % n][0].append(phase);
            all.extend(vf);
        }
        // Each vCPU, meanwhile: half lookups, half mask/unmask of a vector of any cycle.
        let ops = all.len() as u64;
        for _ in 0..vcpus {
            let mut phase = Vec::new();
            for _ in 0..ops / vcpus as u64 {
                let token = all[self.rng.random_range(0..all.len())];
                if self.rng.random_bool(0.5) {
                    phase.push(Action::Lookup { token });
                } else {
                    phase.push(Action::Unregister {
                        side: Side::Consumer,
                        token,
                    });
                    let action = self.register(Side::Consumer, token);
                    phase.push(action);
                }
            }
            actors.push(vec![phase]);
        }
        actors
    }

    /// `vms` VMs restored in parallel, each on its own thread: 12 devices of 3-9 vectors,
    /// consumers first then producers; then all shut down.
    fn restore_storm(&mut self, vms: u64) -> Vec<Actor> {
        (0..vms)
            .map(|_| {
                let count: u64 = (0..12).map(|_| self.rng.random_range(3..=9)).sum();
                let tokens = self.tokens(count);
                let mut up: Vec<Action> = tokens
                    .iter()
                    .map(|&t| self.register(Side::Consumer, t))
                    .collect();
                up.extend(
                    tokens
                        .iter()
                        .map(|&t| self.register(Side::Producer, t))
                        .collect::<Vec<_>>(),
                );
                let mut down: Vec<Action> = tokens
                    .iter()
                    .map(|&token| Action::Unregister {
                        side: Side::Producer,
                        token,
                    })
                    .collect();
                down.extend(tokens.iter().map(|&token| Action::Unregister {
                    side: Side::Consumer,
                    token,
                }));
                vec![up, down]
            })
            .collect()
    }

    /// `live` paired tokens set up by `threads` threads; then `ops` operations, 99% lookups of
    /// random live tokens and 1% consumer unregister/register on each thread's own tokens;
    /// then teardown.
    fn delivery_lookup(&mut self, live: u64, ops: u64, threads: usize) -> Vec<Actor> {
        let tokens = self.tokens(live);
        let threads = threads.min(tokens.len()).max(1);
        (0..threads)
            .map(|i| {
                let mine: Vec<u64> = tokens.iter().copied().skip(i).step_by(threads).collect();
                let mut setup = Vec::new();
                for &t in &mine {
                    let p = self.register(Side::Producer, t);
                    let c = self.register(Side::Consumer, t);
                    setup.extend([p, c]);
                }
                let mut work = Vec::new();
                let mut masked: Option<u64> = None;
                for _ in 0..ops / threads as u64 {
                    if self.rng.random_ratio(1, 100) {
                        match masked.take() {
                            Some(t) => work.push(self.register(Side::Consumer, t)),
                            None => {
                                let t = mine[self.rng.random_range(0..mine.len())];
                                work.push(Action::Unregister {
                                    side: Side::Consumer,
                                    token: t,
                                });
                                masked = Some(t);
                            }
                        }
                    } else {
                        work.push(Action::Lookup {
                            token: tokens[self.rng.random_range(0..tokens.len())],
                        });
                    }
                }
                let mut down: Vec<Action> = mine
                    .iter()
                    .map(|&token| Action::Unregister {
                        side: Side::Producer,
                        token,
                    })
                    .collect();
                down.extend(mine.iter().map(|&token| Action::Unregister {
                    side: Side::Consumer,
                    token,
                }));
                vec![setup, work, down]
            })
            .collect()
    }

    /// 4 to 16 tokens, `threads` threads each making `calls` calls on them at random: both
    /// sides' register and unregister, each read and the population. With so many threads on
    /// so few tokens each token goes through every state (empty, producer only, consumer only,
    /// paired) many times, and every transition races reads of it.
    fn hot_tokens(&mut self, calls: u64, threads: usize) -> Vec<Actor> {
        let n = self.rng.random_range(4..=16);
        let tokens = self.tokens(n);
        (0..threads)
            .map(|_| {
                let phase = (0..calls)
                    .map(|_| {
                        let token = tokens[self.rng.random_range(0..tokens.len())];
                        let side = if self.rng.random_bool(0.5) {
                            Side::Producer
                        } else {
                            Side::Consumer
                        };
                        // Writes a little over half the time, so that states change under the
                        // reads; as many registers as unregisters, so tokens keep emptying.
                        match self.rng.random_range(0..16) {
                            0..=4 => self.register(side, token),
                            5..=9 => Action::Unregister { side, token },
                            10..=11 => Action::Read {
                                token,
                                read: Read::IsPaired,
                            },
                            12..=14 => Action::Read {
                                token,
                                read: Read::Who(side),
                            },
                            _ => Action::Population,
                        }
                    })
                    .collect();
                vec![phase]
            })
            .collect()
    }
}
