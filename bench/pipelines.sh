#!/usr/bin/env bash
# The engine benchmark quoted in the README: builds release binaries, writes 1,000,000
# transactions over 10,000 users, and runs tx-windows, fraud and sessions from that file to the
# exactly-once file sink with a state directory (checkpoints every second, and at every epoch),
# then tx-enriched (the same file joined with a table of the 10,000 users, 20% of whom change
# during the run: the cost of a second input and a temporal join), then tx-windows from the
# built-in generator (10,000,000 events, 10,000 users). Prints the median events/s (records of
# every input) and peak memory of RUNS runs each. Usage: bench/pipelines.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
spate=target/release/spate
target/release/spate-loadgen transactions --events 1000000 --users 10000 --seed 7 --to "file:$work/tx.jsonl"
target/release/spate-loadgen users --users 10000 --updates 0.2 --span 1000s --seed 7 --to "file:$work/users.jsonl"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench() { # label, spate run arguments...
    local label=$1; shift
    local rates=() mems=()
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        local report
        report=$("$spate" run "$@" --sink "file:$work/out" --state "$work/state" --metrics-addr off --report 2>&1 | grep '^spate report')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
        mems+=("$(grep -o 'peak_memory=[0-9]*' <<<"$report" | cut -d= -f2)")
    done
    printf '%-42s %12s events/s   peak %4s MB   (runs: %s)\n' "$label" \
        "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${mems[@]}" | median)" "${rates[*]}"
}

for p in tx-windows fraud sessions; do
    bench "$p file→file, checkpoint every 1s" "$p" --source "file:$work/tx.jsonl"
    bench "$p file→file, checkpoint every epoch" "$p" --source "file:$work/tx.jsonl" --checkpoint-interval 0
done
bench "tx-enriched file+file→file, checkpoint every 1s" tx-enriched \
    --source "transactions=file:$work/tx.jsonl" --source "users=file:$work/users.jsonl"
bench "tx-windows gen→file, 10M events" tx-windows --events 10000000 --keys 10000
