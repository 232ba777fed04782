//! Deliberately broken buses: each breaks one guarantee of the bus contract, so that the bus
//! conformance kit can show it catches it. Never use them for anything else.
//!
//! ```
//! use bypass_registry::bus::broken::{BrokenBus, BusFlaw};
//! use bypass_registry::bus::kit;
//!
//! let case = kit::CASES.iter().find(|c| c.name == "unregister_driver_removes_most_recent_first").unwrap();
//! let make = || std::sync::Arc::new(BrokenBus::new(BusFlaw::OldestRemovedFirst)) as _;
//! let failed = std::panic::catch_unwind(|| (case.run)(&make));
//! assert!(failed.is_err(), "the kit catches the wrong remove order");
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use super::contract::{Bus, BusPopulation, RegisterDeviceResult, RegisterDriverResult};
use super::error::{Reentrant, RegisterError, UnregisterError};
use super::id::{DriverName, Key};
use super::participant::{Device, Driver};
use crate::protocol::PanicPayload;

/// The guarantee a [`BrokenBus`] breaks. Each also lacks re-entrancy detection: a callback that
/// calls back into it deadlocks on its (std, non-re-entrant) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusFlaw {
    /// Offers a new device to every matching driver, even after one bound it: a double probe.
    DoubleProbe,
    /// `unregister_driver` removes its devices in the order they were bound, oldest first.
    OldestRemovedFirst,
    /// `unregister_driver` offers its devices to the other drivers at once.
    Reoffers,
    /// Registering looks for the other side, then registers itself, in two critical sections:
    /// a device and a driver registering at once can miss each other (a lost binding).
    CheckThenAct,
    /// A panicking probe ends the walk instead of letting the next driver or device try.
    PanicStopsWalk,
    /// Nothing more than the missing re-entrancy detection every flaw has.
    DeadlocksOnReentry,
}

type Binding = (DriverName, Arc<dyn Driver>);

#[derive(Default)]
struct State {
    /// In registration order, each with its driver.
    devices: Vec<(Arc<Device>, Option<Binding>)>,
    /// In registration order.
    drivers: Vec<Binding>,
    /// Every binding, in the order made.
    binds: Vec<(DriverName, Key)>,
}

impl State {
    fn device_mut(&mut self, key: Key) -> Option<&mut (Arc<Device>, Option<Binding>)> {
        self.devices.iter_mut().find(|(d, _)| d.key() == key)
    }

    fn bind(&mut self, key: Key, binding: Binding) {
        self.binds.push((binding.0, key));
        if let Some(entry) = self.device_mut(key) {
            entry.1 = Some(binding);
        }
    }

    fn unbind(&mut self, key: Key) {
        self.binds.retain(|&(_, k)| k != key);
        if let Some(entry) = self.device_mut(key) {
            entry.1 = None;
        }
    }
}

/// A bus behind one std mutex held across callbacks, correct but for its [`BusFlaw`].
pub struct BrokenBus {
    flaw: BusFlaw,
    state: Mutex<State>,
}

impl fmt::Debug for BrokenBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokenBus")
            .field("flaw", &self.flaw)
            .finish_non_exhaustive()
    }
}

/// The first panic of a call.
#[derive(Default)]
struct FirstPanic(Option<PanicPayload>);

impl FirstPanic {
    /// Runs `f`; `None` if it panicked.
    fn run<R>(&mut self, f: impl FnOnce() -> R) -> Option<R> {
        catch_unwind(AssertUnwindSafe(f))
            .map_err(|payload| {
                self.0.get_or_insert(payload);
            })
            .ok()
    }

    fn resume<T>(self, value: T) -> T {
        match self.0 {
            Some(payload) => resume_unwind(payload),
            None => value,
        }
    }
}

