//! The trace holding every case of the contract (docs/registry.md) gives, on the model,
//! exactly the output that the contract specifies. `tests/data/protocol.out` was checked line by line against the
//! contract: the callback order of connect (`p.stop, c.stop, p.add_consumer, c.add_producer`,
//! rollback `p.del_consumer`, then `c.start, p.start` always) and disconnect (`p.stop, c.stop,
//! c.del_producer, p.del_consumer, c.start, p.start`), and each error kind. The backends are
//! held to the same output by the conformance kit and by `bypass replay`'s tests.

use bypass_registry::conformance::PROTOCOL_TRACE;
use bypass_registry::trace::{parse, render, replay_model};

#[test]
fn model_prints_what_the_protocol_specifies() {
    let expected = include_str!("data/protocol.out");
    let ops = parse(PROTOCOL_TRACE).expect("the protocol trace parses");
    let got = render(&replay_model(&ops));
    if got != expected {
        for (i, (g, e)) in got.lines().zip(expected.lines()).enumerate() {
            assert_eq!(g, e, "output line {} differs", i + 1);
        }
        assert_eq!(
            got.lines().count(),
            expected.lines().count(),
            "line counts differ"
        );
    }
}

#[test]
fn protocol_trace_covers_every_outcome_and_callback() {
    let ops = parse(PROTOCOL_TRACE).unwrap();
    let out = render(&replay_model(&ops));
    for needle in [
        "err invalid-token",
        "err duplicate",
        "err not-registered",
        "err connect-failed",
        "producer 3 del_consumer", // rollback
        "consumer 1 del_producer",
    ] {
        assert!(
            out.contains(needle),
            "the protocol trace never shows `{needle}`"
        );
    }
}
