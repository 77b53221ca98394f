//! In-memory keyed state of one partition: each key's typed state and timers, the keys changed
//! since the last checkpoint, and the time-ordered timer index.

use crate::operator::TimeDomain;
use crate::time::Millis;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::hash::Hash;

/// One key's state and its pending timers, stored together so a checkpoint writes one value per
/// changed key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Entry<S> {
    /// The operator's state for this key.
    pub state: S,
    /// Pending timers of this key.
    pub timers: Vec<(TimeDomain, Millis)>,
    #[serde(skip)]
    dirty: bool,
}

/// Pending timers of all keys of a partition, ordered by time then key (so firing order, and
/// with it output order, is deterministic).
#[derive(Debug)]
pub struct TimerIndex<K> {
    event: BTreeSet<(Millis, K)>,
    processing: BTreeSet<(Millis, K)>,
}

impl<K: Ord + Clone> TimerIndex<K> {
    fn set(&mut self, domain: TimeDomain) -> &mut BTreeSet<(Millis, K)> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Adds a timer; returns false when it already existed.
    pub fn insert(&mut self, domain: TimeDomain, time: Millis, key: K) -> bool {
        self.set(domain).insert((time, key))
    }

    /// Removes a timer.
    pub fn remove(&mut self, domain: TimeDomain, time: Millis, key: &K) {
        self.set(domain).remove(&(time, key.clone()));
    }

    /// Takes the earliest timer at or before `upto`.
    pub fn pop_due(&mut self, domain: TimeDomain, upto: Millis) -> Option<(Millis, K)> {
        let set = self.set(domain);
        if set.first().is_some_and(|(t, _)| *t <= upto) {
            set.pop_first()
        } else {
            None
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.event.len() + self.processing.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// All keys of one partition.
#[derive(Debug)]
pub struct KeyedState<K, S> {
    entries: FxHashMap<K, Entry<S>>,
    /// Keys changed since the last checkpoint (a key may appear more than once).
    dirty: Vec<K>,
    timers: TimerIndex<K>,
}

impl<K: Hash + Eq + Ord + Clone, S: Default> Default for KeyedState<K, S> {
    fn default() -> Self {
        KeyedState {
            entries: FxHashMap::default(),
            dirty: Vec::new(),
            timers: TimerIndex {
                event: BTreeSet::new(),
                processing: BTreeSet::new(),
            },
        }
    }
}

impl<K: Hash + Eq + Ord + Clone, S: Default> KeyedState<K, S> {
    fn mark(dirty: &mut Vec<K>, entry: &mut Entry<S>, key: &K) {
        if !entry.dirty {
            entry.dirty = true;
            dirty.push(key.clone());
        }
    }

    /// The entry of `key` (created when missing) and the timer index, marked changed.
    pub fn touch(&mut self, key: &K) -> (&mut Entry<S>, &mut TimerIndex<K>) {
        if !self.entries.contains_key(key) {
            self.entries.insert(key.clone(), Entry::default());
        }
        let entry = self.entries.get_mut(key).expect("inserted above");
        Self::mark(&mut self.dirty, entry, key);
        (entry, &mut self.timers)
    }

    /// The entry of `key` if it exists, marked changed, and the timer index.
    pub fn touch_existing(&mut self, key: &K) -> Option<(&mut Entry<S>, &mut TimerIndex<K>)> {
        let entry = self.entries.get_mut(key)?;
        Self::mark(&mut self.dirty, entry, key);
        Some((entry, &mut self.timers))
    }

    /// Drops `key`'s entry (the next checkpoint deletes it) unless it still has timers.
    pub fn remove_if_idle(&mut self, key: &K) {
        if self.entries.get(key).is_some_and(|e| e.timers.is_empty()) {
            self.entries.remove(key);
        }
    }

    /// Takes the earliest due timer of `domain`.
    pub fn pop_due(&mut self, domain: TimeDomain, upto: Millis) -> Option<(Millis, K)> {
        self.timers.pop_due(domain, upto)
    }

    /// Calls `write` with every key changed since the last checkpoint and its entry (`None` for
    /// a removed key), then forgets the changes.
    pub fn drain_changes(&mut self) -> Vec<(K, Option<&Entry<S>>)> {
        let mut keys = std::mem::take(&mut self.dirty);
        for key in &keys {
            if let Some(entry) = self.entries.get_mut(key) {
                entry.dirty = false;
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                let entry = self.entries.get(&k);
                (k, entry)
            })
            .collect()
    }

    /// Replaces everything with restored entries and rebuilds the timer index.
    pub fn restore(&mut self, entries: Vec<(K, Entry<S>)>) {
        *self = KeyedState::default();
        for (key, entry) in entries {
            for &(domain, time) in &entry.timers {
                self.timers.insert(domain, time, key.clone());
            }
            self.entries.insert(key, entry);
        }
    }

    /// Number of keys with state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key has state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Read access to one key's state (for tests and queries).
    pub fn get(&self, key: &K) -> Option<&S> {
        self.entries.get(key).map(|e| &e.state)
    }
}
