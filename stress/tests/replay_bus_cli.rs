//! `bypass replay` on virtio bus lines: alone, mixed with bypass lines, and malformed.

use bypass_registry::bus::kit::BUS_TRACE;

const BUS_OUT: &str = include_str!("../../registry/tests/data/bus.out");

mod common;
use common::{backend_names, bypass_with_input as bypass, text};

#[test]
fn the_golden_bus_trace_replays_byte_identically_on_every_backend() {
    let all = bypass(&["replay"], BUS_TRACE);
    assert_eq!(all.status.code(), Some(0), "stderr: {}", text(&all.stderr));
    assert_eq!(
        text(&all.stdout),
        BUS_OUT,
        "--backend all (the model, checked)"
    );
    let names = backend_names();
    assert_eq!(names.len(), 5, "{names:?}");
    for name in names {
        let out = bypass(&["replay", "--backend", &name], BUS_TRACE);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), BUS_OUT, "{name}");
    }
}

/// Bus and bypass lines interleaved: each runs on its own registry, so the bypass token 5 and
/// the bus device 5 never meet, and each prints what its model prints.
const MIXED: &str = "\
register driver net id 1:*           # bus
register producer 5                  # bypass
register device 5 id 1:0x1af4        # bus: probed by net
register consumer 5                  # bypass: pairs with producer 5, not device 5
unregister producer 5
unregister driver net                # bus: removes device 5
rescan
unregister device 5
unregister consumer 5
";

const MIXED_OUT: &str = "\
register driver net id 1:*
  ok
register producer 5
  ok
register device 5 id 1:0x1af4
  driver net probe 5
  ok
register consumer 5
  producer 5 stop
  consumer 5 stop
  producer 5 add_consumer
  consumer 5 add_producer
  consumer 5 start
  producer 5 start
  ok
unregister producer 5
  producer 5 stop
  consumer 5 stop
  consumer 5 del_producer
  producer 5 del_consumer
  consumer 5 start
  producer 5 start
  ok
unregister driver net
  driver net remove 5
  ok
rescan
  ok
unregister device 5
  ok
unregister consumer 5
  ok
";

#[test]
fn a_mixed_trace_runs_each_kind_on_its_own_registry() {
    let all = bypass(&["replay"], MIXED);
    assert_eq!(all.status.code(), Some(0), "stderr: {}", text(&all.stderr));
    assert_eq!(text(&all.stdout), MIXED_OUT);
    for name in backend_names() {
        let out = bypass(&["replay", "--backend", &name, "-"], MIXED);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), MIXED_OUT, "{name}");
    }
}

#[test]
fn a_malformed_bus_line_is_named_and_nothing_runs() {
    for (trace, line, what) in [
        (
            "register producer 1\nregister driver net id 1:*\nregister device 5 id 1\n",
            3,
            "expected `DEVICE:VENDOR`, found `1`",
        ),
        ("rescan now\n", 1, "expected the end of the line"),
        (
            "register driver net id 1:* fail-probe\n\nunregister device x\n",
            3,
            "expected a key",
        ),
        ("register driver\n", 1, "expected a driver name"),
        (
            "register device 5 id 1:0x1_000_000_000\n",
            1,
            "expected an id field",
        ),
        ("register driver net id 1:* probe\n", 1, "found `probe`"),
    ] {
        let out = bypass(&["replay"], trace);
        assert_eq!(out.status.code(), Some(2), "{trace:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("malformed trace: line {line}:")),
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
