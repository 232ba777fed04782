//! The watchdog: a case whose backend could deadlock runs on its own thread, and fails instead
//! of hanging when it does not finish in time.
//!
//! The threads a watched case starts run in its [`scope`], which tells the watchdog of a panic
//! that escapes any of them as it happens: the case fails at once with that panic's message,
//! rather than as a suspected deadlock when the threads that wait for the panicked one (at a
//! barrier, or for a flag it would have set) give up, which they never do.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::Duration;

/// What the threads of a watched case tell its watchdog.
enum Report {
    /// The case's own thread has finished, returning or panicking.
    Finished,
    /// A thread of the case panicked, with this message.
    Panicked(String),
}

thread_local! {
    /// The watchdog of the case this thread works for, if any.
    static WATCHDOG: RefCell<Option<Sender<Report>>> = const { RefCell::new(None) };
}

/// Sends [`Report::Finished`] when dropped: when the case's thread returns or unwinds.
struct Finished(Sender<Report>);

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.0.send(Report::Finished);
    }
}

/// Runs `f` on its own thread and fails if it does not finish within `limit`, or as soon as a
/// thread of its [`scope`] panics: a deadlocked backend fails the case instead of hanging the
/// test run, and a panic is named at once whatever the other threads wait for. A thread left
/// waiting is left behind, blocked.
pub(super) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("conformance: {what}"))
        .spawn(move || {
            let _finished = Finished(tx.clone());
            WATCHDOG.set(Some(tx));
            f()
        })
        .expect("spawn a conformance thread");
    match rx.recv_timeout(limit) {
        Ok(Report::Finished) | Err(RecvTimeoutError::Disconnected) => handle
            .join()
            .unwrap_or_else(|panic| panic::resume_unwind(panic)),
        Ok(Report::Panicked(message)) => panic!("{what}: a thread panicked: {message}"),
        Err(RecvTimeoutError::Timeout) => {
            panic!("{what}: no progress after {limit:?}: deadlock suspected")
        }
    }
}

/// [`thread::scope`] for the threads of a watched case: a panic that escapes the body or one
/// of the threads it spawns is reported to the watchdog as it unwinds.
pub(super) fn scope<'env, T>(f: impl for<'scope> FnOnce(&WatchedScope<'scope, 'env>) -> T) -> T {
    thread::scope(|scope| reporting(|| f(&WatchedScope(scope))))
}

/// The [`Scope`] of a watched case's threads.
pub(super) struct WatchedScope<'scope, 'env>(&'scope Scope<'scope, 'env>);

impl<'scope> WatchedScope<'scope, '_> {
    /// Spawns a thread, watched by the caller's watchdog.
    pub(super) fn spawn<T: Send + 'scope>(
        &self,
        f: impl FnOnce() -> T + Send + 'scope,
    ) -> ScopedJoinHandle<'scope, T> {
        let watchdog = WATCHDOG.with_borrow(Clone::clone);
        self.0.spawn(move || {
            WATCHDOG.set(watchdog);
            reporting(f)
        })
    }
}

/// Runs `f`, reporting a panic that escapes it to this thread's watchdog before it goes on.
fn reporting<T>(f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        WATCHDOG.with_borrow(|watchdog| {
            if let Some(watchdog) = watchdog {
                let _ = watchdog.send(Report::Panicked(panic_message(&*panic)));
            }
        });
        panic::resume_unwind(panic)
    })
}

/// How long a watched case may go without finishing before it is declared deadlocked, in
/// milliseconds. Generous by default: a loaded 2-core CI machine runs many tests at once.
static WATCHDOG_MS: AtomicU64 = AtomicU64::new(60_000);

/// Sets the watchdog limit for the cases that run under it (all whose backend could deadlock),
/// for this whole process. Lower it in a suite that expects deadlocks, so they fail fast.
pub fn set_watchdog(limit: Duration) {
    WATCHDOG_MS.store(
        limit.as_millis().try_into().unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// The current watchdog limit.
pub(super) fn watchdog() -> Duration {
    Duration::from_millis(WATCHDOG_MS.load(Ordering::Relaxed))
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
