//! The probe and remove sequencing, written once: every bus backend runs its callbacks and
//! walks through this module and decides only where its state lives and what it locks.
//!
//! - [`probe`] and [`remove`]: one callback, under [`catch_unwind`], with the thread marked as
//!   being inside a callback of this bus about that device, by that driver.
//! - [`offer`]: a device offered to drivers in registration order; the first probe that
//!   succeeds binds it; a failed or panicking probe lets the next matching driver try.
//! - [`attach`]: a new driver offered each unbound device it matches, in device order.
//! - [`detach`]: a leaving driver's `remove` for each of its devices, in the order the backend
//!   hands them (most recently bound first), each device unbound even if `remove` panics.
//!
//! # Panics in callbacks
//! A panicking probe counts as a failed probe, and a panicking remove as a completed one: the
//! walk goes on. The first panic of a call is kept in [`Panics`]; the backend resumes it with
//! [`Panics::resume`] once its state is consistent, so the panic reaches the caller of the bus
//! and the bus is never left half-updated.
//!
//! # Re-entrancy
//! While a callback runs, the thread has a frame on a stack of frames saying which bus, which
//! device and which driver it is for. [`BusId::in_callback_about`],
//! [`BusId::in_callback_of`] and [`BusId::in_callback`] let a backend refuse a call that would
//! deadlock or break per-device exclusion with `reentrant`.
//!
//! The frames live in the callbacks' own stack frames, linked through a thread-local `Cell`
//! holding a pointer to the innermost. That thread-local has no destructor, so it can be read
//! at any time, including from another thread-local's destructor that calls into a bus.

// The frame stack follows raw pointers to frames on this thread's stack; see `innermost`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::id::{DriverName, Key};
use super::participant::{Device, Driver};
use crate::protocol::PanicPayload;

/// Identifies one bus instance, for re-entrancy detection.
///
/// Each backend makes one in its constructor and passes it to the functions of this module.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BusId(NonZeroU64);

impl BusId {
    /// A fresh id, distinct from every other in this process.
    pub fn new() -> BusId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        BusId(NonZeroU64::new(id).expect("bus ids never wrap"))
    }

    /// Whether this thread is inside a callback of this bus (at any depth).
    pub fn in_callback(self) -> bool {
        self.any_frame(|_| true)
    }

    /// Whether this thread is inside a callback of this bus about the device under `key`.
    pub fn in_callback_about(self, key: Key) -> bool {
        self.any_frame(|frame| frame.key == key)
    }

    /// Whether this thread is inside a callback of this bus to the driver named `name`.
    pub fn in_callback_of(self, name: DriverName) -> bool {
        self.any_frame(|frame| frame.driver == name)
    }

    fn any_frame(self, mut pred: impl FnMut(&Frame) -> bool) -> bool {
        let mut next = INNERMOST.with(Cell::get);
        while let Some(frame) = innermost(next) {
            if frame.bus == self && pred(frame) {
                return true;
            }
            next = frame.outer;
        }
        false
    }
}

impl Default for BusId {
    fn default() -> BusId {
        BusId::new()
    }
}

impl fmt::Debug for BusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BusId({})", self.0)
    }
}

/// A callback in progress on this thread.
struct Frame {
    bus: BusId,
    key: Key,
    driver: DriverName,
    /// The frame of the callback this one runs inside, or null.
    outer: *const Frame,
}

thread_local! {
    /// The innermost frame of this thread, or null. A `Cell` of a pointer needs no destructor.
    static INNERMOST: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}

/// The frame `ptr` points at, if any.
fn innermost<'a>(ptr: *const Frame) -> Option<&'a Frame> {
    // Safety: every non-null pointer reachable from `INNERMOST` points at a `Frame` owned by a
    // `within_frame` call on this thread that has not returned: `within_frame` publishes its
    // frame on entry and restores the outer pointer before the frame goes out of scope (also
    // when unwinding), so frames are unlinked in LIFO order, and a thread-local is never seen
    // by another thread. The reference is only used while that call is still running (by the
    // calls nested in it).
    unsafe { ptr.as_ref() }
}

