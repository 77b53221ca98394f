//! `users`: the user table `tx-enriched` joins transactions with. One row per user at the
//! start, then a fraction of the users changing segment or country once, each at a random later
//! time, written in time order. Rows are keyed by user like `transactions`, so a Kafka topic of
//! them is co-partitioned with a transactions topic of as many partitions.

use crate::output::Output;
use crate::rng::EventRng;
use anyhow::Result;
use spate::key::Key;
use spate::time::Millis;
use spate_actors::events::ids::{self, IdFormat};
use spate_actors::events::user::{COUNTRIES, SEGMENTS};
use spate_actors::events::UserRow;

/// What table to write.
#[derive(Debug, Clone)]
pub struct UsersOptions {
    /// Users, numbered as `transactions --keys` numbers them.
    pub users: u64,
    /// Fraction of the users whose row changes once later.
    pub updates: f64,
    /// Time of the first rows.
    pub start_ms: Millis,
    /// Updates fall in `(start, start + span]`.
    pub span_ms: Millis,
    /// Seed: the same seed gives the same table.
    pub seed: u64,
    /// How ids are written.
    pub ids: IdFormat,
}

/// The table's rows in the order written: every user's first row, then the updates by time.
pub fn users_table(o: &UsersOptions) -> Vec<UserRow> {
    let mut rng = EventRng::new(o.seed, 0);
    let mut rows: Vec<UserRow> = (0..o.users)
        .map(|n| UserRow {
            user_id: o.ids.id(ids::USER, n),
            segment: pick(&mut rng, &SEGMENTS),
            country: pick(&mut rng, &COUNTRIES),
            updated_ms: o.start_ms,
        })
        .collect();
    // Which users change: the first `count` of a partial shuffle.
    let count = ((o.users as f64 * o.updates.clamp(0.0, 1.0)).round() as u64).min(o.users);
    let mut order: Vec<u64> = (0..o.users).collect();
    let mut updates = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let j = i + rng.below(o.users - i as u64) as usize;
        order.swap(i, j);
        let mut row = rows[order[i] as usize].clone();
        row.updated_ms = o.start_ms + 1 + rng.below(o.span_ms.max(1) as u64) as Millis;
        let other = |current: &str, values: &[&str], rng: &mut EventRng| {
            let at = values.iter().position(|v| *v == current).unwrap_or(0) as u64;
            values[((at + 1 + rng.below(values.len() as u64 - 1)) % values.len() as u64) as usize]
                .to_string()
        };
        if rng.chance(0.5) {
            row.segment = other(&row.segment, &SEGMENTS, &mut rng);
        } else {
            row.country = other(&row.country, &COUNTRIES, &mut rng);
        }
        updates.push(row);
    }
    updates.sort_by_key(|r| r.updated_ms);
    rows.extend(updates);
    rows
}

/// One of `values`, at random.
fn pick(rng: &mut EventRng, values: &[&str]) -> String {
    values[rng.below(values.len() as u64) as usize].to_string()
}

/// Writes the table to `out`, each row keyed by its user; returns the rows written.
pub fn write_users(o: &UsersOptions, out: &mut Output) -> Result<u64> {
    let rows = users_table(o);
    let (mut line, mut key) = (Vec::with_capacity(128), Vec::with_capacity(16));
    for row in &rows {
        line.clear();
        key.clear();
        serde_json::to_writer(&mut line, row)?;
        line.push(b'\n');
        row.user_id.write_record_key(&mut key);
        out.write(Some(&key), &line)?;
    }
    out.flush()?;
    Ok(rows.len() as u64)
}