impl BrokenBus {
    /// An empty bus with `flaw`.
    pub fn new(flaw: BusFlaw) -> BrokenBus {
        BrokenBus {
            flaw,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Probes `device` by `drivers` in order until one binds it (or, with `DoubleProbe`, all
    /// of them); returns the last that did.
    fn offer(
        &self,
        device: &Device,
        drivers: &[Binding],
        panics: &mut FirstPanic,
    ) -> Option<Binding> {
        let mut bound = None;
        for (name, driver) in drivers {
            if !driver.id_table().matches(device.id()) {
                continue;
            }
            match panics.run(|| driver.probe(device)) {
                Some(Ok(())) => {
                    bound = Some((*name, Arc::clone(driver)));
                    if self.flaw != BusFlaw::DoubleProbe {
                        break;
                    }
                }
                Some(Err(_)) => {}
                None if self.flaw == BusFlaw::PanicStopsWalk => break,
                None => {}
            }
        }
        bound
    }

    /// The flaw's window between looking and acting.
    fn window(&self) {
        if self.flaw == BusFlaw::CheckThenAct {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Bus for BrokenBus {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn register_device(&self, device: Arc<Device>) -> RegisterDeviceResult {
        let drivers = {
            let state = self.lock();
            if state.devices.iter().any(|(d, _)| d.key() == device.key()) {
                return Err(RegisterError::Duplicate(device));
            }
            state.drivers.clone()
        };
        self.window();
        let mut state = self.lock();
        state.devices.push((Arc::clone(&device), None));
        let mut panics = FirstPanic::default();
        if let Some(binding) = self.offer(&device, &drivers, &mut panics) {
            state.bind(device.key(), binding);
        }
        drop(state);
        panics.resume(Ok(()))
    }

    fn unregister_device(&self, key: Key) -> Result<Arc<Device>, UnregisterError> {
        let mut state = self.lock();
        let index = state
            .devices
            .iter()
            .position(|(d, _)| d.key() == key)
            .ok_or(UnregisterError::NotRegistered)?;
        let (device, binding) = state.devices[index].clone();
        let mut panics = FirstPanic::default();
        if let Some((_, driver)) = binding {
            panics.run(|| driver.remove(&device));
        }
        state.unbind(key);
        state.devices.remove(index);
        drop(state);
        Ok(panics.resume(device))
    }

    fn register_driver(&self, name: DriverName, driver: Arc<dyn Driver>) -> RegisterDriverResult {
        let devices: Vec<Arc<Device>> = {
            let state = self.lock();
            if state.drivers.iter().any(|(n, _)| *n == name) {
                return Err(RegisterError::Duplicate(driver));
            }
            let unbound = state.devices.iter().filter(|(_, b)| b.is_none());
            unbound.map(|(d, _)| Arc::clone(d)).collect()
        };
        self.window();
        let mut state = self.lock();
        state.drivers.push((name, Arc::clone(&driver)));
        let mut panics = FirstPanic::default();
        let me = [(name, driver)];
        for device in devices {
            if let Some(binding) = self.offer(&device, &me, &mut panics) {
                state.bind(device.key(), binding);
            } else if panics.0.is_some() && self.flaw == BusFlaw::PanicStopsWalk {
                break;
            }
        }
        drop(state);
        panics.resume(Ok(()))
    }

    fn unregister_driver(&self, name: DriverName) -> Result<Arc<dyn Driver>, UnregisterError> {
        let mut state = self.lock();
        let index = state
            .drivers
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or(UnregisterError::NotRegistered)?;
        let (_, driver) = state.drivers.remove(index);
        let mut keys: Vec<Key> = state
            .binds
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|&(_, k)| k)
            .collect();
        if self.flaw != BusFlaw::OldestRemovedFirst {
            keys.reverse();
        }
        let mut panics = FirstPanic::default();
        for key in keys {
            let device = Arc::clone(
                &state
                    .device_mut(key)
                    .expect("bound devices are registered")
                    .0,
            );
            panics.run(|| driver.remove(&device));
            state.unbind(key);
            if self.flaw == BusFlaw::Reoffers {
                let drivers = state.drivers.clone();
                if let Some(binding) = self.offer(&device, &drivers, &mut panics) {
                    state.bind(key, binding);
                }
            }
        }
        drop(state);
        Ok(panics.resume(driver))
    }

    fn rescan(&self) -> Result<(), Reentrant> {
        let mut state = self.lock();
        let drivers = state.drivers.clone();
        let unbound: Vec<Arc<Device>> = state
            .devices
            .iter()
            .filter(|(_, b)| b.is_none())
            .map(|(d, _)| Arc::clone(d))
            .collect();
        let mut panics = FirstPanic::default();
        for device in unbound {
            if let Some(binding) = self.offer(&device, &drivers, &mut panics) {
                state.bind(device.key(), binding);
            }
        }
        drop(state);
        panics.resume(Ok(()))
    }

    fn driver_of(&self, key: Key) -> Option<DriverName> {
        let mut state = self.lock();
        state
            .device_mut(key)
            .and_then(|(_, b)| b.as_ref().map(|(n, _)| *n))
    }

    fn bound_count(&self, name: DriverName) -> Option<usize> {
        let state = self.lock();
        state
            .drivers
            .iter()
            .any(|(n, _)| *n == name)
            .then(|| state.binds.iter().filter(|(n, _)| *n == name).count())
    }

    fn has_device(&self, key: Key) -> bool {
        self.lock().device_mut(key).is_some()
    }

    fn has_driver(&self, name: DriverName) -> bool {
        self.lock().drivers.iter().any(|(n, _)| *n == name)
    }

    fn population(&self) -> BusPopulation {
        let state = self.lock();
        BusPopulation {
            devices: state.devices.len(),
            drivers: state.drivers.len(),
            bound: state.binds.len(),
        }
    }
}
