#!/usr/bin/env bash
# The exactly-once sinks side by side: tx-windows, fraud and sessions over EVENTS transactions of
# 10,000 users (the DuckDB benchmark's input: 10% up to 5 s out of order, 0.1% stragglers, 0.1%
# malformed lines), each run start to exit with `--state`, RUNS times in turns, into
#
# - `--sink file:DIR` (JSON-lines epoch files, renamed into place at commit);
# - `--sink parquet:DIR` (the same with results as Parquet files);
# - `--sink postgres://…?table=T`: a private PostgreSQL server on a free loopback port, its
#   data in a temporary directory, with its default durability (fsync, synchronous commit);
#   each run writes a fresh table under a fresh app id;
# - `--sink delta:DIR` (a Delta Lake table: one commit per epoch, Parquet files).
#
# Prints the median wall time and input records per second of each. PostgreSQL's binaries come
# from scripts/lib/postgres.sh (Debian's, or PostgreSQL 17 unpacked into target/tools). Usage:
#   bench/sinks.sh [EVENTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
runs=${2:-3}
. scripts/lib/postgres.sh
ensure_pg_template
cargo build --release -q
work=$(mktemp -d)
[ "$(id -u)" -eq 0 ] && chown "${SPATE_PG_USER:-nobody}" "$work"
input=$work/tx.jsonl
target/release/spate-loadgen transactions --events "$events" --keys 10000 --seed 7 \
    --late 0.001 --malformed 0.001 --to "file:$input"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp -a "$SPATE_PG_TEMPLATE" "$work/pg"
[ "$(id -u)" -eq 0 ] && chown -R "${SPATE_PG_USER:-nobody}" "$work/pg"
as_pg_user "$SPATE_PG_BIN/postgres" -D "$work/pg" -k "$work/pg" -h 127.0.0.1 -p "$port" \
    >"$work/postgres.log" 2>&1 &
trap 'kill -QUIT "$(head -1 "$work/pg/postmaster.pid" 2>/dev/null)" 2>/dev/null; sleep 1; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# Runs a command once; prints its wall time in seconds, or its errors and stops the script.
timed() {
    local TIMEFORMAT='%R' wall
    if ! wall=$( { time "$@" >/dev/null 2>"$work/err"; } 2>&1); then
        cat "$work/err" >&2
        exit 1
    fi
    echo "$wall"
}

sink_run() { # pipeline sink (runs in a subshell: a fresh table and app id from the clock)
    local run
    run=$(date +%s%N)
    rm -rf "$work"/out* "$work/state"
    local sink=$2
    case $sink in
        postgres) sink="postgres://tansu@127.0.0.1:$port/postgres?sslmode=disable&table=t$run" ;;
        *) sink="$sink:$work/out" ;;
    esac
    target/release/spate run "$1" --source "file:$input" --sink "$sink" \
        --state "$work/state" --app-id "bench-$run" --metrics-addr off --quiet
}

printf '%-12s %8s %11s %10s %11s %8s %11s %8s %11s %8s %8s %8s\n' pipeline "file s" \
    "file rec/s" "parquet s" "pq rec/s" "pg s" "pg rec/s" "delta s" "dl rec/s" "pq/file" \
    "pg/file" "dl/file"
for pipeline in tx-windows fraud sessions; do
    file_times=() pq_times=() pg_times=() dl_times=()
    for _ in $(seq "$runs"); do
        file_times+=("$(timed sink_run "$pipeline" file)")
        pq_times+=("$(timed sink_run "$pipeline" parquet)")
        pg_times+=("$(timed sink_run "$pipeline" postgres)")
        dl_times+=("$(timed sink_run "$pipeline" delta)")
    done
    file=$(printf '%s\n' "${file_times[@]}" | median)
    pq=$(printf '%s\n' "${pq_times[@]}" | median)
    pg=$(printf '%s\n' "${pg_times[@]}" | median)
    dl=$(printf '%s\n' "${dl_times[@]}" | median)
    awk -v p="$pipeline" -v f="$file" -v q="$pq" -v g="$pg" -v d="$dl" -v n="$events" \
        'BEGIN { printf "%-12s %8.3f %11.0f %10.3f %11.0f %8.3f %11.0f %8.3f %11.0f %8.2f %8.2f %8.2f\n", p, f, n / f, q, n / q, g, n / g, d, n / d, q / f, g / f, d / f }'
done
