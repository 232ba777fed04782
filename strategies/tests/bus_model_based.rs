//! Model-based tests of the bus backends: proptest drives random operation sequences (with
//! failing and panicking probes and removes, invalid keys, ids, names and empty tables) against
//! each backend and the sequential bus model, comparing the callbacks, the outcome and the state
//! read back after every step.

use bypass_registry::bus::kit::{assert_faults_match_model, assert_matches_model};
use bypass_registry::bus::model::DriverBehaviour;
use bypass_registry::bus::op::Op;
use bypass_registry::bus::{ANY, BusCallback};
use bypass_strategies::bus::{LockFreeBus, MutexListBus, MutexMapBus, RcuBus, ShardedBus};
use proptest::prelude::*;

/// A few values, ANY among them, so that patterns and ids meet often; 0 makes a device
/// `invalid-id`.
fn field() -> impl Strategy<Value = u32> {
    prop_oneof![Just(ANY), 0u32..4]
}

/// Few keys (0 among them) and names (one invalid), so that operations collide often.
fn op() -> impl Strategy<Value = Op> {
    let name = prop_oneof![Just("a"), Just("b"), Just("c"), Just("Bad")];
    prop_oneof![
        4 => (0u64..7, field(), field()).prop_map(|(k, d, v)| Op::register_device(k, d, v)),
        2 => (0u64..7).prop_map(Op::unregister_device),
        3 => (name.clone(), proptest::collection::vec((field(), field()), 0..3), proptest::bool::weighted(0.2))
            .prop_map(|(n, table, fail)| Op::register_driver(n, &table, fail)),
        2 => name.prop_map(Op::unregister_driver),
        1 => Just(Op::Rescan),
    ]
}

/// Mostly well-behaved drivers; some fail their probes, some panic in probe or remove.
fn behaviour() -> impl Strategy<Value = DriverBehaviour> {
    let callback = prop_oneof![Just(BusCallback::Probe), Just(BusCallback::Remove)];
    (
        proptest::bool::weighted(0.2),
        proptest::option::weighted(0.2, callback),
    )
        .prop_map(|(fail_probe, panic_on)| DriverBehaviour {
            fail_probe,
            panic_on,
        })
}

/// One pair of model-based tests per bus backend: plain sequences, and sequences under faults.
macro_rules! follows_the_model {
    ($($module:ident: $bus:ty),* $(,)?) => {$(
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

                #[test]
                fn follows_the_model(ops in proptest::collection::vec(op(), 1..100)) {
                    // Panics with the first differing step, which proptest then shrinks.
                    assert_matches_model(&<$bus>::new(), &ops);
                }

                #[test]
                fn follows_the_model_under_faults(
                    ops in proptest::collection::vec((op(), behaviour()), 1..80)
                ) {
                    assert_faults_match_model(&<$bus>::new(), &ops);
                }
            }
        }
    )*};
}

follows_the_model!(
    mutex_list: MutexListBus,
    mutex_map: MutexMapBus,
    sharded: ShardedBus,
    rcu: RcuBus,
    lockfree: LockFreeBus,
);
