//! `bypass`: replay traces against the registry backends, stress and compare them.
//!
//! Run `bypass --help` for the commands.

use std::process::ExitCode;

use bypass_stress::InjectedPanic;
use clap::Parser;

mod ci_report;
mod cli;
mod commands;
mod replay;
mod report_cmd;
mod suite;

/// Counts heap bytes for the memory check of every run (see `bypass_stress::alloc`).
#[global_allocator]
static ALLOC: bypass_stress::alloc::Counting = bypass_stress::alloc::Counting;

fn main() -> ExitCode {
    // Injected panics are expected by the thousand in a stress run: keep them quiet, and
    // every other panic as loud as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<InjectedPanic>().is_none() {
            default_hook(info);
        }
    }));
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::List(args) => {
            cli::list(&args);
            ExitCode::SUCCESS
        }
        cli::Command::Replay(args) => replay::run(&args),
        cli::Command::Run(args) => commands::run(&args),
        cli::Command::Ci(args) => commands::ci(&args),
        cli::Command::Compare(args) => commands::compare(&args),
        cli::Command::Report(args) => report_cmd::run(&args),
    }
}
