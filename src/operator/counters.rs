//! An operator's own metrics: counters it adds to as it processes records (`ctx.count`), and
//! ratios of two of them it declares ([`KeyedOperator::metrics`](super::KeyedOperator::metrics)),
//! such as an alert rate or a mean score. Each partition sums its counts between epoch ends;
//! the job adds up those of committed epochs and exports them on the metrics endpoint
//! (`spate_operator_total{name}`, `spate_operator_ratio{name}`) and in `--report`.

/// A metric an operator declares.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricDecl {
    /// A counter the operator adds to with `ctx.count(name, by)`.
    Counter {
        /// Its name.
        name: &'static str,
        /// What it counts.
        help: &'static str,
    },
    /// `numerator / denominator` of two counters, over the whole run.
    Ratio {
        /// Its name.
        name: &'static str,
        /// What it measures.
        help: &'static str,
        /// The counter above the line.
        numerator: &'static str,
        /// The counter below it.
        denominator: &'static str,
    },
}

/// Counts by name (an operator has a handful, so a list beats a map).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters(Vec<(&'static str, f64)>);

impl Counters {
    /// Adds `by` to counter `name` (called per record: a name is usually the same literal each
    /// time, so its address is compared before its text).
    pub fn add(&mut self, name: &'static str, by: f64) {
        let same = |n: &&'static str| std::ptr::eq(*n, name) || *n == name;
        match self.0.iter_mut().find(|(n, _)| same(n)) {
            Some((_, total)) => *total += by,
            None => self.0.push((name, by)),
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counters) {
        for &(name, by) in &other.0 {
            self.add(name, by);
        }
    }

    /// Counter `name` (0 when never added to).
    pub fn get(&self, name: &str) -> f64 {
        self.0.iter().find(|(n, _)| *n == name).map_or(0.0, |c| c.1)
    }

    /// The counts, in the order first added to.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.0.iter().copied()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of every declared metric given these counts (ratios with a zero denominator
    /// are left out).
    pub fn values(&self, decls: &[MetricDecl]) -> Vec<(&'static str, f64)> {
        decls
            .iter()
            .filter_map(|d| match *d {
                MetricDecl::Counter { name, .. } => Some((name, self.get(name))),
                MetricDecl::Ratio {
                    name,
                    numerator,
                    denominator,
                    ..
                } => {
                    let below = self.get(denominator);
                    (below != 0.0).then(|| (name, self.get(numerator) / below))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_ratios_divide() {
        let decls = [
            MetricDecl::Counter {
                name: "alerts",
                help: "",
            },
            MetricDecl::Ratio {
                name: "alert_rate",
                help: "",
                numerator: "alerts",
                denominator: "scored",
            },
        ];
        let mut a = Counters::default();
        assert_eq!(a.values(&decls), [("alerts", 0.0)], "no ratio over nothing");
        a.add("scored", 10.0);
        a.add("alerts", 1.0);
        let mut b = Counters::default();
        b.add("scored", 30.0);
        b.add("alerts", 1.0);
        a.merge(&b);
        assert_eq!(a.values(&decls), [("alerts", 2.0), ("alert_rate", 0.05)]);
    }
}
