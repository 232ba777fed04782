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

#[test]
fn ci_writes_json_and_junit() {
    let dir = temp_dir("reports");
    let json = dir.join("ci.json");
    let junit = dir.join("nested").join("junit.xml");
    let out = bypass(&[
        "ci",
        "--budget",
        "2s",
        "--seed",
        "5",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(value["seed"], 5);
    assert_eq!(value["failed"], 0);
    let runs = value["runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    for run in runs {
        assert!(run["result"]["ops"].as_u64().is_some(), "{run}");
        assert_eq!(run["violations"].as_array().unwrap().len(), 0);
    }

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    let backends = text(&bypass(&["list", "--backends"]).stdout);
    let list = text(&bypass(&["list"]).stdout);
    let scenarios = list
        .lines()
        .skip_while(|l| !l.starts_with("scenarios"))
        .skip(1)
        .count();
    let cases = xml.matches("<testcase ").count();
    assert_eq!(
        cases,
        backends.lines().count() * scenarios,
        "one per backend x scenario"
    );
    for backend in backends.lines() {
        assert!(
            xml.contains(&format!(
                "classname=\"bypass.ci.{backend}\" name=\"irqfd-flood\""
            )),
            "{xml}"
        );
    }
    assert!(
        xml.contains(&format!("tests=\"{cases}\" failures=\"0\"")),
        "{xml}"
    );
    assert!(!xml.contains("<failure"));
    assert!(xml.trim_end().ends_with("</testsuites>"));
}
