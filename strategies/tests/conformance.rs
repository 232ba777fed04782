//! Every backend against the whole conformance kit of `bypass-registry`: one test per case
//! per backend.

mod mutex_list {
    bypass_registry::conformance_tests!(bypass_strategies::MutexList::new());
}

mod mutex_map {
    bypass_registry::conformance_tests!(bypass_strategies::MutexMap::new());
}

mod sharded {
    bypass_registry::conformance_tests!(bypass_strategies::Sharded::new());
}

/// Two shards: half of all pairs of tokens share one, so same-shard re-entrancy is exercised.
mod sharded_two_shards {
    bypass_registry::conformance_tests!(bypass_strategies::Sharded::with_shards(2));
}

mod rcu {
    bypass_registry::conformance_tests!(bypass_strategies::Rcu::new());
}

/// One bucket: every token shares it, and its trie grows deep.
mod rcu_one_bucket {
    bypass_registry::conformance_tests!(bypass_strategies::Rcu::with_buckets(1));
}

mod lockfree {
    bypass_registry::conformance_tests!(bypass_strategies::LockFree::new());
}
