//! The driver a device of a scalable bus is bound to, as readers see it: changed only under
//! the device's lock, read with no lock, no reference count and no wait.
//!
//! # Why not an `ArcSwapOption<DriverSlot>`
//! That was the first design, and it made every bind and unbind cost O(threads): an arc-swap
//! store pays the "debts" of every thread that ever loaded through arc-swap, walking one node
//! per such thread. In `virtio-boot` (a thousand VM threads binding their devices) `perf` put
//! 85% of the run's CPU time in that walk (`arc_swap::debt::Debt::pay_all`), and a device
//! registration's median latency at 29 µs against 0.4 µs for a global mutex.
//!
//! # The design
//! - `generation`: the bound driver's generation (unique per registered driver, see
//!   `DriverSlot`), 0 when unbound. It identifies the driver for a leaving driver's scan of
//!   its devices.
//! - `name`: the bound driver's name under a sequence lock, for `driver_of`: `version` is odd
//!   while the writer (the holder of the device's lock) changes the words, and a reader that
//!   sees it odd, or changed across its read, reads again. The writer holds the device's lock
//!   but writes only a few words, never across a callback, so a reader waits for no callback.
//!
//! The counted reference to the bound driver (what an unbind needs to update the driver's
//! count) is kept in the device's locked state, not here.

use std::sync::atomic::{AtomicU64, Ordering, fence};

use bypass_registry::bus::DriverName;
use bypass_registry::bus::MAX_NAME_LEN;

/// Words of a packed name: its length byte, then its bytes.
const WORDS: usize = (1 + MAX_NAME_LEN).div_ceil(8);

/// A device's binding, for readers. See the [module documentation](self).
#[derive(Debug, Default)]
pub(crate) struct Binding {
    generation: AtomicU64,
    version: AtomicU64,
    name: [AtomicU64; WORDS],
}

impl Binding {
    /// Records the binding to the driver `name` of generation `generation` (non-zero), or the
    /// absence of one (`None`). Only the holder of the device's lock may call it.
    pub(crate) fn set(&self, bound: Option<(DriverName, u64)>) {
        self.set_with(bound, || {});
    }

    /// [`Binding::set`], calling `halfway` with half of the name written (for the tests).
    #[inline]
    fn set_with(&self, bound: Option<(DriverName, u64)>, halfway: impl FnOnce()) {
        let v = self.version.load(Ordering::Relaxed);
        // Odd: readers retry until the matching even store.
        self.version.store(v + 1, Ordering::Relaxed);
        // The words' stores must not be seen before the odd version.
        fence(Ordering::Release);
        let words = bound.map_or([0; WORDS], |(name, _)| pack(name));
        let (first, second) = self.name.split_at(WORDS / 2);
        for (cell, word) in first.iter().zip(words) {
            cell.store(word, Ordering::Relaxed);
        }
        halfway();
        for (cell, word) in second.iter().zip(&words[WORDS / 2..]) {
            cell.store(*word, Ordering::Relaxed);
        }
        let generation = bound.map_or(0, |(_, g)| g);
        debug_assert!(bound.is_none() || generation != 0);
        // Release: whoever sees the generation (or the even version) sees what the lock
        // holder wrote before (the bind number, the name).
        self.generation.store(generation, Ordering::Release);
        self.version.store(v + 2, Ordering::Release);
    }

    /// The generation of the driver the device is bound to, or 0.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the device is bound to some driver.
    pub(crate) fn is_bound(&self) -> bool {
        self.generation() != 0
    }

    /// The name of the driver the device is bound to, if any: a consistent copy, read again
    /// if a bind or unbind changed it meanwhile.
    pub(crate) fn name(&self) -> Option<DriverName> {
        loop {
            if let Some(name) = self.try_name(|| {}) {
                return name;
            }
            std::hint::spin_loop();
        }
    }

    /// One attempt at [`Binding::name`]: `None` if a write was in progress or came between
    /// (read again); `halfway` runs with half of the words read (for the tests).
    #[inline]
    fn try_name(&self, halfway: impl FnOnce()) -> Option<Option<DriverName>> {
        let before = self.version.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let mut words = [0; WORDS];
        let (first, second) = words.split_at_mut(WORDS / 2);
        for (word, cell) in first.iter_mut().zip(&self.name) {
            *word = cell.load(Ordering::Relaxed);
        }
        halfway();
        for (word, cell) in second.iter_mut().zip(&self.name[WORDS / 2..]) {
            *word = cell.load(Ordering::Relaxed);
        }
        // The words' loads must not be seen after the version's second load.
        fence(Ordering::Acquire);
        (self.version.load(Ordering::Relaxed) == before).then(|| unpack(words))
    }
}

fn pack(name: DriverName) -> [u64; WORDS] {
    let text = name.as_str().as_bytes();
    let mut bytes = [0u8; WORDS * 8];
    bytes[0] = u8::try_from(text.len()).expect("a driver name is at most 32 bytes");
    bytes[1..=text.len()].copy_from_slice(text);
    std::array::from_fn(|i| {
        u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
    })
}

fn unpack(words: [u64; WORDS]) -> Option<DriverName> {
    let mut bytes = [0u8; WORDS * 8];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let len = usize::from(bytes[0]);
    if len == 0 {
        return None;
    }
    let text = std::str::from_utf8(&bytes[1..=len]).expect("packed from a driver name");
    Some(DriverName::new(text).expect("packed from a valid driver name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DriverName {
        DriverName::new(s).unwrap()
    }

    #[test]
    fn round_trips_every_length() {
        let binding = Binding::default();
        assert_eq!(binding.name(), None);
        assert!(!binding.is_bound());
        for len in 1..=MAX_NAME_LEN {
            let n = name(&"v".repeat(len));
            binding.set(Some((n, len as u64)));
            assert_eq!(binding.name(), Some(n));
            assert_eq!(binding.generation(), len as u64);
        }
        binding.set(None);
        assert_eq!(binding.name(), None);
        assert_eq!(binding.generation(), 0);
    }

    fn longest(c: char) -> DriverName {
        name(&c.to_string().repeat(MAX_NAME_LEN))
    }

    /// A reader that starts while a bind or unbind is writing reads again.
    #[test]
    fn a_read_during_a_write_is_retried() {
        let binding = Binding::default();
        binding.set(Some((longest('a'), 1)));
        binding.set_with(Some((longest('b'), 2)), || {
            assert_eq!(binding.try_name(|| {}), None, "read half-written");
        });
        assert_eq!(binding.name(), Some(longest('b')));
    }

    /// A reader whose read a whole write came in the middle of reads again.
    #[test]
    fn a_read_spanning_a_write_is_retried() {
        let binding = Binding::default();
        binding.set(Some((longest('a'), 1)));
        let torn = binding.try_name(|| binding.set(Some((longest('b'), 2))));
        assert_eq!(torn, None, "a mix of two names");
        assert_eq!(binding.name(), Some(longest('b')));
        assert_eq!(binding.try_name(|| binding.set(None)), None);
        assert_eq!(binding.name(), None);
    }
}
