#!/usr/bin/env bash
# The Kafka benchmark quoted in the README, on loopback against the tests' scale broker,
# scripts/kafka-broker (tansu 0.6 on its PostgreSQL engine, a fresh broker and database for
# every measurement):
#  1. throughput: EVENTS transactions (10,000 users) in a 4-partition topic; per run, the broker
#     ceiling (`spate-loadgen pipe`: every record consumed and produced to a new topic, with the
#     same librdkafka consumer and producer settings as spate's source and sink; Debian's kcat,
#     on librdkafka 2.0, cannot talk to tansu 0.6: its ApiVersions exchange fails) and spate
#     (tx-windows Kafka→Kafka, exactly-once, --until-end), alternating; prints medians and their
#     ratio. Wall time for both, from process start to exit.
#  2. latency: `spate-loadgen bench --to … --from …` produces RATE transactions/s for 90 s
#     while tx-windows runs Kafka→Kafka as a separate process, and times each result as it
#     arrives in the output topic: latency = arrival − (window end + the 10 s watermark delay),
#     with event time = creation time.
# Needs python3 (for a free port); scripts/kafka-broker installs the broker when missing.
# Usage: bench/kafka.sh [RUNS] [EVENTS] [RATE]   (defaults 3, 1000000, 1000; RUNS=0: latency only;
# one run of 1,000,000 takes about 7 minutes here)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
events=${2:-1000000}
rate=${3:-1000}
. scripts/lib/tansu.sh
. scripts/lib/postgres.sh
ensure_tansu_pg
ensure_pg_template
cargo build --release -q
spate=$PWD/target/release/spate
loadgen=$PWD/target/release/spate-loadgen
work=$(mktemp -d)
chmod a+rx "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
broker=127.0.0.1:$port
broker_pid=
stop_broker() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null; broker_pid=; rm -rf "$work/broker"; }
trap 'stop_broker; rm -rf "$work"' EXIT
fresh_broker() { # a new, empty broker on $broker
    stop_broker
    scripts/kafka-broker "$port" "$work/broker" >"$work/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return; sleep 0.1; done
    echo "the broker did not start:" >&2; cat "$work/broker.log" >&2; exit 1
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
input() { "$loadgen" transactions --events "$events" --users 10000 --seed 7 --partitions 4 \
    --to "kafka://$broker/tx" 2>&1 | tail -1; }

ceiling=() spate_rates=() spate_internal=()
for i in $(seq "$runs"); do
    fresh_broker
    input
    start=$(now)
    "$loadgen" pipe --from "kafka://$broker/tx" --to "kafka://$broker/copy"
    ceiling+=("$(echo "$events / ($(now) - $start)" | bc)")

    fresh_broker
    input
    start=$(now)
    report=$("$spate" run tx-windows --source "kafka://$broker/tx" --sink "kafka://$broker/out" \
        --until-end --state "$work/state-$i" --metrics-addr off --report 2>&1 | grep '^spate report')
    spate_rates+=("$(echo "$events / ($(now) - $start)" | bc)")
    spate_internal+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
done
if [ "$runs" -gt 0 ]; then
    c=$(printf '%s\n' "${ceiling[@]}" | median)
    s=$(printf '%s\n' "${spate_rates[@]}" | median)
    printf 'broker ceiling (consume → produce):      %9s records/s   (runs: %s)\n' "$c" "${ceiling[*]}"
    printf 'spate tx-windows Kafka → Kafka:          %9s records/s   (runs: %s; job time only: %s)\n' \
        "$s" "${spate_rates[*]}" "${spate_internal[*]}"
    printf 'ratio spate / ceiling (wall time): %s\n' "$(echo "scale=2; $s / $c" | bc)"
fi

# Latency: the job runs as its own process; bench feeds it and times its results.
fresh_broker
"$loadgen" transactions --events 0 --partitions 4 --to "kafka://$broker/live" 2>/dev/null # creates the topic
"$spate" run tx-windows --source "kafka://$broker/live" --sink "kafka://$broker/live-out" \
    --state "$work/state-live" --metrics-addr off 2>"$work/live.log" &
job=$!
"$loadgen" bench tx-windows --rate "$rate" --duration 90s --warmup 0s --drain 15s \
    --to "kafka://$broker/live" --from "kafka://$broker/live-out" --json "$work/live.json" |
    sed -n '1,5p'
kill -TERM "$job"
wait "$job" || { cat "$work/live.log" >&2; exit 1; }
