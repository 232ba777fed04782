//! Whether a registry gives its memory back: fill a fresh registry with paired tokens, empty it,
//! ten times over with fresh tokens (as new eventfds would be), then drop it, reading a meter
//! of live heap bytes between the steps.
//!
//! A registry that keeps an emptied entry, or a replaced snapshot, or anything else per
//! operation, grows from cycle to cycle; one that leaks what it owns stays above the baseline
//! once dropped. Both are measured by [`footprint`] and judged by [`Footprint::leak`].
//!
//! The meter is the caller's: a counting global allocator (the `bypass` binary and the test
//! suites install one), and a way to let deferred frees happen (epoch-based reclamation). The
//! measurement runs on the calling thread; nothing else may allocate meanwhile, or the
//! figures include it.
//!
//! ```
//! use bypass_registry::memory::{Meter, footprint};
//! # use std::sync::Arc;
//! # use bypass_registry::{Consumer, Population, Producer, Registry, Token, UnregisterError};
//! # use bypass_registry::{RegisterConsumerResult, RegisterProducerResult};
//! # #[derive(Default)] struct Nothing;
//! # impl Registry for Nothing {
//! #     fn name(&self) -> &'static str { "nothing" }
//! #     fn register_producer(&self, _: Token, _: Arc<dyn Producer>) -> RegisterProducerResult { Ok(()) }
//! #     fn register_consumer(&self, _: Token, _: Arc<dyn Consumer>) -> RegisterConsumerResult { Ok(()) }
//! #     fn unregister_producer(&self, _: Token) -> Result<Arc<dyn Producer>, UnregisterError> { Err(UnregisterError::NotRegistered) }
//! #     fn unregister_consumer(&self, _: Token) -> Result<Arc<dyn Consumer>, UnregisterError> { Err(UnregisterError::NotRegistered) }
//! #     fn is_paired(&self, _: Token) -> bool { false }
//! #     fn producer(&self, _: Token) -> Option<Arc<dyn Producer>> { None }
//! #     fn consumer(&self, _: Token) -> Option<Arc<dyn Consumer>> { None }
//! #     fn population(&self) -> Population { Population::default() }
//! # }
//! /// No allocator counts here: every reading is zero.
//! struct Blind;
//! impl Meter for Blind {
//!     fn live_bytes(&self) -> i64 { 0 }
//! }
//! let f = footprint(Nothing::default, &Blind, 100);
//! assert_eq!(f.leak(), None);
//! ```

use std::sync::Arc;

use crate::participant::{CallbackError, Consumer, Producer};
use crate::registry::Registry;
use crate::token::Token;

/// Reads the process's live heap bytes.
pub trait Meter {
    /// Live heap bytes now, from any fixed origin.
    fn live_bytes(&self) -> i64;

    /// Lets frees that a backend deferred happen (for example, flushes epoch-based
    /// reclamation a number of times). Nothing by default.
    fn settle(&self) {}
}

/// Fill-and-empty cycles that [`footprint`] makes.
pub const CYCLES: usize = 10;

/// Bytes of residue after the drop that are not a leak: a few deferred frees still pending.
pub const SLACK: i64 = 16 * 1024;

/// Growth per token and cycle, over the second half of the cycles, that is not a leak: hash
/// tables settling their capacity and tombstones. One leaked entry or snapshot per token and
/// cycle adds several times more (a map entry holding two `Arc`s is 40 bytes or more).
pub const GROWTH_SLACK: f64 = 8.0;

/// What [`footprint`] measured, in bytes above the live bytes before the registry was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    /// Tokens filled each cycle, each with a producer and a consumer.
    pub tokens: u64,
    /// Bytes per live paired token, in the first cycle (the registry's own growth included).
    pub per_token: f64,
    /// After each cycle's empty.
    pub after_empty: Vec<i64>,
    /// After the registry was dropped.
    pub after_drop: i64,
    /// References to the participants the registry still held once dropped.
    pub kept: usize,
}

