#!/usr/bin/env bash
# The engine benchmark quoted in the README: builds release binaries, writes 1,000,000
# transactions over 10,000 users, and runs tx-windows, fraud and sessions from that file to the
# exactly-once file sink with a state directory (checkpoints every second, and at every epoch),
# then tx-enriched (the same file joined with a table of the 10,000 users, 20% of whom change
# during the run: the cost of a second input and a temporal join), enrich (that join re-keyed by
# segment and country into 1-minute windows: the cost of a second keyed stage), then tx-windows from the
# built-in generator (10,000,000 events, 10,000 users). Prints the median events/s (records of
# every input) and peak memory of RUNS runs each. Usage: bench/pipelines.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
source bench/lib.sh

for p in tx-windows fraud sessions; do
    bench "$p file→file, checkpoint every 1s" "$p" --source "file:$work/tx.jsonl"
    bench "$p file→file, checkpoint every epoch" "$p" --source "file:$work/tx.jsonl" --checkpoint-interval 0
done
bench "tx-enriched file+file→file, checkpoint every 1s" tx-enriched \
    --source "transactions=file:$work/tx.jsonl" --source "users=file:$work/users.jsonl"
bench "enrich file+file→file (two stages), checkpoint every 1s" enrich \
    --source "transactions=file:$work/tx.jsonl" --source "users=file:$work/users.jsonl"
bench "tx-windows gen→file, 10M events" tx-windows --events 10000000 --keys 10000
