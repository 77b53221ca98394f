//! An operator's own metrics: counters it adds to as it processes records (`ctx.count`), and
//! what it computes from them ([`KeyedOperator::metrics`](super::KeyedOperator::metrics)):
//! ratios of two, such as an alert rate or a mean score, and the area under the ROC curve of
//! scores counted into buckets. Each partition sums its counts between epoch ends; the job
//! adds up those of committed epochs and exports them on the metrics endpoint
//! (`spate_operator_total{name}`; `spate_operator_ratio{name}` over the run and
//! `spate_operator_window{name}` over the epochs committed in the last [`WINDOW`]) and in
//! `--report` (over the run).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span of the sliding window `spate_operator_window{name}` is computed over.
pub const WINDOW: Duration = Duration::from_secs(300);

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
    /// The area under the ROC curve of scores in `[0, 1]` whose outcome is known, from their
    /// histogram: `positives[i]` and `negatives[i]` count the scores of positive and negative
    /// outcomes in bucket `i` of as many equal buckets (see [`score_bucket`]); scores in the
    /// same bucket count as ties.
    Auc {
        /// Its name.
        name: &'static str,
        /// What it measures.
        help: &'static str,
        /// The counters of positive outcomes' scores, by bucket.
        positives: &'static [&'static str],
        /// The counters of negative outcomes' scores, by bucket.
        negatives: &'static [&'static str],
    },
}

/// The bucket of `score` (in `[0, 1]`) among `buckets` equal ones.
pub fn score_bucket(score: f64, buckets: usize) -> usize {
    ((score.clamp(0.0, 1.0) * buckets as f64) as usize).min(buckets - 1)
}

/// Counts by name (an operator has a handful, so a list beats a map).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters(Vec<(&'static str, f64)>);

impl Counters {
    /// Adds `by` to counter `name` (called per record: a name is usually the same literal each
    /// time, so the counters are searched by its address before its text; names of one length,
    /// such as `fraud_p00` to `fraud_p19`, would otherwise be compared byte by byte).
    pub fn add(&mut self, name: &'static str, by: f64) {
        let at = (self.0.iter().position(|(n, _)| std::ptr::eq(*n, name)))
            .or_else(|| self.0.iter().position(|(n, _)| *n == name));
        match at {
            Some(i) => self.0[i].1 += by,
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
                MetricDecl::Auc {
                    name,
                    positives,
                    negatives,
                    ..
                } => self.auc(positives, negatives).map(|auc| (name, auc)),
            })
            .collect()
    }

    /// The AUC of the scores counted in `positives` and `negatives` (see
    /// [`MetricDecl::Auc`]); `None` without both kinds.
    fn auc(&self, positives: &[&str], negatives: &[&str]) -> Option<f64> {
        let (mut below, mut wins, mut p_total) = (0.0, 0.0, 0.0);
        for (p, n) in positives.iter().zip(negatives) {
            let (p, n) = (self.get(p), self.get(n));
            wins += p * (below + n / 2.0);
            below += n;
            p_total += p;
        }
        (p_total > 0.0 && below > 0.0).then(|| wins / (p_total * below))
    }
}

/// How finely [`CounterWindow`] keeps commit times.
const SLOT: Duration = Duration::from_secs(1);

/// The counts of the epochs committed within the last [`WINDOW`] (to the second), summed.
///
/// Counts are kept summed per slot of commit time, not per epoch: with the continuous trigger
/// a job commits thousands of epochs a second, and summing every epoch of five minutes at each
/// commit took a quarter of the supervisor's time after a minute (`spate-loadgen bench
/// tx-windows --rate 100000 --trigger continuous`, 2026-12-05). So a push and a sum cost at most
/// one merge per slot of the window.
#[derive(Debug, Default)]
pub struct CounterWindow {
    /// Each slot's start (the commit time of its first epoch) and its epochs' counts.
    slots: VecDeque<(Instant, Counters)>,
}

impl CounterWindow {
    /// Adds an epoch's counts, committed `now`, and drops the slots that started before the
    /// window.
    pub fn push(&mut self, now: Instant, counts: &Counters) {
        match self.slots.back_mut() {
            Some((start, sum)) if now.duration_since(*start) < SLOT => sum.merge(counts),
            _ => self.slots.push_back((now, counts.clone())),
        }
        while self
            .slots
            .front()
            .is_some_and(|(start, _)| now.duration_since(*start) > WINDOW)
        {
            self.slots.pop_front();
        }
    }

    /// The window's counts.
    pub fn totals(&self) -> Counters {
        let mut totals = Counters::default();
        for (_, counts) in &self.slots {
            totals.merge(counts);
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_sums_the_epochs_of_its_span_in_slots_of_a_second() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut counts = Counters::default();
        counts.add("scored", 1.0);
        let mut window = CounterWindow::default();
        // A thousand epochs in the first second, one a second after.
        for i in 0..1_000 {
            window.push(at(i), &counts);
        }
        for s in 1..=WINDOW.as_secs() + 2 {
            window.push(at(s * 1_000), &counts);
            if s == 10 {
                assert_eq!(window.totals().get("scored"), 1_010.0);
            }
        }
        // The first second's slot left the window; one slot a second is kept.
        assert_eq!(window.totals().get("scored"), WINDOW.as_secs() as f64 + 1.0);
        assert_eq!(window.slots.len(), WINDOW.as_secs() as usize + 1);
    }

    #[test]
    fn a_name_counts_once_whatever_its_address() {
        let mut counts = Counters::default();
        counts.add("fraud_p01", 1.0);
        counts.add("fraud_p02", 1.0);
        // The same text at another address (a name built at run time) is the same counter.
        let built: &'static str = Box::leak(format!("fraud_p{:02}", 2).into_boxed_str());
        assert!(!std::ptr::eq(built, "fraud_p02"));
        counts.add(built, 2.0);
        assert_eq!(counts.get("fraud_p02"), 3.0);
        assert_eq!(counts.iter().count(), 2);
    }

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

    #[test]
    fn the_auc_of_bucketed_scores_counts_ties_half() {
        let decls = [MetricDecl::Auc {
            name: "auc",
            help: "",
            positives: &["p0", "p1", "p2"],
            negatives: &["n0", "n1", "n2"],
        }];
        let mut c = Counters::default();
        assert_eq!(c.values(&decls), [], "no AUC without outcomes");
        // Negatives at 0.1, 0.1, 0.5; positives at 0.5 and 0.9.
        for (name, by) in [("n0", 2.0), ("n1", 1.0), ("p1", 1.0), ("p2", 1.0)] {
            c.add(name, by);
        }
        assert_eq!([0.1, 0.5, 0.9].map(|s| score_bucket(s, 3)), [0, 1, 2]);
        // Pairs won: 0.5 beats two and ties one (2.5), 0.9 beats three: 5.5 of 6.
        assert_eq!(c.values(&decls), [("auc", 5.5 / 6.0)]);
    }
}