/// Runs `callback` with this thread marked as inside a callback of `bus`, to `driver`, about
/// the device under `key`.
fn within_frame<R>(bus: BusId, key: Key, driver: DriverName, callback: impl FnOnce() -> R) -> R {
    /// Restores the outer frame when dropped, including on unwind.
    struct Unlink(*const Frame);
    impl Drop for Unlink {
        fn drop(&mut self) {
            INNERMOST.with(|top| top.set(self.0));
        }
    }
    let frame = Frame {
        bus,
        key,
        driver,
        outer: INNERMOST.with(Cell::get),
    };
    INNERMOST.with(|top| top.set(&frame));
    // Declared after `frame`, so dropped (and unlinked) before it.
    let _unlink = Unlink(frame.outer);
    callback()
}

/// The first panic of a call's callbacks, kept until the backend's state is consistent.
#[derive(Default)]
#[must_use = "resume the panics: the first callback panic must reach the caller"]
pub struct Panics(Option<PanicPayload>);

impl Panics {
    /// No panic yet.
    pub fn new() -> Panics {
        Panics(None)
    }

    /// Whether a callback has panicked.
    pub fn any(&self) -> bool {
        self.0.is_some()
    }

    /// Returns `value`, or resumes the first panic. Call it once the backend's state is
    /// consistent (every lock guard protecting it released or about to be).
    pub fn resume<T>(self, value: T) -> T {
        if let Some(payload) = self.0 {
            drop(value);
            resume_unwind(payload);
        }
        value
    }

    fn guarded<R>(&mut self, callback: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(callback)) {
            Ok(r) => Some(r),
            Err(payload) => {
                self.0.get_or_insert(payload);
                None
            }
        }
    }
}

impl fmt::Debug for Panics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Panics")
            .field("panicked", &self.any())
            .finish()
    }
}

/// Runs `driver.probe(device)`; whether it succeeded (a panic is a failure, kept in `panics`).
///
/// The caller must hold whatever excludes other callbacks about `device` for the whole call.
pub fn probe(
    bus: BusId,
    name: DriverName,
    driver: &dyn Driver,
    device: &Device,
    panics: &mut Panics,
) -> bool {
    within_frame(bus, device.key(), name, || {
        panics
            .guarded(|| driver.probe(device))
            .is_some_and(|r| r.is_ok())
    })
}

/// Runs `driver.remove(device)`; a panic is kept in `panics`, and the device counts as
/// removed all the same.
///
/// The caller must hold whatever excludes other callbacks about `device` for the whole call.
pub fn remove(
    bus: BusId,
    name: DriverName,
    driver: &dyn Driver,
    device: &Device,
    panics: &mut Panics,
) {
    within_frame(bus, device.key(), name, || {
        panics.guarded(|| driver.remove(device));
    });
}

/// Offers `device` to `drivers` (in driver registration order): each one whose id table
/// matches gets `probe`, until one succeeds. Returns the name of that driver, to which the
/// backend binds the device, or `None` if none took it.
///
/// The caller must hold whatever excludes other callbacks about `device`, and keep the device
/// unbound, for the whole call.
pub fn offer<'a>(
    bus: BusId,
    device: &Device,
    drivers: impl IntoIterator<Item = (DriverName, &'a dyn Driver)>,
    panics: &mut Panics,
) -> Option<DriverName> {
    drivers.into_iter().find_map(|(name, driver)| {
        (driver.id_table().matches(device.id()) && probe(bus, name, driver, device, panics))
            .then_some(name)
    })
}

