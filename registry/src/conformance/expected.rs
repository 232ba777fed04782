//! The callback sequences the contract expects, and checks of what ran against them.

use std::collections::BTreeMap;

use crate::participant::{Callback, Event, Side};

fn lines(events: &[Event]) -> Vec<String> {
    events.iter().map(Event::to_string).collect()
}

/// The callbacks `calls` (side, callback) of `token`, as events.
pub fn events(token: u64, calls: &[(Side, Callback)]) -> Vec<Event> {
    calls
        .iter()
        .map(|&(side, callback)| Event {
            side,
            token,
            callback,
        })
        .collect()
}

/// The six callbacks of a successful connect of `token`.
pub fn connect_events(token: u64) -> Vec<Event> {
    use Callback::*;
    use Side::*;
    events(
        token,
        &[
            (Producer, Stop),
            (Consumer, Stop),
            (Producer, Add),
            (Consumer, Add),
            (Consumer, Start),
            (Producer, Start),
        ],
    )
}

/// The seven callbacks of a connect of `token` that the consumer refused: the producer's
/// `del_consumer` rolls back its add, and both `start`s still run.
pub fn rolled_back_events(token: u64) -> Vec<Event> {
    use Callback::*;
    use Side::*;
    events(
        token,
        &[
            (Producer, Stop),
            (Consumer, Stop),
            (Producer, Add),
            (Consumer, Add),
            (Producer, Del),
            (Consumer, Start),
            (Producer, Start),
        ],
    )
}

/// The six callbacks of a disconnect of `token`.
pub fn disconnect_events(token: u64) -> Vec<Event> {
    use Callback::*;
    use Side::*;
    events(
        token,
        &[
            (Producer, Stop),
            (Consumer, Stop),
            (Consumer, Del),
            (Producer, Del),
            (Consumer, Start),
            (Producer, Start),
        ],
    )
}

pub(super) fn assert_events(what: &str, seen: &[Event], expected: &[Event]) {
    assert_eq!(
        lines(seen),
        lines(expected),
        "{what}: the callbacks that ran (left) differ from the contract (right)"
    );
}

/// Checks one token's callback history from concurrent runs where no callback fails or
/// panics: whole connect and disconnect sequences, never interleaved, alternating and starting
/// with a connect. Returns how many connects and disconnects it saw.
pub fn check_token_history(token: u64, events: &[Event]) -> Result<(usize, usize), String> {
    let connect = connect_events(token);
    let disconnect = disconnect_events(token);
    let mut connected = false;
    let (mut connects, mut disconnects) = (0, 0);
    for (index, block) in events.chunks(6).enumerate() {
        let expected = if connected { &disconnect } else { &connect };
        if block != expected.as_slice() {
            return Err(format!(
                "token {token}: callbacks {}..{} are {:?}, expected the {} sequence {:?}",
                index * 6,
                index * 6 + block.len(),
                lines(block),
                if connected { "disconnect" } else { "connect" },
                lines(expected)
            ));
        }
        if connected {
            disconnects += 1;
        } else {
            connects += 1;
        }
        connected = !connected;
    }
    Ok((connects, disconnects))
}

pub(super) fn by_token(events: &[Event]) -> BTreeMap<u64, Vec<Event>> {
    let mut map: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    for event in events {
        map.entry(event.token).or_default().push(*event);
    }
    map
}
