//! The conformance kit: the whole contract, run against any backend.
//!
//! Each case is a public function taking a factory of fresh registries; [`CASES`] lists them
//! and [`run_all`] runs them all. In a backend's test suite, [`conformance_tests!`] makes one
//! `#[test]` per case, so a failure names the broken guarantee:
//!
//! ```ignore
//! bypass_registry::conformance_tests!(my_backend::MyRegistry::new());
//! ```
//!
//! The sequential cases check each line of the contract with [`Probe`] participants and exact
//! callback traces; the concurrent ones race registrations, unregistrations and lookups over
//! many rounds, and check the traces with [`check_token_history`]. Cases that could deadlock on
//! a broken backend run under a watchdog and fail instead of hanging; a panic on any of their
//! threads fails them at once, with its message.
//!
//! The kit's parts, one a module: the harness (a [`Case`] and the registries it runs on), the
//! callback sequences the contract expects, the comparison with the sequential model, the
//! watchdog, and the cases by group: sequential, concurrent, faults, re-entrancy.
//!
//! [`conformance_tests!`]: crate::conformance_tests
//! [`Probe`]: crate::probe::Probe

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::registry::Registry;

mod against_model;
mod concurrent;
mod expected;
mod faults;
mod harness;
mod reentrant;
mod references;
mod sequential;
mod watchdog;

pub use against_model::{assert_faults_match_model, assert_matches_model};
pub use expected::{
    check_token_history, connect_events, disconnect_events, events, rolled_back_events,
};
pub use harness::{Case, Factory};
pub use sequential::PROTOCOL_TRACE;
pub use watchdog::{panic_message, set_watchdog};

/// Makes the kit's exports and [`CASES`] from the case list of [`conformance_tests!`].
///
/// [`conformance_tests!`]: crate::conformance_tests
macro_rules! kit {
    ($($group:ident: $($case:ident),+;)+) => {
        $(pub use $group::{$($case),+};)+

        /// Every case of the kit, in the order [`run_all`] runs them.
        pub const CASES: &[Case] = &[$($(Case { name: stringify!($case), run: $case }),+),+];
    };
}

crate::conformance_tests!(@cases [kit] []);

/// Runs every case of the kit on registries made by `make`, panicking at the first failure
/// with the case's name.
pub fn run_all<R: Registry + 'static>(make: impl Fn() -> R + Sync) {
    let factory = move || Arc::new(make()) as Arc<dyn Registry>;
    for case in CASES {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (case.run)(&factory))) {
            panic!(
                "conformance case `{}` failed: {}",
                case.name,
                panic_message(&*panic)
            );
        }
    }
}

/// Makes one `#[test]` per conformance case for the backend built by `$make`.
///
/// The macro also holds the kit's one list of cases (its `@cases` rule), which
/// [`conformance::CASES`] and the kit's exports are made from too: a case added there runs
/// everywhere, and a case function left out of it is unused, which the build warns of.
///
/// [`conformance::CASES`]: crate::conformance::CASES
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases [$crate::conformance_tests] [@tests $make;]);
    };
    // Every case, by the module of the kit that holds it, in the order `CASES` lists them.
    // `@cases [m] [args]` expands to `m! { args GROUP: CASE, …; … }`.
    (@cases [$($callback:tt)*] [$($args:tt)*]) => {
        $($callback)*! { $($args)*
            sequential:
                register_alone_runs_no_callback,
                connect_order_producer_first,
                connect_order_consumer_first,
                duplicate_is_refused_and_untouched,
                zero_token_is_invalid,
                producer_add_failure_fails_connect,
                consumer_add_failure_rolls_back,
                failed_connect_can_be_retried,
                unregister_paired_disconnects_in_order,
                unregister_unpaired_runs_no_callback,
                unregister_empty_side_is_not_registered,
                unregister_hands_back_the_only_reference,
                lookups_follow_the_state,
                protocol_trace_matches_model,
                random_sequences_match_model;
            concurrent:
                racing_pair_connects_exactly_once,
                register_races_unregister,
                no_callback_after_unregister_returns,
                lookup_races_unregister,
                distinct_tokens_in_parallel_match_model,
                hot_tokens_take_every_call;
            faults:
                panic_in_stop_fails_connect,
                panic_in_add_fails_connect_and_rolls_back,
                panic_in_start_keeps_connection,
                panic_in_disconnect_completes_unregister;
            reentrant:
                reentrant_call_for_same_token_is_refused,
                reentrant_call_for_other_token_never_deadlocks;
            references: unregister_keeps_no_reference;
        }
    };
    (@tests $make:expr; $($group:ident: $($case:ident),+;)+) => {
        $($(
            #[test]
            fn $case() {
                $crate::conformance::$case(&|| {
                    ::std::sync::Arc::new($make) as ::std::sync::Arc<dyn $crate::Registry>
                });
            }
        )+)+
    };
}
