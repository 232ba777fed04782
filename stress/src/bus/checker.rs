//! The bus checker: every guarantee of the bus contract (the `Bus` trait's rustdoc in bypass-registry), verified on a bus run's
//! recorded history.
//!
//! Devices are independent, so each device's history is checked on its own, in parallel
//! (rayon). A device's history is its own calls (register, unregister, lookups) and the walks
//! that can touch it (the registrations and unregistrations of the drivers that match it, and
//! every rescan). For a device it verifies that:
//! - every callback about it ran during one of those calls (none after a call returned, none
//!   from nowhere), and the callbacks of one call are contiguous (per-device exclusion);
//! - every bind is undone once: a probe only while unbound, a remove only while bound and by
//!   the driver instance that bound it, and unbound at the end;
//! - the history is **linearizable** against the contract for one device: some order of its
//!   calls that respects real time, a walk's step for the device counting as one call, makes
//!   the contract give each call's exact callbacks about the device and its outcome (a walk's
//!   `ok` or `panic` is the whole walk's: a panic of this device's probe must show, another
//!   device's may). With the exact callbacks, this proves exactly one bind of a device and a
//!   driver registering at once, the walk orders, and no re-offer on unregister.
//!
//! Then the run-wide checks: callbacks never overlapped in time about one device, no callback
//! reached a driver after its unregister returned nor a device after its own, the counts read
//! at the quiet point agree with each device's driver, and the bus holds and counts nothing at
//! the end.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use bypass_registry::bus::op::{Op, Outcome};
use bypass_registry::bus::{BusCallback, DeviceId, DriverName, ErrorKind};
use bypass_reports::schema::ViolationKind;
use rayon::prelude::*;

use super::history::{BusHistory, BusObserved, BusOpKind, BusOpRecord, BusRecorded, DeviceLog};
use super::scenario::{BusPlan, ProbeFault, probe_fault};
use crate::linearize::{Linearizable, linearize};
use crate::violation::Violation;

