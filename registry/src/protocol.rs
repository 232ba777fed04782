//! The callback protocol, written once: every backend runs [`connect`] and [`disconnect`]
//! and decides only where its state lives and what it locks.
//!
//! **connect(p, c)**: `p.stop()`, `c.stop()`, `p.add_consumer(c)`, then only if that
//! succeeded `c.add_producer(p)` (and if that fails, `p.del_consumer(c)` to roll back), then
//! `c.start()`, `p.start()` always, also when the connect failed.
//!
//! **disconnect(p, c)**: `p.stop()`, `c.stop()`, `c.del_producer(p)`, `p.del_consumer(c)`,
//! `c.start()`, `p.start()`.
//!
//! # Panics in callbacks
//! Every callback runs under [`catch_unwind`]. A panic in a `stop` or an `add_*` fails the
//! connect exactly like an error (no add after it, the rollback `del_consumer` if the
//! producer had accepted, both `start`s); a panic in a `start` leaves the connect's outcome
//! as it was. A panic in a disconnect callback does not stop the sequence: the remaining
//! callbacks still run, so the unregister completes. In every case the first panic is handed
//! to the backend inside the result ([`Connection::into_parts`], [`Disconnection::into_panic`]),
//! and [`crate::registration`] resumes it once the backend has put its state in order and
//! released its locks, so the
//! registry is never left half-updated and the panic still reaches the caller.
//!
//! # Re-entrancy
//! While callbacks run, the thread remembers which registry and token they are for.
//! [`RegistryId::in_callback_for`] lets a backend refuse a call that would deadlock or break
//! per-token exclusion with `reentrant`. The record is a list of frames on the thread's own
//! stack, headed by a thread-local with no destructor: entering a callback allocates nothing,
//! and the registry can be called from a thread-local's destructor.

// The one `unsafe` of this crate: walking that list of stack frames (see `in_scope`).
#![allow(unsafe_code)]

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::participant::{CallbackError, Consumer, Producer};
use crate::token::Token;

/// What a panicking callback threw.
pub type PanicPayload = Box<dyn Any + Send + 'static>;

/// Identifies one registry instance, for re-entrancy detection.
///
/// Each backend makes one in its constructor and passes it to [`connect`] and [`disconnect`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegistryId(NonZeroU64);

impl RegistryId {
    /// A fresh id, distinct from every other in this process.
    pub fn new() -> RegistryId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        RegistryId(NonZeroU64::new(id).expect("registry ids never wrap"))
    }

    /// Whether this thread is inside a callback of this registry for `token` (at any depth).
    #[inline]
    pub fn in_callback_for(self, token: Token) -> bool {
        self.in_callback_where(|t| t == token)
    }

    /// Whether this thread is inside a callback of this registry for any token.
    #[inline]
    pub fn in_callback(self) -> bool {
        self.in_callback_where(|_| true)
    }

    /// Whether this thread is inside a callback of this registry for a token that satisfies
    /// `pred` (for example, one in the same shard as the token of a new call).
    #[inline]
    pub fn in_callback_where(self, mut pred: impl FnMut(Token) -> bool) -> bool {
        let mut frame = innermost();
        // Safety: `INNERMOST` and each frame's `outer` are null or point at a `Frame` of an
        // `in_scope` call still running on this thread (see `in_scope`): alive, and never
        // changed while it is linked.
        while let Some(f) = unsafe { frame.as_ref() } {
            if f.registry == self && pred(f.token) {
                return true;
            }
            frame = f.outer;
        }
        false
    }
}

impl Default for RegistryId {
    fn default() -> RegistryId {
        RegistryId::new()
    }
}

impl fmt::Debug for RegistryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryId({})", self.0)
    }
}

/// One callback scope: the (registry, token) whose callbacks this thread runs, and the scope
/// it runs inside of, if any.
struct Frame {
    registry: RegistryId,
    token: Token,
    outer: *const Frame,
}

#[cfg(not(loom))]
thread_local! {
    /// The innermost callback scope of this thread, or null: the head of a list of frames
    /// that live on this thread's stack, innermost first.
    ///
    /// A `const` `Cell` of a raw pointer has no destructor, so it can be read and written at
    /// any time, also while the thread's other thread-locals are being destroyed (a
    /// participant dropped by a thread-local's destructor can still call the registry), and
    /// entering a scope costs no allocation.
    static INNERMOST: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}

// Under `--cfg loom`, one per loom thread: loom runs its threads on one OS thread, whose own
// thread-locals they would share (a backend's loom models call the registry from callbacks).
#[cfg(loom)]
loom::thread_local! {
    static INNERMOST: Cell<*const Frame> = Cell::new(ptr::null());
}

/// The innermost callback scope of this thread.
#[inline]
fn innermost() -> *const Frame {
    INNERMOST.with(Cell::get)
}

