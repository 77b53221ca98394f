#!/usr/bin/env bash
# The Kafka benchmark quoted in the README, on loopback against a fresh tansu broker (sqlite
# storage in a temporary directory):
#  1. throughput: EVENTS transactions (10,000 users) in a 4-partition topic; per run, the broker
#     ceiling (`spate-loadgen pipe`: every record consumed and produced to a new topic, with the
#     same librdkafka and producer settings as spate's sink; Debian's kcat, on librdkafka 2.0,
#     cannot talk to tansu 0.6: its ApiVersions exchange fails) and spate
#     (tx-windows Kafka→Kafka, exactly-once, --until-end), alternating; prints medians and their
#     ratio. Wall time for both, from process start to exit.
#  2. latency: spate-loadgen produces RATE transactions/s for 90 s while tx-windows runs
#     Kafka→Kafka; latency of a result = its Kafka timestamp (set when the sink sends it) −
#     (window end + the 10 s watermark delay), with event time = creation time.
# Needs tansu (scripts/test installs it into target/tools) and python3.
# Usage: bench/kafka.sh [RUNS] [EVENTS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
events=${2:-1000000}
rate=${3:-50000}
tansu=${SPATE_TANSU:-target/tools/bin/tansu}
[ -x "$tansu" ] || tansu=$(command -v tansu) || { echo "bench/kafka.sh needs tansu: run scripts/test once" >&2; exit 1; }
tansu=$(realpath "$tansu")
cargo build --release -q
spate=$PWD/target/release/spate
loadgen=$PWD/target/release/spate-loadgen
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
broker=127.0.0.1:$port
(cd "$work" && exec "$tansu" broker --listener-url "tcp://$broker" --advertised-listener-url "tcp://$broker" \
    --storage-engine sqlite://tansu.db >tansu.log 2>&1) &
tansu_pid=$!
trap 'kill $tansu_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

"$loadgen" transactions --events "$events" --users 10000 --seed 7 --partitions 4 \
    --to "kafka://$broker/tx" 2>&1 | tail -1

ceiling=() spate_rates=() spate_internal=()
for i in $(seq "$runs"); do
    start=$(now)
    "$loadgen" pipe --from "kafka://$broker/tx" --to "kafka://$broker/copy-$i" 2>/dev/null
    ceiling+=("$(echo "$events / ($(now) - $start)" | bc)")

    start=$(now)
    report=$("$spate" run tx-windows --source "kafka://$broker/tx" --sink "kafka://$broker/out-$i" \
        --app-id "bench-$i" --until-end --state "$work/state-$i" --metrics-addr off --report 2>&1 |
        grep '^spate report')
    spate_rates+=("$(echo "$events / ($(now) - $start)" | bc)")
    spate_internal+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
done
c=$(printf '%s\n' "${ceiling[@]}" | median)
s=$(printf '%s\n' "${spate_rates[@]}" | median)
printf 'broker ceiling (consume → produce):      %9s records/s   (runs: %s)\n' "$c" "${ceiling[*]}"
printf 'spate tx-windows Kafka → Kafka:          %9s records/s   (runs: %s; job time only: %s)\n' \
    "$s" "${spate_rates[*]}" "${spate_internal[*]}"
printf 'ratio spate / ceiling: %s\n' "$(echo "scale=2; $s / $c" | bc)"

# Latency: a paced stream while the job runs; the job stops (SIGTERM) once the last windows closed.
"$loadgen" transactions --rate "$rate" --duration 90s --users 10000 --partitions 4 \
    --to "kafka://$broker/live" >"$work/live-loadgen.log" 2>&1 &
producer=$!
sleep 2 # the producer creates the topic
"$spate" run tx-windows --source "kafka://$broker/live" --sink "kafka://$broker/live-out" \
    --app-id bench-live --state "$work/state-live" --metrics-addr off 2>"$work/live.log" &
job=$!
wait "$producer" || { cat "$work/live-loadgen.log" >&2; exit 1; }
tail -1 "$work/live-loadgen.log"
sleep 75
kill -TERM "$job"
wait "$job" || true
"$loadgen" latency --from "kafka://$broker/live-out" --delay 10s
