//! The sequential bus model: the contract as a plain state machine, with no threads, locks or
//! real drivers. It is the executable spec that bus traces and property tests compare every
//! backend against.

use super::contract::BusPopulation;
use super::error::ErrorKind;
use super::id::{DeviceId, DriverName, IdTable, Key};
use super::op::{Checked, Op, Outcome, Step};
use super::participant::{BusCallback, BusEvent};

/// How a driver behaves when called back: the faults the model knows.
///
/// Traces only express `fail_probe`; tests also inject panics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DriverBehaviour {
    /// Its probes return an error.
    pub fail_probe: bool,
    /// This callback panics, every time it runs (after it is recorded, and before
    /// `fail_probe` is considered).
    pub panic_on: Option<BusCallback>,
}

#[derive(Clone, Debug)]
struct ModelDevice {
    key: Key,
    id: DeviceId,
    driver: Option<DriverName>,
}

#[derive(Clone, Debug)]
struct ModelDriver {
    name: DriverName,
    table: IdTable,
    behaviour: DriverBehaviour,
    /// Its devices, in the order they were bound.
    bound: Vec<Key>,
}

/// The bus contract as a sequential state machine.
///
/// ```
/// use bypass_registry::bus::model::BusModel;
/// use bypass_registry::bus::op::{Op, Outcome};
/// use bypass_registry::bus::ErrorKind;
///
/// let mut model = BusModel::new();
/// let net = Op::register_driver("net", &[(1, 0x1af4)], false);
/// assert_eq!(model.apply(&net).outcome, Outcome::Ok);
/// assert_eq!(model.apply(&net).outcome, Outcome::Err(ErrorKind::Duplicate));
/// let step = model.apply(&Op::register_device(5, 1, 0x1af4));
/// assert_eq!(step.to_string(), "register device 5 id 1:6900\n  driver net probe 5\n  ok\n");
/// ```
#[derive(Clone, Debug, Default)]
pub struct BusModel {
    /// In registration order.
    devices: Vec<ModelDevice>,
    /// In registration order.
    drivers: Vec<ModelDriver>,
}

impl BusModel {
    /// An empty bus.
    pub fn new() -> BusModel {
        BusModel::default()
    }

    /// The driver the device under `key` is bound to.
    pub fn driver_of(&self, key: Key) -> Option<DriverName> {
        self.device(key).and_then(|d| d.driver)
    }

    /// How many devices the driver `name` has bound, if registered.
    pub fn bound_count(&self, name: DriverName) -> Option<usize> {
        self.driver(name).map(|d| d.bound.len())
    }

    /// Whether a device is registered under `key`.
    pub fn has_device(&self, key: Key) -> bool {
        self.device(key).is_some()
    }

    /// Whether a driver is registered under `name`.
    pub fn has_driver(&self, name: DriverName) -> bool {
        self.driver(name).is_some()
    }

