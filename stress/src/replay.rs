//! `bypass replay`: run a trace and print what ran.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use bypass_registry::op::{Op, Step};
use bypass_registry::trace;
use bypass_strategies::Backend;

use crate::cli::{BAD_INPUT, BackendChoice, ReplayArgs};

fn read_input(args: &ReplayArgs) -> Result<String, String> {
    match args.file.as_deref() {
        None => read_stdin(),
        Some(path) if path.as_os_str() == "-" => read_stdin(),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read trace `{}`: {e}", path.display())),
    }
}

fn read_stdin() -> Result<String, String> {
    let mut text = String::new();
    io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the trace from standard input: {e}"))?;
    Ok(text)
}

fn run_backend(backend: Backend, ops: &[Op]) -> Vec<Step> {
    trace::replay(&*backend.make(), ops)
}

pub(crate) fn run(args: &ReplayArgs) -> ExitCode {
    let text = match read_input(args) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let numbered = match trace::parse_numbered(&text) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("error: malformed trace: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let ops: Vec<Op> = numbered.iter().map(|&(_, op)| op).collect();
    let mut out = io::stdout().lock();
    match args.backend {
        BackendChoice::One(backend) => {
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = out.write_all(trace::render(&run_backend(backend, &ops)).as_bytes());
            ExitCode::SUCCESS
        }
        BackendChoice::All => {
            let model = trace::replay_model(&ops);
            let _ = out.write_all(trace::render(&model).as_bytes());
            let _ = out.flush();
            let mut differs = false;
            for &backend in Backend::ALL {
                let got = run_backend(backend, &ops);
                if let Some(i) = trace::first_difference(&got, &model) {
                    differs = true;
                    let (line, op) = numbered[i];
                    eprintln!(
                        "error: {backend} differs from the model at line {line} (`{op}`)\n\
                         {backend}:\n{}model:\n{}",
                        indent(got.get(i)),
                        indent(model.get(i)),
                    );
                }
            }
            if differs {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn indent(step: Option<&Step>) -> String {
    match step {
        Some(step) => step
            .to_string()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect(),
        None => "  (no step)\n".to_string(),
    }
}
