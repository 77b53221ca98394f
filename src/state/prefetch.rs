//! Software prefetch: asking the CPU to bring memory into its cache without waiting for it.
//!
//! A partition whose keyed state is larger than the cache misses it on nearly every record:
//! the key's entry, then whatever heap buffer the entry points to (a window's panes, a
//! session list). Waiting for each miss in turn is most of the work. A partition asks for the
//! control bytes of the next few records' tables a group ahead ([`Bucket::prefetch_control`]),
//! then [`KeyedState::warm`] asks for their entries without waiting ([`Bucket::prefetch`]; for
//! a key not held yet, the slot its entry will be written to) and calls [`prefetch`] on what
//! their states point to, so that their misses overlap; by the time the records are processed,
//! their memory is cached.
//!
//! An operator whose state points to heap memory says what to prefetch of it in
//! [`KeyedOperator::prefetch`]:
//!
//! ```
//! use spate::state::prefetch;
//!
//! struct Readings {
//!     values: Vec<f64>,
//! }
//!
//! fn prefetch_readings(state: &Readings) {
//!     prefetch(state.values.as_slice()); // the buffer, not just the Vec's pointer
//! }
//! # prefetch_readings(&Readings { values: vec![1.0, 2.0] });
//! ```
//!
//! A prefetch is a hint: it never faults, changes nothing the program computes, and on a CPU
//! this module does not know it does nothing.
//!
//! [`KeyedState::warm`]: super::KeyedState::warm
//! [`Bucket::prefetch`]: super::Bucket::prefetch
//! [`Bucket::prefetch_control`]: super::Bucket::prefetch_control
//! [`KeyedOperator::prefetch`]: crate::operator::KeyedOperator::prefetch

/// The size of a cache line on the CPUs spate runs on.
const LINE: usize = 64;

/// At most this many lines of one value are prefetched (a larger value's head is what a
/// lookup reads first; more would crowd out the other keys' lines).
const MAX_LINES: usize = 8;

/// Asks the CPU to bring the memory of `value` (its first 8 cache lines, 512 bytes) into the
/// cache, without waiting for it.
#[inline]
pub fn prefetch<T: ?Sized>(value: &T) {
    prefetch_range(
        value as *const T as *const u8 as usize,
        std::mem::size_of_val(value),
    );
}

/// Prefetches the first 8 cache lines of the `len` bytes at `start` (any address, as
/// [`prefetch_address`]).
#[inline]
pub(super) fn prefetch_range(start: usize, len: usize) {
    let end = start.wrapping_add(len.min(MAX_LINES * LINE));
    let mut line = start & !(LINE - 1);
    while line < end {
        prefetch_address(line);
        line += LINE;
    }
}

/// Prefetches the cache line holding `address` into every cache level (any address: one that
/// is not mapped is a prefetch the CPU drops).
#[inline(always)]
pub(super) fn prefetch_address(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
