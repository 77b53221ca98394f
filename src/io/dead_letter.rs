//! Records that could not be decoded: kept with their place in the input and the reason, and
//! written to the dead-letter output instead of being dropped.

use serde::Serialize;

/// One malformed input record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The pipeline input it was read for (pipelines with several inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The source as given on the command line, e.g. `file:tx.jsonl`.
    pub source: String,
    /// The file the record came from (for directory and file sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The topic partition the record came from (Kafka sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// Byte offset of the record's first byte in that file, the Kafka offset, the event index,
    /// or the byte offset in stdin.
    pub offset: u64,
    /// Why it was rejected.
    pub error: String,
    /// The record's raw text (invalid UTF-8 replaced).
    pub raw: String,
}

impl DeadLetter {
    /// Appends this record as one JSON line to `out`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_writer(&mut *out, self).expect("dead letter serializes");
        out.push(b'\n');
    }
}
