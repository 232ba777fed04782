//! What a bus run records: every bus call with its start, end and what it returned; every
//! callback, in each device's log, with the call it ran in; and the drivers of the run, which
//! record those callbacks. The runner writes it, the checker reads it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bypass_registry::CallbackError;
use bypass_registry::bus::op::Outcome;
use bypass_registry::bus::{BusCallback, BusPopulation, Device, DeviceId, DriverName, IdTable};

use super::scenario::{ProbeFault, probe_fault};
use crate::participant::{InjectedPanic, current_op};
use crate::scenario::Faults;
use crate::violation::Violation;

/// What kind of call an operation record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BusOpKind {
    RegisterDevice(DeviceId),
    UnregisterDevice,
    /// Driver `driver` of the plan, as instance `instance`.
    RegisterDriver {
        driver: usize,
        instance: u32,
    },
    UnregisterDriver {
        driver: usize,
    },
    Rescan,
    DriverOf,
}

impl BusOpKind {
    /// Whether the call walks many devices (it concerns no one key).
    pub(crate) fn is_walk(self) -> bool {
        matches!(
            self,
            BusOpKind::RegisterDriver { .. }
                | BusOpKind::UnregisterDriver { .. }
                | BusOpKind::Rescan
        )
    }
}

/// What a call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BusObserved {
    Outcome(Outcome),
    Driver(Option<DriverName>),
}

/// One bus call as it happened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BusOpRecord {
    pub(crate) id: u64,
    /// The device's key; 0 for a walk.
    pub(crate) key: u64,
    pub(crate) kind: BusOpKind,
    /// Nanoseconds since the run's clock started, before the call.
    pub(crate) invoke: u64,
    /// Nanoseconds since the run's clock started, after the return.
    pub(crate) response: u64,
    pub(crate) observed: BusObserved,
}

/// One callback about a device: during which call (0 if none), by which driver instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BusRecorded {
    pub(crate) op: u64,
    pub(crate) instance: u32,
    pub(crate) callback: BusCallback,
}

/// The callbacks about one device, in the order they ran, and what broke per-device rules as
/// they ran.
#[derive(Debug, Default)]
pub(crate) struct DeviceLog {
    events: Mutex<Vec<BusRecorded>>,
    /// Callbacks about it running now.
    running: AtomicU32,
    /// Callbacks that started while another about it ran.
    pub(crate) overlaps: AtomicU32,
    /// Whether its `unregister_device` has returned `Ok`.
    pub(crate) gone: AtomicBool,
    /// Callbacks made about it after that.
    pub(crate) late: AtomicU32,
}

impl DeviceLog {
    pub(crate) fn take(&self) -> Vec<BusRecorded> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A driver of a bus run: one instance of a plan's driver. Its probes answer as
/// [`probe_fault`] says; each callback is logged in its device's log, busy-waits the callback
/// cost, and is checked against the per-device rules.
pub(crate) struct StressDriver {
    pub(crate) instance: u32,
    pub(crate) name: DriverName,
    table: IdTable,
    seed: u64,
    faults: Faults,
    cost: Duration,
    logs: Arc<[DeviceLog]>,
    retired: AtomicBool,
    /// Callbacks after the bus handed it back.
    pub(crate) late: AtomicU32,
}

impl StressDriver {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        instance: u32,
        name: DriverName,
        table: IdTable,
        seed: u64,
        faults: Faults,
        cost: Duration,
        logs: Arc<[DeviceLog]>,
    ) -> StressDriver {
        StressDriver {
            instance,
            name,
            table,
            seed,
            faults,
            cost,
            logs,
            retired: AtomicBool::new(false),
            late: AtomicU32::new(0),
        }
    }

    /// The bus has handed it back: any later callback is a violation.
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    fn called(&self, callback: BusCallback, device: &Device) {
        if self.retired.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        let key = device.key().get();
        // A key outside the plan's cannot come from the plan: counted as late, not logged.
        let Some(log) = usize::try_from(key).ok().and_then(|k| self.logs.get(k)) else {
            self.late.fetch_add(1, Ordering::SeqCst);
            return;
        };
        if log.gone.load(Ordering::SeqCst) {
            log.late.fetch_add(1, Ordering::SeqCst);
        }
        if log.running.fetch_add(1, Ordering::SeqCst) > 0 {
            log.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        // With chaos on, a pause inside the callback keeps the device's race windows open.
        crate::chaos::pause();
        log.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(BusRecorded {
                op: current_op(),
                instance: self.instance,
                callback,
            });
        if !self.cost.is_zero() {
            // A busy wait, as a driver setting up its queues would spend on a CPU.
            let start = Instant::now();
            while start.elapsed() < self.cost {
                std::hint::spin_loop();
            }
        }
        log.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl bypass_registry::bus::Driver for StressDriver {
    fn id_table(&self) -> &IdTable {
        &self.table
    }

    fn probe(&self, device: &Device) -> Result<(), CallbackError> {
        self.called(BusCallback::Probe, device);
        let key = device.key().get();
        match probe_fault(self.seed, self.faults, self.instance, key) {
            ProbeFault::None => Ok(()),
            ProbeFault::Fail => Err(CallbackError::new("injected probe failure")),
            ProbeFault::Panic => std::panic::panic_any(InjectedPanic),
        }
    }

    fn remove(&self, device: &Device) {
        self.called(BusCallback::Remove, device);
    }
}

/// Every driver's counts once every driver was unregistered: the population read then, and
/// whether each driver and device is held by the bus still.
#[derive(Debug, Default)]
pub(crate) struct BusEnd {
    /// What the bus counts after the teardown.
    pub(crate) left: BusPopulation,
    /// Devices the bus still holds after they were all unregistered.
    pub(crate) devices_held: usize,
    /// Drivers the bus still holds after they were all unregistered.
    pub(crate) drivers_held: usize,
    /// Callbacks that reached drivers after the bus had handed them back.
    pub(crate) late_driver_calls: u64,
}

/// The counts read at the quiet point, with no call in flight, before the teardown.
#[derive(Debug, Default)]
pub(crate) struct QuietBus {
    pub(crate) population: BusPopulation,
    /// Each registered driver's `bound_count`.
    pub(crate) bound_counts: Vec<(DriverName, usize)>,
    /// For each driver, how many devices `driver_of` named it for.
    pub(crate) named: HashMap<DriverName, usize>,
}

/// Everything a bus run recorded, for the checker.
#[derive(Default)]
pub(crate) struct BusHistory {
    /// Every bus call, the quiet reads and the harness's teardown included.
    pub(crate) ops: Vec<BusOpRecord>,
    /// `logs[k]`: the callbacks about the device under key `k`.
    pub(crate) logs: Option<Arc<[DeviceLog]>>,
    /// Broken guarantees seen during a call: a device or driver handed back that was not the
    /// one registered.
    pub(crate) violations: Vec<Violation>,
    pub(crate) quiet: Option<QuietBus>,
    pub(crate) end: BusEnd,
}
