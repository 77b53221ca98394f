#!/usr/bin/env bash
# Recovery after `kill -9` of a job holding a large state, from a local state directory:
# `sessions` from the generator in process (KEYS users; event time moves 1 ms per event, so a
# session stays open for 1,800,000 events) runs with a state directory until its state holds at
# least HELD keys and it has checkpointed since; it is then killed with SIGKILL and started again
# with the same command. Each run prints the keys held at the kill, the checkpoint the restart
# found (bytes on disk), each key partition's time to load its state into memory
# (spate_state_load_duration_seconds: mean and largest bucket), and the wall time from the
# restart to its first committed epoch (spate_epoch_duration_seconds_count, polled every 2 ms).
#
# With `kafka` as the fourth argument the job reads a topic instead (on a fresh
# scripts/kafka-broker per run: tansu on PostgreSQL, loopback): EVENTS transactions over KEYS users
# are written to a 4-partition topic first, event time 1 s per 100,000 records so every session
# stays open (the gap is 30 minutes); the job (`--app-id recovery`) runs until its state holds HELD keys, is killed, and
# is started again with a new, empty state directory, so every partition is restored from the
# changelog topic; the script adds spate_restore_duration_seconds (per partition: reading the
# changelog, and writing the state into the new directory).
# Usage:
#   bench/recovery.sh [HELD] [KEYS] [RUNS] [local|kafka [EVENTS]]
set -euo pipefail
cd "$(dirname "$0")/.."
held=${1:-1000000}
keys=${2:-2000000}
runs=${3:-3}
mode=${4:-local}
events=${5:-$((3 * held))}
cargo build --release -q
work=$(mktemp -d)
job=
trap '[ -n "$job" ] && kill -9 "$job" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The metrics poller: `wait-keys HELD` returns once the state holds HELD keys and every
# partition has checkpointed since; `first-epoch` prints the seconds until the first committed epoch and
# the state load times and the keys loaded.
cat >"$work/poll.py" <<'EOF'
import re, sys, time, urllib.request

url, mode = sys.argv[1], sys.argv[2]

def metrics():
    try:
        return urllib.request.urlopen(url, timeout=1).read().decode()
    except OSError:
        return ""

def total(text, name):
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

if mode == "wait-keys":
    held, seen_at = float(sys.argv[3]), None
    while True:
        text = metrics()
        keys, checkpoints = total(text, "spate_state_keys"), total(text, "spate_checkpoint_duration_seconds_count")
        partitions = len(re.findall(r"^spate_state_keys{", text, re.M))
        if seen_at is None and keys >= held:
            seen_at = checkpoints
        # Each partition counts its own checkpoints: wait for two rounds, so that every
        # partition has written one that began after the state held enough keys.
        if seen_at is not None and checkpoints >= seen_at + 2 * partitions:
            print(int(keys))
            break
        time.sleep(0.05)
else:
    started = float(sys.argv[3])  # when the job was started, Unix seconds
    while total(metrics(), "spate_epoch_duration_seconds_count") < 1:
        time.sleep(0.002)
    first = time.time() - started
    text = metrics()
    keys = int(total(text, "spate_state_keys"))
    loads = total(text, "spate_state_load_duration_seconds_count")
    mean = total(text, "spate_state_load_duration_seconds_sum") / max(loads, 1)
    buckets = re.findall(r'^spate_state_load_duration_seconds_bucket{[^}]*le="([^"]+)"[^}]*} (\S+)$', text, re.M)
    slowest = next(le for le, n in buckets if float(n) >= loads)
    restores = total(text, "spate_restore_duration_seconds_count")
    restore = total(text, "spate_restore_duration_seconds_sum") / max(restores, 1)
    print(f"{first:.3f} {mean:.3f} {slowest} {int(loads)} {keys} {restore:.3f}")
EOF

if [ "$mode" = kafka ]; then
    . scripts/lib/tansu.sh
    . scripts/lib/postgres.sh
    ensure_tansu_pg
    ensure_pg_template
    chmod a+rx "$work"
    broker_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    broker_pid=
    stop_broker() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null; broker_pid=; rm -rf "$work/broker"; }
    trap '[ -n "$job" ] && kill -9 "$job" 2>/dev/null; stop_broker; rm -rf "$work"' EXIT
fi

# A fresh broker holding the input topic (kafka), or nothing to prepare (local).
prepare() {
    [ "$mode" = kafka ] || return 0
    stop_broker
    scripts/kafka-broker "$broker_port" "$work/broker" >"$work/broker.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null && break; sleep 0.1; done
    target/release/spate-loadgen transactions --events "$events" --keys "$keys" --seed 7 \
        --event-rate 100000 --partitions 4 --to "kafka://127.0.0.1:$broker_port/tx" 2>>"$work/log" >/dev/null
}

run() { # the state directory
    local source=(--source gen --events 0 --keys "$keys")
    [ "$mode" = kafka ] && source=(--source "kafka://127.0.0.1:$broker_port/tx" --app-id recovery)
    target/release/spate run sessions "${source[@]}" \
        --sink "file:$work/out" --state "$1" --metrics-addr "127.0.0.1:$port" \
        --quiet 2>>"$work/log" &
    job=$!
}

printf '%-4s %10s %12s %8s %14s %15s %14s %22s\n' run "keys held" "keys loaded" "on disk" "load mean (s)" "load max ≤ (s)" "restore (s)" "first epoch after (s)"
for i in $(seq "$runs"); do
    rm -rf "$work/out" "$work/state" "$work/fresh"
    prepare
    run "$work/state"
    held_keys=$(python3 "$work/poll.py" "http://127.0.0.1:$port/metrics" wait-keys "$held")
    kill -9 "$job"
    wait "$job" 2>/dev/null || true
    disk=$(du -sh "$work/state" | cut -f1)
    restarted=$(date +%s.%N)
    # From the changelog, the restarted job gets a new directory: nothing local to load from.
    if [ "$mode" = kafka ]; then run "$work/fresh"; else run "$work/state"; fi
    read -r first mean slowest loads loaded restore < <(python3 "$work/poll.py" "http://127.0.0.1:$port/metrics" first-epoch "$restarted")
    kill -9 "$job"
    wait "$job" 2>/dev/null || true
    job=
    printf '%-4s %10s %12s %8s %14s %15s %14s %22s\n' "$i" "$held_keys" "$loaded" "$disk" "$mean" "$slowest" "$restore" "$first"
done
echo "($loads key partitions; the load and restore figures are per partition: partitions load in parallel on the workers, and read the changelog all at once)"
