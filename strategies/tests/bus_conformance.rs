//! Every bus backend against the whole bus conformance kit of `bypass-registry`: one test per
//! case per backend.

mod mutex_list {
    bypass_registry::bus_conformance_tests!(bypass_strategies::bus::MutexListBus::new());
}
