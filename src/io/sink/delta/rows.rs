//! An epoch's lines as Arrow record batches for a Delta table: results as typed columns
//! (the schema inferred from the rows when the table is new, the table's own otherwise), late
//! records and dead letters as one `line` string column.

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::io::Cursor;
use std::sync::Arc;

/// Why lines could not become rows of a table.
pub(super) type Refusal = String;

/// The schema of result `lines` (JSON objects, one per line), as Spark infers one: integers
/// `Int64`, other numbers `Float64`, strings `Utf8`, booleans, objects structs; a field that is
/// `null` in every line is a string column (Delta has no column type for nothing).
pub(super) fn infer_schema(lines: &[u8]) -> Result<SchemaRef, Refusal> {
    let mut cursor = Cursor::new(lines);
    let (schema, _) = arrow_json::reader::infer_json_schema_from_seekable(&mut cursor, None)
        .map_err(|e| format!("the results are not JSON objects of one shape ({e})"))?;
    let fields: Vec<Field> = (schema.fields().iter())
        .map(|f| match f.data_type() {
            DataType::Null => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// `lines` decoded into batches of `schema` (the table's): numbers and booleans in a string
/// column become their text, a field the table has no column for is refused.
pub(super) fn decode(lines: &[&[u8]], schema: SchemaRef) -> Result<Vec<RecordBatch>, Refusal> {
    let mut joined = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        joined.extend_from_slice(line);
        joined.push(b'\n');
    }
    let reader = arrow_json::ReaderBuilder::new(schema)
        .with_coerce_primitive(true)
        .with_strict_mode(true)
        .with_batch_size(64 * 1024)
        .build(Cursor::new(joined))
        .map_err(|e| e.to_string())?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a result does not fit the table's columns ({e})"))
}

/// The schema of a late-record or dead-letter table: one string column, `line`.
pub(super) fn lines_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("line", DataType::Utf8, false)]))
}

/// `lines` (any text, one per line) as one batch of [`lines_schema`].
pub(super) fn line_batch(lines: &[u8]) -> RecordBatch {
    let text: StringArray = (lines.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
        .map(|l| Some(String::from_utf8_lossy(l)))
        .collect();
    RecordBatch::try_new(lines_schema(), vec![Arc::new(text) as ArrayRef])
        .expect("one string column, as the schema says")
}

/// Whether rows of `output` (inferred from an epoch's results) can go into a table of
/// `table`: the same field names, each of the same type or one the table's widens (an
/// integer into a float or string column, anything into a string column).
pub(super) fn fits(table: &Schema, output: &Schema) -> bool {
    let names = |s: &Schema| {
        let mut names: Vec<String> = s.fields().iter().map(|f| f.name().clone()).collect();
        names.sort();
        names
    };
    names(table) == names(output)
        && output.fields().iter().all(|field| {
            let column = table.field_with_name(field.name()).expect("same names");
            widens(column.data_type(), field.data_type())
        })
}

/// Whether a column of type `column` takes values inferred as `value`.
fn widens(column: &DataType, value: &DataType) -> bool {
    use DataType::*;
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    column == value
        || (text(column) && text(value))
        || (text(column) && matches!(value, Int64 | Float64 | Boolean))
        || (matches!(column, Float64) && matches!(value, Int64))
        || matches!((column, value), (Struct(_), Struct(_)) | (List(_), List(_)))
}

/// A schema as `name: type, …`, for messages.
pub(super) fn describe(schema: &Schema) -> String {
    (schema.fields().iter())
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &[u8] = b"{\"key\":\"u1\",\"count\":3,\"avg\":2.5,\"note\":null}\n{\"key\":\"u2\",\"count\":1,\"avg\":100.0,\"note\":null}\n";

    #[test]
    fn results_become_typed_columns() {
        let schema = infer_schema(LINES).unwrap();
        assert_eq!(
            describe(&schema),
            "avg: Float64, count: Int64, key: Utf8, note: Utf8"
        );
        let lines: Vec<&[u8]> = LINES
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let batches = decode(&lines, schema).unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
    }

    #[test]
    fn a_table_of_another_shape_does_not_fit() {
        let output = infer_schema(LINES).unwrap();
        assert!(fits(&output, &output));
        let field = |name: &str, t: DataType| Field::new(name, t, true);
        let wider = Schema::new(vec![
            field("avg", DataType::Float64),
            field("count", DataType::Float64),
            field("key", DataType::Utf8View),
            field("note", DataType::Utf8),
        ]);
        assert!(fits(&wider, &output));
        let narrower = Schema::new(vec![
            field("avg", DataType::Int64),
            field("count", DataType::Int64),
            field("key", DataType::Utf8),
            field("note", DataType::Utf8),
        ]);
        assert!(!fits(&narrower, &output));
        let fewer = Schema::new(vec![field("key", DataType::Utf8)]);
        assert!(!fits(&fewer, &output));
    }

    #[test]
    fn a_field_the_table_lacks_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Utf8, true)]));
        let refused = decode(&[b"{\"key\":\"u1\",\"count\":3}"], schema).unwrap_err();
        assert!(refused.contains("count"), "{refused}");
    }

    #[test]
    fn dead_letters_are_kept_as_text() {
        let batch = line_batch(b"not json\n{\"a\":1}\n");
        assert_eq!(batch.num_rows(), 2);
    }
}
