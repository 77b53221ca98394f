//! `spate describe`: a job's topology in words, like Kafka Streams' `Topology#describe`: its
//! inputs (name, record type, watermark delay), its keyed stage (key, operator, lateness, state
//! TTL) and its outputs.

use super::Plan;
use crate::operator::{KeyedOperator, MetricDecl};
use crate::time::format_millis;
use std::fmt::Write;

/// A type's name without module paths: `Option<spate::key::id::Id>` becomes `Option<Id>`.
pub fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut path = String::new();
    let flush = |path: &mut String, out: &mut String| {
        out.push_str(path.rsplit("::").next().unwrap_or(""));
        path.clear();
    };
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            path.push(c);
        } else {
            flush(&mut path, &mut out);
            out.push(c);
        }
    }
    flush(&mut path, &mut out);
    out
}

impl<R, Op: KeyedOperator, Out> Plan<R, Op, Out> {
    /// The job's topology, one item per line.
    pub fn describe(&self) -> String {
        let mut text = format!("{}: {}\n", self.name, self.description);
        let _ = writeln!(text, "inputs (--source NAME=URI):");
        for (i, input) in self.inputs.iter().enumerate() {
            let _ = writeln!(
                text,
                "  {}. {}: {} records, watermark {} behind its newest event time",
                i + 1,
                input.name,
                short_type_name(input.record_type),
                format_millis(input.watermark_delay)
            );
        }
        crate::stage::describe_keyed(
            &mut text,
            1,
            std::any::type_name::<Op::Key>(),
            &self.operator.describe(),
            &self.rules,
        );
        if let Some(stage) = self.later_stage() {
            let _ = writeln!(
                text,
                "  its results are re-keyed: they move to the key partitions of stage 2 at each epoch end"
            );
            stage.describe(2, &mut text);
        }
        if let Some(model) = &self.model {
            let _ = writeln!(
                text,
                "shared model: {}, learned once per {} micro-batch of event time (spate model export, --model FILE)",
                short_type_name(model.type_name),
                crate::time::format_millis(model.batch)
            );
        }
        let _ = writeln!(
            text,
            "outputs (--sink NAME=URI): {} records as JSON lines{}",
            short_type_name(std::any::type_name::<Out>()),
            if self.supports_update {
                ", append or update mode"
            } else {
                ""
            }
        );
        for (i, name) in self.outputs.iter().enumerate() {
            let _ = match i {
                0 => writeln!(text, "  1. {name}, with the late records and dead letters"),
                _ => writeln!(text, "  {}. {name}: the results split off to it", i + 1),
            };
        }
        let metrics = self.operator_metrics();
        if !metrics.is_empty() {
            let _ = writeln!(
                text,
                "metrics (spate_operator_total{{name}}, spate_operator_ratio{{name}} and spate_operator_window{{name}} over the last 5 minutes, --report):"
            );
        }
        for m in metrics {
            let _ = match m {
                MetricDecl::Counter { name, help } => writeln!(text, "  {name}: {help}"),
                MetricDecl::Ratio {
                    name,
                    help,
                    numerator,
                    denominator,
                } => writeln!(text, "  {name} = {numerator} / {denominator}: {help}"),
                MetricDecl::Auc { name, help, .. } => writeln!(text, "  {name}: {help}"),
            };
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(
            short_type_name("core::option::Option<spate::key::id::Id>"),
            "Option<Id>"
        );
        assert_eq!(
            short_type_name("spate::join::Either<a::B, (u64, i64)>"),
            "Either<B, (u64, i64)>"
        );
    }
}
