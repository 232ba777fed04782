//! The floor: a [`Registry`] that is only a concurrent map. Each token holds its producer and
//! consumer in a [`DashMap`] entry; registering inserts, unregistering removes, and no
//! callback ever runs. A measured run of a plan on it costs what the harness and the map cost
//! with no protocol, so that a backend's figure can be read against it: what the floor does
//! not reach is the registry's. Like the raw maps of the criterion benches, it is not a
//! registry to use: it connects nothing.

use std::hash::RandomState;
use std::sync::Arc;

use bypass_registry::{
    Consumer, Population, Producer, RegisterConsumerResult, RegisterError, RegisterProducerResult,
    Registry, Token, UnregisterError,
};
use dashmap::DashMap;

/// The floor's name in results and on the command line.
pub const NAME: &str = bypass_reports::schema::FLOOR;

/// A token's sides.
type Sides = (Option<Arc<dyn Producer>>, Option<Arc<dyn Consumer>>);

/// The floor: a sharded map of tokens to their sides, std's default hasher, no protocol.
#[derive(Default)]
pub struct Floor {
    map: DashMap<Token, Sides, RandomState>,
}

impl std::fmt::Debug for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Floor")
            .field("tokens", &self.map.len())
            .finish()
    }
}

impl Floor {
    /// Takes one side of `token` out with `take`, removing the entry once both are gone.
    fn take<T>(&self, token: Token, take: impl FnOnce(&mut Sides) -> Option<T>) -> Option<T> {
        let mut entry = self.map.get_mut(&token)?;
        let taken = take(&mut entry)?;
        let empty = entry.0.is_none() && entry.1.is_none();
        drop(entry);
        if empty {
            self.map
                .remove_if(&token, |_, (p, c)| p.is_none() && c.is_none());
        }
        Some(taken)
    }
}

impl Registry for Floor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn register_producer(
        &self,
        token: Token,
        producer: Arc<dyn Producer>,
    ) -> RegisterProducerResult {
        let mut entry = self.map.entry(token).or_default();
        match entry.0 {
            Some(_) => Err(RegisterError::Duplicate(producer)),
            None => {
                entry.0 = Some(producer);
                Ok(())
            }
        }
    }

    fn register_consumer(
        &self,
        token: Token,
        consumer: Arc<dyn Consumer>,
    ) -> RegisterConsumerResult {
        let mut entry = self.map.entry(token).or_default();
        match entry.1 {
            Some(_) => Err(RegisterError::Duplicate(consumer)),
            None => {
                entry.1 = Some(consumer);
                Ok(())
            }
        }
    }

    fn unregister_producer(&self, token: Token) -> Result<Arc<dyn Producer>, UnregisterError> {
        self.take(token, |sides| sides.0.take())
            .ok_or(UnregisterError::NotRegistered)
    }

    fn unregister_consumer(&self, token: Token) -> Result<Arc<dyn Consumer>, UnregisterError> {
        self.take(token, |sides| sides.1.take())
            .ok_or(UnregisterError::NotRegistered)
    }

    fn is_paired(&self, token: Token) -> bool {
        self.map
            .get(&token)
            .is_some_and(|sides| sides.0.is_some() && sides.1.is_some())
    }

    fn producer(&self, token: Token) -> Option<Arc<dyn Producer>> {
        self.map.get(&token)?.0.clone()
    }

    fn consumer(&self, token: Token) -> Option<Arc<dyn Consumer>> {
        self.map.get(&token)?.1.clone()
    }

    /// Counts the map's entries: one pass over every shard, as no counter is kept.
    fn population(&self) -> Population {
        let mut population = Population::default();
        for sides in self.map.iter() {
            population.producers += usize::from(sides.0.is_some());
            population.consumers += usize::from(sides.1.is_some());
        }
        population
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Quiet;

    #[test]
    fn inserts_and_removes_with_no_protocol() {
        let floor = Floor::default();
        let t = Token::new(3).unwrap();
        let p: Arc<dyn Producer> = Arc::new(Quiet::default());
        let c: Arc<dyn Consumer> = Arc::new(Quiet::default());
        floor.register_producer(t, p.clone()).unwrap();
        assert!(floor.register_producer(t, p).is_err());
        assert!(!floor.is_paired(t));
        floor.register_consumer(t, c).unwrap();
        assert!(floor.is_paired(t));
        assert!(floor.producer(t).is_some());
        assert_eq!(floor.population().producers, 1);
        floor.unregister_producer(t).unwrap();
        assert!(floor.unregister_producer(t).is_err());
        floor.unregister_consumer(t).unwrap();
        assert_eq!(
            floor.population().producers + floor.population().consumers,
            0
        );
        assert_eq!(floor.map.len(), 0, "an empty token's entry is removed");
    }
}
