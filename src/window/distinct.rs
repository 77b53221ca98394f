//! [`CountDistinct`]: how many distinct values of a field a window holds (its accumulator is the
//! set of values, so windows merge exactly).

use super::Aggregator;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::marker::PhantomData;

/// Counts the distinct values of a field.
pub struct CountDistinct<F, V> {
    field: F,
    _value: PhantomData<fn() -> V>,
}

impl<F, V> CountDistinct<F, V> {
    /// Counts the distinct values `field` extracts from each record.
    pub fn of(field: F) -> Self {
        CountDistinct {
            field,
            _value: PhantomData,
        }
    }
}

impl<E, V, F> Aggregator<E> for CountDistinct<F, V>
where
    V: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
    F: Fn(&E) -> V + Send + Sync + 'static,
{
    type Acc = BTreeSet<V>;
    type Out = u64;
    fn create(&self) -> BTreeSet<V> {
        BTreeSet::new()
    }
    fn add(&self, acc: &mut BTreeSet<V>, event: &E) {
        acc.insert((self.field)(event));
    }
    fn merge(&self, acc: &mut BTreeSet<V>, other: &BTreeSet<V>) {
        acc.extend(other.iter().cloned());
    }
    fn finish(&self, acc: &BTreeSet<V>) -> u64 {
        acc.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_seen_in_both_halves_count_once() {
        let distinct = CountDistinct::of(|x: &u32| x % 10);
        let (mut a, mut b) = (distinct.create(), distinct.create());
        for x in [1, 11, 2] {
            distinct.add(&mut a, &x);
        }
        for x in [21, 3] {
            distinct.add(&mut b, &x);
        }
        distinct.merge(&mut a, &b);
        assert_eq!(distinct.finish(&a), 3);
    }
}
