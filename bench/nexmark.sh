#!/usr/bin/env bash
# The Nexmark queries spate runs, each over EVENTS events (median events/s of RUNS runs), as
# events per second per core (the machine's cores: the source thread, the workers and the
# supervisor share them), next to Flink's published Nexmark V1 figures per core: once from a
# file of `spate-loadgen nexmark` events (file→file with a state directory), once from the
# generator in process (`--source gen`, the same events, as Flink's figures are), each with its
# ratio to Flink. Queries without a published Flink figure print `-` for it. q13 reads a side
# table of 10,000 rows as its second input, and its Nexmark input from the file only (a join's
# inputs have no generator). SINK `blackhole` makes each result and drops it, as Flink's Nexmark
# benchmark does with its `blackhole` connector (default `file`: the exactly-once file sink).
# Usage:
#   bench/nexmark.sh [EVENTS] [RUNS] [QUERIES] [SINK]   (QUERIES: default every query spate runs)
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-2000000}
runs=${2:-3}
queries=${3:-q0 q1 q2 q3 q4 q5 q7 q8 q9 q11 q12 q13 q14 q15 q16 q17 q18 q19 q20 q21 q22}
sink=${4:-file}
case $sink in
file | blackhole) ;;
*) echo "SINK must be file or blackhole, not $sink" >&2 && exit 2 ;;
esac
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/spate-loadgen nexmark --events "$events" --to "file:$work/nexmark.jsonl"
seq 0 9999 | awk '{ printf "{\"key\":%d,\"value\":\"%d\"}\n", $1, $1 }' >"$work/side.jsonl"
cores=$(nproc)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A flink=([q0]=155000 [q1]=154000 [q2]=159000 [q3]=118000 [q4]=23000 [q5]=22000
    [q7]=12000 [q8]=146000 [q11]=40000)
printf '%-6s %12s %12s %14s %8s %8s   %s\n' query "file/core" "gen/core" "Flink/core" "file" "gen" "runs (file; gen)"
# The median events/s of $runs runs of query $1 reading input $2 (`file` or `gen`).
measure() {
    local q=$1 input=$2 rates=() sources to=blackhole
    [ "$sink" = file ] && to="file:$work/out"
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        case $input in
        file) sources=(--source "file:$work/nexmark.jsonl") ;;
        gen) sources=(--source gen --events "$events") ;;
        esac
        if [ "$q" = q13 ]; then
            sources=(--source "nexmark=file:$work/nexmark.jsonl" --source "side=file:$work/side.jsonl")
        fi
        report=$(target/release/spate run "nexmark-$q" "${sources[@]}" \
            --sink "$to" --state "$work/state" --metrics-addr off --report 2>&1 |
            grep '^spate report:')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
    done
    echo "$(printf '%s\n' "${rates[@]}" | median) ${rates[*]}"
}
for q in $queries; do
    read -r file file_runs <<<"$(measure "$q" file)"
    gen=- gen_runs=-
    if [ "$q" != q13 ]; then
        read -r gen gen_runs <<<"$(measure "$q" gen)"
    fi
    awk -v q="$q" -v r="$file" -v g="$gen" -v c="$cores" -v f="${flink[$q]:-}" -v runs="$file_runs; $gen_runs" \
        'function per_core(x) { return x == "-" ? "-" : sprintf("%d", x / c) }
         function ratio(x) { return (x == "-" || f == "") ? "-" : sprintf("%.1fx", x / c / f) }
         BEGIN { printf "%-6s %12s %12s %14s %8s %8s   %s\n", q, per_core(r), per_core(g),
                 f == "" ? "-" : f, ratio(r), ratio(g), runs }'
done
