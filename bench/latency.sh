#!/usr/bin/env bash
# The latency benchmark quoted in the README: tx-windows fed in process by spate-loadgen bench
# at several rates, with the continuous trigger and the default 100 ms trigger, 75 s each (so
# at least one minute window closes inside every run), then a chart of p99 latency by rate.
# Then, for the target of p99 under 10 ms with durability, DURABLE runs at 100,000 events/s with
# the continuous trigger and a state directory (every epoch's record fsynced before its output),
# each followed by one without, and both medians.
# Usage: bench/latency.sh [OUT_DIR] [RATES...]   (default rates: 100000 250000 500000 800000;
# DURABLE=3 by default, DURABLE=0 skips them)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/bench-latency}
shift || true
rates=("${@:-100000 250000 500000 800000}")
read -r -a rates <<<"${rates[*]}"
cargo build --release -q
mkdir -p "$out"
for trigger in continuous 100ms; do
    for rate in "${rates[@]}"; do
        echo "== tx-windows at $rate/s, trigger $trigger"
        target/release/spate-loadgen bench tx-windows --rate "$rate" --duration 75s \
            --trigger "$trigger" --json "$out/$trigger-$rate.json" --svg "$out/$trigger-$rate.svg" | head -6
    done
done
target/release/spate-loadgen chart --out "$out/latency-by-rate.svg" "$out"/continuous-*.json "$out"/100ms-*.json
echo "chart: $out/latency-by-rate.svg"

# The p99 (ms) of one continuous run at 100,000 events/s, with `--state DIR` when given one.
p99_at_100k() {
    target/release/spate-loadgen bench tx-windows --rate 100000 --duration 75s \
        --trigger continuous "$@" | grep -o 'p99 [0-9.]*' | head -1 | cut -d' ' -f2
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
durable=() volatile=()
for _ in $(seq "${DURABLE:-3}"); do
    state=$(mktemp -d)
    durable+=("$(p99_at_100k --state "$state")")
    rm -rf "$state"
    volatile+=("$(p99_at_100k)")
done
if [ ${#durable[@]} -gt 0 ]; then
    echo "p99 at 100000/s, continuous, --state DIR: ${durable[*]} ms (median $(printf '%s\n' "${durable[@]}" | median))"
    echo "p99 at 100000/s, continuous, no state directory: ${volatile[*]} ms (median $(printf '%s\n' "${volatile[@]}" | median))"
fi
