//! The two sides of a pairing and the callbacks the registry runs on them.

use std::any::Any;
use std::error::Error;
use std::fmt;

/// An interrupt source: a VFIO device's MSI-X vector, a vDPA queue.
///
/// The registry calls these methods, in the order [`crate::protocol`] fixes, when a
/// consumer registered under the same token appears or leaves. All take `&self`: a
/// participant is shared (`Arc`) between the VMM and the registry, so state that a callback
/// changes lives behind the participant's own interior mutability.
///
/// The callbacks of one token never overlap, but callbacks of different tokens may run in
/// parallel on a scalable backend. A callback may call into the registry; for its own token it
/// gets [`crate::ErrorKind::Reentrant`], never a deadlock.
///
/// `Producer: Any`, so the `Arc<dyn Producer>` that unregister hands back can be turned into
/// the concrete type again:
///
/// ```
/// use std::sync::Arc;
/// use bypass_registry::{CallbackError, Consumer, Producer};
///
/// struct Vector(u32);
/// impl Producer for Vector {
///     fn add_consumer(&self, _: &dyn Consumer) -> Result<(), CallbackError> { Ok(()) }
///     fn del_consumer(&self, _: &dyn Consumer) {}
///     fn irq(&self) -> Option<u32> { Some(self.0) }
/// }
///
/// let p: Arc<dyn Producer> = Arc::new(Vector(33));
/// let any: Arc<dyn std::any::Any + Send + Sync> = p;
/// assert_eq!(any.downcast::<Vector>().unwrap().0, 33);
/// ```
pub trait Producer: Any + Send + Sync {
    /// Connect this producer to `consumer`. An error fails the connect: the registry rolls
    /// back and the registration that triggered it returns
    /// [`crate::RegisterError::ConnectFailed`] with this error.
    fn add_consumer(&self, consumer: &dyn Consumer) -> Result<(), CallbackError>;
    /// Disconnect this producer from `consumer`, which it was connected to.
    fn del_consumer(&self, consumer: &dyn Consumer);
    /// Quiesce before an add or a del. Does nothing unless overridden.
    fn stop(&self) {}
    /// Resume after an add or a del; runs even when the add failed. Does nothing unless
    /// overridden.
    fn start(&self) {}
    /// The host interrupt number of this source, if it has one.
    fn irq(&self) -> Option<u32> {
        None
    }
}

/// An interrupt sink: a KVM irqfd and its posted-interrupt route.
///
/// The mirror of [`Producer`]; see there for how and when the callbacks run.
pub trait Consumer: Any + Send + Sync {
    /// Connect this consumer to `producer`, which has already accepted it. An error fails the
    /// connect: the registry calls the producer's `del_consumer` to roll back.
    fn add_producer(&self, producer: &dyn Producer) -> Result<(), CallbackError>;
    /// Disconnect this consumer from `producer`, which it was connected to.
    fn del_producer(&self, producer: &dyn Producer);
    /// Quiesce before an add or a del. Does nothing unless overridden.
    fn stop(&self) {}
    /// Resume after an add or a del; runs even when the add failed. Does nothing unless
    /// overridden.
    fn start(&self) {}
}

/// The error an `add_*` callback returns to refuse a connection.
///
/// It carries any error the VMM wants to report (an `io::Error` from an ioctl, a message) and
/// reaches the caller of the registration inside [`crate::RegisterError::ConnectFailed`].
///
/// ```
/// use bypass_registry::CallbackError;
/// let e = CallbackError::new("IRTE table full");
/// assert_eq!(e.to_string(), "IRTE table full");
/// let io = CallbackError::new(std::io::Error::from_raw_os_error(16));
/// assert!(io.to_string().contains("busy"));
/// ```
pub struct CallbackError(Box<dyn Error + Send + Sync + 'static>);

impl CallbackError {
    /// Wraps an error or a message.
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> CallbackError {
        CallbackError(error.into())
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }

    /// The wrapped error, by value.
    pub fn into_inner(self) -> Box<dyn Error + Send + Sync + 'static> {
        self.0
    }
}

impl fmt::Debug for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CallbackError").field(&self.0).finish()
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Error for CallbackError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// Which side of a token a participant is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The interrupt source.
    Producer,
    /// The interrupt sink.
    Consumer,
}

impl Side {
    /// `"producer"` or `"consumer"`, as in traces.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        }
    }

    /// The other side.
    pub const fn other(self) -> Side {
        match self {
            Side::Producer => Side::Consumer,
            Side::Consumer => Side::Producer,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the four callbacks of a participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Callback {
    /// `stop`
    Stop,
    /// `start`
    Start,
    /// `add_consumer` on a producer, `add_producer` on a consumer.
    Add,
    /// `del_consumer` on a producer, `del_producer` on a consumer.
    Del,
}

impl Callback {
    /// The callback's method name on `side`, as traces print it.
    pub const fn name(self, side: Side) -> &'static str {
        match (self, side) {
            (Callback::Stop, _) => "stop",
            (Callback::Start, _) => "start",
            (Callback::Add, Side::Producer) => "add_consumer",
            (Callback::Add, Side::Consumer) => "add_producer",
            (Callback::Del, Side::Producer) => "del_consumer",
            (Callback::Del, Side::Consumer) => "del_producer",
        }
    }
}

/// A callback that ran: who received it and which one. Its `Display` is a trace callback line,
/// such as `producer 7 add_consumer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// The side of the participant that received the callback.
    pub side: Side,
    /// The token it is registered under.
    pub token: u64,
    /// The callback.
    pub callback: Callback,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.side,
            self.token,
            self.callback.name(self.side)
        )
    }
}
