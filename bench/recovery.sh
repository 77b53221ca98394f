#!/usr/bin/env bash
# Recovery after `kill -9` of a job holding a large state, from a local state directory:
# `sessions` from the generator in process (KEYS users; event time moves 1 ms per event, so a
# session stays open for 1,800,000 events) runs with a state directory until its state holds at
# least HELD keys and it has checkpointed since; it is then killed with SIGKILL and started again
# with the same command. Each run prints the keys held at the kill, the checkpoint the restart
# found (bytes on disk), each key partition's time to load its state into memory
# (spate_state_load_duration_seconds: mean and largest bucket), and the wall time from the
# restart to its first committed epoch (spate_epoch_duration_seconds_count, polled every 2 ms).
# Usage:
#   bench/recovery.sh [HELD] [KEYS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
held=${1:-1000000}
keys=${2:-2000000}
runs=${3:-3}
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
    print(f"{first:.3f} {mean:.3f} {slowest} {int(loads)} {keys}")
EOF

run() {
    target/release/spate run sessions --source gen --events 0 --keys "$keys" \
        --sink "file:$work/out" --state "$work/state" --metrics-addr "127.0.0.1:$port" \
        --quiet 2>>"$work/log" &
    job=$!
}

printf '%-4s %10s %12s %8s %14s %15s %22s\n' run "keys held" "keys loaded" "on disk" "load mean (s)" "load max ≤ (s)" "first epoch after (s)"
for i in $(seq "$runs"); do
    rm -rf "$work/out" "$work/state"
    run
    held_keys=$(python3 "$work/poll.py" "http://127.0.0.1:$port/metrics" wait-keys "$held")
    kill -9 "$job"
    wait "$job" 2>/dev/null || true
    disk=$(du -sh "$work/state" | cut -f1)
    restarted=$(date +%s.%N)
    run
    read -r first mean slowest loads loaded < <(python3 "$work/poll.py" "http://127.0.0.1:$port/metrics" first-epoch "$restarted")
    kill -9 "$job"
    wait "$job" 2>/dev/null || true
    job=
    printf '%-4s %10s %12s %8s %14s %15s %22s\n' "$i" "$held_keys" "$loaded" "$disk" "$mean" "$slowest" "$first"
done
echo "($loads key partitions; the load figures are per partition, which load in parallel on the workers)"
