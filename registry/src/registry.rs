//! The trait every backend implements.

use std::sync::Arc;

use crate::error::{RegisterError, UnregisterError};
use crate::participant::{Consumer, Producer};
use crate::token::Token;

/// The result of registering a producer: on error, the producer is handed back.
pub type RegisterProducerResult = Result<(), RegisterError<Arc<dyn Producer>>>;
/// The result of registering a consumer: on error, the consumer is handed back.
pub type RegisterConsumerResult = Result<(), RegisterError<Arc<dyn Consumer>>>;

/// How many participants a registry holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Population {
    /// Registered producers.
    pub producers: usize,
    /// Registered consumers.
    pub consumers: usize,
}

/// An IRQ bypass registry: producers and consumers register under a shared [`Token`], and
/// when both sides of a token are present the registry connects them.
///
/// Every backend in `bypass-strategies` implements this trait and passes the conformance kit
/// (`conformance`, with the `kit` feature), so a VMM can swap one for another. The guarantees below hold for
/// all of them.
///
/// # Operations
/// - **register** on a side whose token is free and has no partner: the participant is
///   registered, unpaired, and no callback runs.
/// - **register** when the other side of the token is registered: the pair is connected
///   ([`crate::protocol::connect`]: `p.stop`, `c.stop`, `p.add_consumer`, `c.add_producer`,
///   `c.start`, `p.start`). If that fails, the new participant is not registered, the other
///   stays registered and unpaired, and the call returns [`RegisterError::ConnectFailed`].
/// - **register** on a side already taken: [`RegisterError::Duplicate`], no callback runs.
/// - **unregister** of a paired participant disconnects the pair first
///   ([`crate::protocol::disconnect`]: `p.stop`, `c.stop`, `c.del_producer`,
///   `p.del_consumer`, `c.start`, `p.start`); of an unpaired one, runs no callback. Either way
///   the participant is handed back and the registry keeps no reference to it, **strong or
///   weak**: once unregister has returned, `Arc::get_mut` on what it returned succeeds (unless
///   the caller kept a clone, or a `producer`/`consumer` read of another thread still holds
///   one it took before the unregister). A participant refused by a register (`duplicate`,
///   `connect-failed`) is handed back on the same terms.
/// - **unregister** of an empty side: [`UnregisterError::NotRegistered`], no callback runs.
/// - A producer and a consumer of one token are paired exactly when both are registered.
///
/// # Concurrency
/// - **Linearizable**: each call takes effect at one instant between its start and its
///   return.
/// - **Exactly one connect** when a producer and a consumer of one token register at the same
///   time: never zero, never two.
/// - **Per-token exclusion**: the callbacks of one token never overlap, and a connect never
///   interleaves with a disconnect.
/// - **No call after return**: once unregister has returned, the participant is never called
///   again.
/// - **Different tokens**: each backend documents whether callbacks of different tokens run in
///   parallel (scalable backends) or one at a time (global-lock backends).
///
/// # Faults
/// - A **panicking callback** leaves the registry consistent and usable; the panic then
///   reaches the caller. A panic in `stop` or `add_*` fails the connect (the new participant
///   is not registered); a panic in a disconnect callback still completes the unregister.
/// - A **re-entrant call** (a callback calling into the same registry) never deadlocks: for
///   the same token it fails with `reentrant`; for another token it works or fails with
///   `reentrant`, as the backend documents. Read calls from a callback never deadlock.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use bypass_registry::{CallbackError, Consumer, Producer, Registry, Token};
///
/// struct Vector;
/// impl Producer for Vector {
///     fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> { Ok(()) }
///     fn del_consumer(&self, _: &dyn Consumer) {}
/// }
/// struct Irqfd;
/// impl Consumer for Irqfd {
///     fn add_producer(&self, _: &dyn Producer) -> Result<(), CallbackError> { Ok(()) }
///     fn del_producer(&self, _: &dyn Producer) {}
/// }
///
/// fn wire(registry: &impl Registry) {
///     let token = Token::new(7).unwrap();
///     registry.register_producer(token, Arc::new(Vector)).unwrap();
///     assert!(!registry.is_paired(token));
///     registry.register_consumer(token, Arc::new(Irqfd)).unwrap();
///     assert!(registry.is_paired(token));
///     let _irqfd = registry.unregister_consumer(token).unwrap();
///     assert!(!registry.is_paired(token));
/// }
/// ```
pub trait Registry: Send + Sync {
    /// The backend's name, as the command line and reports spell it (`mutex-map`, …).
    fn name(&self) -> &'static str;

    /// Registers `producer` under `token`, connecting it to the consumer registered there.
    fn register_producer(
        &self,
        token: Token,
        producer: Arc<dyn Producer>,
    ) -> RegisterProducerResult;

    /// Registers `consumer` under `token`, connecting it to the producer registered there.
    fn register_consumer(
        &self,
        token: Token,
        consumer: Arc<dyn Consumer>,
    ) -> RegisterConsumerResult;

    /// Unregisters the producer of `token`, disconnecting it first if paired, and hands it
    /// back; the registry keeps no reference to it, strong or weak.
    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError>;

    /// Unregisters the consumer of `token`, disconnecting it first if paired, and hands it
    /// back; the registry keeps no reference to it, strong or weak.
    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError>;

    /// Whether a producer and a consumer are registered, and so connected, under `token`.
    fn is_paired(&self, token: Token) -> bool;

    /// The producer registered under `token`, if any.
    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>>;

    /// The consumer registered under `token`, if any.
    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>>;

    /// How many producers and consumers are registered: exact while no register or
    /// unregister is in flight, and otherwise between the counts before and after them.
    fn population(&self) -> Population;
}
