#!/usr/bin/env bash
# spate's model pipelines next to the same models in River (Python's online ML library), each
# spate run file→file with a state directory (median events/s of RUNS runs), River once:
#
# - iot-anomaly: EVENTS sensor readings over KEYS devices from `spate-loadgen sensors --truth`
#   (0.1% planted anomalies) against bench/models/river_iot.py (the same features and decision,
#   River learning one reading at a time), both scored by bench/models/score.py: recall of the
#   anomalies a model can see (after each device's 50th reading) and precision of the alerts.
# - fraud-score: EVENTS payments of KEYS×10 users, 25 a second of event time (about 11 hours
#   for a million), 1% starting a fraud burst (`spate-loadgen transactions --fraud 0.01`), and
#   their outcomes (`spate-loadgen labels`), against bench/models/river_fraud.py (the same
#   features, scaler and FTRL settings, River learning one outcome at a time); events/s count
#   payments and outcomes; both scored by bench/models/score_fraud.py: AUC and log-loss of
#   the payments after the first two hours.
#
# River is installed into a venv under target/ on first use. Usage:
#   bench/models.sh [EVENTS] [KEYS] [RUNS] [iot|fraud|both]
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:-1000000}
keys=${2:-1000}
runs=${3:-3}
which=${4:-both}
cargo build --release -q
venv=target/river-venv
source bench/venv.sh
python_venv "$venv" river 'river==0.26.1'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Runs `spate run PIPELINE ARGS...` RUNS times (output in $work/out); prints the median
# events/s, and the runs' figures on stderr.
spate_runs() {
    local rates=() report
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        report=$(target/release/spate run "$@" --sink "file:$work/out" --state "$work/state" \
            --metrics-addr off --report 2>&1 | grep '^spate report:')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
    done
    echo "spate $1 runs: ${rates[*]}" >&2
    printf '%s\n' "${rates[@]}" | median
}

iot() {
    target/release/spate-loadgen sensors --events "$events" --keys "$keys" --seed 7 \
        --truth "$work/truth.jsonl" --to "file:$work/sensors.jsonl"
    local spate_rate river_rate
    spate_rate=$(spate_runs iot-anomaly --source "sensors=file:$work/sensors.jsonl")
    river_rate=$("$venv/bin/python" bench/models/river_iot.py "$work/sensors.jsonl" "$work/river.jsonl")
    read -r s_recall s_precision s_alerts < <(python3 bench/models/score.py "$work/sensors.jsonl" "$work/truth.jsonl" "$work/out")
    read -r r_recall r_precision r_alerts < <(python3 bench/models/score.py "$work/sensors.jsonl" "$work/truth.jsonl" "$work/river.jsonl")
    printf '%-22s %12s %8s %10s %8s\n' engine events/s recall precision alerts
    printf '%-22s %12s %8s %10s %8s\n' "spate iot-anomaly" "$spate_rate" "$s_recall" "$s_precision" "$s_alerts"
    printf '%-22s %12s %8s %10s %8s\n' "River (same model)" "$river_rate" "$r_recall" "$r_precision" "$r_alerts"
    awk -v s="$spate_rate" -v r="$river_rate" 'BEGIN { printf "spate / River: %.1fx\n", s / r }'
}

fraud() {
    local args=(--events "$events" --keys "$((keys * 10))" --event-rate 25 --fraud 0.01 --seed 7)
    target/release/spate-loadgen transactions "${args[@]}" --to "file:$work/tx.jsonl"
    target/release/spate-loadgen labels "${args[@]}" --to "file:$work/labels.jsonl"
    local spate_rate river_rate
    spate_rate=$(spate_runs fraud-score --source "transactions=file:$work/tx.jsonl" \
        --source "labels=file:$work/labels.jsonl")
    river_rate=$("$venv/bin/python" bench/models/river_fraud.py "$work/tx.jsonl" \
        "$work/labels.jsonl" "$work/river-fraud.jsonl")
    read -r s_auc s_loss s_scored < <(python3 bench/models/score_fraud.py "$work/labels.jsonl" "$work/out")
    read -r r_auc r_loss r_scored < <(python3 bench/models/score_fraud.py "$work/labels.jsonl" "$work/river-fraud.jsonl")
    printf '%-22s %12s %8s %10s %8s\n' engine events/s AUC log-loss scored
    printf '%-22s %12s %8s %10s %8s\n' "spate fraud-score" "$spate_rate" "$s_auc" "$s_loss" "$s_scored"
    printf '%-22s %12s %8s %10s %8s\n' "River (same model)" "$river_rate" "$r_auc" "$r_loss" "$r_scored"
    awk -v s="$spate_rate" -v r="$river_rate" 'BEGIN { printf "spate / River: %.1fx\n", s / r }'
}

case "$which" in
    iot) iot ;;
    fraud) fraud ;;
    *) iot && fraud ;;
esac