    /// The registered keys, in device order.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.devices.iter().map(|d| d.key)
    }

    /// The registered driver names, in driver order.
    pub fn names(&self) -> impl Iterator<Item = DriverName> + '_ {
        self.drivers.iter().map(|d| d.name)
    }

    /// How many devices and drivers are registered, and how many devices are bound.
    pub fn population(&self) -> BusPopulation {
        BusPopulation {
            devices: self.devices.len(),
            drivers: self.drivers.len(),
            bound: self.devices.iter().filter(|d| d.driver.is_some()).count(),
        }
    }

    /// Applies one operation: the callbacks the contract runs, in order, and the outcome. A
    /// registering driver fails its probes as the operation's `fail-probe` says.
    pub fn apply(&mut self, op: &Op) -> Step {
        self.apply_with(op, DriverBehaviour::default())
    }

    /// Like [`BusModel::apply`], a registering driver also behaving as `behaviour` (its
    /// probes fail if `behaviour.fail_probe` or the operation's `fail-probe` says so). A
    /// callback's panic makes the outcome [`Outcome::Panicked`], with the state changed as a
    /// failed probe or a completed remove.
    pub fn apply_with(&mut self, op: &Op, behaviour: DriverBehaviour) -> Step {
        let mut calls = Calls::default();
        let outcome = match op.check() {
            Err(kind) => Err(kind),
            Ok(checked) => self.run(checked, behaviour, &mut calls),
        };
        Step {
            op: op.clone(),
            events: calls.events,
            outcome: match outcome {
                _ if calls.panicked => Outcome::Panicked,
                Ok(()) => Outcome::Ok,
                Err(kind) => Outcome::Err(kind),
            },
        }
    }

    fn device(&self, key: Key) -> Option<&ModelDevice> {
        self.devices.iter().find(|d| d.key == key)
    }

    fn driver(&self, name: DriverName) -> Option<&ModelDriver> {
        self.drivers.iter().find(|d| d.name == name)
    }

    fn run(
        &mut self,
        checked: Checked,
        behaviour: DriverBehaviour,
        calls: &mut Calls,
    ) -> Result<(), ErrorKind> {
        match checked {
            Checked::RegisterDevice(key, id) => {
                if self.has_device(key) {
                    return Err(ErrorKind::Duplicate);
                }
                self.devices.push(ModelDevice {
                    key,
                    id,
                    driver: None,
                });
                self.offer(self.devices.len() - 1, calls);
            }
            Checked::RegisterDriver(name, table, fail_probe) => {
                if self.has_driver(name) {
                    return Err(ErrorKind::Duplicate);
                }
                let behaviour = DriverBehaviour {
                    fail_probe: fail_probe || behaviour.fail_probe,
                    ..behaviour
                };
                self.drivers.push(ModelDriver {
                    name,
                    table,
                    behaviour,
                    bound: Vec::new(),
                });
                let driver = self.drivers.len() - 1;
                for device in 0..self.devices.len() {
                    if self.devices[device].driver.is_none() {
                        self.try_bind(driver, device, calls);
                    }
                }
            }
            Checked::UnregisterDevice(key) => {
                let index = self
                    .devices
                    .iter()
                    .position(|d| d.key == key)
                    .ok_or(ErrorKind::NotRegistered)?;
                let device = self.devices.remove(index);
                if let Some(name) = device.driver {
                    let driver = self
                        .drivers
                        .iter_mut()
                        .find(|d| d.name == name)
                        .expect("a bound device's driver is registered");
                    calls.call(driver, BusCallback::Remove, key);
                    driver.bound.retain(|&k| k != key);
                }
            }
            Checked::UnregisterDriver(name) => {
                let index = self
                    .drivers
                    .iter()
                    .position(|d| d.name == name)
                    .ok_or(ErrorKind::NotRegistered)?;
                let driver = self.drivers.remove(index);
                for &key in driver.bound.iter().rev() {
                    calls.call(&driver, BusCallback::Remove, key);
                    let device = self
                        .devices
                        .iter_mut()
                        .find(|d| d.key == key)
                        .expect("a bound device is registered");
                    device.driver = None;
                }
            }
            Checked::Rescan => {
                for device in 0..self.devices.len() {
                    if self.devices[device].driver.is_none() {
                        self.offer(device, calls);
                    }
                }
            }
        }
        Ok(())
    }

    /// Offers device `device` to the drivers in order until one binds it.
    fn offer(&mut self, device: usize, calls: &mut Calls) {
        for driver in 0..self.drivers.len() {
            if self.try_bind(driver, device, calls) {
                return;
            }
        }
    }

    /// Probes `device` by `driver` if it matches; binds it if the probe succeeds.
    fn try_bind(&mut self, driver: usize, device: usize, calls: &mut Calls) -> bool {
        let (drv, dev) = (&mut self.drivers[driver], &mut self.devices[device]);
        if !drv.table.matches(dev.id) {
            return false;
        }
        let panics = calls.call(drv, BusCallback::Probe, dev.key);
        let bound = !panics && !drv.behaviour.fail_probe;
        if bound {
            dev.driver = Some(drv.name);
            drv.bound.push(dev.key);
        }
        bound
    }
}

/// The callbacks of one operation, and whether one panicked.
#[derive(Default)]
struct Calls {
    events: Vec<BusEvent>,
    panicked: bool,
}

impl Calls {
    /// Records `callback` of `driver` about `key`; whether it panics.
    fn call(&mut self, driver: &ModelDriver, callback: BusCallback, key: Key) -> bool {
        self.events.push(BusEvent {
            driver: driver.name,
            callback,
            key: key.get(),
        });
        let panics = driver.behaviour.panic_on == Some(callback);
        self.panicked |= panics;
        panics
    }
}
