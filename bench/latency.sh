#!/usr/bin/env bash
# The latency benchmark quoted in the README: tx-windows fed in process by spate-loadgen bench
# at several rates, with the continuous trigger and the default 100 ms trigger, 75 s each (so
# at least one minute window closes inside every run), then a chart of p99 latency by rate.
# Usage: bench/latency.sh [OUT_DIR] [RATES...]   (default rates: 100000 250000 500000 800000)
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