/// The walk of a new driver: `next` hands out the unbound devices, in device order (each
/// one `G`, the backend's handle on it: an `Arc`, or a guard of the device's lock that keeps it
/// unbound); each that `driver` matches gets `probe`, and on success `bind` records the
/// binding. A handle not bound is dropped before the next is asked for.
pub fn attach<G: Deref<Target = Device>>(
    bus: BusId,
    name: DriverName,
    driver: &dyn Driver,
    mut next: impl FnMut() -> Option<G>,
    mut bind: impl FnMut(G),
    panics: &mut Panics,
) {
    while let Some(device) = next() {
        if driver.id_table().matches(device.id()) && probe(bus, name, driver, &device, panics) {
            bind(device);
        }
    }
}

/// The walk of a leaving driver: `next` hands out its bound devices, most recently bound
/// first; each gets `remove`, then `unbind` records that it is unbound, even if `remove`
/// panicked.
pub fn detach<G: Deref<Target = Device>>(
    bus: BusId,
    name: DriverName,
    driver: &dyn Driver,
    mut next: impl FnMut() -> Option<G>,
    mut unbind: impl FnMut(G),
    panics: &mut Panics,
) {
    while let Some(device) = next() {
        remove(bus, name, driver, &device, panics);
        unbind(device);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bus::recorder::{BusLog, RecordingDriver};
    use crate::bus::{ANY, DeviceId, IdTable};

    fn device(key: u64) -> Device {
        Device::new(Key::new(key).unwrap(), DeviceId::new(1, 1).unwrap())
    }

    #[test]
    fn frames_nest_and_unlink_even_on_panic() {
        let (bus, other) = (BusId::new(), BusId::new());
        let net = DriverName::new("net").unwrap();
        let log = BusLog::new();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = seen.clone();
        let hook: crate::bus::recorder::BusHook = Arc::new(move |_, _, dev| {
            out.lock().unwrap().push((
                dev.key().get(),
                bus.in_callback_about(Key::new(1).unwrap()),
                bus.in_callback_about(Key::new(2).unwrap()),
                bus.in_callback_of(net),
                other.in_callback(),
            ));
            if dev.key().get() == 1 {
                // A nested callback about device 2, inside the one about device 1.
                let inner = RecordingDriver::new(net, IdTable::one(ANY, ANY), &BusLog::new());
                let mut panics = Panics::new();
                assert!(probe(bus, net, &inner, &device(2), &mut panics));
            }
        });
        let driver = RecordingDriver::new(net, IdTable::one(1, ANY), &log)
            .with_hook(hook)
            .panicking_on(Some(crate::bus::BusCallback::Probe));
        let mut panics = Panics::new();
        assert!(
            !probe(bus, net, &driver, &device(1), &mut panics),
            "a panic is a failure"
        );
        assert!(panics.any());
        assert_eq!(
            *seen.lock().unwrap(),
            [(1, true, false, true, false)],
            "inside the probe of 1 (the nested probe's driver has no hook)"
        );
        assert!(!bus.in_callback(), "the frames are unlinked after a panic");
        let caught = catch_unwind(AssertUnwindSafe(|| panics.resume(())));
        assert!(caught.is_err(), "the first panic resumes");
    }

    #[test]
    fn frames_are_readable_from_a_thread_local_destructor() {
        struct CallsOnExit(BusId, Arc<std::sync::atomic::AtomicBool>);
        impl Drop for CallsOnExit {
            fn drop(&mut self) {
                let during = self.0.in_callback();
                self.1.store(!during, Ordering::SeqCst);
            }
        }
        thread_local! {
            static ON_EXIT: std::cell::RefCell<Option<CallsOnExit>> =
                const { std::cell::RefCell::new(None) };
        }
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        std::thread::spawn(move || {
            ON_EXIT.with(|slot| *slot.borrow_mut() = Some(CallsOnExit(BusId::new(), flag)));
        })
        .join()
        .unwrap();
        assert!(ran.load(Ordering::SeqCst), "the destructor read the frames");
    }
}
