//! The suites of `bypass ci` and `bypass compare`: which runs each makes, and how each run is
//! configured. `bypass ci` spends its whole budget: a first pass over every backend and
//! scenario, then fresh seeds drawn at random, hot-tokens weighted up, chaos and faults on. `bypass report` reads them too, to recognise results that `compare` made.

use std::time::Duration;

use bypass_reports::{RunMode, ScenarioKind};
use bypass_strategies::Backend;
use bypass_stress::runner::{RunConfig, Subject};
use bypass_stress::scenario::{Faults, Scenario};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Every backend over every scenario, backend by backend: the first pass of `bypass ci`.
pub(crate) fn ci_runs(backends: &[Backend], scenarios: &[Scenario]) -> Vec<(Backend, Scenario)> {
    backends
        .iter()
        .flat_map(|&b| scenarios.iter().map(move |&s| (b, s)))
        .collect()
}

/// How often `bypass ci` draws each scenario after its first pass, relative to the others:
/// hot-tokens, where every call races every other on a few tokens, finds the most.
fn ci_weight(scenario: Scenario) -> u32 {
    match scenario {
        Scenario::HotTokens => 6,
        _ => 1,
    }
}

/// The scale of each scenario in `bypass ci`: thousands of operations each (tens of
/// thousands for the lookup path and hot-tokens), all 1,024 threads of irqfd-flood; well under
/// a second a run on two cores.
fn ci_scale(scenario: Scenario) -> f64 {
    match scenario {
        Scenario::IrqfdFlood => 0.05,
        Scenario::DeliveryLookup => 0.02,
        // Bus: 100 VMs on their own threads; 500 devices reloaded; 2,500 devices, 25,000 ops.
        Scenario::VirtioBoot => 0.025,
        Scenario::DriverReload => 0.025,
        Scenario::VirtioHotplug => 0.025,
        _ => 0.1,
    }
}

/// The faults `bypass ci` injects.
pub(crate) const CI_FAULTS: Faults = Faults {
    fail_rate: 0.05,
    panic_rate: 0.02,
};

/// A checked run of a suite: one thread per actor, no callback cost.
fn config(
    (backend, scenario): (Subject, Scenario),
    seed: u64,
    scale: f64,
    faults: Faults,
    time_cap: Option<Duration>,
) -> RunConfig {
    RunConfig {
        backend,
        mode: RunMode::Checked,
        scenario,
        threads: None,
        seed,
        scale,
        callback_cost: Duration::ZERO,
        faults,
        time_cap,
        chaos: None,
        memory: true,
    }
}

/// A run of `bypass ci`: faults injected, chaos on (seeded by `chaos`), stopped after `cap`
/// (at least 100 ms).
pub(crate) fn ci_config(
    backend: Backend,
    scenario: Scenario,
    (seed, chaos): (u64, u64),
    cap: Duration,
) -> RunConfig {
    let cap = cap.max(Duration::from_millis(100));
    RunConfig {
        chaos: Some(chaos),
        ..config(
            (backend.into(), scenario),
            seed,
            ci_scale(scenario),
            CI_FAULTS,
            Some(cap),
        )
    }
}

/// The `bypass run` command line that repeats `config`.
pub(crate) fn run_command(config: &RunConfig) -> String {
    let mut line = format!(
        "bypass run --backend {} --scenario {} --seed {} --scale {} --fail-rate {} --panic-rate {}",
        config.backend,
        config.scenario,
        config.seed,
        config.scale,
        config.faults.fail_rate,
        config.faults.panic_rate
    );
    if config.mode != RunMode::Checked {
        line.push_str(&format!(" --mode {}", config.mode));
    }
    if let Some(chaos) = config.chaos {
        line.push_str(&format!(" --chaos {chaos}"));
    }
    if !config.callback_cost.is_zero() {
        line.push_str(&format!(
            " --callback-cost {}ns",
            config.callback_cost.as_nanos()
        ));
    }
    if let Some(threads) = config.threads {
        line.push_str(&format!(" --threads {threads}"));
    }
    line
}

/// Why `bypass ci` could not check what it should.
#[derive(Debug)]
pub(crate) enum CiError {
    /// The budget ran out before every backend and scenario had run once.
    TooSmall {
        budget: Duration,
        covered: usize,
        total: usize,
        spent: Duration,
    },
}

impl std::fmt::Display for CiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CiError::TooSmall {
                budget,
                covered,
                total,
                spent,
            } => write!(
                f,
                "a budget of {:.0} s ran only {covered} of the {total} backend and scenario pairs in {:.1} s; one pass takes about a minute on two cores, so give at least 60s",
                budget.as_secs_f64(),
                spent.as_secs_f64()
            ),
        }
    }
}

/// What `bypass ci` checked.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Runs made.
    pub(crate) runs: u64,
    /// Registry calls made and checked.
    pub(crate) calls: u64,
    /// Tokens whose histories were checked.
    pub(crate) tokens: u64,
    /// Runs that broke a guarantee.
    pub(crate) violated: u64,
}

/// Draws the runs of `bypass ci`: first each of `backends` over each of `scenarios` once
/// (hot-tokens first), then at random among them, hot-tokens weighted up, each with fresh
/// seeds from `seed`.
#[derive(Debug)]
pub(crate) struct CiDraw {
    rng: StdRng,
    backends: Vec<Backend>,
    scenarios: Vec<Scenario>,
    first_pass: Vec<(Backend, Scenario)>,
    drawn: usize,
}

