//! A counting global allocator: the system allocator, plus a count of the bytes allocated and
//! freed while a [`Window`] is open. The `bypass` binary and the memory tests install it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: bypass_stress::alloc::Counting = bypass_stress::alloc::Counting;
//! ```
//!
//! Outside a window it adds one relaxed load to each allocation, so the throughput runs are not
//! slowed by a shared counter; inside, the net count is the change of the process's live heap
//! bytes, whichever thread allocates or frees. [`Heap`] reads it as a
//! [`Meter`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use bypass_registry::memory::Meter;

/// The system allocator, counting while a [`Window`] is open.
#[derive(Debug)]
pub struct Counting;

static OPEN: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);
static NET: AtomicI64 = AtomicI64::new(0);

fn count(bytes: i64) {
    if COUNTING.load(Ordering::Relaxed) {
        NET.fetch_add(bytes, Ordering::Relaxed);
    }
}

// Safety: every call is forwarded to `System` with the same arguments, so `System`'s
// guarantees are this allocator's; the counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` was allocated by `System` (every allocation goes through here) with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: as for `dealloc`; `new_size` is valid as the caller guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// While one is alive, [`Counting`] counts; [`Window::installed`] says whether it is the
/// global allocator at all.
#[derive(Debug)]
pub struct Window(());

impl Window {
    /// Opens a window (windows nest).
    pub fn open() -> Window {
        if OPEN.fetch_add(1, Ordering::SeqCst) == 0 {
            COUNTING.store(true, Ordering::SeqCst);
        }
        Window(())
    }

    /// Whether [`Counting`] is this process's global allocator: a test allocation is counted.
    pub fn installed(&self) -> bool {
        let before = NET.load(Ordering::SeqCst);
        let probe = std::hint::black_box(Box::new([0u8; 64]));
        let counted = NET.load(Ordering::SeqCst) != before;
        drop(probe);
        counted
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        if OPEN.fetch_sub(1, Ordering::SeqCst) == 1 {
            COUNTING.store(false, Ordering::SeqCst);
        }
    }
}

/// The process's heap as a [`Meter`]: the net bytes counted while a [`Window`] is open. Nothing
/// to settle: `lockfree`, the backend that defers frees, frees its removed nodes in its own
/// later calls (a sweep frees what it removed before it returns) and when dropped, and nothing
/// outside the registry can hurry that.
#[derive(Debug)]
pub struct Heap<'a>(pub &'a Window);

impl Meter for Heap<'_> {
    fn live_bytes(&self) -> i64 {
        NET.load(Ordering::SeqCst)
    }
}
