//! spate: an actor-based stateful stream processor.
//!
//! A job reads an unbounded (or bounded) stream from a [source](io::source), routes every record
//! by key to a key-partition actor that runs the pipeline's [keyed operator](operator) over
//! per-key state kept in memory and checkpointed to sled, and writes results through an
//! exactly-once [sink](io::sink). A job supervisor cuts the input into epochs, drives the
//! watermark and timers, records every epoch's decisions before its output becomes visible, and
//! restarts failed partitions from their last snapshot.
//!
//! Pipelines are plain Rust: build one with [`Pipeline`], register it in a [`Registry`], and hand
//! the registry to [`cli::main`].
//!
//! ```no_run
//! use spate::prelude::*;
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize, serde::Serialize, Clone)]
//! struct Click { user: u64, ts: i64 }
//!
//! #[derive(serde::Serialize)]
//! struct PerMinute { user: u64, start: i64, clicks: u64 }
//!
//! let pipeline = Pipeline::<Click>::new("clicks-per-minute", "clicks per user per minute")
//!     .event_time(|c| c.ts)
//!     .watermark_delay(Duration::from_secs(5))
//!     .key_by(|c| c.user)
//!     .window(Windows::tumbling(Duration::from_secs(60)))
//!     .aggregate(Count)
//!     .map(|w| Some(PerMinute { user: w.key, start: w.start, clicks: w.value }));
//! let mut registry = Registry::new();
//! registry.register(pipeline);
//! ```

#![deny(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod error;
pub mod io;
pub mod join;
pub mod key;
pub mod learning;
pub mod metrics;
pub mod operator;
pub mod pipeline;
pub(crate) mod retry;
pub mod runtime;
pub mod stage;
pub mod state;
pub mod time;
pub mod window;

pub use cli::{Registry, Runnable};
pub use error::{Error, Result};
pub use key::Key;
pub use pipeline::Pipeline;

/// The names a pipeline module usually needs, in one import.
pub mod prelude {
    pub use crate::cli::{Registry, Runnable};
    pub use crate::io::source::EventGenerator;
    pub use crate::key::{Id, Key};
    pub use crate::operator::{KeyedContext, KeyedOperator, TimeDomain, Timer};
    pub use crate::pipeline::Pipeline;
    pub use crate::time::Millis;
    pub use crate::window::{
        Aggregator, Avg, Count, CountDistinct, Max, Min, Moments, SessionWindows, Sum,
        WindowResult, Windows,
    };
}
