#!/usr/bin/env bash
# How throughput and memory grow with the work: tx-windows, fraud and sessions on EVENTS events
# over KEYS users, for each EVENTS:KEYS size given (default 1M over 10k, 10M over 1M, 100M over
# 10M), from the generator in process and from a JSON-lines file `spate-loadgen transactions`
# writes with the same counts and seed (alike, not the same events: the two generators differ
# in details), each to the exactly-once file sink with a state directory. Event time is dense
# (the generators' fastest, a million events a second of event time, from
# 2026-01-01T00:00:00Z: the in-process generator would otherwise start at the wall clock's now,
# and its windows would cross a minute's end or not depending on when the run began), so every
# user's window or session is open at once and the state holds every key until the input ends.
# Prints the median events/s and peak resident memory of RUNS runs, memory per key (peak ÷
# keys), and events/s as a share of the first size's, run minutes before it (each pipeline's
# sizes run back to back; the files of all sizes are written first, 145 bytes an event).
# Usage:
#   bench/scale.sh [RUNS] [EVENTS:KEYS ...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
sizes=("${@:-1000000:10000 10000000:1000000 100000000:10000000}")
read -r -a sizes <<<"${sizes[*]}"
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A first

# Runs one pipeline RUNS times; prints "events/s peak_MB" (medians).
measure() { # pipeline, source arguments...
    local pipeline=$1 rates=() mems=() report
    shift
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        report=$(target/release/spate run "$pipeline" "$@" --sink "file:$work/out" \
            --state "$work/state" --metrics-addr off --report --quiet 2>&1 | grep '^spate report')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
        mems+=("$(grep -o 'peak_memory=[0-9]*' <<<"$report" | cut -d= -f2)")
    done
    echo "$pipeline $* runs: ${rates[*]} (peak MB ${mems[*]})" >&2
    echo "$(printf '%s\n' "${rates[@]}" | median) $(printf '%s\n' "${mems[@]}" | median)"
}

printf '%-11s %-5s %12s %10s %12s %10s %12s %16s\n' pipeline from events keys events/s "peak MB" "bytes/key" "of first size"
# Every size's file first, then each pipeline's sizes back to back: this shared machine drifts by
# a third within minutes, and a ratio of runs a quarter of an hour apart measures the drift too.
for size in "${sizes[@]}"; do
    if ! log=$(target/release/spate-loadgen transactions --events "${size%%:*}" \
        --keys "${size##*:}" --event-rate 1000000000 --seed 7 --to "file:$work/tx-$size.jsonl" 2>&1); then
        echo "bench/scale.sh: writing the input of $size failed (145 bytes an event, in $work;" \
            "set TMPDIR to a disk with room): $log" >&2
        exit 1
    fi
done
for from in gen file; do
    for pipeline in tx-windows fraud sessions; do
        for size in "${sizes[@]}"; do
            events=${size%%:*} keys=${size##*:}
            if [ "$from" = gen ]; then
                source=(--source gen --events "$events" --keys "$keys" --rate 1000000000 --seed 7
                    --start 2026-01-01T00:00:00Z)
            else
                source=(--source "file:$work/tx-$size.jsonl")
            fi
            read -r rate mem < <(measure "$pipeline" "${source[@]}")
            first[$pipeline-$from]=${first[$pipeline-$from]:-$rate}
            awk -v p="$pipeline" -v f="$from" -v e="$events" -v k="$keys" -v r="$rate" -v m="$mem" \
                -v base="${first[$pipeline-$from]}" 'BEGIN {
                printf "%-11s %-5s %12d %10d %12d %10d %12.0f %15.2fx\n", p, f, e, k, r, m, m * 1000000 / k, r / base }'
        done
    done
done
