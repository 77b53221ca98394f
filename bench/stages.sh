#!/usr/bin/env bash
# The cost of a keyed stage: on the input of bench/pipelines.sh, tx-windows (one stage of
# windows), tx-enriched (one stage: the temporal join with the users table) and enrich (that
# join, re-keyed by segment and country into a second stage of 1-minute windows: every
# transaction crosses the exchange). Prints the median events/s and peak memory of RUNS runs
# each. Usage: bench/stages.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
source bench/lib.sh

inputs=(--source "transactions=file:$work/tx.jsonl" --source "users=file:$work/users.jsonl")
bench "tx-windows file→file (one stage)" tx-windows --source "file:$work/tx.jsonl"
bench "tx-enriched file+file→file (one stage, join)" tx-enriched "${inputs[@]}"
bench "enrich file+file→file (join, re-key, windows)" enrich "${inputs[@]}"
