//! What a live token costs the `lockfree` backend in memory, measured with a counting
//! allocator: the registry's own allocations per token (the participants are the caller's),
//! while tokens are live, once they are all unregistered (emptied nodes stay until
//! reclaimed), and after `reclaim_empty`.
//!
//! `LOCKFREE_MEMORY_TOKENS` sets the number of tokens (200,000 by default); the module
//! documentation of `lockfree` quotes a release run with 1,000,000:
//! `LOCKFREE_MEMORY_TOKENS=1000000 cargo test --release -p bypass-strategies --test
//! lockfree_memory -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use bypass_registry::{CallbackError, Consumer, Producer, Registry, Token};
use bypass_strategies::LockFree;

/// The system allocator, counting the bytes it has live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// Safety: every call is forwarded to `System` with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // Safety: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // Safety: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Vector;
impl Producer for Vector {
    fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_consumer(&self, _: &dyn Consumer) {}
}

struct Irqfd;
impl Consumer for Irqfd {
    fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> {
        Ok(())
    }
    fn del_producer(&self, _: &dyn Producer) {}
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn memory_per_live_token() {
    let tokens: usize = std::env::var("LOCKFREE_MEMORY_TOKENS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    // One participant of each side, shared by every token: only the registry allocates.
    let (p, c): (Arc<dyn Producer>, Arc<dyn Consumer>) = (Arc::new(Vector), Arc::new(Irqfd));
    let token = |i: usize| Token::new(0x1_0000 + 64 * i as u64).unwrap();
    let before = live();
    let registry = LockFree::new();
    for i in 0..tokens {
        registry.register_producer(token(i), p.clone()).unwrap();
        registry.register_consumer(token(i), c.clone()).unwrap();
    }
    let paired = live() - before;
    for i in 0..tokens {
        drop(registry.unregister_producer(token(i)).unwrap());
        drop(registry.unregister_consumer(token(i)).unwrap());
    }
    let emptied = live() - before;
    // The sweep removes the emptied nodes, then frees them: no other thread is pinned.
    registry.reclaim_empty();
    let reclaimed = live() - before;
    let per = |bytes: isize| bytes as f64 / tokens as f64;
    println!(
        "{tokens} tokens: {:.1} bytes a paired token; {:.1} a token once emptied; \
         {:.1} after reclaim_empty (the directory and the bucket sentinels stay)",
        per(paired),
        per(emptied),
        per(reclaimed)
    );
    // A node (80 bytes with its count), its share of the directory and of the bucket
    // sentinels (one per two tokens at most): well under 200 bytes.
    assert!(per(paired) < 200.0, "{:.1} bytes a token", per(paired));
    assert!(emptied <= paired, "unregistering allocated");
    assert!(
        per(reclaimed) < per(paired) / 2.0,
        "reclaim_empty kept {:.1} bytes a token",
        per(reclaimed)
    );
    drop(registry);
    assert_eq!(Arc::strong_count(&p), 1);
}
