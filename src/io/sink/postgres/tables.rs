//! The SQL of the PostgreSQL sink's tables: a results table typed from the first result (with
//! the upsert key as primary key in update mode), the `jsonb` tables of late records and dead
//! letters, and how an epoch's rows go in: `COPY … (FORMAT csv)` when appended, one JSON array
//! upserted with `INSERT … ON CONFLICT` in update mode.

use crate::io::sink::upsert::fields_of;
use crate::Result;
use serde_json::{Map, Value};
use std::fmt::Write;

/// `name` or `schema.name` quoted as an SQL identifier (names are checked to be plain).
pub(super) fn quoted(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(".")
}

/// The PostgreSQL type of a column holding `value`.
fn column_type(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "bigint",
        Value::Number(_) => "double precision",
        Value::String(_) | Value::Null => "text",
        Value::Array(_) | Value::Object(_) => "jsonb",
    }
}

/// The `CREATE TABLE` of a results table for rows like `first`, with `key` (when not empty)
/// as its primary key.
pub(super) fn create_results(table: &str, first: &Map<String, Value>, key: &[String]) -> String {
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {} (", quoted(table));
    for (i, (name, value)) in first.iter().enumerate() {
        let comma = if i > 0 { ", " } else { "" };
        let _ = write!(sql, "{comma}{} {}", quoted(name), column_type(value));
    }
    if !key.is_empty() {
        let _ = write!(sql, ", PRIMARY KEY ({})", columns(key));
    }
    sql.push(')');
    sql
}

/// The `CREATE TABLE` of a late-record or dead-letter table.
pub(super) fn create_lines(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (line jsonb NOT NULL)",
        quoted(table)
    )
}

/// `a, b` of quoted names.
fn columns(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quoted(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a stream's rows go into its table.
#[derive(Debug, Clone)]
pub(super) enum Writing {
    /// `COPY` of CSV rows: results' `fields` in order, or (`None`) each line whole as the
    /// `line` column of a late or dead-letter table.
    Copy {
        /// The `COPY … FROM STDIN` statement.
        sql: String,
        /// The results' fields, one CSV column each.
        fields: Option<Vec<String>>,
    },
    /// An `INSERT … ON CONFLICT (key) DO UPDATE` of `$1`, a JSON array of results.
    Upsert(String),
}

/// How results with `fields` go into `table`: copied, or upserted on `key` (the last value of
/// each key wins).
pub(super) fn write_results(table: &str, fields: &[String], key: &[String]) -> Writing {
    let table = quoted(table);
    let list = columns(fields);
    if key.is_empty() {
        return Writing::Copy {
            sql: format!("COPY {table} ({list}) FROM STDIN (FORMAT csv)"),
            fields: Some(fields.to_vec()),
        };
    }
    let mut sql = format!(
        "INSERT INTO {table} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{table}, $1::text::json)"
    );
    let values: Vec<String> = (fields.iter())
        .filter(|f| !key.contains(f))
        .map(|f| format!("{0} = EXCLUDED.{0}", quoted(f)))
        .collect();
    let _ = write!(sql, " ON CONFLICT ({}) DO ", columns(key));
    sql.push_str(&match values.is_empty() {
        true => "NOTHING".to_string(),
        false => format!("UPDATE SET {}", values.join(", ")),
    });
    Writing::Upsert(sql)
}

/// How lines go into a late or dead-letter table: copied whole into `line`.
pub(super) fn write_lines(table: &str) -> Writing {
    Writing::Copy {
        sql: format!("COPY {} (line) FROM STDIN (FORMAT csv)", quoted(table)),
        fields: None,
    }
}

/// `lines` (JSON objects, one per line) as CSV rows of `fields`, as `COPY … (FORMAT csv)`
/// reads them: a missing or `null` field is NULL (an empty unquoted cell), strings, objects
/// and arrays are quoted text, numbers and booleans their JSON text.
pub(super) fn csv_of_results(lines: &[u8], fields: &[String]) -> Result<Vec<u8>> {
    let mut csv = Vec::with_capacity(lines.len() + lines.len() / 8);
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let row = fields_of(line)?;
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                csv.push(b',');
            }
            match row.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => quote_csv(&mut csv, text.as_bytes()),
                Some(value @ (Value::Number(_) | Value::Bool(_))) => {
                    csv.extend_from_slice(value.to_string().as_bytes())
                }
                Some(value) => quote_csv(&mut csv, value.to_string().as_bytes()),
            }
        }
        csv.push(b'\n');
    }
    Ok(csv)
}

