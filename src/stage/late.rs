//! Late records as the late output writes them: JSON lines that hold nothing depending on
//! how the run was cut into epochs (epoch number, exact watermark), so two runs over the same
//! input write the same late records.

use crate::time::Millis;
use crate::{Error, Result};
use serde::Serialize;

/// A late record as written to the late output.
#[derive(Serialize)]
struct LateRecord<'a, E> {
    partition: u32,
    event_time: Millis,
    record: &'a E,
}

/// Appends `late` (event time, record) of key partition `partition` to `out` as JSON lines;
/// returns how many.
pub fn write_late_lines<E: Serialize>(
    partition: u32,
    late: &[(Millis, E)],
    out: &mut Vec<u8>,
) -> Result<u64> {
    for (event_time, record) in late {
        let line = LateRecord {
            partition,
            event_time: *event_time,
            record,
        };
        serde_json::to_writer(&mut *out, &line).map_err(Error::to_json("a late record"))?;
        out.push(b'\n');
    }
    Ok(late.len() as u64)
}
