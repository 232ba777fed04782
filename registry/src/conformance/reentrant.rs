//! Re-entrancy: a callback that calls into the registry, for its own token or another.

use std::sync::{Arc, Mutex};

use super::harness::{Factory, probe, token};
use super::watchdog::{watchdog, within};
use crate::error::ErrorKind;
use crate::participant::{Callback, Side};
use crate::probe::{EventLog, Hook, Probe};

/// A callback calling into the registry for its own token gets `reentrant`, never a deadlock,
/// and its read calls return.
pub fn reentrant_call_for_same_token_is_refused(make: Factory<'_>) {
    let r = make();
    let results: Arc<Mutex<Vec<String>>> = Arc::default();
    let weak = Arc::downgrade(&r);
    let seen = results.clone();
    let hook: Hook = Arc::new(move |probe: &Probe, callback| {
        let Some(r) = weak.upgrade() else { return };
        if callback != Callback::Stop || probe.side() != Side::Consumer {
            return;
        }
        let t = token(probe.token());
        let log = EventLog::new();
        let mut out = seen.lock().unwrap();
        out.push(format!(
            "register producer: {:?}",
            r.register_producer(t, probe_arc(Side::Producer, 1, &log))
                .map_err(|e| e.kind())
        ));
        out.push(format!(
            "register consumer: {:?}",
            r.register_consumer(t, probe_arc(Side::Consumer, 1, &log))
                .map_err(|e| e.kind())
        ));
        out.push(format!(
            "unregister producer: {:?}",
            r.unregister_producer(t).map(drop).map_err(|e| e.kind())
        ));
        out.push(format!(
            "unregister consumer: {:?}",
            r.unregister_consumer(t).map(drop).map_err(|e| e.kind())
        ));
        // Reads must return; their value is the backend's to document.
        let _ = (
            r.is_paired(t),
            r.producer(t).is_some(),
            r.consumer(t).is_some(),
            r.population(),
        );
    });
    let r2 = r.clone();
    within(watchdog(), "re-entrant call, same token", move || {
        let log = EventLog::new();
        r2.register_producer(token(1), probe(Side::Producer, 1, &log))
            .unwrap();
        r2.register_consumer(
            token(1),
            Arc::new(Probe::consumer(1, &log).with_hook(hook.clone())),
        )
        .unwrap();
        drop(r2.unregister_producer(token(1)).unwrap());
        assert!(r2.consumer(token(1)).is_some());
    });
    let results = results.lock().unwrap();
    assert_eq!(
        results.len(),
        8,
        "the hook ran during connect and disconnect: {results:?}"
    );
    for line in results.iter() {
        assert!(
            line.ends_with("Err(Reentrant)"),
            "a same-token call from a callback must fail with reentrant: {line}"
        );
    }
}

fn probe_arc(side: Side, id: u64, log: &Arc<EventLog>) -> Arc<Probe> {
    probe(side, id, log)
}

/// A callback calling into the registry for another token either works or gets `reentrant`,
/// never a deadlock, and the registry's state agrees with what the call returned.
pub fn reentrant_call_for_other_token_never_deadlocks(make: Factory<'_>) {
    let r = make();
    let outcomes: Arc<Mutex<Vec<Result<(), ErrorKind>>>> = Arc::default();
    let weak = Arc::downgrade(&r);
    let seen = outcomes.clone();
    let hook: Hook = Arc::new(move |probe: &Probe, callback| {
        let Some(r) = weak.upgrade() else { return };
        if callback != Callback::Add || probe.side() != Side::Consumer {
            return;
        }
        let log = EventLog::new();
        // Another token, possibly in the same shard or bucket as this one.
        for other in [probe.token() + 1, probe.token() + 1_000_003] {
            let result = r
                .register_producer(token(other), probe_arc(Side::Producer, other, &log))
                .map_err(|e| e.kind());
            seen.lock().unwrap().push(result);
            let _ = r.is_paired(token(other));
        }
    });
    let r2 = r.clone();
    within(watchdog(), "re-entrant call, other token", move || {
        let log = EventLog::new();
        r2.register_producer(token(1), probe(Side::Producer, 1, &log))
            .unwrap();
        r2.register_consumer(
            token(1),
            Arc::new(Probe::consumer(1, &log).with_hook(hook.clone())),
        )
        .unwrap();
    });
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), 2);
    for (other, outcome) in [2u64, 1_000_004].into_iter().zip(outcomes.iter()) {
        match outcome {
            Ok(()) => assert!(
                r.producer(token(other)).is_some(),
                "token {other}: the re-entrant register returned ok but nothing is registered"
            ),
            Err(ErrorKind::Reentrant) => assert!(
                r.producer(token(other)).is_none(),
                "token {other}: refused but registered"
            ),
            Err(kind) => panic!(
                "token {other}: a re-entrant register may work or fail with reentrant, not `{kind}`"
            ),
        }
    }
    assert!(r.is_paired(token(1)));
}
