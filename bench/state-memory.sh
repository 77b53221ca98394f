#!/usr/bin/env bash
# State larger than memory: PIPELINE from the generator in process (EVENTS events over KEYS
# keys, event time 1,000 events a second), to the exactly-once file sink with a state
# directory, once with all of its state in memory and once per limit with `--state-memory
# LIMIT`. Prints, per setting, the median events/s and peak resident memory (`--report`'s
# peak_memory: the process's maxrss) of RUNS runs, and checks that every run commits the same
# results as the first (put `none` first).
#
# The smallest limit shows the fixed overhead (what the job holds besides its state: sled, the
# partitions' bucket tables, the pipeline's buffers); the run without a limit, minus it, shows
# what the state takes in memory.
# Usage:
#   bench/state-memory.sh [PIPELINE] [EVENTS] [KEYS] [RUNS] [LIMITS]
set -euo pipefail
cd "$(dirname "$0")/.."
pipeline=${1:-fraud}
events=${2:-4000000}
keys=${3:-2000000}
runs=${4:-3}
limits=${5:-"none 1MiB 32MiB 128MiB"}
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "$pipeline: $events events over $keys keys, $runs runs each ($(date -u +%F))"
for limit in $limits; do
    rates=() mems=()
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        extra=()
        [ "$limit" != none ] && extra=(--state-memory "$limit")
        report=$(target/release/spate run "$pipeline" --source gen --events "$events" \
            --keys "$keys" --seed 7 --start 2026-01-01T00:00:00Z --sink "file:$work/out" \
            --state "$work/state" --metrics-addr off --report "${extra[@]}" 2>&1 |
            grep '^spate report')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
        mems+=("$(grep -o 'peak_memory=[0-9]*' <<<"$report" | cut -d= -f2)")
        results=$(cat "$work"/out/part-*.jsonl | sort | md5sum)
        if [ -z "${expected:-}" ]; then
            expected=$results
        elif [ "$results" != "$expected" ]; then
            echo "--state-memory $limit: the results differ from the run without a limit" >&2
            exit 1
        fi
    done
    printf '%-10s %10s events/s   peak %5s MB   (runs: %s; %s MB)\n' "$limit" \
        "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${mems[@]}" | median)" \
        "${rates[*]}" "${mems[*]}"
done
