//! Writer locks held across callbacks, one per group of tokens (a dashmap shard for
//! [`sharded`](crate::sharded), a snapshot bucket for [`rcu`](crate::rcu)), and the rule that
//! keeps callbacks that call back into the registry from deadlocking.
//!
//! A thread holds the writer lock of a group for the whole of a register or unregister of a
//! token of that group, callbacks included. The locks are not re-entrant, so a callback that
//! calls back for a token of a group its thread already holds would wait for itself forever.
//! [`bypass_registry::protocol`] records, per thread, the token of every callback the thread is
//! running; the group of each such token is a group this thread holds. A new call for group
//! `g`, from a thread that holds:
//! - nothing (the usual case, not inside a callback): waits for `g`;
//! - `g` itself: refused with `reentrant` (the deadlock that dashmap documents for a guard held
//!   across a call into the same map);
//! - only groups below `g`: waits for `g`;
//! - a group above `g`: only *tries* `g`, and is refused with `reentrant` if `g` is busy.
//!
//! Every thread that waits while holding writer locks therefore waits for a group above all the
//! groups it holds, so no cycle of waiting threads can form (the classic lock order), whatever
//! the callbacks call. What remains is the deadlock no registry can see: a callback that blocks
//! until *another thread* has registered or unregistered a token of the same group.

use bypass_registry::Token;
use bypass_registry::protocol::RegistryId;
use parking_lot::{Mutex, MutexGuard};

/// The writer lock of one group, with the group's index for the lock order.
pub(crate) type WriterLock = Mutex<()>;

/// Takes `lock`, the writer lock of `group`, for a call of `registry` on this thread, or
/// returns `None` if that could deadlock (the call must then fail with `reentrant`).
/// `group_of` gives the group of a token, as the backend computes it.
pub(crate) fn lock(
    registry: RegistryId,
    lock: &WriterLock,
    group: usize,
    group_of: impl Fn(Token) -> usize,
) -> Option<MutexGuard<'_, ()>> {
    let (mut holds_this, mut holds_higher) = (false, false);
    // The predicate never matches, so every callback on this thread's stack is visited.
    registry.in_callback_where(|token| {
        let held = group_of(token);
        holds_this |= held == group;
        holds_higher |= held > group;
        false
    });
    if holds_this {
        None
    } else if holds_higher {
        lock.try_lock()
    } else {
        Some(lock.lock())
    }
}
