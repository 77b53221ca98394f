"""Checks that spate's committed results equal DuckDB's, row for row (in any order).

Usage: same.py SPATE_SINK_DIR DUCKDB_JSONL

Numbers compare as exact decimals, so 1115.5 and 1115.50 are the same sum. Prints how many
rows matched; exits 1 naming the first differences when the outputs differ.
"""

import collections
import decimal
import json
import pathlib
import sys


def canonical(value):
    """A field's value as text: numbers without trailing zeros (1115.50 → 1115.5)."""
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
        return format(decimal.Decimal(value).normalize(), "f")
    return json.dumps(value)


def rows(lines):
    """Each JSON line as a canonical tuple of its fields, counted."""
    counted = collections.Counter()
    for line in lines:
        record = json.loads(line, parse_float=decimal.Decimal)
        counted[tuple(sorted((k, canonical(v)) for k, v in record.items()))] += 1
    return counted


def main():
    sink, duck = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    spate_lines = [l for f in sorted(sink.glob("part-*.jsonl")) for l in f.read_text().splitlines()]
    spate = rows(spate_lines)
    duckdb = rows(duck.read_text().splitlines())
    if spate == duckdb:
        print(f"{sum(spate.values())} rows, equal")
        return
    only_spate, only_duck = spate - duckdb, duckdb - spate
    print(f"outputs differ: {sum(only_spate.values())} rows only in spate's, "
          f"{sum(only_duck.values())} only in DuckDB's", file=sys.stderr)
    for name, extra in (("spate", only_spate), ("DuckDB", only_duck)):
        for row in list(extra)[:5]:
            print(f"  only in {name}: {dict(row)}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
