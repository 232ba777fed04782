//! The two sides of a token, written once: [`Pair`] holds something for the producer and
//! something for the consumer of a token, and a [`Role`] ([`ProducerRole`] or
//! [`ConsumerRole`]) says which of the two is "mine" and which is the partner's, so that code
//! written for one side serves both.
//!
//! What a pair holds is its [`Hold`]: [`Strong`] references to the registered participants
//! (what a backend keeps under a token), or anything else with one value per side (the
//! model's behaviours, a backend's weak snapshot, one list or counter per side).
//!
//! ```
//! use std::sync::Arc;
//! use bypass_registry::pair::{ConsumerRole, Pair, ProducerRole, Role, Strong};
//! use bypass_registry::probe::{EventLog, Probe};
//!
//! let log = EventLog::new();
//! let mut pair = Pair::<Strong>::default();
//! *ProducerRole::mine_mut(&mut pair) = Some(Arc::new(Probe::producer(1, &log)));
//! assert!(ConsumerRole::partner(&pair).is_some());
//! assert!(ConsumerRole::mine(&pair).is_none() && !pair.is_paired());
//! ```

use std::fmt;
use std::sync::Arc;

use crate::participant::{Consumer, Producer};

/// What a [`Pair`] holds for each side: `Of<dyn Producer>` for the producer, `Of<dyn Consumer>`
/// for the consumer.
pub trait Hold {
    /// The value held for a side whose participants are `T` (`dyn Producer` or
    /// `dyn Consumer`).
    type Of<T: ?Sized + 'static>;
}

/// A [`Hold`]: the registered participant of each side, if any, by strong reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Strong;

impl Hold for Strong {
    type Of<T: ?Sized + 'static> = Option<Arc<T>>;
}

/// One value for the producer and one for the consumer of a token.
pub struct Pair<H: Hold> {
    /// The producer's.
    pub producer: H::Of<dyn Producer>,
    /// The consumer's.
    pub consumer: H::Of<dyn Consumer>,
}

impl Pair<Strong> {
    /// Whether neither side is registered.
    pub fn is_empty(&self) -> bool {
        self.producer.is_none() && self.consumer.is_none()
    }

    /// Whether both sides are registered, and so connected.
    pub fn is_paired(&self) -> bool {
        self.producer.is_some() && self.consumer.is_some()
    }
}

impl<H: Hold> Default for Pair<H>
where
    H::Of<dyn Producer>: Default,
    H::Of<dyn Consumer>: Default,
{
    fn default() -> Self {
        Pair {
            producer: Default::default(),
            consumer: Default::default(),
        }
    }
}

impl<H: Hold> Clone for Pair<H>
where
    H::Of<dyn Producer>: Clone,
    H::Of<dyn Consumer>: Clone,
{
    fn clone(&self) -> Self {
        Pair {
            producer: self.producer.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

impl<H: Hold> Copy for Pair<H>
where
    H::Of<dyn Producer>: Copy,
    H::Of<dyn Consumer>: Copy,
{
}

impl<H: Hold> PartialEq for Pair<H>
where
    H::Of<dyn Producer>: PartialEq,
    H::Of<dyn Consumer>: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.producer == other.producer && self.consumer == other.consumer
    }
}

impl<H: Hold> Eq for Pair<H>
where
    H::Of<dyn Producer>: Eq,
    H::Of<dyn Consumer>: Eq,
{
}

impl<H: Hold> fmt::Debug for Pair<H>
where
    H::Of<dyn Producer>: fmt::Debug,
    H::Of<dyn Consumer>: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("producer", &self.producer)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// Both values of a [`Pair`] of `H`, mine first as `R` sees it: what [`Role::split`] gives.
pub type Sides<'a, H, R> = (
    &'a <H as Hold>::Of<<R as Role>::Me>,
    &'a <H as Hold>::Of<<R as Role>::Partner>,
);

/// Both values of a [`Pair`] of `H`, to change, mine first as `R` sees it: what
/// [`Role::split_mut`] gives.
pub type Split<'a, H, R> = (
    &'a mut <H as Hold>::Of<<R as Role>::Me>,
    &'a mut <H as Hold>::Of<<R as Role>::Partner>,
);

/// One side of a token, seen from a participant of that side: which value of a [`Pair`] is
/// mine and which is my partner's, and in which order the callback protocol takes us.
///
/// Code generic over a role is written once for registering or unregistering a producer and a
/// consumer. The two roles are [`ProducerRole`] and [`ConsumerRole`]; the participants of a
/// role are `Arc<Self::Me>`, which is what its register takes and its unregister (and its
/// [`crate::RegisterError`]) hands back.
pub trait Role: 'static {
    /// My participants: `dyn Producer` or `dyn Consumer`.
    type Me: ?Sized + Send + Sync + 'static;
    /// My partner's participants: the other one.
    type Partner: ?Sized + Send + Sync + 'static;

    /// Both values of `pair`, mine first.
    fn split<H: Hold>(pair: &Pair<H>) -> Sides<'_, H, Self>;

    /// Both values of `pair`, mine first, to change mine while reading my partner's.
    fn split_mut<H: Hold>(pair: &mut Pair<H>) -> Split<'_, H, Self>;

    /// My value in `pair`.
    fn mine<H: Hold>(pair: &Pair<H>) -> &H::Of<Self::Me> {
        Self::split(pair).0
    }

    /// My partner's value in `pair`.
    fn partner<H: Hold>(pair: &Pair<H>) -> &H::Of<Self::Partner> {
        Self::split(pair).1
    }

    /// My value in `pair`, to change.
    fn mine_mut<H: Hold>(pair: &mut Pair<H>) -> &mut H::Of<Self::Me> {
        Self::split_mut(pair).0
    }

    /// `me` and `partner` as the callback protocol takes them: (producer, consumer).
    fn order<'a>(
        me: &'a Self::Me,
        partner: &'a Self::Partner,
    ) -> (&'a dyn Producer, &'a dyn Consumer);
}

/// The [`Role`] of a producer: its partner is the consumer of its token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerRole;

/// The [`Role`] of a consumer: its partner is the producer of its token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerRole;

impl Role for ProducerRole {
    type Me = dyn Producer;
    type Partner = dyn Consumer;

    fn split<H: Hold>(pair: &Pair<H>) -> Sides<'_, H, Self> {
        (&pair.producer, &pair.consumer)
    }

    fn split_mut<H: Hold>(pair: &mut Pair<H>) -> Split<'_, H, Self> {
        (&mut pair.producer, &mut pair.consumer)
    }

    fn order<'a>(
        me: &'a dyn Producer,
        partner: &'a dyn Consumer,
    ) -> (&'a dyn Producer, &'a dyn Consumer) {
        (me, partner)
    }
}

impl Role for ConsumerRole {
    type Me = dyn Consumer;
    type Partner = dyn Producer;

    fn split<H: Hold>(pair: &Pair<H>) -> Sides<'_, H, Self> {
        (&pair.consumer, &pair.producer)
    }

    fn split_mut<H: Hold>(pair: &mut Pair<H>) -> Split<'_, H, Self> {
        (&mut pair.consumer, &mut pair.producer)
    }

    fn order<'a>(
        me: &'a dyn Consumer,
        partner: &'a dyn Producer,
    ) -> (&'a dyn Producer, &'a dyn Consumer) {
        (partner, me)
    }
}
