//! Every bus backend against the whole bus conformance kit of `bypass-registry`: one test per
//! case per backend.

mod mutex_list {
    bypass_registry::bus_conformance_tests!(bypass_strategies::bus::MutexListBus::new());
}

mod mutex_map {
    bypass_registry::bus_conformance_tests!(bypass_strategies::bus::MutexMapBus::new());
}

mod sharded {
    bypass_registry::bus_conformance_tests!(bypass_strategies::bus::ShardedBus::new());
}

mod rcu {
    bypass_registry::bus_conformance_tests!(bypass_strategies::bus::RcuBus::new());
}

mod lockfree {
    bypass_registry::bus_conformance_tests!(bypass_strategies::bus::LockFreeBus::new());
}

/// Every backend name serves a bus of that name.
#[test]
fn every_backend_makes_its_bus() {
    for &backend in bypass_strategies::Backend::ALL {
        assert_eq!(backend.make_bus().name(), backend.name());
    }
}

/// A bus call from a thread-local destructor, as when a VMM's per-thread device handle is
/// dropped at thread exit, neither aborts nor deadlocks: the re-entrancy frames need no
/// destructor of their own.
#[test]
fn bus_calls_from_a_thread_local_destructor_work() {
    use std::cell::RefCell;
    use std::sync::{Arc, Mutex};

    use bypass_registry::bus::recorder::{BusLog, RecordingDriver};
    use bypass_registry::bus::{ANY, Bus, Device, DeviceId, DriverName, IdTable, Key};
    use bypass_strategies::bus::MutexListBus;

    struct UnplugOnExit(Arc<MutexListBus>, Arc<Mutex<Vec<String>>>);
    impl Drop for UnplugOnExit {
        fn drop(&mut self) {
            let key = Key::new(7).unwrap();
            let unplugged = self.0.unregister_device(key).map(|d| d.key().get());
            self.1.lock().unwrap().push(format!("{unplugged:?}"));
        }
    }
    thread_local! {
        static HANDLE: RefCell<Option<UnplugOnExit>> = const { RefCell::new(None) };
    }

    let bus = Arc::new(MutexListBus::new());
    let log = BusLog::new();
    let net = DriverName::new("net").unwrap();
    let driver = RecordingDriver::new(net, IdTable::one(1, ANY), &log);
    bus.register_driver(net, Arc::new(driver)).unwrap();
    let results = Arc::new(Mutex::new(Vec::new()));
    let (b, r) = (bus.clone(), results.clone());
    std::thread::spawn(move || {
        let device = Device::new(Key::new(7).unwrap(), DeviceId::new(1, 1).unwrap());
        b.register_device(Arc::new(device)).unwrap();
        HANDLE.with(|h| *h.borrow_mut() = Some(UnplugOnExit(b.clone(), r)));
    })
    .join()
    .unwrap();
    assert_eq!(*results.lock().unwrap(), ["Ok(7)"]);
    let lines: Vec<String> = log.take().iter().map(ToString::to_string).collect();
    assert_eq!(lines, ["driver net probe 7", "driver net remove 7"]);
    assert_eq!(bus.population().devices, 0);
}
