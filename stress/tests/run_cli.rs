//! `bypass run` as an SRE meets it: bad input is a clear error with status 2, a clean run
//! exits 0 and writes the JSON fields that reports read.

use std::process::Output;

mod common;
use common::bypass;

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
        // What was expected, never Rust's parse error; negative numbers are numbers.
        (&["--threads", "-1"][..], "negative"),
        (&["--seed", "-1"][..], "negative"),
        (&["--seed", "abc"][..], "is not a seed"),
        (&["--scale", "-2"][..], "not a scale"),
        (&["--callback-cost", "-1us"][..], "negative"),
        (&["--time-cap", "-5s"][..], "negative"),
        (&["--time-cap", "30"][..], "no unit"),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = bypass(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("invalid digit"), "{extra:?}");
        assert!(!stderr(&out).contains("unexpected argument"), "{extra:?}");
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

#[test]
fn more_threads_than_actors_is_an_error_naming_the_most() {
    for (scenario, threads, most) in [("delivery-lookup", "100", 8), ("irqfd-flood", "4000", 1024)]
    {
        let started = std::time::Instant::now();
        let out = bypass(&[
            "run",
            "--backend",
            "mutex-map",
            "--scenario",
            scenario,
            "--threads",
            threads,
        ]);
        assert_eq!(out.status.code(), Some(2), "{scenario}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("--threads {most} or fewer")), "{err}");
        assert!(out.stdout.is_empty(), "nothing ran: {err}");
        assert!(started.elapsed().as_secs() < 30, "refused before the run");
    }
    // As many as there are actors is fine.
    let out = bypass(&[
        "run",
        "--backend",
        "mutex-map",
        "--scenario",
        "delivery-lookup",
        "--scale",
        "0.01",
        "--threads",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_scale_beyond_the_memory_is_refused_with_the_estimate() {
    let out = bypass(&[
        "run",
        "--backend",
        "mutex-map",
        "--scenario",
        "delivery-lookup",
        "--scale",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("would need about"), "{err}");
    assert!(err.contains("of memory"), "{err}");
    assert!(err.contains("GiB"), "{err}");
    assert!(out.stdout.is_empty(), "nothing ran: {err}");
    let help = String::from_utf8_lossy(&bypass(&["run", "--help"]).stdout).into_owned();
    assert!(help.contains("1 KiB per operation"), "{help}");
}

#[test]
fn run_has_a_default_time_cap_and_zero_caps_are_errors() {
    let help = String::from_utf8_lossy(&bypass(&["run", "--help"]).stdout).into_owned();
    assert!(help.contains("[default: 60s]"), "{help}");
    let base = [
        "run",
        "--backend",
        "mutex-map",
        "--scenario",
        "vector-toggle",
    ];
    for cap in ["0", "0s", "0ms"] {
        let args: Vec<&str> = base.iter().copied().chain(["--time-cap", cap]).collect();
        let out = bypass(&args);
        assert_eq!(out.status.code(), Some(2), "{cap}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("would check nothing"),
            "{}",
            stderr(&out)
        );
    }
    let args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--time-cap", "none", "--scale", "0.01"])
        .collect();
    let out = bypass(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn an_unwritable_json_path_fails_before_the_run() {
    let dir = std::env::temp_dir().join(format!("bypass-run-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let json = blocker.join("out.json");
    let out = bypass(&[
        "run",
        "--backend",
        "mutex-map",
        "--scenario",
        "irqfd-flood",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(blocker.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("seed "), "refused before the run");
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
