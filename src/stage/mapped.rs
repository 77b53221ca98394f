//! A later stage whose results are mapped once more (`Job::map`, `flat_map` after a chained
//! stage): the stage itself, with the map applied to what it emits.

use super::{EachResult, Exchanged, LaterStage, Routed, StageRunner};
use crate::checkpoint::Epoch;
use crate::pipeline::OutputFn;
use crate::state::{PartitionStore, PreparedCheckpoint, SliceLog};
use crate::time::{Millis, TimeRules};
use crate::Result;
use std::sync::Arc;

/// `inner`, with `map` applied to each of its results.
pub struct MappedStage<In, Mid, Out> {
    /// The stage.
    pub inner: Arc<dyn LaterStage<In, Mid>>,
    /// What each of its results becomes (none, one or several).
    pub map: OutputFn<Mid, Out>,
}

impl<In: 'static, Mid: 'static, Out: 'static> LaterStage<In, Out> for MappedStage<In, Mid, Out> {
    fn start(&self, partition: u32, partitions: u32) -> Box<dyn StageRunner<In, Out>> {
        Box::new(MappedRunner {
            inner: self.inner.start(partition, partitions),
            map: self.map.clone(),
        })
    }

    fn describe(&self, number: usize, text: &mut String) {
        self.inner.describe(number, text);
    }

    fn rules(&self) -> TimeRules {
        self.inner.rules()
    }

    fn with_rules(&self, rules: TimeRules) -> Box<dyn LaterStage<In, Out>> {
        Box::new(MappedStage {
            inner: Arc::from(self.inner.with_rules(rules)),
            map: self.map.clone(),
        })
    }

    fn metrics(&self) -> Vec<crate::operator::MetricDecl> {
        self.inner.metrics()
    }
}

/// A [`MappedStage`] in one key partition.
struct MappedRunner<In, Mid, Out> {
    inner: Box<dyn StageRunner<In, Mid>>,
    map: OutputFn<Mid, Out>,
}

impl<In, Mid, Out> StageRunner<In, Out> for MappedRunner<In, Mid, Out> {
    fn route(&mut self, results: &mut dyn Iterator<Item = (In, Millis)>) {
        self.inner.route(results);
    }

    fn take_routed(&mut self, watermark: Millis) -> Routed {
        self.inner.take_routed(watermark)
    }

    fn encode(&self, batch: &Exchanged) -> Vec<u8> {
        self.inner.encode(batch)
    }

    fn decode(&self, bytes: &[u8]) -> std::result::Result<Exchanged, String> {
        self.inner.decode(bytes)
    }

    fn process(&mut self, from: usize, batch: Exchanged) {
        self.inner.process(from, batch);
    }

    fn advance(
        &mut self,
        watermark: Millis,
        processing_time: Millis,
        model: Option<&std::sync::Arc<crate::learning::ModelHistory>>,
    ) {
        self.inner.advance(watermark, processing_time, model);
    }

    fn take_results(&mut self, each: &mut EachResult<'_, Out>) {
        let map = &self.map;
        self.inner
            .take_results(&mut |key, mid| map(mid, &mut |out| each(key, out)));
    }

    fn take_late(&mut self, partition: u32, out: &mut Vec<u8>) -> Result<u64> {
        self.inner.take_late(partition, out)
    }

    fn prepare_checkpoint(&mut self, epoch: Epoch) -> PreparedCheckpoint {
        self.inner.prepare_checkpoint(epoch)
    }

    fn prepare_logged(&mut self, epoch: Epoch, log: &mut SliceLog) -> Result<PreparedCheckpoint> {
        self.inner.prepare_logged(epoch, log)
    }

    fn restore(&mut self, store: &PartitionStore, log: Option<&SliceLog>) -> Result<Epoch> {
        self.inner.restore(store, log)
    }

    fn key_count(&self) -> usize {
        self.inner.key_count()
    }

    fn watermark(&self) -> Millis {
        self.inner.watermark()
    }

    fn unended_upstream(&self) -> Vec<u32> {
        self.inner.unended_upstream()
    }

    fn take_counters(&mut self) -> crate::operator::Counters {
        self.inner.take_counters()
    }

    fn take_learned(&mut self) -> Vec<crate::learning::Learned> {
        self.inner.take_learned()
    }
}
