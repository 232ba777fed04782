//! Every backend against the whole conformance kit of `bypass-registry`: one test per case
//! per backend.

mod mutex_list {
    bypass_registry::conformance_tests!(bypass_strategies::MutexList::new());
}

mod mutex_map {
    bypass_registry::conformance_tests!(bypass_strategies::MutexMap::new());
}