/// Every broken guarantee of a bus run: those seen during its calls, the run-wide checks,
/// then each device's.
pub(crate) fn check(plan: &BusPlan, history: BusHistory) -> Vec<Violation> {
    let mut violations = history.violations;
    let logs = history.logs.expect("the runner hands its logs over");
    violations.extend(run_wide(&history.end, &logs));
    let mut by_key: HashMap<u64, Vec<&BusOpRecord>> = HashMap::new();
    let mut walks: Vec<&BusOpRecord> = Vec::new();
    for op in &history.ops {
        if op.kind.is_walk() {
            walks.push(op);
        } else {
            by_key.entry(op.key).or_default().push(op);
        }
    }
    if let Some(quiet) = &history.quiet {
        violations.extend(quiet_counts(quiet));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()
        .expect("a checker thread pool");
    let mut per_device: Vec<Violation> = pool.install(|| {
        (1..logs.len() as u64)
            .into_par_iter()
            .filter_map(|key| {
                let own = by_key.get(&key).map_or(&[][..], Vec::as_slice);
                check_device(plan, key, own, &walks, &logs[key as usize].take()).err()
            })
            .collect()
    });
    per_device.sort_by_key(|v| v.token);
    violations.extend(per_device);
    violations
}

fn run_wide(end: &super::history::BusEnd, logs: &[DeviceLog]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let first = |pred: &dyn Fn(&DeviceLog) -> bool| logs.iter().position(pred).map(|k| k as u64);
    let overlaps: u64 = logs
        .iter()
        .map(|l| u64::from(l.overlaps.load(Ordering::SeqCst)))
        .sum();
    if overlaps > 0 {
        violations.push(Violation::new(
            ViolationKind::Exclusion,
            first(&|l| l.overlaps.load(Ordering::SeqCst) > 0),
            format!(
                "{overlaps} callbacks started while another callback about the same device ran"
            ),
        ));
    }
    let late: u64 = logs
        .iter()
        .map(|l| u64::from(l.late.load(Ordering::SeqCst)))
        .sum();
    if late > 0 {
        violations.push(Violation::new(
            ViolationKind::CallAfterReturn,
            first(&|l| l.late.load(Ordering::SeqCst) > 0),
            format!(
                "{late} callbacks were made about devices after their unregister_device returned"
            ),
        ));
    }
    if end.late_driver_calls > 0 {
        violations.push(Violation::new(
            ViolationKind::CallAfterReturn,
            None,
            format!(
                "{} callbacks reached drivers after the bus had handed them back",
                end.late_driver_calls
            ),
        ));
    }
    if end.left != Default::default() {
        violations.push(Violation::new(
            ViolationKind::NotEmpty,
            None,
            format!(
                "after every device and driver was unregistered the bus still counts {} devices, {} drivers, {} bound",
                end.left.devices, end.left.drivers, end.left.bound
            ),
        ));
    }
    if end.devices_held + end.drivers_held > 0 {
        violations.push(Violation::new(
            ViolationKind::Leak,
            None,
            format!(
                "the bus still holds {} devices and {} drivers after they were all unregistered",
                end.devices_held, end.drivers_held
            ),
        ));
    }
    violations
}

/// At the quiet point, each driver's `bound_count` is the number of devices whose
/// `driver_of` names it, and the population's `bound` and `drivers` agree.
fn quiet_counts(quiet: &super::history::QuietBus) -> Vec<Violation> {
    let bound = &quiet.named;
    let mut violations = Vec::new();
    let mut wrong: Vec<String> = Vec::new();
    for &(name, count) in &quiet.bound_counts {
        let seen = bound.get(&name).copied().unwrap_or(0);
        if seen != count {
            wrong.push(format!(
                "bound_count({name}) is {count}, driver_of names it for {seen} devices"
            ));
        }
    }
    let total: usize = bound.values().sum();
    if quiet.population.bound != total {
        wrong.push(format!(
            "population counts {} bound devices, driver_of names a driver for {total}",
            quiet.population.bound
        ));
    }
    if quiet.population.drivers != quiet.bound_counts.len() {
        wrong.push(format!(
            "population counts {} drivers, {} answer bound_count",
            quiet.population.drivers,
            quiet.bound_counts.len()
        ));
    }
    if !wrong.is_empty() {
        violations.push(Violation::new(
            ViolationKind::QuietState,
            None,
            format!("with no call in flight: {}", wrong.join("; ")),
        ));
    }
    violations
}

/// What the contract says a call does to one device.
struct Expected {
    events: Vec<(u32, BusCallback)>,
    outcome: Outcome,
    /// A walk's outcome is the whole walk's: `panic` may come from another device.
    walk: bool,
}

/// One device's state, as the contract sees it: whether it is registered, the instance it is
/// bound to, and the drivers that match it, in registration order (driver, instance).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct DeviceState {
    registered: bool,
    bound: Option<u32>,
    drivers: Vec<(usize, u32)>,
}

struct Device<'a> {
    plan: &'a BusPlan,
    key: u64,
    ops: Vec<&'a BusOpRecord>,
}

