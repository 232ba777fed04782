//! The watchdog: a case whose backend could deadlock runs on its own thread, and fails instead
//! of hanging when it does not finish in time.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `f` on its own thread and fails if it does not finish within `limit`: a deadlocked
/// backend fails the case instead of hanging the test run.
pub(super) fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("conformance: {what}"))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("spawn a conformance thread");
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => {
            let _ = handle.join();
            value
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what}: no progress after {limit:?}: deadlock suspected"),
    }
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
