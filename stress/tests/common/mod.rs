//! What the `*_cli` tests share: running the built `bypass`, fresh directories, and run
//! results written with the results schema's types.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bypass_reports::{Machine, Operation, Percentiles, RunResult, Scenario};

/// Runs the built `bypass` with `args`, standard input empty.
pub(crate) fn bypass(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(args)
        .output()
        .expect("run bypass")
}

/// Runs the built `bypass` with `args`, `stdin` on its standard input.
pub(crate) fn bypass_with_input(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bypass");
    // bypass may stop reading at a bad line: a closed pipe here is its answer, not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// The backend names, as `bypass list --backends` prints them.
pub(crate) fn backend_names() -> Vec<String> {
    let out = bypass(&["list", "--backends"]);
    assert!(out.status.success());
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// Output as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory for one test, `name`, of the test file `file`.
pub(crate) fn temp_dir(file: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{file}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run result with made-up figures: `ops_per_s`, and latencies from 300 ns (p50 of an
/// unregistration) to 80 µs (max of a registration); register's p99.9 is 12.0 µs.
pub(crate) fn run(backend: &str, scenario: Scenario, seed: u64, ops_per_s: f64) -> RunResult {
    let percentiles = |base: u64| Percentiles {
        count: 1000,
        p50: base,
        p99: base * 8,
        p999: base * 30,
        max: base * 200,
    };
    let mut latency_ns = std::collections::BTreeMap::new();
    latency_ns.insert(Operation::Register, percentiles(400));
    latency_ns.insert(Operation::Unregister, percentiles(300));
    if scenario == Scenario::DeliveryLookup {
        latency_ns.insert(Operation::Lookup, percentiles(40));
    }
    RunResult {
        backend: backend.into(),
        scenario,
        threads: 8,
        seed,
        scale: 0.1,
        ops: 20_000,
        elapsed_s: 20_000.0 / ops_per_s,
        ops_per_s,
        latency_ns,
        violations: 0,
        peak_rss_bytes: 50 << 20,
        machine: Machine {
            cores: 2,
            rustc: "rustc 1.95.0 (test)".into(),
            cpu: "Test CPU".into(),
            memory_bytes: 4 << 30,
        },
        capped: false,
        skipped_ops: 0,
        callback_cost_ns: 0,
        fail_rate: 0.0,
        panic_rate: 0.0,
        check_s: 0.01,
        details: Default::default(),
    }
}
