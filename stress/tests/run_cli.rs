//! `bypass run` as an SRE meets it: bad input is a clear error with status 2, a clean run
//! exits 0 and writes the JSON fields that reports read.

use std::process::{Command, Output};

fn bypass(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(args)
        .output()
        .expect("run bypass")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_arguments_are_clear_errors() {
    let base = [
        "run",
        "--backend",
        "mutex-map",
        "--scenario",
        "restore-storm",
    ];
    for (extra, says) in [
        (&["--threads", "0"][..], "at least one thread"),
        (&["--threads", "many"][..], "not a thread count"),
        (&["--fail-rate", "1.5"][..], "outside 0..1"),
        (&["--panic-rate", "-1"][..], "outside 0..1"),
        (&["--callback-cost", "5"][..], "no unit"),
        (&["--callback-cost", "3 fortnights"][..], "unit"),
        (&["--scale", "0"][..], "not a scale"),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = bypass(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
    }
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let out = bypass(&["run", "--backend", "rwlock", "--scenario", "boot-storm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("valid backends: mutex-list, mutex-map"),
        "{}",
        stderr(&out)
    );
    let out = bypass(&["run", "--backend", "mutex-map", "--scenario", "boot"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("valid scenarios: irqfd-flood, boot-storm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_clean_run_prints_its_seed_and_writes_json() {
    let dir = std::env::temp_dir().join(format!("bypass-run-{}", std::process::id()));
    let json = dir.join("nested").join("out.json");
    let out = bypass(&[
        "run",
        "--backend",
        "mutex-map",
        "--scenario",
        "vector-toggle",
        "--scale",
        "0.05",
        "--fail-rate",
        "0.1",
        "--panic-rate",
        "0.05",
        "--callback-cost",
        "200ns",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("seed "),
        "the seed is always printed: {}",
        stderr(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no violations"), "{stdout}");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for field in [
        "backend",
        "scenario",
        "threads",
        "seed",
        "ops",
        "elapsed_s",
        "ops_per_s",
        "latency_ns",
        "violations",
        "peak_rss_bytes",
        "machine",
    ] {
        assert!(value.get(field).is_some(), "JSON lacks `{field}`: {value}");
    }
    assert_eq!(value["violations"], 0);
    assert!(value["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(
        value["machine"]["rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc ")
    );
    for p in ["p50", "p99", "p999", "max"] {
        assert!(
            value["latency_ns"]["register"][p].as_u64().is_some(),
            "no register {p}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn same_seed_same_plan() {
    let run = || {
        let out = bypass(&[
            "run",
            "--backend",
            "mutex-list",
            "--scenario",
            "boot-storm",
            "--scale",
            "0.03",
            "--seed",
            "99",
        ]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        // The operation count and thread count depend on the plan alone.
        stdout
            .lines()
            .take(2)
            .map(|l| l.split(" in ").next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
