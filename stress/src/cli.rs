//! The command line.

use std::path::PathBuf;

use bypass_strategies::Backend;
use clap::{Args, Parser, Subcommand};

use crate::scenario::SCENARIOS;

/// IRQ bypass registry backends: replay traces against them, stress and compare them.
///
/// Backends implement the contract of PROTOCOL.md (register/unregister of producers and
/// consumers under a shared token, with the stop → add → start callback protocol).
#[derive(Debug, Parser)]
#[command(name = "bypass", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the backends and the stress scenarios, one a line with a short description.
    List(ListArgs),
    /// Run a trace of registrations and print every callback and outcome.
    ///
    /// A trace has one operation a line: `register producer|consumer TOKEN [fail-add]` or
    /// `unregister producer|consumer TOKEN`; `#` starts a comment. The output repeats each
    /// operation, then, indented, each callback in the order it ran and the outcome (`ok` or
    /// `err KIND`).
    ///
    /// With `--backend all` (the default) the trace runs on every backend and on the
    /// sequential model; the model's output is printed, and the exit status is 1 if any
    /// backend differs, naming the first trace line where it does. Exit status 2: the trace
    /// is malformed (nothing runs), the file cannot be read, or the backend is unknown.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print only the backend names, one a line (for scripts).
    #[arg(long)]
    pub(crate) backends: bool,
}

/// Which backends a command runs: one, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendChoice {
    All,
    One(Backend),
}

fn parse_backend_choice(name: &str) -> Result<BackendChoice, String> {
    if name == "all" {
        return Ok(BackendChoice::All);
    }
    name.parse()
        .map(BackendChoice::One)
        .map_err(|e| format!("{e}, or all"))
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The backend to run (`bypass list --backends`), or `all` to run every backend and
    /// compare each with the model.
    #[arg(long, default_value = "all", value_parser = parse_backend_choice)]
    pub(crate) backend: BackendChoice,
    /// The trace file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

pub(crate) fn list(args: &ListArgs) {
    if args.backends {
        for backend in Backend::ALL {
            println!("{backend}");
        }
        return;
    }
    let width = Backend::ALL
        .iter()
        .map(|b| b.name().len())
        .chain(SCENARIOS.iter().map(|s| s.name.len()))
        .max()
        .unwrap_or(0);
    println!("backends:");
    for backend in Backend::ALL {
        println!("  {:width$}  {}", backend.name(), backend.description());
    }
    println!("scenarios (PROTOCOL.md's workloads):");
    for scenario in SCENARIOS {
        println!("  {:width$}  {}", scenario.name, scenario.description);
    }
}
