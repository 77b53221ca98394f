#!/usr/bin/env bash
# iot-anomaly next to the same model in River (Python's online ML library): EVENTS sensor
# readings over KEYS devices from `spate-loadgen sensors --truth` (0.1% planted anomalies),
# spate's pipeline file→file with a state directory (median events/s of RUNS runs), and
# bench/models/river_iot.py (the same features and decision, River learning one reading at a
# time; one run). Both are scored against the truth file by bench/models/score.py: recall of
# the anomalies a model can see (after each device's 50th reading) and precision of the alerts.
# River is installed into a venv under target/ on first use. Usage:
#   bench/models.sh [EVENTS] [KEYS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
keys=${2:-1000}
runs=${3:-3}
cargo build --release -q
venv=target/river-venv
if ! "$venv/bin/python" -c 'import river' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'river==0.26.1'
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/spate-loadgen sensors --events "$events" --keys "$keys" --seed 7 \
    --truth "$work/truth.jsonl" --to "file:$work/sensors.jsonl"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rates=()
for _ in $(seq "$runs"); do
    rm -rf "$work/out" "$work/state"
    report=$(target/release/spate run iot-anomaly --source "sensors=file:$work/sensors.jsonl" \
        --sink "file:$work/out" --state "$work/state" --metrics-addr off --report 2>&1 | grep '^spate report')
    rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
done
spate_rate=$(printf '%s\n' "${rates[@]}" | median)
river_rate=$("$venv/bin/python" bench/models/river_iot.py "$work/sensors.jsonl" "$work/river.jsonl")
read -r s_recall s_precision s_alerts < <(python3 bench/models/score.py "$work/sensors.jsonl" "$work/truth.jsonl" "$work/out")
read -r r_recall r_precision r_alerts < <(python3 bench/models/score.py "$work/sensors.jsonl" "$work/truth.jsonl" "$work/river.jsonl")
printf '%-22s %12s %8s %10s %8s\n' engine events/s recall precision alerts
printf '%-22s %12s %8s %10s %8s   (runs: %s)\n' "spate iot-anomaly" "$spate_rate" "$s_recall" "$s_precision" "$s_alerts" "${rates[*]}"
printf '%-22s %12s %8s %10s %8s\n' "River (same model)" "$river_rate" "$r_recall" "$r_precision" "$r_alerts"
awk -v s="$spate_rate" -v r="$river_rate" 'BEGIN { printf "spate / River: %.1fx\n", s / r }'
