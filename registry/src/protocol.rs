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
//! to the backend inside the result, and [`Connection::commit`] and
//! [`Disconnection::finish`] resume it once the backend has put its state in order, so the
//! registry is never left half-updated and the panic still reaches the caller.
//!
//! # Re-entrancy
//! While callbacks run, the thread remembers which registry and token they are for.
//! [`RegistryId::in_callback_for`] lets a backend refuse a call that would deadlock or break
//! per-token exclusion with `reentrant`.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::RegisterError;
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
    pub fn in_callback_for(self, token: Token) -> bool {
        self.in_callback_where(|t| t == token)
    }

    /// Whether this thread is inside a callback of this registry for any token.
    pub fn in_callback(self) -> bool {
        self.in_callback_where(|_| true)
    }

    /// Whether this thread is inside a callback of this registry for a token that satisfies
    /// `pred` (for example, one in the same shard as the token of a new call).
    pub fn in_callback_where(self, mut pred: impl FnMut(Token) -> bool) -> bool {
        ACTIVE.with(|active| {
            active
                .borrow()
                .iter()
                .any(|&(id, token)| id == self && pred(token))
        })
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

thread_local! {
    /// The (registry, token) pairs whose callbacks this thread is running, innermost last.
    static ACTIVE: RefCell<Vec<(RegistryId, Token)>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as running callbacks of `(registry, token)` until dropped.
struct CallbackScope;

impl CallbackScope {
    fn enter(registry: RegistryId, token: Token) -> CallbackScope {
        ACTIVE.with(|active| active.borrow_mut().push((registry, token)));
        CallbackScope
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        ACTIVE.with(|active| active.borrow_mut().pop());
    }
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
#[must_use = "commit the connection: it decides whether the participant is kept, and resumes a callback's panic"]
pub struct Connection {
    connected: bool,
    error: Option<CallbackError>,
    panic: Option<PanicPayload>,
}

impl Connection {
    /// Whether both `add_*` callbacks succeeded (a later panic in a `start` does not change
    /// this).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Finishes the registration that ran this connect: if connected, `keep` stores the
    /// participant; otherwise it is handed back in [`RegisterError::ConnectFailed`]. Then a
    /// callback's panic, if any, resumes, after `keep` has run.
    pub fn commit<T>(self, participant: T, keep: impl FnOnce(T)) -> Result<(), RegisterError<T>> {
        let result = if self.connected {
            keep(participant);
            Ok(())
        } else {
            match self.error {
                Some(error) => Err(RegisterError::ConnectFailed { participant, error }),
                // Failed by a panic: `panic` is set, and resumes below.
                None => {
                    drop(participant);
                    Ok(())
                }
            }
        };
        if let Some(payload) = self.panic {
            resume_unwind(payload);
        }
        result
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
#[must_use = "finish the disconnection: it resumes a callback's panic"]
pub struct Disconnection {
    panic: Option<PanicPayload>,
}

impl Disconnection {
    /// Returns `value` (the unregistered participant), or resumes a callback's panic. Call it
    /// once the backend has removed the participant.
    pub fn finish<T>(self, value: T) -> T {
        if let Some(payload) = self.panic {
            drop(value);
            resume_unwind(payload);
        }
        value
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
    let _scope = CallbackScope::enter(registry, token);
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
    let _scope = CallbackScope::enter(registry, token);
    let mut panic = None;
    guarded(&mut panic, || p.stop());
    guarded(&mut panic, || c.stop());
    guarded(&mut panic, || c.del_producer(p));
    guarded(&mut panic, || p.del_consumer(c));
    guarded(&mut panic, || c.start());
    guarded(&mut panic, || p.start());
    Disconnection { panic }
}
