//! Aggregations over a window's records: the [`Aggregator`] trait (create / add / merge /
//! finish) and the built-in count, sum, min, max and average; tuples of aggregators compute
//! several at once, e.g. `(Count, Sum::of(|t: &Tx| t.cents))`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;

/// An incremental aggregation. `merge` must agree with `add`: merging the accumulators of two
/// parts equals adding all records to one, since sliding windows combine per-pane accumulators.
pub trait Aggregator<E>: Send + Sync + 'static {
    /// The running accumulator, kept in state.
    type Acc: Clone + Serialize + DeserializeOwned + Send + 'static;
    /// The final value.
    type Out: Send + 'static;
    /// An empty accumulator.
    fn create(&self) -> Self::Acc;
    /// Adds one record.
    fn add(&self, acc: &mut Self::Acc, event: &E);
    /// Adds another accumulator.
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);
    /// The result.
    fn finish(&self, acc: &Self::Acc) -> Self::Out;
}

/// Numbers that can be summed, compared and averaged.
pub trait Number:
    Copy + Default + PartialOrd + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Addition. Integers are checked: an overflow panics (which stops the job with a message)
    /// rather than write a wrapped or saturated sum.
    fn add(self, other: Self) -> Self;
    /// As a float, for averages.
    fn to_f64(self) -> f64;
}

macro_rules! int_number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            #[inline]
            fn add(self, other: Self) -> Self {
                // A wrong sum must not be written: the partition's panic handling restarts it
                // and, as the overflow repeats, stops the job with this message.
                self.checked_add(other).unwrap_or_else(|| {
                    panic!("a sum overflowed {}: {self} + {other}", stringify!($t))
                })
            }
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
int_number!(i32, i64, u32, u64);

impl Number for f64 {
    #[inline]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Counts records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<E> Aggregator<E> for Count {
    type Acc = u64;
    type Out = u64;
    fn create(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _: &E) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += other;
    }
    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}

macro_rules! field_aggregator {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<F, V> {
            field: F,
            _value: PhantomData<fn() -> V>,
        }

        impl<F, V> $name<F, V> {
            /// Aggregates the value `field` extracts from each record.
            pub fn of(field: F) -> Self {
                $name { field, _value: PhantomData }
            }
        }
    };
}

field_aggregator!(
    /// Sums a numeric field. Use integer units (cents, not dollars) for exact sums.
    Sum
);
field_aggregator!(
    /// The smallest value of a field (`None` for an empty window).
    Min
);
field_aggregator!(
    /// The largest value of a field (`None` for an empty window).
    Max
);
field_aggregator!(
    /// The mean of a field (`None` for an empty window).
    Avg
);

impl<E, V: Number, F: Fn(&E) -> V + Send + Sync + 'static> Aggregator<E> for Sum<F, V> {
    type Acc = V;
    type Out = V;
    fn create(&self) -> V {
        V::default()
    }
    #[inline]
    fn add(&self, acc: &mut V, event: &E) {
        *acc = acc.add((self.field)(event));
    }
    fn merge(&self, acc: &mut V, other: &V) {
        *acc = acc.add(*other);
    }
    fn finish(&self, acc: &V) -> V {
        *acc
    }
}

fn keep_if<V: Number>(acc: &mut Option<V>, v: V, better: impl Fn(&V, &V) -> bool) {
    match acc {
        Some(cur) if !better(&v, cur) => {}
        _ => *acc = Some(v),
    }
}

impl<E, V: Number, F: Fn(&E) -> V + Send + Sync + 'static> Aggregator<E> for Min<F, V> {
    type Acc = Option<V>;
    type Out = Option<V>;
    fn create(&self) -> Option<V> {
        None
    }
    #[inline]
    fn add(&self, acc: &mut Option<V>, event: &E) {
        keep_if(acc, (self.field)(event), |a, b| a < b);
    }
    fn merge(&self, acc: &mut Option<V>, other: &Option<V>) {
        if let Some(v) = *other {
            keep_if(acc, v, |a, b| a < b);
        }
    }
    fn finish(&self, acc: &Option<V>) -> Option<V> {
        *acc
    }
}

