//! A later keyed stage: the results of the stage before, mapped to events, re-keyed, and run
//! through a keyed operator whose state lives in a second [`PartitionCore`] per partition.

use super::core::take_sized;
use super::{
    write_late_lines, EachResult, Exchanged, LaterStage, PartitionCore, Routed, StageRunner,
};
use crate::checkpoint::Epoch;
use crate::key::partition_of;
use crate::learning::{Learned, ModelHistory};
use crate::operator::KeyedOperator;
use crate::pipeline::{KeyFn, OutputFn, TimeFn};
use crate::state::{PartitionStore, PreparedCheckpoint, SliceLog};
use crate::time::{Millis, TimeRules};
use crate::{Key, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A later keyed stage as a pipeline declares it: `input` turns each result of the stage
/// before into this stage's events (none, one or several), which `key` re-keys and `operator`
/// processes; `output` turns the operator's outputs into the chain's results.
pub struct KeyedStage<In, Op: KeyedOperator, Out> {
    /// Result of the stage before → events of this one (`map`, `filter`, `flat_map`).
    pub input: OutputFn<In, Op::Event>,
    /// Event time of an event.
    pub event_time: TimeFn<Op::Event>,
    /// The new key.
    pub key: KeyFn<Op::Event, Op::Key>,
    /// The keyed operator.
    pub operator: Arc<Op>,
    /// Allowed lateness, output mode and state TTL (the watermark comes from upstream).
    pub rules: TimeRules,
    /// Operator output → result.
    pub output: OutputFn<Op::Output, Out>,
}

impl<In, Op: KeyedOperator, Out> Clone for KeyedStage<In, Op, Out> {
    fn clone(&self) -> Self {
        KeyedStage {
            input: self.input.clone(),
            event_time: self.event_time.clone(),
            key: self.key.clone(),
            operator: self.operator.clone(),
            rules: self.rules,
            output: self.output.clone(),
        }
    }
}

/// A record crossing to a stage of `Op`: key, event, and the watermark it was emitted under.
type RecordOf<Op> = (
    <Op as KeyedOperator>::Key,
    <Op as KeyedOperator>::Event,
    Millis,
);

/// One upstream partition's records for one partition of the stage, in one epoch.
#[derive(Serialize, Deserialize)]
struct ExchangeBatch<K, E> {
    /// Key, event, and the upstream watermark it was emitted under, in emission order.
    records: Vec<(K, E, Millis)>,
    /// The upstream partition's watermark after the epoch.
    watermark: Millis,
}

impl<In, Op, Out> LaterStage<In, Out> for KeyedStage<In, Op, Out>
where
    In: Send + 'static,
    Op: KeyedOperator,
    Op::Event: DeserializeOwned,
    Out: Send + 'static,
{
    fn start(&self, _partition: u32, partitions: u32) -> Box<dyn StageRunner<In, Out>> {
        let core = PartitionCore::new(
            self.operator.clone(),
            self.key.clone(),
            self.event_time.clone(),
            self.rules,
        )
        .with_channels(partitions as usize);
        Box::new(KeyedRunner {
            stage: self.clone(),
            core: Box::new(core),
            partitions,
            routing: (0..partitions).map(|_| Vec::new()).collect(),
        })
    }

    fn describe(&self, number: usize, text: &mut String) {
        super::describe_keyed(
            text,
            number,
            std::any::type_name::<Op::Key>(),
            &self.operator.describe(),
            &self.rules,
        );
    }

    fn rules(&self) -> TimeRules {
        self.rules
    }

    fn with_rules(&self, rules: TimeRules) -> Box<dyn LaterStage<In, Out>> {
        Box::new(KeyedStage {
            rules,
            ..self.clone()
        })
    }

    fn metrics(&self) -> Vec<crate::operator::MetricDecl> {
        self.operator.metrics()
    }
}

/// A [`KeyedStage`] in one key partition.
struct KeyedRunner<In, Op: KeyedOperator, Out> {
    stage: KeyedStage<In, Op, Out>,
    core: Box<PartitionCore<Op>>,
    partitions: u32,
    /// The epoch's records routed so far, one vector per partition of the stage.
    routing: Vec<Vec<RecordOf<Op>>>,
}

type BatchOf<Op> = ExchangeBatch<<Op as KeyedOperator>::Key, <Op as KeyedOperator>::Event>;

impl<In, Op, Out> StageRunner<In, Out> for KeyedRunner<In, Op, Out>
where
    In: Send + 'static,
    Op: KeyedOperator,
    Op::Event: DeserializeOwned,
    Out: Send + 'static,
{
    fn route(&mut self, results: &mut dyn Iterator<Item = (In, Millis)>) {
        let (input, key, routing) = (&self.stage.input, &self.stage.key, &mut self.routing);
        for (result, under) in results {
            input(result, &mut |event| {
                let key = key(&event);
                let to = partition_of(&key, self.partitions) as usize;
                routing[to].push((key, event, under));
            });
        }
    }

    fn take_routed(&mut self, watermark: Millis) -> Routed {
        let records = self.routing.iter().map(Vec::len).sum();
        let batches = (self.routing.iter_mut())
            .map(|records| {
                let records = take_sized(records);
                Box::new(ExchangeBatch { records, watermark }) as Exchanged
            })
            .collect();
        Routed { batches, records }
    }

    fn encode(&self, batch: &Exchanged) -> Vec<u8> {
        let batch = batch
            .downcast_ref::<BatchOf<Op>>()
            .expect("an exchange batch of this stage");
        bincode::serialize(batch).expect("bincode encodes in-memory values")
    }

    fn decode(&self, bytes: &[u8]) -> std::result::Result<Exchanged, String> {
        bincode::deserialize::<BatchOf<Op>>(bytes)
            .map(|b| Box::new(b) as Exchanged)
            .map_err(|e| format!("an exchange batch: {e}"))
    }

    fn process(&mut self, from: usize, batch: Exchanged) {
        let batch = batch
            .downcast::<BatchOf<Op>>()
            .expect("an exchange batch of this stage");
        let ExchangeBatch { records, watermark } = *batch;
        self.core.process_channel(from, records, watermark);
    }

    fn advance(
        &mut self,
        watermark: Millis,
        processing_time: Millis,
        model: Option<&Arc<ModelHistory>>,
    ) {
        if let Some(model) = model {
            self.core.install_model(model.clone());
        }
        self.core.advance(watermark, processing_time);
    }

    fn take_results(&mut self, each: &mut EachResult<'_, Out>) {
        let output = &self.stage.output;
        for (key, o) in self.core.take_keyed_outputs() {
            output(o, &mut |out| each(&|k| key.write_record_key(k), out));
        }
    }

    fn take_late(&mut self, partition: u32, out: &mut Vec<u8>) -> Result<u64> {
        write_late_lines(partition, &self.core.take_late(), out)
    }

    fn prepare_checkpoint(&mut self, epoch: Epoch) -> PreparedCheckpoint {
        let meta = self.core.checkpoint_meta(epoch);
        PartitionStore::prepare_checkpoint(self.core.drain_changes(), &meta).0
    }

    fn prepare_logged(&mut self, epoch: Epoch, log: &mut SliceLog) -> Result<PreparedCheckpoint> {
        let meta = self.core.checkpoint_meta(epoch);
        PartitionStore::prepare_logged(self.core.drain_changes(), &meta, log)
    }

    fn restore(&mut self, store: &PartitionStore, log: Option<&SliceLog>) -> Result<Epoch> {
        // What the stage before routed since its checkpoint, its replay routes again.
        self.routing.iter_mut().for_each(Vec::clear);
        let meta = store.checkpoint()?;
        let entries = match log {
            Some(log) => store.logged_entries(log)?,
            None => store.entries()?,
        };
        self.core.restore(&meta, entries);
        Ok(meta.epoch)
    }

    fn key_count(&self) -> usize {
        self.core.key_count()
    }

    fn watermark(&self) -> Millis {
        self.core.watermark()
    }

    fn unended_upstream(&self) -> Vec<u32> {
        self.core.inputs_behind(crate::time::END_OF_TIME)
    }

    fn take_counters(&mut self) -> crate::operator::Counters {
        self.core.take_counters()
    }

    fn take_learned(&mut self) -> Vec<Learned> {
        self.core.take_learned()
    }
}
