//! `bypass replay` and `bypass list` as a user runs them: output, exit status, errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const PROTOCOL_OUT: &str = include_str!("../../registry/tests/data/protocol.out");

fn bypass(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bypass");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn backend_names() -> Vec<String> {
    let out = bypass(&["list", "--backends"], "");
    assert!(out.status.success());
    text(&out.stdout).lines().map(str::to_owned).collect()
}

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
