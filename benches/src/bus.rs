//! Setup for the bus benchmarks (`benches/benches/bus.rs`): drivers that cost nothing, the live
//! population registered before a measurement, and the device cycle the groups time.

use std::sync::Arc;

use bypass_registry::CallbackError;
use bypass_registry::bus::{ANY, Bus, Device, DeviceId, Driver, DriverName, IdTable, Key};

/// The device keys of the cycling threads start here, above any live population.
const CYCLE_KEYS: u64 = 1 << 40;

/// A driver whose probes succeed and whose callbacks do nothing.
#[derive(Debug)]
pub struct NoopDriver(IdTable);

impl NoopDriver {
    /// A driver of the devices of type `device`, any vendor.
    pub fn of_type(device: u32) -> NoopDriver {
        NoopDriver(IdTable::one(device, ANY))
    }
}

impl Driver for NoopDriver {
    fn id_table(&self) -> &IdTable {
        &self.0
    }
    fn probe(&self, _: &Device) -> Result<(), CallbackError> {
        Ok(())
    }
    fn remove(&self, _: &Device) {}
}

/// The name of driver `index`: `d0`, `d1`, ….
pub fn driver_name(index: usize) -> DriverName {
    DriverName::new(&format!("d{index}")).expect("bench driver names are valid")
}

/// A device of type `device` under `key`.
pub fn device(key: u64, device: u32) -> Arc<Device> {
    let key = Key::new(key).expect("bench keys are non-zero");
    Arc::new(Device::new(
        key,
        DeviceId::new(device, 0x1af4).expect("bench ids are valid"),
    ))
}

/// Registers `drivers` drivers, driver `i` serving device type `i + 1`, then `live` devices
/// (keys 1 to `live`) spread over their types, so each binds on registration.
pub fn populate_bus<B: Bus + ?Sized>(bus: &B, live: usize, drivers: usize) {
    for i in 0..drivers {
        let driver = NoopDriver::of_type(u32::try_from(i + 1).expect("few drivers"));
        bus.register_driver(driver_name(i), Arc::new(driver))
            .expect("register a bench driver");
    }
    for k in 1..=live as u64 {
        let kind = u32::try_from(k % drivers.max(1) as u64).expect("few drivers") + 1;
        bus.register_device(device(k, kind))
            .expect("register a live device");
    }
}

/// One thread's device register+unregister cycle: the device is handed back by each
/// unregister and registered again, so the loop allocates nothing of its own.
#[derive(Debug)]
pub struct DeviceCycle {
    device: Option<Arc<Device>>,
}

impl DeviceCycle {
    /// The cycle of thread `thread`'s device, of type `kind`.
    pub fn new(thread: usize, kind: u32) -> DeviceCycle {
        DeviceCycle {
            device: Some(device(CYCLE_KEYS + thread as u64, kind)),
        }
    }

    /// Registers the device (its offer probes the drivers) and unregisters it (its remove).
    pub fn step<B: Bus + ?Sized>(&mut self, bus: &B) {
        let device = self.device.take().expect("the cycle holds its device");
        let key = device.key();
        bus.register_device(device)
            .expect("register the cycling device");
        self.device = Some(bus.unregister_device(key).expect("unregister it"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bypass_strategies::Backend;

    #[test]
    fn the_cycle_binds_and_leaves_the_population_as_it_found_it() {
        for &backend in Backend::ALL {
            let bus = backend.make_bus();
            populate_bus(&*bus, 100, 8);
            let before = bus.population();
            assert_eq!(before.bound, 100, "{backend}");
            let mut cycle = DeviceCycle::new(0, 8);
            cycle.step(&*bus);
            assert_eq!(bus.population(), before, "{backend}");
        }
    }
}
