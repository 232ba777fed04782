//! `bypass compare` as a user runs it: output checked before any run, `--resume` after an
//! interruption, and the headline on the terminal.

use std::path::PathBuf;

use bypass_reports::{RunMode, RunResult, Scenario, ScenarioKind, Sweep};

mod common;
use common::{bypass, run, text};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("compare_cli", name)
}

/// A run as `compare --quick` makes it (its scale), with made-up figures.
fn quick_run(backend: &str, scenario: Scenario, seed: u64) -> RunResult {
    let mut r = run(backend, scenario, seed, 2_275_208.0);
    r.scale = if scenario == Scenario::DeliveryLookup {
        0.125
    } else {
        0.25
    };
    r
}

#[test]
fn an_unwritable_out_fails_before_any_run_naming_it() {
    let dir = temp_dir("unwritable");
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let out_dir = blocker.join("results");
    let out = bypass(&["compare", "--quick", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot write into `{}`", out_dir.display())),
        "{stderr}"
    );
    assert!(
        !stderr.contains(".run-"),
        "no temporary file named: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing ran");
}

#[test]
fn resume_runs_only_the_missing_runs_and_prints_a_narrow_headline() {
    let dir = temp_dir("resume");
    let backends: Vec<String> = text(&bypass(&["list", "--backends"]).stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let scenarios: Vec<Scenario> = Scenario::ALL.to_vec();
    // The suite of `--repeat 1`: on each registry scenario every backend and the floor
    // measured, then every backend checked; on each bus scenario every backend checked.
    let measured = |backend: &str, scenario| {
        let mut r = quick_run(backend, scenario, 5);
        r.details.mode = Some(RunMode::Measured);
        r
    };
    let mut results = Vec::new();
    for &scenario in &scenarios {
        let registry = scenario.kind() == ScenarioKind::Registry;
        for backend in backends
            .iter()
            .map(String::as_str)
            .chain(registry.then_some("floor"))
        {
            // The one run the interruption lost.
            if !(scenario == Scenario::VectorToggle && backend == "mutex-map") {
                results.push(match registry {
                    true => measured(backend, scenario),
                    false => quick_run(backend, scenario, 5),
                });
            }
        }
    }
    for scenario in Scenario::of_kind(ScenarioKind::Registry) {
        for backend in &backends {
            results.push(quick_run(backend, scenario, 5));
        }
    }
    let total = results.len() + 1;
    // A sweep already there is kept.
    let sweep = Sweep {
        samples: 1,
        ..Sweep::default()
    };
    std::fs::write(
        dir.join("sweep.json"),
        serde_json::to_string(&sweep).unwrap(),
    )
    .unwrap();
    // A run of other settings is dropped, not kept.
    let mut other = quick_run("mutex-map", Scenario::BootStorm, 5);
    other.scale = 1.0;
    results.push(other);
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string(&results).unwrap()).unwrap();

    let out = bypass(&[
        "compare",
        "--quick",
        "--repeat",
        "1",
        "--resume",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("sweep: kept"), "{stdout}");
    assert!(
        stdout.contains("seed 5"),
        "the seed of the results: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "resuming: {} of {total} runs kept from {}, 1 dropped",
            total - 1,
            path.display()
        )),
        "{stdout}"
    );
    let made: Vec<&str> = stdout.lines().filter(|l| l.contains(" ops/s")).collect();
    assert_eq!(made.len(), 1, "{stdout}");
    assert!(made[0].contains("vector-toggle") && made[0].contains("mutex-map"));

    let written: Vec<RunResult> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written.len(), total);
    let new = written
        .iter()
        .find(|r| {
            r.scenario == Scenario::VectorToggle
                && r.backend == "mutex-map"
                && r.mode() == RunMode::Measured
        })
        .unwrap();
    assert!(new.ops > 0 && new.seed == 5 && new.scale == 0.25);

    // The headline: within 100 columns, humane figures, and no legend for what did not happen.
    let headline = &stdout[stdout.find("throughput").expect("a headline")..];
    let headline = &headline[..headline.find(" runs in ").expect("the closing line")];
    for line in headline.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(headline.contains("2.28 M"), "{headline}");
    assert!(headline.contains("12.0 µs"), "{headline}");
    assert!(!headline.contains("2275208"), "{headline}");
    assert!(!headline.contains("capped"), "{headline}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn resume_refuses_what_is_not_results() {
    let dir = temp_dir("garbled");
    std::fs::write(dir.join("results.json"), "[{\"backend\": ").unwrap();
    let out = bypass(&["compare", "--resume", "--out", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot resume"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("results.json")).unwrap(),
        "[{\"backend\": ",
        "left as it was"
    );
}
