//! `bypass`: replay traces against the registry backends and stress them.
//!
//! Run `bypass --help` for the commands.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod replay;
mod scenario;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::List(args) => {
            cli::list(&args);
            ExitCode::SUCCESS
        }
        cli::Command::Replay(args) => replay::run(&args),
    }
}
