//! Results as Parquet for `--sink parquet:DIR`: one writer's JSON lines of one epoch become one
//! Parquet file (Snappy-compressed), its columns typed from the lines themselves (integers as
//! `Int64`, other numbers as `Float64`, strings as `Utf8`, booleans, objects as structs), as
//! Spark infers a JSON schema. The file sink stages and commits the file as it does a JSON-lines
//! one, so the output stays exactly once.

use crate::{Error, Result};
use arrow_json::reader::{infer_json_schema_from_seekable, ReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::io::Cursor;
use std::sync::Arc;

/// `lines` (JSON objects, one per line) as the bytes of one Parquet file.
pub(super) fn encode(lines: &[u8]) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| Error::Sink {
        sink: "the file sink".into(),
        action: "write results as Parquet".into(),
        detail: e.to_string(),
    };
    let mut cursor = Cursor::new(lines);
    let (schema, _) = infer_json_schema_from_seekable(&mut cursor, None).map_err(|e| failed(&e))?;
    let schema = Arc::new(schema);
    let reader = (ReaderBuilder::new(schema.clone()).build(cursor)).map_err(|e| failed(&e))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema, Some(properties)).map_err(|e| failed(&e))?;
    for batch in reader {
        writer
            .write(&batch.map_err(|e| failed(&e))?)
            .map_err(|e| failed(&e))?;
    }
    writer.into_inner().map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn lines_become_typed_columns_and_read_back_the_same() {
        let lines = b"{\"key\":\"u1\",\"count\":3,\"avg\":2.5}\n{\"key\":\"u2\",\"count\":1,\"avg\":100.0}\n";
        let file = hyper::body::Bytes::from(encode(lines).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let schema = reader.schema().clone();
        let types: Vec<String> = (schema.fields().iter())
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect();
        assert_eq!(types, ["avg:Float64", "count:Int64", "key:Utf8"]);
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 2);
    }
}
