//! The bus trace holding every rule of the virtio bus contract gives, on the model, exactly the
//! output `tests/data/bus.out`, which was checked line by line against the contract: the
//! validation errors in their order (key, id; name, table) with no callback, a device offered to
//! drivers in registration order until a probe succeeds, a new driver probing the unbound
//! devices it matches in device order, ANY on either field, `unregister driver` removing most
//! recently bound first without re-offering, `rescan` after a driver left, `not-registered`,
//! `duplicate`. The backends are held to the same output by the bus conformance kit.

use bypass_registry::bus::kit::BUS_TRACE;
use bypass_registry::bus::trace::{parse, render, replay_model};

#[test]
fn model_prints_what_the_bus_contract_specifies() {
    let expected = include_str!("data/bus.out");
    let ops = parse(BUS_TRACE).expect("the bus trace parses");
    let got = render(&replay_model(&ops));
    for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
        assert_eq!(g, e, "output line {} differs", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        expected.lines().count(),
        "line counts differ"
    );
}

#[test]
fn bus_trace_covers_every_outcome_a_trace_can_show() {
    let out = render(&replay_model(&parse(BUS_TRACE).unwrap()));
    for needle in [
        "err invalid-key",
        "err invalid-id",
        "err invalid-name",
        "err duplicate",
        "err not-registered",
        "probe",
        "remove",
    ] {
        assert!(out.contains(needle), "the bus trace never shows `{needle}`");
    }
}

#[test]
fn malformed_lines_are_refused_with_their_number() {
    for (text, line, message) in [
        (
            "rescan\nrescan now\n",
            2,
            "expected the end of the line, found `now`",
        ),
        (
            "register bus x\n",
            1,
            "expected `driver` or `device`, found `bus`",
        ),
        ("register device 1 id 1:0x1_0\n", 1, "expected an id field"),
        (
            "register device 1 id 1:4294967296\n",
            1,
            "expected an id field",
        ),
        ("register device -1 id 1:1\n", 1, "expected a key"),
        (
            "register device 1 id 1:1 fail-probe\n",
            1,
            "expected the end of the line",
        ),
        ("register driver\n", 1, "expected a driver name"),
        (
            "register driver n id 1:1 fail-probe id 2:2\n",
            1,
            "expected `id`, `fail-probe`",
        ),
        (
            "unregister driver n fail-probe\n",
            1,
            "expected the end of the line",
        ),
        (
            "\n# only a comment\nplug device 1\n",
            3,
            "expected `register`, `unregister` or `rescan`",
        ),
    ] {
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, line, "{text:?}");
        assert!(
            err.message.starts_with(message),
            "{text:?}: {}",
            err.message
        );
    }
}

#[test]
fn lines_echo_as_written() {
    let text =
        "register   device 0x10 id 0X1:*   # hex kept\nregister driver n id *:0x1AF4 fail-probe\n";
    let ops = parse(text).unwrap();
    let echoed: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        echoed,
        [
            "register device 0x10 id 0X1:*",
            "register driver n id *:0x1AF4 fail-probe"
        ]
    );
}
