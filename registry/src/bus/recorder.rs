//! Drivers for tests, replays and stress runs: they record every callback they receive, check
//! the per-device guarantees as they go, and can be told to fail, panic or call back into the
//! bus.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::id::{DriverName, IdTable};
use super::participant::{BusCallback, BusEvent, Device, Driver};
use crate::participant::CallbackError;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A driver that panics on purpose does so outside these locks; recover anyway so one
    // broken test cannot hide the events of another.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An ordered record of callbacks, shared by the drivers of a test, which also counts the
/// breaches of per-device guarantees it sees.
#[derive(Debug, Default)]
pub struct BusLog {
    events: Mutex<Vec<BusEvent>>,
    /// The keys whose callbacks are running, and how many run at once.
    running: Mutex<HashMap<u64, usize>>,
    overlaps: AtomicUsize,
    /// Keys whose `unregister_device` has returned.
    gone: Mutex<HashSet<u64>>,
    late: AtomicUsize,
}

impl BusLog {
    /// An empty log, ready to share.
    pub fn new() -> Arc<BusLog> {
        Arc::new(BusLog::default())
    }

    /// Appends an event.
    pub fn push(&self, event: BusEvent) {
        lock(&self.events).push(event);
    }

    /// Removes and returns every event logged so far.
    pub fn take(&self) -> Vec<BusEvent> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// A copy of every event logged so far.
    pub fn snapshot(&self) -> Vec<BusEvent> {
        lock(&self.events).clone()
    }

    /// Declares that `unregister_device(key)` has returned: any later callback about `key`
    /// is counted in [`BusLog::late_calls`]. Use each key once.
    pub fn device_gone(&self, key: u64) {
        lock(&self.gone).insert(key);
    }

    /// Callbacks that overlapped another callback about the same device: each one breaks
    /// per-device exclusion.
    pub fn overlaps(&self) -> usize {
        self.overlaps.load(Ordering::SeqCst)
    }

    /// Callbacks about a device after its `unregister_device` returned.
    pub fn late_calls(&self) -> usize {
        self.late.load(Ordering::SeqCst)
    }

    /// Marks a callback about `key` as running until the guard drops.
    fn enter(&self, key: u64) -> Running<'_> {
        if lock(&self.gone).contains(&key) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        let mut running = lock(&self.running);
        let count = running.entry(key).or_default();
        if *count > 0 {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        *count += 1;
        Running { log: self, key }
    }
}

struct Running<'a> {
    log: &'a BusLog,
    key: u64,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = lock(&self.log.running);
        if let Some(count) = running.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// What a recording driver does when called back, besides logging: it may call into the bus.
pub type BusHook = Arc<dyn Fn(&RecordingDriver, BusCallback, &Device) + Send + Sync>;

/// A driver that logs each callback it receives into a [`BusLog`].
///
#[cfg_attr(feature = "kit", doc = "```")]
#[cfg_attr(not(feature = "kit"), doc = "```ignore")]
/// use bypass_registry::bus::recorder::{BusLog, RecordingDriver};
/// use bypass_registry::bus::{ANY, Device, DeviceId, Driver, DriverName, IdTable, Key};
///
/// let log = BusLog::new();
/// let net = RecordingDriver::new(DriverName::new("net").unwrap(), IdTable::one(1, ANY), &log)
///     .fail_probe(true);
/// let dev = Device::new(Key::new(5).unwrap(), DeviceId::new(1, 2).unwrap());
/// assert!(net.probe(&dev).is_err());
/// let lines: Vec<String> = log.take().iter().map(|e| e.to_string()).collect();
/// assert_eq!(lines, ["driver net probe 5"]);
/// ```
pub struct RecordingDriver {
    name: DriverName,
    table: IdTable,
    log: Arc<BusLog>,
    fail_probe: bool,
    panic_on: Option<BusCallback>,
    hook: Option<BusHook>,
    retired: AtomicBool,
    late_calls: AtomicUsize,
}

impl RecordingDriver {
    /// A driver that logs as `name` and serves `table`.
    pub fn new(name: DriverName, table: IdTable, log: &Arc<BusLog>) -> RecordingDriver {
        RecordingDriver {
            name,
            table,
            log: Arc::clone(log),
            fail_probe: false,
            panic_on: None,
            hook: None,
            retired: AtomicBool::new(false),
            late_calls: AtomicUsize::new(0),
        }
    }

    /// Sets whether its probes fail (the trace's `fail-probe`).
    #[must_use]
    pub fn fail_probe(mut self, fail: bool) -> RecordingDriver {
        self.fail_probe = fail;
        self
    }

    /// Makes `callback` panic, after it is logged and the hook ran.
    #[must_use]
    pub fn panicking_on(mut self, callback: Option<BusCallback>) -> RecordingDriver {
        self.panic_on = callback;
        self
    }

    /// Runs `hook` in every callback, after logging it (and before a panic or failure).
    #[must_use]
    pub fn with_hook(mut self, hook: BusHook) -> RecordingDriver {
        self.hook = Some(hook);
        self
    }

    /// The name it logs as.
    pub fn name(&self) -> DriverName {
        self.name
    }

    /// Declares that the bus has handed this driver back: any later callback is counted in
    /// [`RecordingDriver::late_calls`].
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Callbacks received after [`RecordingDriver::retire`]: each breaks "no call after
    /// return".
    pub fn late_calls(&self) -> usize {
        self.late_calls.load(Ordering::SeqCst)
    }

    fn called(&self, callback: BusCallback, device: &Device) {
        if self.retired.load(Ordering::SeqCst) {
            self.late_calls.fetch_add(1, Ordering::SeqCst);
        }
        let _running = self.log.enter(device.key().get());
        self.log.push(BusEvent {
            driver: self.name,
            callback,
            key: device.key().get(),
        });
        if let Some(hook) = &self.hook {
            hook(self, callback, device);
        }
        if self.panic_on == Some(callback) {
            panic!(
                "driver {} panics in {} of {}",
                self.name,
                callback.as_str(),
                device.key()
            );
        }
    }
}

impl fmt::Debug for RecordingDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingDriver")
            .field("name", &self.name)
            .field("fail_probe", &self.fail_probe)
            .field("panic_on", &self.panic_on)
            .finish_non_exhaustive()
    }
}

impl Driver for RecordingDriver {
    fn id_table(&self) -> &IdTable {
        &self.table
    }

    fn probe(&self, device: &Device) -> Result<(), CallbackError> {
        self.called(BusCallback::Probe, device);
        if self.fail_probe {
            Err(CallbackError::new(format!(
                "driver {} refuses device {}",
                self.name,
                device.key()
            )))
        } else {
            Ok(())
        }
    }

    fn remove(&self, device: &Device) {
        self.called(BusCallback::Remove, device);
    }
}
