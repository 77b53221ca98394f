#!/usr/bin/env bash
# spate next to DuckDB, a vectorized batch engine, on the same JSON-lines file: tx-windows,
# fraud and sessions over EVENTS transactions of 10,000 users (string ids, 10% of records up to
# 5 s out of order, 0.1% stragglers 60–120 s late, 0.1% malformed lines). Each side is timed
# as a whole process, start to exit, RUNS times in turns, and the median is printed:
#
# - spate: `spate run PIPELINE --source file:… --sink file:… --state …` (exactly-once file
#   sink, state directory, checkpoints);
# - DuckDB: bench/duckdb/query.py, a Python process that runs the pipeline's query with the
#   same result (late records and malformed lines left out) and writes it as JSON lines.
#
# bench/duckdb/same.py checks that both outputs are equal before anything is timed. The last
# line times DuckDB's plain query (group by user and minute, no lateness, no checks of the
# lines), what a batch user would type first. `cpu` is (user + system) / wall time: how many
# cores worked. DuckDB is installed into a venv under target/ on first use. Usage:
#   bench/duckdb.sh [EVENTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
runs=${2:-5}
cargo build --release -q
venv=target/duckdb-venv
source bench/venv.sh
python_venv "$venv" duckdb 'duckdb==2.0.1'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input=$work/tx.jsonl
target/release/spate-loadgen transactions --events "$events" --keys 10000 --seed 7 \
    --late 0.001 --malformed 0.001 --to "file:$input"

# The median line of "wall cpu" lines, by wall time.
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# Runs a command once; prints "wall cpu" (seconds, and busy cores on average).
timed() {
    local TIMEFORMAT='%R %U %S' times
    times=$( { time "$@" >/dev/null 2>&1; } 2>&1 | tail -1)
    awk '{ printf "%.3f %.2f\n", $1, ($2 + $3) / $1 }' <<<"$times"
}

spate_run() { # pipeline
    rm -rf "$work/out" "$work/state"
    target/release/spate run "$1" --source "file:$input" --sink "file:$work/out" \
        --state "$work/state" --metrics-addr off --quiet
}

duckdb_run() { # pipeline
    "$venv/bin/python" bench/duckdb/query.py "$1" "$input" "$work/duckdb.jsonl"
}

printf '%-12s %10s %6s %10s %6s %14s\n' pipeline "spate s" cpu "DuckDB s" cpu "spate/DuckDB"
for pipeline in tx-windows fraud sessions; do
    spate_run "$pipeline"
    duckdb_run "$pipeline"
    python3 bench/duckdb/same.py "$work/out" "$work/duckdb.jsonl" >&2
    spate_times=() duckdb_times=()
    for _ in $(seq "$runs"); do
        spate_times+=("$(timed spate_run "$pipeline")")
        duckdb_times+=("$(timed duckdb_run "$pipeline")")
    done
    echo "$pipeline runs: spate ${spate_times[*]// /@} DuckDB ${duckdb_times[*]// /@}" >&2
    s=$(printf '%s\n' "${spate_times[@]}" | median)
    d=$(printf '%s\n' "${duckdb_times[@]}" | median)
    awk -v p="$pipeline" -v s="$s" -v d="$d" 'BEGIN {
        split(s, a, " "); split(d, b, " ")
        printf "%-12s %10.3f %6.2f %10.3f %6.2f %14.2f\n", p, a[1], a[2], b[1], b[2], a[1] / b[1] }'
done
plain=()
for _ in $(seq "$runs"); do
    plain+=("$(timed "$venv/bin/python" bench/duckdb/query.py tx-windows-plain "$input" "$work/plain.jsonl")")
done
read -r wall cpu < <(printf '%s\n' "${plain[@]}" | median)
echo "DuckDB plain group by (tx-windows without lateness or line checks): $wall s, cpu $cpu"