/// `lines` as CSV rows of one quoted column each.
pub(super) fn csv_of_lines(lines: &[u8]) -> Vec<u8> {
    let mut csv = Vec::with_capacity(lines.len() + lines.len() / 8);
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        quote_csv(&mut csv, line);
        csv.push(b'\n');
    }
    csv
}

/// Appends `text` as a quoted CSV cell (each `"` doubled).
fn quote_csv(csv: &mut Vec<u8>, text: &[u8]) {
    csv.push(b'"');
    for &b in text {
        if b == b'"' {
            csv.push(b'"');
        }
        csv.push(b);
    }
    csv.push(b'"');
}

/// `lines` (JSON objects, one per line) as one JSON array; with a `key`, only each key's last
/// line (an upsert statement may touch a row once).
pub(super) fn json_array(lines: &[u8], key: &[String]) -> Result<String> {
    let kept = crate::io::sink::upsert::last_per_key(lines, key)?;
    let mut array = String::with_capacity(kept.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
    array.push('[');
    for (i, line) in kept.iter().enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push_str(&String::from_utf8_lossy(line));
    }
    array.push(']');
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_take_the_type_of_the_first_rows_values() {
        let first = serde_json::json!({"user_id": "u1", "count": 3, "avg": 2.5, "late": false, "tags": [1]});
        let sql = create_results("tx", first.as_object().unwrap(), &["user_id".into()]);
        for column in [
            "\"user_id\" text",
            "\"count\" bigint",
            "\"avg\" double precision",
            "\"late\" boolean",
            "\"tags\" jsonb",
            "PRIMARY KEY (\"user_id\")",
        ] {
            assert!(sql.contains(column), "{sql}");
        }
    }

    #[test]
    fn an_upsert_updates_every_field_but_the_key() {
        let fields = ["k".to_string(), "w".into(), "n".into()];
        let Writing::Upsert(sql) = write_results("t", &fields, &fields[..2]) else {
            panic!("a key upserts")
        };
        assert!(
            sql.ends_with("ON CONFLICT (\"k\", \"w\") DO UPDATE SET \"n\" = EXCLUDED.\"n\""),
            "{sql}"
        );
        let Writing::Upsert(sql) = write_results("t", &fields, &fields) else {
            panic!("a key upserts")
        };
        assert!(sql.ends_with("DO NOTHING"));
        let Writing::Copy { sql, .. } = write_results("t", &fields, &[]) else {
            panic!("no key copies")
        };
        assert_eq!(
            sql,
            "COPY \"t\" (\"k\", \"w\", \"n\") FROM STDIN (FORMAT csv)"
        );
    }

    #[test]
    fn rows_become_csv_as_copy_reads_it() {
        let lines = b"{\"k\":\"a \\\"b\\\", c\",\"n\":2.5,\"ok\":true,\"tags\":[1],\"gone\":null}\n{\"k\":\"x\"}\n";
        let fields: Vec<String> = ["k", "n", "ok", "tags", "gone"].map(String::from).into();
        let csv = String::from_utf8(csv_of_results(lines, &fields).unwrap()).unwrap();
        assert_eq!(csv, "\"a \"\"b\"\", c\",2.5,true,\"[1]\",\n\"x\",,,,\n");
        let csv = String::from_utf8(csv_of_lines(b"{\"a\":\"q\"}\n")).unwrap();
        assert_eq!(csv, "\"{\"\"a\"\":\"\"q\"\"}\"\n");
    }

    #[test]
    fn lines_become_one_array() {
        let lines = b"{\"k\":1,\"n\":1}\n{\"k\":2,\"n\":1}\n{\"k\":1,\"n\":2}\n";
        assert_eq!(
            json_array(lines, &["k".into()]).unwrap(),
            "[{\"k\":2,\"n\":1},{\"k\":1,\"n\":2}]"
        );
        assert_eq!(json_array(lines, &[]).unwrap().matches("\"k\"").count(), 3);
    }
}
