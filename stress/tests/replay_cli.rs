//! `bypass replay` and `bypass list` as a user runs them: output, exit status, errors.

const PROTOCOL_OUT: &str = include_str!("../../registry/tests/data/protocol.out");

mod common;

use common::{backend_names, bypass_with_input as bypass, text};
use std::process::{Command, Output, Stdio};

#[test]
fn list_backends_prints_names_alone() {
    let names = backend_names();
    assert!(names.iter().any(|n| n == "mutex-list"), "{names:?}");
    assert!(names.iter().any(|n| n == "mutex-map"), "{names:?}");
    assert!(names.iter().all(|n| !n.contains(' ')), "{names:?}");
}

#[test]
fn list_describes_backends_and_scenarios() {
    let out = bypass(&["list"], "");
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for name in backend_names() {
        assert!(
            stdout.contains(&name),
            "`bypass list` misses backend {name}"
        );
    }
    for scenario in ["irqfd-flood", "boot-storm", "delivery-lookup"] {
        assert!(
            stdout.contains(scenario),
            "`bypass list` misses scenario {scenario}"
        );
    }
}

#[test]
fn replay_all_prints_the_protocol_output_for_every_case() {
    let trace = bypass_registry::conformance::PROTOCOL_TRACE;
    let out = bypass(&["replay"], trace);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), PROTOCOL_OUT);
}

#[test]
fn replay_each_backend_prints_the_same() {
    let trace = bypass_registry::conformance::PROTOCOL_TRACE;
    for name in backend_names() {
        let out = bypass(&["replay", "--backend", &name, "-"], trace);
        assert_eq!(out.status.code(), Some(0), "{name}");
        assert_eq!(text(&out.stdout), PROTOCOL_OUT, "{name}");
    }
}

#[test]
fn replay_reads_a_file_and_normalizes_lines() {
    let dir = std::env::temp_dir().join(format!("bypass-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.trace");
    std::fs::write(
        &path,
        "  register   producer 9   # comment\n\n# only a comment\nregister consumer 9 fail-add\n",
    )
    .unwrap();
    let out = bypass(&["replay", path.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "register producer 9\n  ok\nregister consumer 9 fail-add\n  producer 9 stop\n  consumer 9 stop\n  producer 9 add_consumer\n  consumer 9 add_producer\n  producer 9 del_consumer\n  consumer 9 start\n  producer 9 start\n  err connect-failed\n"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn malformed_line_is_named_and_nothing_runs() {
    for (trace, line, what) in [
        (
            "register producer 1\nregister produce 1\n",
            2,
            "expected `producer` or `consumer`",
        ),
        ("register producer x\n", 1, "expected a token"),
        (
            "\n\nunregister consumer 3 fail-add\n",
            3,
            "only allowed on register",
        ),
        (
            "register producer 99999999999999999999\n",
            1,
            "does not fit",
        ),
        (
            "frobnicate producer 1\n",
            1,
            "expected `register` or `unregister`",
        ),
        ("register consumer 1 fail-add extra\n", 1, "end of the line"),
        ("register\n", 1, "expected `producer` or `consumer`"),
    ] {
        let out = bypass(&["replay"], trace);
        assert_eq!(out.status.code(), Some(2), "{trace:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("line {line}:")),
            "{trace:?}: {stderr}"
        );
        assert!(stderr.contains(what), "{trace:?}: {stderr}");
        assert_eq!(
            text(&out.stdout),
            "",
            "{trace:?}: nothing may run before the error"
        );
    }
}

#[test]
fn unknown_backend_lists_valid_names() {
    let out = bypass(&["replay", "--backend", "spinlock"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown backend `spinlock`"), "{stderr}");
    for name in backend_names() {
        assert!(stderr.contains(&name), "{stderr}");
    }
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let out = bypass(&["replay", "/nonexistent/bypass.trace"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read trace `/nonexistent/bypass.trace`"),
        "{stderr}"
    );
}

/// The replay example in the README is what `bypass replay` prints for its input.
#[test]
fn readme_replay_example_is_true() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```console\n$ printf '")
        .expect("README has the replay example");
    let block = &readme[start + "```console\n$ printf '".len()..];
    let (input, rest) = block.split_once('\'').unwrap();
    let input = input.replace("\\n", "\n");
    let (_, rest) = rest.split_once('\n').unwrap();
    let shown = &rest[..rest.find("```").unwrap()];
    let out = bypass(&["replay"], &input);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), shown);
}

/// Runs `bypass replay FILE` and fails the test if it has not finished within `secs`.
fn replay_within(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bypass");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() >= secs {
            child.kill().ok();
            panic!("`bypass {args:?}` still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn binary_input_is_a_clear_error_at_once() {
    let out = replay_within(&["replay", "/dev/zero"], 10);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 1 holds a NUL byte"), "{stderr}");
    assert!(stderr.contains("binary"), "{stderr}");
    let out = bypass(&["replay"], "register producer 1\n\u{1}\u{0}\u{2}\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("line 2 holds a NUL byte"));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn a_too_long_line_is_a_malformed_line_with_its_number() {
    let trace = format!("register producer 1\n{}\n", "9".repeat(1 << 20));
    let out = bypass(&["replay"], &trace);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("malformed trace: line 2: the line is longer than 4096 bytes"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout), "", "nothing runs");
}

#[test]
fn a_leading_byte_order_mark_is_skipped() {
    let out = bypass(
        &["replay"],
        "\u{feff}register producer 7\r\nregister consumer 7\r\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("register producer 7\n  ok\n"));
    // Only at the start: elsewhere it is not a word of the format.
    let out = bypass(
        &["replay"],
        "register producer 7\n\u{feff}register consumer 7\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("line 2:"));
}

#[test]
fn an_empty_trace_says_so_and_succeeds() {
    for (trace, says) in [("", "it is empty"), ("# a comment\n\n", "only blank lines")] {
        let out = bypass(&["replay"], trace);
        assert_eq!(out.status.code(), Some(0), "{trace:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("no operations"), "{trace:?}: {stderr}");
        assert!(stderr.contains(says), "{trace:?}: {stderr}");
        assert_eq!(text(&out.stdout), "");
    }
}

/// A trace much larger than one read runs line by line on every backend and the model, from a
/// file and from a pipe alike, and a difference is still named by its line.
#[test]
fn a_large_trace_streams_from_a_file_and_a_pipe() {
    let mut trace = String::new();
    for round in 0..3000u64 {
        let t = round % 700 + 1;
        trace.push_str(&format!(
            "register consumer {t}\nregister producer {t}\nunregister producer {t}\nunregister consumer {t}\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("bypass-replay-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.trace");
    std::fs::write(&path, &trace).unwrap();
    let from_file = bypass(&["replay", path.to_str().unwrap()], "");
    let from_pipe = bypass(&["replay"], &trace);
    for out in [&from_file, &from_pipe] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).matches("\n  ok\n").count(), 12_000);
    }
    assert_eq!(from_file.stdout, from_pipe.stdout);
    std::fs::remove_dir_all(&dir).ok();
}