impl Device<'_> {
    fn fault(&self, instance: u32) -> ProbeFault {
        probe_fault(self.plan.seed, self.plan.faults, instance, self.key)
    }

    /// Offers the device to its drivers in order until a probe binds it.
    fn offer(&self, state: &mut DeviceState, out: &mut Expected) {
        for &(_, instance) in &state.drivers {
            out.events.push((instance, BusCallback::Probe));
            match self.fault(instance) {
                ProbeFault::None => {
                    state.bound = Some(instance);
                    return;
                }
                ProbeFault::Fail => {}
                ProbeFault::Panic => out.outcome = Outcome::Panicked,
            }
        }
    }

    /// Applies op `i` to `state`: the callbacks about this device and the outcome.
    fn apply(&self, state: &mut DeviceState, i: usize) -> Expected {
        let op = self.ops[i];
        let mut out = Expected {
            events: Vec::new(),
            outcome: Outcome::Ok,
            walk: op.kind.is_walk(),
        };
        let err = |out: &mut Expected, kind| out.outcome = Outcome::Err(kind);
        match op.kind {
            BusOpKind::RegisterDevice(_) if state.registered => err(&mut out, ErrorKind::Duplicate),
            BusOpKind::RegisterDevice(_) => {
                state.registered = true;
                self.offer(state, &mut out);
            }
            BusOpKind::UnregisterDevice if !state.registered => {
                err(&mut out, ErrorKind::NotRegistered)
            }
            BusOpKind::UnregisterDevice => {
                if let Some(instance) = state.bound.take() {
                    out.events.push((instance, BusCallback::Remove));
                }
                state.registered = false;
            }
            BusOpKind::RegisterDriver { driver, instance } => {
                if state.drivers.iter().any(|&(d, _)| d == driver) {
                    err(&mut out, ErrorKind::Duplicate);
                    out.walk = false;
                } else {
                    state.drivers.push((driver, instance));
                    if state.registered && state.bound.is_none() {
                        out.events.push((instance, BusCallback::Probe));
                        match self.fault(instance) {
                            ProbeFault::None => state.bound = Some(instance),
                            ProbeFault::Fail => {}
                            ProbeFault::Panic => out.outcome = Outcome::Panicked,
                        }
                    }
                }
            }
            BusOpKind::UnregisterDriver { driver } => {
                match state.drivers.iter().position(|&(d, _)| d == driver) {
                    None => {
                        err(&mut out, ErrorKind::NotRegistered);
                        out.walk = false;
                    }
                    Some(at) => {
                        let (_, instance) = state.drivers.remove(at);
                        if state.bound == Some(instance) {
                            out.events.push((instance, BusCallback::Remove));
                            state.bound = None;
                        }
                    }
                }
            }
            BusOpKind::Rescan => {
                if state.registered && state.bound.is_none() {
                    self.offer(state, &mut out);
                }
            }
            BusOpKind::DriverOf => {}
        }
        out
    }

    /// The driver name of `instance` among the device's registered drivers.
    fn name_of(&self, state: &DeviceState, instance: u32) -> Option<DriverName> {
        let &(driver, _) = state.drivers.iter().find(|&&(_, i)| i == instance)?;
        Some(self.plan.drivers[driver].name)
    }

    /// Whether op `i` on `state` gives what was recorded; on success, the new state.
    fn step(
        &self,
        state: &DeviceState,
        i: usize,
        events: &[(u32, BusCallback)],
    ) -> Result<DeviceState, String> {
        let op = self.ops[i];
        let mut next = state.clone();
        if let BusObserved::Driver(got) = op.observed {
            let want = state.bound.and_then(|b| self.name_of(state, b));
            return if got == want {
                Ok(next)
            } else {
                Err(format!(
                    "driver_of({}) returned {}, but the state says {}",
                    self.key,
                    show_name(got),
                    show_name(want)
                ))
            };
        }
        let expected = self.apply(&mut next, i);
        let BusObserved::Outcome(got) = op.observed else {
            unreachable!("calls return outcomes")
        };
        let fits = if expected.walk {
            // The walk's outcome is the whole walk's.
            match expected.outcome {
                Outcome::Panicked => got == Outcome::Panicked,
                _ => matches!(got, Outcome::Ok | Outcome::Panicked),
            }
        } else {
            got == expected.outcome
        };
        let line = self.line(op);
        if !fits {
            return Err(format!(
                "`{line}` returned {got}, the contract says {}{}",
                expected.outcome,
                if expected.walk {
                    " (or panic, from another device)"
                } else {
                    ""
                }
            ));
        }
        if expected.events != events {
            return Err(format!(
                "`{line}` made the callbacks [{}] about device {}, the contract says [{}]",
                self.show(events),
                self.key,
                self.show(&expected.events)
            ));
        }
        Ok(next)
    }

    fn instance_name(&self, instance: u32) -> String {
        // Instances are registered by `RegisterDriver` calls of this history.
        self.ops
            .iter()
            .find_map(|op| match op.kind {
                BusOpKind::RegisterDriver {
                    driver,
                    instance: i,
                } if i == instance => {
                    Some(format!("{}#{instance}", self.plan.drivers[driver].name))
                }
                _ => None,
            })
            .unwrap_or_else(|| format!("instance#{instance}"))
    }

    fn show(&self, events: &[(u32, BusCallback)]) -> String {
        events
            .iter()
            .map(|&(i, cb)| {
                format!(
                    "driver {} {} {}",
                    self.instance_name(i),
                    cb.as_str(),
                    self.key
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The call as a trace line.
    fn line(&self, op: &BusOpRecord) -> String {
        let name = |driver: usize| self.plan.drivers[driver].name;
        match op.kind {
            BusOpKind::RegisterDevice(id) => {
                Op::register_device(self.key, id.device(), id.vendor()).to_string()
            }
            BusOpKind::UnregisterDevice => Op::unregister_device(self.key).to_string(),
            BusOpKind::RegisterDriver { driver, .. } => {
                let patterns: Vec<(u32, u32)> = self.plan.drivers[driver]
                    .table
                    .patterns()
                    .iter()
                    .map(|p| (p.device, p.vendor))
                    .collect();
                Op::register_driver(name(driver).as_str(), &patterns, false).to_string()
            }
            BusOpKind::UnregisterDriver { driver } => {
                Op::unregister_driver(name(driver).as_str()).to_string()
            }
            BusOpKind::Rescan => Op::Rescan.to_string(),
            BusOpKind::DriverOf => format!("# driver_of {}", self.key),
        }
    }

    /// The device's calls in the order they started, as a bus trace, each with what it
    /// returned; the injected faults of this device's probes as comments.
    fn trace(&self) -> String {
        let mut out = String::new();
        for op in &self.ops {
            let mut line = self.line(op);
            if let BusOpKind::RegisterDriver { instance, .. } = op.kind {
                match self.fault(instance) {
                    ProbeFault::None => {}
                    ProbeFault::Fail => {
                        line.push_str(&format!("  # its probe of {} fails", self.key))
                    }
                    ProbeFault::Panic => {
                        line.push_str(&format!("  # its probe of {} panics", self.key))
                    }
                }
            }
            let returned = match op.observed {
                BusObserved::Outcome(o) => o.to_string(),
                BusObserved::Driver(d) => show_name(d),
            };
            out.push_str(&format!("{line:<48} # returned {returned}\n"));
        }
        out
    }
}

fn show_name(name: Option<DriverName>) -> String {
    name.map_or_else(|| "none".to_string(), |n| n.to_string())
}

/// Checks one device's calls and callbacks.
fn check_device(
    plan: &BusPlan,
    key: u64,
    own: &[&BusOpRecord],
    walks: &[&BusOpRecord],
    events: &[BusRecorded],
) -> Result<(), Violation> {
    if own.is_empty() && events.is_empty() {
        return Ok(());
    }
    let id: Option<DeviceId> = own.iter().find_map(|op| match op.kind {
        BusOpKind::RegisterDevice(id) => Some(id),
        _ => None,
    });
    let mut ops: Vec<&BusOpRecord> = own.to_vec();
    if let Some(id) = id {
        ops.extend(walks.iter().copied().filter(|op| match op.kind {
            BusOpKind::RegisterDriver { driver, .. } | BusOpKind::UnregisterDriver { driver } => {
                plan.drivers[driver].table.matches(id)
            }
            _ => true,
        }));
    }
    ops.sort_by_key(|op| (op.invoke, op.response));
    let device = Device { plan, key, ops };
    let fail = |kind, message: String| {
        let mut v = Violation::new(kind, Some(key), format!("device {key}: {message}"));
        v.trace = Some(device.trace());
        v
    };
    balanced(&device, events).map_err(|m| fail(ViolationKind::UnbalancedBind, m))?;
    let index: HashMap<u64, usize> = device
        .ops
        .iter()
        .enumerate()
        .map(|(i, op)| (op.id, i))
        .collect();
    let mut per_op: Vec<Vec<(u32, BusCallback)>> = vec![Vec::new(); device.ops.len()];
    let mut closed: HashSet<u64> = HashSet::new();
    let mut current: Option<u64> = None;
    for (n, event) in events.iter().enumerate() {
        let Some(&i) = index.get(&event.op) else {
            return Err(fail(
                ViolationKind::StrayCallback,
                format!(
                    "callback {n} (`driver {} {} {key}`) ran outside every call that concerns the device",
                    device.instance_name(event.instance),
                    event.callback.as_str()
                ),
            ));
        };
        if current != Some(event.op) {
            if closed.contains(&event.op) {
                return Err(fail(
                    ViolationKind::Exclusion,
                    format!(
                        "the callbacks of two calls interleave: callback {n} (`driver {} {} {key}`) resumes a call whose callbacks another call's had interrupted",
                        device.instance_name(event.instance),
                        event.callback.as_str()
                    ),
                ));
            }
            if let Some(previous) = current {
                closed.insert(previous);
            }
            current = Some(event.op);
        }
        per_op[i].push((event.instance, event.callback));
    }
    let calls = Calls {
        device: &device,
        events: &per_op,
    };
    linearize(&calls, DeviceState::default()).map_err(|(depth, why)| {
        fail(
            ViolationKind::Linearizability,
            format!(
                "no order of its {} calls that respects real time explains what they returned and the callbacks they made; at best {depth} calls fit, then: {why}",
                device.ops.len()
            ),
        )
    })
}

/// Every bind undone once: a probe only while unbound, a remove only while bound and by the
/// instance that bound it, unbound at the end (every device is unregistered by then).
fn balanced(device: &Device<'_>, events: &[BusRecorded]) -> Result<(), String> {
    let mut bound: Option<u32> = None;
    for (n, e) in events.iter().enumerate() {
        let what = || {
            format!(
                "callback {n} `driver {} {} {}`",
                device.instance_name(e.instance),
                e.callback.as_str(),
                device.key
            )
        };
        match (e.callback, bound) {
            (BusCallback::Probe, None) => {
                if device.fault(e.instance) == ProbeFault::None {
                    bound = Some(e.instance);
                }
            }
            (BusCallback::Probe, Some(b)) => {
                return Err(format!(
                    "{} while bound to {}: a second bind",
                    what(),
                    device.instance_name(b)
                ));
            }
            (BusCallback::Remove, Some(b)) if b == e.instance => bound = None,
            (BusCallback::Remove, Some(b)) => {
                return Err(format!(
                    "{} while bound to {}: undone by another driver",
                    what(),
                    device.instance_name(b)
                ));
            }
            (BusCallback::Remove, None) => {
                return Err(format!("{} while unbound: a bind undone twice", what()));
            }
        }
    }
    match bound {
        Some(b) => Err(format!(
            "bound to {} by its last probe and never removed, though every device was unregistered",
            device.instance_name(b)
        )),
        None => Ok(()),
    }
}

/// One device's calls, with the callbacks each made, for the search.
struct Calls<'a> {
    device: &'a Device<'a>,
    events: &'a [Vec<(u32, BusCallback)>],
}

impl Linearizable for Calls<'_> {
    type State = DeviceState;
    type Key = DeviceState;

    fn len(&self) -> usize {
        self.device.ops.len()
    }

    fn window(&self, i: usize) -> (u64, u64) {
        let op = self.device.ops[i];
        (op.invoke, op.response)
    }

    fn step(&self, state: &DeviceState, i: usize) -> Result<DeviceState, String> {
        self.device.step(state, i, &self.events[i])
    }

    fn key(&self, state: &DeviceState) -> DeviceState {
        state.clone()
    }
}
