//! The `bypass` command's engine: stress scenarios modelled on real VMM workloads, run on any
//! registry backend with thousands of threads and injected faults, and a checker that proves
//! every guarantee of the contract on the recorded history.
//!
//! - [`scenario`]: the workloads of the contract (docs/registry.md) as plans of operations for
//!   actors (VMs, vCPUs, devices), each on its own OS thread.
//! - [`run`]: runs one scenario on one backend or the floor, whichever registry it stresses:
//!   the IRQ bypass registry's scenarios through [`runner`], the virtio bus's through [`bus`].
//! - [`runner`]: runs a plan on a backend. Checked, it records every call (start, end,
//!   outcome), every callback, the state the run ends in, and per-operation latency in
//!   hdrhistogram; measured, only each thread's latencies, so that the figures are the
//!   registry's rather than the recording's.
//! - [`floor`]: a raw concurrent map with no protocol as a registry: what a measured run costs
//!   the harness by itself.
//! - [`sweep`]: connect+disconnect cycles straight on each backend and the floor, against live
//!   tokens and threads, for the report's charts when criterion has not run.
//! - [`checker`]: verifies the recorded history token by token: callbacks only inside calls,
//!   per-token exclusion, linearizability against the sequential model (which also proves
//!   exactly one connect per pairing), plus the run-wide checks (the pairing state at rest, no
//!   call after return, nothing leaked, an empty registry at the end).
//! - [`violation`]: a broken guarantee, as the runner and the checker report it.
//! - [`measure`]: the machine, peak memory, latency percentiles.
//! - [`alloc`]: the counting global allocator that the memory check reads (the `bypass`
//!   binary installs it); without it the check is skipped.
//!
//! With `chaos` set, every thread pauses at random (seeded) inside callbacks and between its
//! calls, so that race windows a few instructions wide open for long enough to be hit.
//!
//! The run's figures are the results schema's [`RunResult`](bypass_reports::RunResult), the
//! type the report reads.
//!
//! ```
//! use bypass_reports::RunMode;
//! use bypass_stress::run;
//! use bypass_stress::runner::{Progress, RunConfig};
//! use bypass_stress::scenario::{Faults, Scenario};
//! use bypass_strategies::Backend;
//!
//! let config = RunConfig {
//!     backend: Backend::MutexMap.into(),
//!     mode: RunMode::Checked,
//!     scenario: Scenario::RestoreStorm,
//!     threads: Some(4),
//!     seed: 7,
//!     scale: 0.02,
//!     callback_cost: std::time::Duration::ZERO,
//!     faults: Faults { fail_rate: 0.05, panic_rate: 0.01 },
//!     time_cap: None,
//!     chaos: Some(1),
//!     memory: true,
//! };
//! let out = run(&config, &Progress::default()).unwrap();
//! assert!(out.violations.is_empty(), "{:?}", out.violations);
//! assert!(out.result.ops > 0);
//! ```

#![deny(missing_docs)]

pub mod alloc;
pub mod bus;
pub(crate) mod chaos;
pub mod checker;
pub mod floor;
pub(crate) mod history;
pub(crate) mod linearize;
pub mod measure;
pub(crate) mod participant;
pub mod runner;
pub mod scenario;
pub mod sweep;
pub mod violation;

pub use participant::InjectedPanic;
pub use violation::Violation;

use bypass_reports::{RunMode, ScenarioKind};

use runner::{Progress, RunConfig, RunError, RunOutput, Subject};

/// Runs `config`'s scenario on its backend (its registry or its bus, as the scenario's kind
/// says) or on the floor, checks the history if the run is checked, and returns the figures
/// and violations.
pub fn run(config: &RunConfig, progress: &Progress) -> Result<RunOutput, RunError> {
    let bus = config.scenario.kind() == ScenarioKind::Bus;
    let backend = match config.backend {
        Subject::Backend(backend) => backend,
        Subject::Floor if bus => {
            return Err(RunError::Unsupported(
                "the floor is a registry's map: it runs registry scenarios only",
            ));
        }
        Subject::Floor if config.mode == RunMode::Checked => {
            return Err(RunError::Unsupported(
                "the floor runs no protocol and no callbacks, so there is nothing to check: run it with --mode measured",
            ));
        }
        Subject::Floor => return runner::run_on(floor::Floor::default, config, progress),
    };
    if !bus {
        return runner::run(backend, config, progress);
    }
    if config.mode == RunMode::Measured {
        return Err(RunError::Unsupported(
            "bus scenarios run checked only: run them with --mode checked",
        ));
    }
    bus::runner::run(backend, config, progress)
}
