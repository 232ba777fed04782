//! `bypass ci` as a CI job runs it: its budget, and the JSON and JUnit reports it writes.

use std::path::PathBuf;

mod common;
use common::{bypass, text};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("ci_cli", name)
}

#[test]
fn a_budget_needs_a_unit_and_cannot_be_zero() {
    for (budget, says) in [
        ("0", "would check nothing"),
        ("0s", "would check nothing"),
        ("300", "no unit"),
        ("-5s", "negative"),
        ("soon", "not a duration"),
    ] {
        let out = bypass(&["ci", "--budget", budget]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{budget}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{budget}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{budget}: nothing ran");
    }
}

#[test]
fn unwritable_reports_fail_before_the_suite() {
    let dir = temp_dir("unwritable");
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    for flag in ["--json", "--junit"] {
        let path = blocker.join("report");
        let out = bypass(&["ci", "--budget", "1m", flag, path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(blocker.to_str().unwrap()),
            "{flag}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{flag}: nothing ran");
    }
}

/// `ci --json/--junit` on two backends and one scenario (the filters keep one pass short):
/// one JSON object with every run, and JUnit XML with one test case per backend x scenario.
#[test]
fn ci_writes_json_and_junit() {
    let dir = temp_dir("reports");
    let json = dir.join("ci.json");
    let junit = dir.join("nested").join("junit.xml");
    let backends = ["mutex-map", "lockfree"];
    let scenarios = ["hot-tokens"];
    // A pass takes about a second; the budget leaves room for a loaded machine.
    let mut args = vec!["ci", "--budget", "10s", "--seed", "5"];
    for b in backends {
        args.extend(["--backend", b]);
    }
    for s in scenarios {
        args.extend(["--scenario", s]);
    }
    args.extend(["--json", json.to_str().unwrap()]);
    args.extend(["--junit", junit.to_str().unwrap()]);
    let out = bypass(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 backends x 1 scenarios"),
        "{}",
        text(&out.stdout)
    );

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(value["seed"], 5);
    assert_eq!(value["failed"], 0);
    let runs = value["runs"].as_array().unwrap();
    assert!(runs.len() >= 2, "at least one pass: {}", runs.len());
    for run in runs {
        assert!(run["result"]["ops"].as_u64().is_some(), "{run}");
        assert_eq!(run["violations"].as_array().unwrap().len(), 0);
        let backend = run["result"]["backend"].as_str().unwrap();
        assert!(backends.contains(&backend), "{backend} was filtered out");
    }

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert_eq!(
        xml.matches("<testcase ").count(),
        2,
        "one per backend x scenario"
    );
    for backend in backends {
        for scenario in scenarios {
            let case = format!("classname=\"bypass.ci.{backend}\" name=\"{scenario}\"");
            assert!(xml.contains(&case), "{case}: {xml}");
        }
    }
    assert!(xml.contains("tests=\"2\" failures=\"0\""), "{xml}");
    assert!(!xml.contains("<failure"));
    assert!(xml.trim_end().ends_with("</testsuites>"));
}