impl Footprint {
    /// Bytes that grew over the second half of the cycles (the first half lets the
    /// registry's tables reach their working size), and over how many cycles.
    pub fn growth(&self) -> (i64, usize) {
        let half = self.after_empty.len() / 2;
        match (
            self.after_empty.get(half.saturating_sub(1)),
            self.after_empty.last(),
        ) {
            (Some(from), Some(last)) => (last - from, self.after_empty.len() - half),
            _ => (0, 0),
        }
    }

    /// What leaked, in words with its size, or `None` if memory came back: flat within
    /// [`GROWTH_SLACK`] per token and cycle, and within [`SLACK`] of the baseline once dropped.
    pub fn leak(&self) -> Option<String> {
        let mut found = Vec::new();
        let (growth, cycles) = self.growth();
        let per_token = growth as f64 / (cycles.max(1) as u64 * self.tokens.max(1)) as f64;
        if per_token > GROWTH_SLACK {
            found.push(format!(
                "live bytes grew by {growth} over {cycles} fill-and-empty cycles of {} tokens ({per_token:.1} bytes per token per cycle)",
                self.tokens,
            ));
        }
        if self.after_drop > SLACK {
            found.push(format!(
                "{} bytes stayed live after the registry was emptied and dropped",
                self.after_drop
            ));
        }
        if self.kept > 0 {
            found.push(format!(
                "the dropped registry still held {} references to its participants",
                self.kept
            ));
        }
        (!found.is_empty()).then(|| found.join("; "))
    }
}

/// A participant that accepts every connect and owns nothing: one is shared by every token,
/// so that the registry's bytes are all that is measured.
struct Idle;

impl Producer for Idle {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {}
}

impl Consumer for Idle {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_producer(&self, _: &dyn Producer) {}
}

/// Fills `registry` with `tokens` paired tokens from `first` on, and returns the live bytes
/// then; then empties it.
fn cycle(
    registry: &dyn Registry,
    idle: &Arc<Idle>,
    first: u64,
    tokens: u64,
    meter: &dyn Meter,
) -> i64 {
    let each = || (first..first + tokens).filter_map(|t| Token::new(t).ok());
    for t in each() {
        let _ = registry.register_producer(t, idle.clone());
        let _ = registry.register_consumer(t, idle.clone());
    }
    let full = meter.live_bytes();
    for t in each() {
        drop(registry.unregister_producer(t));
        drop(registry.unregister_consumer(t));
    }
    full
}

/// Measures the heap that registries made by `make` keep: [`CYCLES`] fill-and-empty cycles of
/// `tokens` fresh paired tokens each, then the drop. A first registry runs one cycle and is
/// dropped before the baseline, so that lazily made per-thread and global state (epoch
/// records, thread slots) is not counted.
pub fn footprint<R: Registry>(make: impl Fn() -> R, meter: &dyn Meter, tokens: u64) -> Footprint {
    let idle = Arc::new(Idle);
    let warm = make();
    cycle(&warm, &idle, 1, tokens, meter);
    drop(warm);
    meter.settle();

    // Made before the baseline, so that it is not counted.
    let mut after_empty = Vec::with_capacity(CYCLES);
    let base = meter.live_bytes();
    let registry = make();
    let mut per_token = 0.0;
    for n in 0..CYCLES as u64 {
        let before = meter.live_bytes();
        let full = cycle(&registry, &idle, 1 + n * tokens, tokens, meter);
        if n == 0 {
            per_token = (full - before) as f64 / tokens.max(1) as f64;
        }
        meter.settle();
        after_empty.push(meter.live_bytes() - base);
    }
    drop(registry);
    meter.settle();
    Footprint {
        tokens,
        per_token,
        after_empty,
        after_drop: meter.live_bytes() - base,
        kept: Arc::strong_count(&idle) - 1,
    }
}
