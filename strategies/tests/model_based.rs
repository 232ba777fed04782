//! Model-based tests: proptest drives random operation sequences (with `fail-add`
//! participants and the zero token) against every backend and the sequential model, comparing
//! the outcome and the callback trace after every step.

use bypass_registry::conformance::{assert_faults_match_model, assert_matches_model};
use bypass_registry::op::{Behaviour, Op};
use bypass_registry::{Callback, Side};
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

/// Mostly well-behaved participants; some fail their add, some panic in one callback.
fn behaviour() -> impl Strategy<Value = Behaviour> {
    let callback = prop_oneof![
        Just(Callback::Stop),
        Just(Callback::Add),
        Just(Callback::Del),
        Just(Callback::Start),
    ];
    (
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.15, callback),
    )
        .prop_map(|(fail_add, panic_on)| Behaviour { fail_add, panic_on })
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

    #[test]
    fn every_backend_follows_the_model_under_faults(
        ops in proptest::collection::vec((op(), behaviour()), 1..80)
    ) {
        for backend in Backend::ALL {
            assert_faults_match_model(&*backend.make(), &ops);
        }
    }
}
