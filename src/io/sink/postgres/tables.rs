//! The SQL of the PostgreSQL sink's tables: a results table typed from the first result (with
//! the upsert key as primary key in update mode), the `jsonb` tables of late records and dead
//! letters, and the statements that insert an epoch's rows as one JSON array.

use crate::{Error, Result};
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

/// The fields of a result line (a JSON object).
pub(super) fn fields_of(line: &[u8]) -> Result<Map<String, Value>> {
    serde_json::from_slice(line)
        .map_err(|e| Error::Runtime(format!("a result is not a JSON object ({e})")))
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

/// The statement inserting `$1` (a JSON array of results with `fields`) into `table`:
/// appended, or upserted on `key` (the last value of each key wins).
pub(super) fn insert_results(table: &str, fields: &[String], key: &[String]) -> String {
    let table = quoted(table);
    let list = columns(fields);
    let mut sql = format!(
        "INSERT INTO {table} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{table}, $1::text::json)"
    );
    if !key.is_empty() {
        let values: Vec<String> = (fields.iter())
            .filter(|f| !key.contains(f))
            .map(|f| format!("{0} = EXCLUDED.{0}", quoted(f)))
            .collect();
        let _ = write!(sql, " ON CONFLICT ({}) DO ", columns(key));
        sql.push_str(&match values.is_empty() {
            true => "NOTHING".to_string(),
            false => format!("UPDATE SET {}", values.join(", ")),
        });
    }
    sql
}

/// The statement inserting `$1` (a JSON array of lines) into a late or dead-letter table.
pub(super) fn insert_lines(table: &str) -> String {
    format!(
        "INSERT INTO {} (line) SELECT value FROM jsonb_array_elements($1::text::jsonb)",
        quoted(table)
    )
}

/// `lines` (JSON objects, one per line) as one JSON array; with a `key`, only each key's last
/// line (an upsert statement may touch a row once), in the order of those last lines.
pub(super) fn json_array(lines: &[u8], key: &[String]) -> Result<String> {
    let lines: Vec<&[u8]> = (lines.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
        .collect();
    let kept: Vec<&[u8]> = match key.is_empty() {
        true => lines,
        false => {
            let mut last = std::collections::HashMap::new();
            for (i, line) in lines.iter().enumerate() {
                let fields = fields_of(line)?;
                let id: Vec<String> = (key.iter())
                    .map(|k| fields.get(k).map_or("null".into(), Value::to_string))
                    .collect();
                last.insert(id, i);
            }
            let mut at: Vec<usize> = last.into_values().collect();
            at.sort_unstable();
            at.into_iter().map(|i| lines[i]).collect()
        }
    };
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
        let sql = insert_results("t", &fields, &fields[..2]);
        assert!(
            sql.ends_with("ON CONFLICT (\"k\", \"w\") DO UPDATE SET \"n\" = EXCLUDED.\"n\""),
            "{sql}"
        );
        assert!(!insert_results("t", &fields, &[]).contains("CONFLICT"));
        assert!(insert_results("t", &fields, &fields).ends_with("DO NOTHING"));
    }

    #[test]
    fn with_a_key_only_each_keys_last_line_is_sent() {
        let lines = b"{\"k\":1,\"n\":1}\n{\"k\":2,\"n\":1}\n{\"k\":1,\"n\":2}\n";
        assert_eq!(
            json_array(lines, &["k".into()]).unwrap(),
            "[{\"k\":2,\"n\":1},{\"k\":1,\"n\":2}]"
        );
        assert_eq!(json_array(lines, &[]).unwrap().matches("\"k\"").count(), 3);
    }
}
