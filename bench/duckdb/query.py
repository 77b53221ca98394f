"""DuckDB's batch answer to a spate transaction pipeline over a JSON-lines file.

Usage: query.py PIPELINE INPUT OUTPUT   (PIPELINE: tx-windows, fraud, sessions, or
tx-windows-plain: see PLAIN)

Writes the pipeline's results as JSON lines to OUTPUT, with spate's semantics where they
shape the result: malformed lines (not JSON, a key that is not a string, a field missing) are
skipped, as spate dead-letters them; a record is late, and left out, when its event time is
more than the 10 s watermark delay behind the largest event time of the records before it in
the file; windows are [start, end) aligned to the epoch; sums are exact decimals.

spate keeps one watermark per key partition, this query one for the whole file. On input
whose disorder is well inside the delay and whose stragglers are far behind it (the
generator's `--max-delay 5s` and `--late-delay 60s`), both mark the same records late:
bench/duckdb/same.py checks that the two outputs are equal.
"""

import sys

import duckdb

DELAY_MS = 10_000

# The readable records in file order, each with the watermark before it.
RECORDS = f"""
WITH lines AS (
    SELECT row_number() OVER () AS ordinal, user_id, amount, event_ms
    FROM read_json($input, format = 'newline_delimited', ignore_errors = true,
                   columns = {{'user_id': 'JSON', 'amount': 'DECIMAL(18,2)', 'event_ms': 'BIGINT'}})
), readable AS (
    SELECT ordinal, user_id ->> '$' AS user_id, amount, event_ms AS t FROM lines
    WHERE json_type(user_id) = 'VARCHAR' AND amount IS NOT NULL AND event_ms IS NOT NULL
)
SELECT user_id, amount, t FROM (
    SELECT *, max(t) OVER (ORDER BY ordinal ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
              - {DELAY_MS} AS watermark
    FROM readable)
WHERE watermark IS NULL OR t >= watermark
"""

QUERIES = {
    # Count and sum per user per 1-minute tumbling window.
    "tx-windows": """
        SELECT user_id AS key, t // 60000 * 60000 AS window_start,
               t // 60000 * 60000 + 60000 AS window_end, count(*) AS count, sum(amount) AS sum
        FROM records GROUP BY ALL
    """,
    # 5-minute windows sliding every minute, kept when over 10 transactions or $50,000.
    "fraud": """
        SELECT key, window_start, window_end, count, sum,
               -- in cents, half away from zero, as spate rounds (the amounts are positive)
               CAST((CAST(sum * 100 AS BIGINT) * 2 + count) // (2 * count) AS DECIMAL(18, 0))
                   * 0.01 AS avg
        FROM (
            SELECT user_id AS key, (t // 60000 - k) * 60000 AS window_start,
                   (t // 60000 - k) * 60000 + 300000 AS window_end,
                   count(*) AS count, sum(amount) AS sum
            FROM records, range(5) AS shifts(k) GROUP BY ALL)
        WHERE count > 10 OR sum > 50000
    """,
    # Sessions per user: a new one after 30 minutes without a transaction.
    "sessions": """
        SELECT user_id AS key, min(t) AS window_start, max(t) + 1800000 AS window_end,
               count(*) AS count, sum(amount) AS sum
        FROM (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY t
                                       ROWS UNBOUNDED PRECEDING) AS session
              FROM (SELECT *, CASE WHEN t - lag(t) OVER (PARTITION BY user_id ORDER BY t)
                                        < 1800000 THEN 0 ELSE 1 END AS new
                    FROM records))
        GROUP BY user_id, session
    """,
}


# What a batch user would type first: tx-windows without lateness or checks of the lines
# (stragglers count, a key of the wrong type is read as its JSON text). Not spate's result.
PLAIN = """
    SELECT user_id AS key, event_ms // 60000 * 60000 AS window_start,
           event_ms // 60000 * 60000 + 60000 AS window_end, count(*) AS count, sum(amount) AS sum
    FROM read_json($input, format = 'newline_delimited', ignore_errors = true,
                   columns = {'user_id': 'VARCHAR', 'amount': 'DECIMAL(18,2)', 'event_ms': 'BIGINT'})
    WHERE user_id IS NOT NULL AND event_ms IS NOT NULL GROUP BY ALL
"""


def main():
    pipeline, source, target = sys.argv[1:4]
    con = duckdb.connect()
    query = PLAIN if pipeline == "tx-windows-plain" else f"WITH records AS ({RECORDS}) {QUERIES[pipeline]}"
    con.execute(f"COPY ({query}) TO $output (FORMAT json)", {"input": source, "output": target})


if __name__ == "__main__":
    main()
