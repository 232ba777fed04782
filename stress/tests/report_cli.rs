//! `bypass report` as a user runs it: on a small synthetic results.json written with the
//! results schema's types, the files it writes, and its errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bypass_reports::{Machine, Operation, Percentiles, RunResult, Scenario};

fn bypass(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(args)
        .output()
        .expect("run bypass")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report_cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(backend: &str, scenario: Scenario, seed: u64, ops_per_s: f64) -> RunResult {
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

/// Two repeats of three scenarios on three backends; `fast` is four times `slow`'s
/// throughput, `mid` twice, and `slow` is capped in irqfd-flood.
fn write_results(dir: &Path) -> PathBuf {
    let mut results = Vec::new();
    for seed in [10, 11] {
        for scenario in [
            Scenario::IrqfdFlood,
            Scenario::ServerlessChurn,
            Scenario::DeliveryLookup,
        ] {
            for (backend, rate) in [("slow", 1e5), ("mid", 2e5), ("fast", 4e5)] {
                let mut r = run(backend, scenario, seed, rate * (1.0 + seed as f64 / 100.0));
                r.capped = backend == "slow" && scenario == Scenario::IrqfdFlood;
                results.push(r);
            }
        }
    }
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    path
}

#[test]
fn report_writes_markdown_html_and_charts() {
    let dir = temp_dir("writes");
    let results = write_results(&dir);
    let out = dir.join("out");
    let out_text = out.to_str().unwrap();
    let out_ = bypass(&[
        "report",
        "--results",
        results.to_str().unwrap(),
        "--criterion",
        dir.join("no-criterion-here").to_str().unwrap(),
        "--out",
        out_text,
    ]);
    let stdout = text(&out_.stdout);
    assert!(out_.status.success(), "{stdout}\n{}", text(&out_.stderr));
    assert!(stdout.contains("report.html"), "{stdout}");
    assert!(
        stdout.contains("fast: 2.00× the ops/s of the runner-up, mid"),
        "{stdout}"
    );

    for file in [
        "report.md",
        "report.html",
        "lookup.svg",
        "latency-irqfd-flood.svg",
        "latency-delivery-lookup.svg",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<figure>\n<svg "), "charts are inline");
    assert!(html.matches("<svg ").count() >= 4);
    assert!(html.contains("<h2>Recommendations</h2>"));
    assert!(html.contains("Boot storms"));
    assert!(
        !html.contains("src=\"http") && !html.contains("<link"),
        "self-contained"
    );
    assert!(html.contains("no criterion data"));

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Recommendations"));
    assert!(md.contains("![Lookup throughput under churn](lookup.svg)"));
    assert!(md.contains("(capped)"), "the capped run is marked");
    assert!(md.contains("Test CPU (2 cores available)"));
    // Not compare's suite (the scale is not the quick one's for every scenario), so the
    // report names the file and the report command.
    assert!(
        md.contains("cargo run --release -- report --results"),
        "{md}"
    );
}

#[test]
fn errors_exit_with_status_2() {
    let dir = temp_dir("errors");
    let missing = bypass(&[
        "report",
        "--results",
        dir.join("nope.json").to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("cannot read results"),
        "{}",
        text(&missing.stderr)
    );

    let garbled = dir.join("garbled.json");
    std::fs::write(&garbled, "[{\"backend\": \"x\",").unwrap();
    let out = bypass(&[
        "report",
        "--results",
        garbled.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is not a results file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let results = write_results(&dir);
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let out = bypass(&[
        "report",
        "--results",
        results.to_str().unwrap(),
        "--out",
        blocker.join("sub").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot write"),
        "{}",
        text(&out.stderr)
    );
}
