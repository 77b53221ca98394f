//! What a key partition does at each step of the epoch protocol (numbered in the runtime's
//! module doc), in one place. The partition actor implements [`EpochLifecycle`]; its actix
//! message handlers only unpack a message, call the hook, and turn a [`Panicked`] outcome into
//! a restart (actix restarts the actor and [`on_restore`](EpochLifecycle::on_restore) loads the
//! last checkpoint).
//!
//! ```text
//! Batch ──────▶ on_batch          step 1: run the operator on the epoch's records, in order
//! InputEnded ─▶ on_input_ended    step 2: Ready / Done / Behind
//! SealEpoch ──▶ on_seal           step 4: fire what the epoch end reaches, stage, prepare
//!                                 (chained: send the results to the later stage instead)
//! Exchange ───▶ on_exchange       step 4, chained: an upstream batch; once all are in, the
//!                                 later stage finishes the epoch, stages, prepares
//! Committed ──▶ on_commit         step 5: write the prepared checkpoints
//! (restart) ──▶ on_restore        load the last checkpoint; the source replays the rest
//! ```

use super::exchange::Exchange;
use super::messages::{Batch, Committed, InputEnded, Progress, SealEpoch};
use crate::checkpoint::Epoch;
use crate::Result;

/// Operator code panicked during a hook: the partition must restart from its checkpoint.
pub(crate) struct Panicked(pub(crate) Box<dyn std::any::Any + Send>);

/// A key partition's part in the epoch protocol.
pub(crate) trait EpochLifecycle {
    /// The key of the records it receives.
    type Key;
    /// The records it receives.
    type Event;

    /// Step 1: records of the current epoch, processed in order. Records of another epoch, or
    /// after a gap (a restart lost earlier ones), are ignored: the source's replay brings them
    /// again in order; records processed before are skipped.
    fn on_batch(&mut self, batch: Batch<Self::Key, Self::Event>) -> Result<(), Panicked>;

    /// Step 2: the source sent all of the epoch's records; answers whether all arrived.
    fn on_input_ended(&self, msg: &InputEnded) -> Progress;

    /// Step 4: seals the epoch: moves the watermark and processing time, fires what they
    /// reach, stages the outputs and reports them, and prepares a checkpoint when asked. An
    /// epoch sealed before is reported as skipped.
    fn on_seal(&mut self, msg: SealEpoch) -> Result<(), Panicked>;

    /// Step 4 of a chained pipeline's later stage: an upstream partition's batch of an epoch.
    /// Once every upstream batch of the next unfinished epoch is in and its seal came, the
    /// later stage processes them in upstream order, then stages and reports the epoch.
    fn on_exchange(&mut self, msg: Exchange) -> Result<(), Panicked>;

    /// Step 5: every epoch up to `msg.epoch` is committed: writes their prepared checkpoints
    /// and returns the partition's durable checkpoint epoch.
    fn on_commit(&mut self, msg: Committed) -> Epoch;

    /// After a restart (or at start): loads the last checkpoint; the partition then expects
    /// the epoch after it.
    fn on_restore(&mut self) -> Result<()>;
}