/// Makes `frame` the innermost callback scope of this thread.
#[inline]
fn set_innermost(frame: *const Frame) {
    INNERMOST.with(|innermost| innermost.set(frame));
}

/// Runs `body` with this thread marked as running callbacks of `(registry, token)`.
fn in_scope<R>(registry: RegistryId, token: Token, body: impl FnOnce() -> R) -> R {
    /// Unlinks the frame on the way out, unwinding included.
    struct Exit(*const Frame);
    impl Drop for Exit {
        fn drop(&mut self) {
            set_innermost(self.0);
        }
    }
    let frame = Frame {
        registry,
        token,
        outer: innermost(),
    };
    // `frame` stays on this stack, unmoved, until `_exit` (declared after it, so dropped
    // before it) has unlinked it: every pointer to it is gone before it is.
    set_innermost(&frame);
    let _exit = Exit(frame.outer);
    body()
}

/// Runs one callback, keeping the first panic of a sequence in `panic`.
fn guarded<R>(panic: &mut Option<PanicPayload>, callback: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(callback)) {
        Ok(r) => Some(r),
        Err(payload) => {
            panic.get_or_insert(payload);
            None
        }
    }
}

/// The outcome of [`connect`]: whether the pair is now connected, and the error or panic to
/// hand to the caller.
#[must_use = "a connection decides whether the participant is kept, and may carry a callback's panic"]
pub struct Connection {
    connected: bool,
    error: Option<CallbackError>,
    panic: Option<PanicPayload>,
}

impl Connection {
    /// Whether both `add_*` callbacks succeeded (a later panic in a `start` does not change
    /// this).
    #[inline]
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The outcome and the panic: `Ok` if connected; `Err(Some(error))` if an `add_*`
    /// callback refused; `Err(None)` if it failed by a panic. A panic, if any callback threw
    /// one, is to be resumed once the backend has stored or handed back the participant and
    /// released its locks ([`crate::registration`] does).
    #[inline]
    pub fn into_parts(self) -> (Result<(), Option<CallbackError>>, Option<PanicPayload>) {
        let outcome = if self.connected {
            Ok(())
        } else {
            Err(self.error)
        };
        (outcome, self.panic)
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("connected", &self.connected)
            .field("error", &self.error)
            .field("panicked", &self.panic.is_some())
            .finish()
    }
}

/// The outcome of [`disconnect`]: the pair is disconnected; a callback may have panicked.
#[must_use = "a disconnection may carry a callback's panic, to resume"]
pub struct Disconnection {
    panic: Option<PanicPayload>,
}

impl Disconnection {
    /// The panic of a callback, if one threw: to be resumed once the backend has removed the
    /// participant and released its locks ([`crate::registration`] does).
    #[inline]
    pub fn into_panic(self) -> Option<PanicPayload> {
        self.panic
    }
}

impl fmt::Debug for Disconnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disconnection")
            .field("panicked", &self.panic.is_some())
            .finish()
    }
}

/// Connects `p` and `c`, registered under `token` of `registry`, in the order of the contract.
///
/// The caller must hold whatever excludes other callbacks of `token` for the whole call.
pub fn connect(
    registry: RegistryId,
    token: Token,
    p: &dyn Producer,
    c: &dyn Consumer,
) -> Connection {
    in_scope(registry, token, || {
        let mut panic = None;
        guarded(&mut panic, || p.stop());
        guarded(&mut panic, || c.stop());
        let mut connected = false;
        let mut error = None;
        if panic.is_none() {
            match guarded(&mut panic, || p.add_consumer(c)) {
                Some(Ok(())) => match guarded(&mut panic, || c.add_producer(p)) {
                    Some(Ok(())) => connected = true,
                    outcome => {
                        // The consumer refused (or panicked): roll back the producer's add.
                        error = outcome.and_then(Result::err);
                        guarded(&mut panic, || p.del_consumer(c));
                    }
                },
                Some(Err(e)) => error = Some(e),
                // The producer's add panicked: it is treated as not added.
                None => {}
            }
        }
        guarded(&mut panic, || c.start());
        guarded(&mut panic, || p.start());
        Connection {
            connected,
            error,
            panic,
        }
    })
}

/// Disconnects `p` and `c`, registered under `token` of `registry`, in the order of the
/// contract. Every callback runs even if an earlier one panicked.
///
/// The caller must hold whatever excludes other callbacks of `token` for the whole call.
pub fn disconnect(
    registry: RegistryId,
    token: Token,
    p: &dyn Producer,
    c: &dyn Consumer,
) -> Disconnection {
    in_scope(registry, token, || {
        let mut panic = None;
        guarded(&mut panic, || p.stop());
        guarded(&mut panic, || c.stop());
        guarded(&mut panic, || c.del_producer(p));
        guarded(&mut panic, || p.del_consumer(c));
        guarded(&mut panic, || c.start());
        guarded(&mut panic, || p.start());
        Disconnection { panic }
    })
}
