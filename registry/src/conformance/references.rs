//! References: what a registry hands back is the only reference left (R-UNREG-BACK).

use std::sync::Arc;

use super::harness::{Factory, probe, token};
use crate::error::RegisterError;
use crate::participant::{Consumer, Producer, Side};
use crate::probe::{EventLog, Probe};
use crate::registry::Registry;
use crate::token::Token;

/// Reads every view of `t` `rounds` times, dropping what they return.
fn read(r: &dyn Registry, t: Token, rounds: usize) {
    for _ in 0..rounds {
        drop((r.is_paired(t), r.producer(t), r.consumer(t)));
    }
}

/// `Arc::get_mut` succeeds on `what` the registry handed back: it keeps no reference to it,
/// strong or weak.
fn assert_only_reference<T: ?Sized>(what: &str, mut back: Arc<T>) {
    assert!(
        Arc::get_mut(&mut back).is_some(),
        "{what}: the registry still holds a reference to it (strong {}, weak {})",
        Arc::strong_count(&back),
        Arc::weak_count(&back)
    );
}

/// Once unregister has returned (with the token read before and after, 1,000 times each),
/// the registry holds no reference, strong or weak, to the participant it handed back: paired
/// or not, producer or consumer, the token's last participant or not. The same holds for a
/// participant refused as a duplicate or by a failed connect.
pub fn unregister_keeps_no_reference(make: Factory<'_>) {
    let r = make();
    let log = EventLog::new();
    let reads = 1_000;
    for (id, producer_first) in [(21, true), (22, false)] {
        let t = token(id);
        r.register_producer(t, probe(Side::Producer, id, &log))
            .unwrap();
        r.register_consumer(t, probe(Side::Consumer, id, &log))
            .unwrap();
        read(&*r, t, reads);
        // The first leaves a paired token (a disconnect), the second an unpaired one (the
        // token's last participant).
        let (first, second): (Arc<dyn Producer>, Arc<dyn Consumer>) = if producer_first {
            let p = r.unregister_producer(t).unwrap();
            read(&*r, t, reads);
            assert_only_reference("a paired producer, unregistered", p);
            let c = r.unregister_consumer(t).unwrap();
            read(&*r, t, reads);
            (probe(Side::Producer, id, &log), c)
        } else {
            let c = r.unregister_consumer(t).unwrap();
            read(&*r, t, reads);
            assert_only_reference("a paired consumer, unregistered", c);
            let p = r.unregister_producer(t).unwrap();
            read(&*r, t, reads);
            (p, probe(Side::Consumer, id, &log))
        };
        assert_only_reference("the last producer, unregistered", first);
        assert_only_reference("the last consumer, unregistered", second);
        // The token is used again: the registry may reuse what it kept of it, but not them.
        r.register_consumer(t, probe(Side::Consumer, id, &log))
            .unwrap();
        read(&*r, t, reads);
        assert_only_reference(
            "a lone consumer, unregistered",
            r.unregister_consumer(t).unwrap(),
        );
    }
    // Refused: a duplicate, and a failed connect.
    let t = token(23);
    r.register_producer(t, probe(Side::Producer, 23, &log))
        .unwrap();
    match r.register_producer(t, probe(Side::Producer, 23, &log)) {
        Err(RegisterError::Duplicate(back)) => assert_only_reference("a refused duplicate", back),
        other => panic!(
            "expected `duplicate`, got {:?}",
            other.map_err(|e| e.kind())
        ),
    }
    let failing = Arc::new(Probe::consumer(23, &log).failing_add());
    match r.register_consumer(t, failing) {
        Err(RegisterError::ConnectFailed { participant, .. }) => {
            read(&*r, t, reads);
            assert_only_reference("a consumer whose connect failed", participant);
        }
        other => panic!(
            "expected `connect-failed`, got {:?}",
            other.map_err(|e| e.kind())
        ),
    }
    assert_only_reference(
        "the producer, unregistered",
        r.unregister_producer(t).unwrap(),
    );
}