impl<E, V: Number, F: Fn(&E) -> V + Send + Sync + 'static> Aggregator<E> for Max<F, V> {
    type Acc = Option<V>;
    type Out = Option<V>;
    fn create(&self) -> Option<V> {
        None
    }
    #[inline]
    fn add(&self, acc: &mut Option<V>, event: &E) {
        keep_if(acc, (self.field)(event), |a, b| a > b);
    }
    fn merge(&self, acc: &mut Option<V>, other: &Option<V>) {
        if let Some(v) = *other {
            keep_if(acc, v, |a, b| a > b);
        }
    }
    fn finish(&self, acc: &Option<V>) -> Option<V> {
        *acc
    }
}

impl<E, V: Number, F: Fn(&E) -> V + Send + Sync + 'static> Aggregator<E> for Avg<F, V> {
    type Acc = (V, u64);
    type Out = Option<f64>;
    fn create(&self) -> (V, u64) {
        (V::default(), 0)
    }
    #[inline]
    fn add(&self, acc: &mut (V, u64), event: &E) {
        acc.0 = acc.0.add((self.field)(event));
        acc.1 += 1;
    }
    fn merge(&self, acc: &mut (V, u64), other: &(V, u64)) {
        acc.0 = acc.0.add(other.0);
        acc.1 += other.1;
    }
    fn finish(&self, acc: &(V, u64)) -> Option<f64> {
        (acc.1 > 0).then(|| acc.0.to_f64() / acc.1 as f64)
    }
}

macro_rules! tuple_aggregator {
    ($($name:ident $idx:tt),+) => {
        impl<E, $($name: Aggregator<E>),+> Aggregator<E> for ($($name,)+) {
            type Acc = ($($name::Acc,)+);
            type Out = ($($name::Out,)+);
            fn create(&self) -> Self::Acc {
                ($(self.$idx.create(),)+)
            }
            #[inline]
            fn add(&self, acc: &mut Self::Acc, event: &E) {
                $(self.$idx.add(&mut acc.$idx, event);)+
            }
            fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
                $(self.$idx.merge(&mut acc.$idx, &other.$idx);)+
            }
            fn finish(&self, acc: &Self::Acc) -> Self::Out {
                ($(self.$idx.finish(&acc.$idx),)+)
            }
        }
    };
}
tuple_aggregator!(A 0, B 1);
tuple_aggregator!(A 0, B 1, C 2);
tuple_aggregator!(A 0, B 1, C 2, D 3);

#[cfg(test)]
mod tests {
    use super::*;

    fn run<A: Aggregator<i64>>(agg: &A, values: &[i64]) -> A::Out {
        // Split in two and merge, as panes do.
        let (left, right) = values.split_at(values.len() / 2);
        let (mut a, mut b) = (agg.create(), agg.create());
        left.iter().for_each(|v| agg.add(&mut a, v));
        right.iter().for_each(|v| agg.add(&mut b, v));
        agg.merge(&mut a, &b);
        agg.finish(&a)
    }

    #[test]
    #[should_panic(expected = "a sum overflowed i64")]
    fn integer_sums_never_wrap_or_saturate() {
        run(&Sum::of(|v: &i64| *v), &[i64::MAX, 1]);
    }

    #[test]
    fn builtins_and_tuples() {
        let vals = [5, -2, 9, 4];
        let all = (
            Count,
            Sum::of(|v: &i64| *v),
            (Min::of(|v: &i64| *v), Max::of(|v: &i64| *v)),
            Avg::of(|v: &i64| *v),
        );
        assert_eq!(run(&all, &vals), (4, 16, (Some(-2), Some(9)), Some(4.0)));
        assert_eq!(
            run(&(Min::of(|v: &i64| *v), Avg::of(|v: &i64| *v)), &[]),
            (None, None)
        );
    }
}
