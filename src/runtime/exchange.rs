//! A key partition's side of the exchange between a pipeline's first keyed stage and its later
//! one (the protocol is described in [`crate::stage`]): the batches it sends at each epoch end
//! (kept in its outbox, see [`super::outbox`]), and the batches it waits for.

use super::messages::SealEpoch;
use super::outbox::{batches_for, Outbox};
use crate::checkpoint::Epoch;
use crate::io::sink::{Lines, OutputStream};
use crate::stage::{Exchanged, Routed, StageRunner};
use crate::state::{PartitionStore, PreparedCheckpoint, SliceLog};
use crate::time::Millis;
use crate::{Error, Result};
use actix::{Message, Recipient};
use std::collections::BTreeMap;

/// The directory of the exchange outboxes, in the state directory.
const OUTBOX_DIR: &str = "outbox";

/// One output stream's JSON lines of an epoch.
pub(crate) type StreamLines = (OutputStream, Lines);

/// Upstream partition `from`'s exchange batch for `epoch` (for the receiver's later stage).
pub(crate) struct Exchange {
    /// The epoch the batch belongs to.
    pub(crate) epoch: Epoch,
    /// The sending partition's index.
    pub(crate) from: u32,
    /// The records, typed by the receiving stage.
    pub(crate) batch: Exchanged,
}

impl Message for Exchange {
    type Result = ();
}

/// The exchange links of every partition of the job, by index: sent to each partition once,
/// before its first epoch.
pub(crate) struct Peers(pub(crate) Vec<Recipient<Exchange>>);

impl Message for Peers {
    type Result = ();
}

/// An epoch the first stage has sealed, waiting for the later stage to finish it.
pub(crate) struct SealedEpoch {
    /// The seal, whose watermark, processing time and flags the later stage's end uses.
    pub(crate) seal: SealEpoch,
    /// The first stage's late records, as JSON lines.
    pub(crate) late_lines: Vec<u8>,
    /// How many late records the first stage had.
    pub(crate) late: u64,
    /// The first stage's dead letters, as JSON lines.
    pub(crate) dead_lines: Vec<u8>,
    /// The first stage's checkpoint, when the epoch checkpoints, and the time encoding it took.
    pub(crate) checkpoint: Option<(PreparedCheckpoint, std::time::Duration)>,
}

/// An epoch ready for the later stage: every upstream batch, in upstream order, and its seal.
pub(crate) struct ReadyEpoch {
    pub(crate) batches: Vec<Exchanged>,
    pub(crate) sealed: SealedEpoch,
}

/// A partition's later stage and its exchange bookkeeping.
pub(crate) struct Chain<In, Out> {
    /// The later stage's state and processing in this partition.
    pub(crate) runner: Box<dyn StageRunner<In, Out>>,
    /// The later stage's view of this partition's tree.
    pub(crate) store: PartitionStore,
    /// Every partition's tree (by index).
    trees: Vec<PartitionStore>,
    /// The batches this partition sent, until every partition's checkpoint passed them
    /// (opened with the first batch sent).
    outbox: Option<Outbox>,
    /// Every partition's exchange link (by index), once known.
    peers: Vec<Recipient<Exchange>>,
    /// This partition's index.
    index: u32,
    /// The epoch the later stage finishes next.
    pub(crate) next: Epoch,
    /// Batches received for epochs from `next` on, one slot per upstream partition.
    received: BTreeMap<Epoch, Vec<Option<Exchanged>>>,
    /// Epochs the first stage sealed that the later stage has not finished.
    sealed: BTreeMap<Epoch, SealedEpoch>,
    /// Whether the later stage keeps its buckets in a bucket log instead of sled (see
    /// [`Chain::new`]).
    logged: bool,
    /// That log, opened by each restore.
    log: Option<SliceLog>,
}