impl CiDraw {
    /// Every backend and scenario where a list is empty.
    pub(crate) fn new(seed: u64, backends: &[Backend], scenarios: &[Scenario]) -> CiDraw {
        let backends = if backends.is_empty() {
            Backend::ALL
        } else {
            backends
        }
        .to_vec();
        let scenarios = if scenarios.is_empty() {
            Scenario::ALL
        } else {
            scenarios
        }
        .to_vec();
        let mut first_pass = ci_runs(&backends, &scenarios);
        first_pass.sort_by_key(|&(_, s)| s != Scenario::HotTokens);
        CiDraw {
            rng: StdRng::seed_from_u64(seed),
            backends,
            scenarios,
            first_pass,
            drawn: 0,
        }
    }

    /// The backends and scenarios drawn from.
    pub(crate) fn covers(&self) -> (usize, usize) {
        (self.backends.len(), self.scenarios.len())
    }

    /// The backend and scenario pairs of one pass.
    pub(crate) fn pass_len(&self) -> usize {
        self.first_pass.len()
    }

    /// The next run's backend, scenario, plan seed and chaos seed.
    pub(crate) fn next(&mut self) -> (Backend, Scenario, u64, u64) {
        let (backend, scenario) = match self.first_pass.get(self.drawn) {
            Some(&pair) => pair,
            None => {
                let total: u32 = self.scenarios.iter().map(|&s| ci_weight(s)).sum();
                let mut pick = self.rng.random_range(0..total);
                let scenario = *self
                    .scenarios
                    .iter()
                    .find(|&&s| {
                        let w = ci_weight(s);
                        pick < w || {
                            pick -= w;
                            false
                        }
                    })
                    .expect("the weights cover the draw");
                let backend = self.backends[self.rng.random_range(0..self.backends.len())];
                (backend, scenario)
            }
        };
        self.drawn += 1;
        (backend, scenario, self.rng.random(), self.rng.random())
    }
}

/// The scale of each scenario in `bypass compare`, quick or full.
pub(crate) fn compare_scale(scenario: Scenario, quick: bool) -> f64 {
    let full = match scenario {
        Scenario::DeliveryLookup => 0.5,
        _ => 1.0,
    };
    if quick { full / 4.0 } else { full }
}

/// A backend that is O(n) per operation by design gets at most this long per run; it is
/// reported as capped, never dropped.
fn compare_cap(backend: Subject, quick: bool) -> Option<Duration> {
    (backend == Subject::Backend(Backend::MutexList))
        .then(|| Duration::from_secs(if quick { 5 } else { 10 }))
}

/// A run of `bypass compare`: no faults; a measured one records latencies only and checks no
/// memory.
pub(crate) fn compare_config(
    (backend, scenario): (Subject, Scenario),
    seed: u64,
    quick: bool,
    mode: RunMode,
) -> RunConfig {
    let scale = compare_scale(scenario, quick);
    let cap = compare_cap(backend, quick);
    RunConfig {
        mode,
        memory: mode == RunMode::Checked,
        ..config((backend, scenario), seed, scale, Faults::default(), cap)
    }
}

/// The runs of `bypass compare`, in the order it makes them: repeat by repeat, scenario by
/// scenario, every backend then the floor, each measured (the figures); then one checked run
/// of each backend on each registry scenario, with the first repeat's seed (the verdicts).
/// The bus scenarios have no measured mode: each of their repeats is checked, and gives both.
pub(crate) fn compare_suite(quick: bool, repeat: u32, seed: u64) -> Vec<RunConfig> {
    let backends = || Backend::ALL.iter().map(|&b| Subject::Backend(b));
    let mut suite = Vec::new();
    for r in 0..repeat {
        let seed = seed.wrapping_add(u64::from(r));
        for &scenario in Scenario::ALL {
            let (subjects, mode): (Vec<Subject>, _) = match scenario.kind() {
                ScenarioKind::Registry => (
                    backends().chain([Subject::Floor]).collect(),
                    RunMode::Measured,
                ),
                ScenarioKind::Bus => (backends().collect(), RunMode::Checked),
            };
            for subject in subjects {
                suite.push(compare_config((subject, scenario), seed, quick, mode));
            }
        }
    }
    for scenario in Scenario::of_kind(ScenarioKind::Registry) {
        for subject in backends() {
            suite.push(compare_config(
                (subject, scenario),
                seed,
                quick,
                RunMode::Checked,
            ));
        }
    }
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_measures_every_registry_cell_and_the_floor_and_checks_each_once() {
        let suite = compare_suite(true, 3, 10);
        let count = |subject: Subject, scenario: Scenario, mode: RunMode| {
            suite
                .iter()
                .filter(|c| c.backend == subject && c.scenario == scenario && c.mode == mode)
                .count()
        };
        for &scenario in Scenario::ALL {
            let registry = scenario.kind() == ScenarioKind::Registry;
            for &backend in Backend::ALL {
                let (measured, checked) = if registry { (3, 1) } else { (0, 3) };
                assert_eq!(count(backend.into(), scenario, RunMode::Measured), measured);
                assert_eq!(count(backend.into(), scenario, RunMode::Checked), checked);
            }
            let floor = if registry { 3 } else { 0 };
            assert_eq!(count(Subject::Floor, scenario, RunMode::Measured), floor);
            assert_eq!(count(Subject::Floor, scenario, RunMode::Checked), 0);
        }
        for config in &suite {
            let checked = config.mode == RunMode::Checked;
            assert_eq!(config.memory, checked, "memory checks in checked runs only");
            assert!(config.chaos.is_none() && config.faults == Faults::default());
        }
    }
}
