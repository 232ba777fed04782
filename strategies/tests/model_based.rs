//! Model-based tests: proptest drives random operation sequences (with `fail-add`
//! participants and the zero token) against every backend and the sequential model, comparing
//! the outcome and the callback trace after every step.

use bypass_registry::Side;
use bypass_registry::conformance::assert_matches_model;
use bypass_registry::trace::Op;
use bypass_strategies::Backend;
use proptest::prelude::*;

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Producer), Just(Side::Consumer)]
}

/// Few tokens, so that sides meet, collide and leave often; 0 is among them.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (side(), 0u64..5, proptest::bool::weighted(0.2)).prop_map(|(side, token, fail_add)| {
            Op::Register {
                side,
                token,
                fail_add,
            }
        }),
        (side(), 0u64..5).prop_map(|(side, token)| Op::Unregister { side, token }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_backend_follows_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        for backend in Backend::ALL {
            // Panics with the first differing step, which proptest then shrinks.
            assert_matches_model(&*backend.make(), &ops);
        }
    }
}