impl<In, Out> Chain<In, Out> {
    /// The chain of partition `index` of those whose trees are `trees`. With `logged`, the
    /// later stage's checkpoints append its changed buckets to a bucket log
    /// ([`SliceLog`], in [`PartitionStore::stage_log_dir`]) and store only the log's index
    /// in sled: a later stage's state changes whole (every bucket of a stage keyed by
    /// payment changes every epoch), and sled rewrote each value several times over. The
    /// changelog sends the buckets themselves, so a job with one keeps them in sled.
    pub(crate) fn new(
        runner: Box<dyn StageRunner<In, Out>>,
        index: u32,
        trees: Vec<PartitionStore>,
        logged: bool,
    ) -> Self {
        Chain {
            logged,
            log: None,
            runner,
            store: trees[index as usize].stage(1),
            trees,
            outbox: None,
            peers: Vec::new(),
            index,
            next: 1,
            received: BTreeMap::new(),
            sealed: BTreeMap::new(),
        }
    }

    /// Learns the other partitions' links.
    pub(crate) fn set_peers(&mut self, peers: Vec<Recipient<Exchange>>) {
        self.peers = peers;
    }

    /// Routes results of the first stage, each with the watermark it was emitted under, into
    /// the epoch's batches (runs pipeline code: may panic).
    pub(crate) fn route(&mut self, results: &mut dyn Iterator<Item = (In, Millis)>) {
        self.runner.route(results);
    }

    /// Takes the epoch's batches, one per partition, each carrying `watermark`, the
    /// partition's after the epoch.
    pub(crate) fn take_routed(&mut self, watermark: Millis) -> Routed {
        self.runner.take_routed(watermark)
    }

    /// Sends the routed `batches` of `sealed`'s epoch to the later stage's partitions: to the
    /// outbox (but its own: its replay regenerates them) and then as a message.
    pub(crate) fn send(&mut self, batches: Vec<Exchanged>, sealed: SealedEpoch) -> Result<()> {
        let epoch = sealed.seal.epoch;
        for (to, batch) in batches.into_iter().enumerate() {
            if to == self.index as usize {
                self.receive(epoch, self.index, batch);
                continue;
            }
            let bytes = self.runner.encode(&batch);
            self.outbox()?.append(epoch, to as u32, &bytes)?;
            let peer = self.peers.get(to).ok_or_else(|| Error::PartGone {
                part: format!("partition {to}"),
                detail: "not linked for the exchange".into(),
            })?;
            peer.do_send(Exchange {
                epoch,
                from: self.index,
                batch,
            });
        }
        self.sealed.insert(epoch, sealed);
        Ok(())
    }

    /// The outbox, opened at its first use.
    fn outbox(&mut self) -> Result<&mut Outbox> {
        if self.outbox.is_none() {
            let store = self.store.store();
            let dir = store.files_dir().join(OUTBOX_DIR);
            self.outbox = Some(Outbox::open(&dir, self.index, store.is_durable())?);
        }
        Ok(self.outbox.as_mut().expect("opened above"))
    }

