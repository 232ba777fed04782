//! Chaos: seeded random yields and short spins, inside callbacks and between a thread's calls,
//! so that threads are preempted in the middle of what they do and race windows a few
//! instructions wide stay open long enough for another thread to enter them.
//!
//! Each thread draws from its own generator, seeded from the run's chaos seed and the thread's
//! index, so that a seed names the same pauses (the interleaving they cause still depends on
//! the scheduler). Threads that never set a seed, and runs without chaos, never pause.

use std::cell::Cell;

thread_local! {
    /// The thread's generator state; 0 is off.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Turns chaos on for this thread, seeded from `seed` and `thread`; `None` turns it off.
pub(crate) fn seed_thread(seed: Option<u64>, thread: u64) {
    let state = seed.map_or(0, |seed| {
        // SplitMix64 of the pair: distinct, well-mixed and never 0 for distinct threads.
        let mut z = seed ^ thread.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) | 1
    });
    STATE.with(|s| s.set(state));
}

/// Maybe pauses this thread: about one call in eight spins for up to a few microseconds, and
/// one in sixteen yields the CPU. Nothing when chaos is off for the thread.
pub(crate) fn pause() {
    let Some(r) = next() else { return };
    match r % 16 {
        0 | 1 => {
            for _ in 0..(r >> 8) % 4_096 {
                std::hint::spin_loop();
            }
        }
        2 => std::thread::yield_now(),
        _ => {}
    }
}

/// The thread's next random number (xorshift64*), or `None` when chaos is off.
fn next() -> Option<u64> {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            return None;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        Some(x.wrapping_mul(0x2545_F491_4F6C_DD1D))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_the_sequence_and_none_is_off() {
        seed_thread(Some(7), 3);
        let a: Vec<Option<u64>> = (0..4).map(|_| next()).collect();
        seed_thread(Some(7), 3);
        let b: Vec<Option<u64>> = (0..4).map(|_| next()).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(Option::is_some));
        seed_thread(Some(7), 4);
        assert_ne!(next(), a[0]);
        seed_thread(None, 3);
        assert_eq!(next(), None);
    }
}
