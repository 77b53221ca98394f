#!/usr/bin/env bash
# The Nexmark queries spate runs, each file→file with a state directory over EVENTS events of
# `spate-loadgen nexmark` (median events/s of RUNS runs), as events per second per core (the
# machine's cores: the source thread, the workers and the supervisor share them), next to
# Flink's published Nexmark V1 figures per core. Usage:
#   bench/nexmark.sh [EVENTS] [RUNS] [QUERIES]   (QUERIES: default "q0 q1 q2 q3 q5 q7 q8 q11")
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-2000000}
runs=${2:-3}
queries=${3:-q0 q1 q2 q3 q5 q7 q8 q11}
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/spate-loadgen nexmark --events "$events" --to "file:$work/nexmark.jsonl"
cores=$(nproc)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A flink=([q0]=155000 [q1]=154000 [q2]=159000 [q3]=118000 [q4]=23000 [q5]=22000
    [q7]=12000 [q8]=146000 [q11]=40000)
printf '%-6s %14s %18s %14s %8s   %s\n' query events/s "events/s per core" "Flink per core" ratio runs
for q in $queries; do
    rates=()
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        report=$(target/release/spate run "nexmark-$q" --source "file:$work/nexmark.jsonl" \
            --sink "file:$work/out" --state "$work/state" --metrics-addr off --report 2>&1 |
            grep '^spate report:')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
    done
    rate=$(printf '%s\n' "${rates[@]}" | median)
    awk -v q="$q" -v r="$rate" -v c="$cores" -v f="${flink[$q]}" -v runs="${rates[*]}" \
        'BEGIN { printf "%-6s %14d %18d %14d %7.1fx   %s\n", q, r, r / c, f, r / c / f, runs }'
done