    /// Before this partition writes a checkpoint: makes the batches it sent and the later
    /// stage's bucket log durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if let Some(log) = &self.log {
            log.sync()?;
        }
        match self.outbox.as_mut() {
            Some(outbox) => outbox.sync(),
            None => Ok(()),
        }
    }

    /// After this partition wrote its checkpoint of `epoch`: deletes a bucket log file the
    /// checkpoint no longer names, and forgets the batches of epochs up to `checkpointed`,
    /// which every partition's written checkpoint has passed.
    pub(crate) fn written(&mut self, epoch: Epoch, checkpointed: Epoch) -> Result<()> {
        if let Some(log) = self.log.as_mut() {
            log.written(epoch)?;
        }
        match self.outbox.as_mut() {
            Some(outbox) => outbox.trim(checkpointed),
            None => Ok(()),
        }
    }

    /// Encodes the later stage's state changed since the last checkpoint, as of `epoch`;
    /// with a bucket log, appends it there and the checkpoint carries the log's index.
    pub(crate) fn prepare_checkpoint(&mut self, epoch: Epoch) -> Result<PreparedCheckpoint> {
        match self.log.as_mut() {
            Some(log) => self.runner.prepare_logged(epoch, log),
            None => Ok(self.runner.prepare_checkpoint(epoch)),
        }
    }

    /// Replaces the later stage's state with its checkpoint; returns the checkpoint's epoch.
    /// With a bucket log, the buckets are read from it; a directory written before the log
    /// has them in sled, and they move to the log first (read once, checked against their
    /// digest; its next checkpoint removes them from sled).
    pub(crate) fn restore_stage(&mut self) -> Result<Epoch> {
        let index = self.store.log_index()?;
        self.log = None;
        if !self.logged {
            if index.is_some() {
                return Err(Error::config(
                    "--state",
                    self.store.path().display(),
                    "its later stage's state is in a bucket log, written by a run without a Kafka changelog: run the job that way, or start it in a new --state directory",
                ));
            }
            return self.runner.restore(&self.store, None);
        }
        let in_log = index.is_some();
        let dir = self.store.stage_log_dir();
        let mut log = SliceLog::open(&dir, self.store.partition_id(), index, 0)?
            .durable(self.store.store().is_durable());
        if !in_log {
            for (bucket, sealed) in self.store.sealed_entries()? {
                log.append(bucket as usize, &sealed)?;
            }
        }
        let epoch = self.runner.restore(&self.store, Some(&log))?;
        self.log = Some(log);
        Ok(epoch)
    }

    /// Keeps `from`'s batch of `epoch`, unless the stage finished the epoch or has it already
    /// (a replay sends the same batch again).
    pub(crate) fn receive(&mut self, epoch: Epoch, from: u32, batch: Exchanged) {
        if epoch < self.next {
            return;
        }
        let n = self.trees.len();
        let slots = self
            .received
            .entry(epoch)
            .or_insert_with(|| (0..n).map(|_| None).collect());
        let slot = &mut slots[from as usize];
        if slot.is_none() {
            *slot = Some(batch);
        }
    }

    /// Whether the later stage finished `epoch`.
    pub(crate) fn finished(&self, epoch: Epoch) -> bool {
        epoch < self.next
    }

    /// The next epoch, when it is sealed and every upstream batch of it arrived.
    pub(crate) fn take_ready(&mut self) -> Option<ReadyEpoch> {
        let epoch = self.next;
        let complete = self
            .received
            .get(&epoch)
            .is_some_and(|slots| slots.iter().all(Option::is_some));
        if !complete || !self.sealed.contains_key(&epoch) {
            return None;
        }
        let slots = self.received.remove(&epoch).expect("checked above");
        let sealed = self.sealed.remove(&epoch).expect("checked above");
        self.next += 1;
        Some(ReadyEpoch {
            batches: slots.into_iter().flatten().collect(),
            sealed,
        })
    }

    /// After a restore to `epoch`: forgets what was pending and takes the batches of later
    /// epochs the other partitions sent it (from their outboxes, and from the inbox a state
    /// directory written before them may hold).
    pub(crate) fn restore(&mut self, epoch: Epoch) -> Result<()> {
        self.next = epoch + 1;
        self.received.clear();
        self.sealed.clear();
        let own = self.trees[self.index as usize].clone();
        let dir = own.store().files_dir().join(OUTBOX_DIR);
        let mut stored = own.inbox_after(epoch)?;
        stored.extend(batches_for(&dir, self.index, epoch)?);
        for (epoch, from, bytes) in stored {
            let batch = self
                .runner
                .decode(&bytes)
                .map_err(|detail| Error::DamagedState {
                    path: own.path().to_path_buf(),
                    place: format!("partition {} inbox, epoch {epoch}", self.index),
                    detail,
                })?;
            self.receive(epoch, from, batch);
        }
        Ok(())
    }
}
