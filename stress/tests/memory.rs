//! Memory comes back: every real backend, filled and emptied ten times and dropped, returns to
//! its baseline; backends that keep emptied entries or replaced snapshots are caught. The
//! counting allocator counts every thread, so the tests of this binary take turns.

use std::sync::{Mutex, MutexGuard, PoisonError};

use bypass_registry::Registry;
use bypass_registry::memory::{Footprint, footprint};
use bypass_strategies::{Backend, Visitor};
use bypass_stress::alloc::{Counting, Heap, Window};

#[global_allocator]
static ALLOC: Counting = Counting;

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn measure<R: Registry>(make: impl Fn() -> R) -> Footprint {
    let window = Window::open();
    assert!(window.installed());
    footprint(make, &Heap(&window), 2_000)
}

#[test]
fn every_real_backend_gives_its_memory_back() {
    let _turn = turn();
    struct V;
    impl Visitor for V {
        type Output = Footprint;
        fn visit<R: Registry + Default + 'static>(self) -> Footprint {
            measure(R::default)
        }
    }
    for &backend in Backend::ALL {
        let f = backend.visit(V);
        println!("{backend}: {f:?}");
        assert_eq!(f.leak(), None, "{backend}: {f:?}");
        assert!(f.per_token > 0.0, "{backend}: {f:?}");
    }
}
