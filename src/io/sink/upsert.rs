//! Which rows of an epoch an upserting sink writes: one per key, the last. A table upserted on a
//! key (PostgreSQL's `ON CONFLICT`, Delta's `MERGE`) may be given each key once per statement,
//! and the last row of a key within an epoch is the one that must win.

use crate::{Error, Result};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The fields of a result line, which a table sink needs to be a JSON object.
pub(super) fn fields_of(line: &[u8]) -> Result<Map<String, Value>> {
    serde_json::from_slice(line).map_err(|source| Error::NotAnObject { source })
}

/// The non-empty lines of `lines` (JSON objects, one per line); with a `key` (field names),
/// only each key's last line, in the order of those last lines.
pub(super) fn last_per_key<'a>(lines: &'a [u8], key: &[String]) -> Result<Vec<&'a [u8]>> {
    let lines: Vec<&[u8]> = (lines.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
        .collect();
    if key.is_empty() {
        return Ok(lines);
    }
    let mut last = HashMap::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let fields = fields_of(line)?;
        let id: Vec<String> = (key.iter())
            .map(|k| fields.get(k).map_or("null".into(), Value::to_string))
            .collect();
        last.insert(id, i);
    }
    let mut at: Vec<usize> = last.into_values().collect();
    at.sort_unstable();
    Ok(at.into_iter().map(|i| lines[i]).collect())
}

/// True for a plain SQL-safe name: ASCII letters, digits and `_`, not starting with a digit.
pub(super) fn is_plain_name(text: &str) -> bool {
    (text.chars().next()).is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The key fields of `key=F1,F2` in a sink's URL, or `None` when one is not a plain name.
pub(super) fn key_fields(list: &str) -> Option<Vec<String>> {
    let fields: Vec<String> = list.split(',').map(String::from).collect();
    fields.iter().all(|f| is_plain_name(f)).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_key_only_each_keys_last_line_is_kept_in_order() {
        let lines = b"{\"k\":1,\"n\":1}\n{\"k\":2,\"n\":1}\n{\"k\":1,\"n\":2}\n";
        let kept = last_per_key(lines, &["k".into()]).unwrap();
        assert_eq!(kept, [&b"{\"k\":2,\"n\":1}"[..], b"{\"k\":1,\"n\":2}"]);
        assert_eq!(last_per_key(lines, &[]).unwrap().len(), 3);
        for line in [&b"not json\n"[..], b"[1,2]\n"] {
            let error = last_per_key(line, &["k".into()]).unwrap_err();
            assert!(matches!(error, Error::NotAnObject { .. }), "{error}");
            assert!(error
                .to_string()
                .contains("give the pipeline results that are objects"));
        }
    }

    #[test]
    fn key_fields_are_plain_names() {
        assert_eq!(key_fields("user_id,w2").unwrap(), ["user_id", "w2"]);
        for bad in ["", "a,", "x y", "2a", "a;b"] {
            assert!(key_fields(bad).is_none(), "{bad}");
        }
    }
}
