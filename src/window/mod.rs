//! Event-time windows built on the [keyed operator API](crate::operator): tumbling and sliding
//! windows (pane-based: a record updates one slide-sized pane, panes combine when a window
//! fires) and session windows (a gap of inactivity closes a session), each aggregated with an
//! [`Aggregator`]. In append mode (the default) each window is emitted once, when the watermark
//! passes its end plus the allowed lateness; in update mode it is emitted when the watermark
//! passes its end and again, marked with an [`Emission`], for each record within the allowed
//! lateness that changes it.

mod aggregate;
mod distinct;
mod fire_at;
mod moments;
mod pane;
mod session;

pub use aggregate::{Aggregator, Avg, Count, Max, Min, Number, Sum};
pub use distinct::CountDistinct;
pub use moments::{Moments, MomentsAcc, Stats};
pub use pane::PaneWindowOperator;
pub use session::SessionWindowOperator;

use crate::operator::KeyedContext;
use crate::time::{duration_ms, Millis};
pub(crate) use fire_at::FireAt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tumbling or sliding (hopping) windows `[start, end)` aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    size: Millis,
    slide: Millis,
}

impl Windows {
    /// Back-to-back windows of `size`.
    pub fn tumbling(size: Duration) -> Self {
        Self::sliding(size, size)
    }

    /// Windows of `size` starting every `slide`. `size` must be a multiple of `slide`.
    ///
    /// # Panics
    /// When `slide` is zero or does not divide `size`: a pipeline definition error.
    pub fn sliding(size: Duration, slide: Duration) -> Self {
        let (size, slide) = (duration_ms(size), duration_ms(slide));
        assert!(
            slide > 0 && size >= slide && size % slide == 0,
            "window size {size} ms must be a positive multiple of the slide {slide} ms"
        );
        Windows { size, slide }
    }

    /// Window length in milliseconds.
    pub fn size(&self) -> Millis {
        self.size
    }

    /// Distance between window starts in milliseconds.
    pub fn slide(&self) -> Millis {
        self.slide
    }
}

/// Session windows: a key's session ends after `gap` without records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap: Millis,
}

impl SessionWindows {
    /// Sessions closed by `gap` of inactivity.
    ///
    /// # Panics
    /// When `gap` is zero.
    pub fn with_gap(gap: Duration) -> Self {
        let gap = duration_ms(gap);
        assert!(gap > 0, "session gap must be positive");
        SessionWindows { gap }
    }

    /// The gap in milliseconds.
    pub fn gap(&self) -> Millis {
        self.gap
    }
}

/// One window's result for one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, V> {
    /// The key.
    pub key: K,
    /// Window start (inclusive), epoch milliseconds.
    pub start: Millis,
    /// Window end (exclusive), epoch milliseconds.
    pub end: Millis,
    /// The aggregate.
    pub value: V,
    /// Which emission of the window this is, in update mode; `None` in append mode, where
    /// each window is emitted once.
    pub emission: Option<Emission>,
}

/// Which emission of a window a result is (update mode). Written into a result as
/// `"update":false,"emission":1` for the first, `"update":true,"emission":2` for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emission {
    /// True from the second emission on: the result replaces an earlier one.
    pub update: bool,
    /// 1 for the first emission of the window, then 2, 3, ...
    pub emission: u32,
}

impl Emission {
    /// The `n`-th emission (from 1).
    pub fn nth(n: u32) -> Self {
        Emission {
            update: n > 1,
            emission: n,
        }
    }
}

/// The first window end (a multiple of `slide`) strictly after `time`.
pub(crate) fn end_after(time: Millis, slide: Millis) -> Millis {
    time.div_euclid(slide)
        .saturating_add(1)
        .saturating_mul(slide)
}

/// Window state that keeps one pending timer per key: the end of the next window to fire.
pub(crate) trait NextFire {
    /// The pending timer's time, if any.
    fn next_fire(&mut self) -> &mut FireAt;
}

/// Registers a timer at `end` unless an earlier one is already pending. A later timer that
/// is pending stays registered and is ignored when it fires (`on_timer` checks `next_fire`),
/// so records never remove timers from the index.
pub(crate) fn schedule_fire<K: crate::Key, S: NextFire + Default, O>(
    ctx: &mut KeyedContext<'_, K, S, O>,
    end: Millis,
) {
    let next = ctx.state().next_fire();
    if next.get().is_none_or(|t| end < t) {
        next.set(end);
        ctx.register_event_timer(end);
    }
}
