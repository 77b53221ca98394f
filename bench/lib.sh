# Shared by the benchmark scripts: release binaries, the 1,000,000-transaction input over
# 10,000 users and their table, and `bench LABEL ARGS...`, which runs `spate run ARGS` RUNS
# times to the exactly-once file sink with a state directory and prints the median events/s
# (records of every input) and peak memory. Source it after `cd` to the repository root.
runs=${runs:-5}
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
spate=target/release/spate
target/release/spate-loadgen transactions --events 1000000 --users 10000 --seed 7 --to "file:$work/tx.jsonl"
target/release/spate-loadgen users --users 10000 --updates 0.2 --span 1000s --seed 7 --to "file:$work/users.jsonl"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench() { # label, spate run arguments...
    local label=$1; shift
    local rates=() mems=()
    for _ in $(seq "$runs"); do
        rm -rf "$work/out" "$work/state"
        local report
        report=$("$spate" run "$@" --sink "file:$work/out" --state "$work/state" --metrics-addr off --report 2>&1 | grep '^spate report')
        rates+=("$(grep -o 'records_per_second=[0-9]*' <<<"$report" | cut -d= -f2)")
        mems+=("$(grep -o 'peak_memory=[0-9]*' <<<"$report" | cut -d= -f2)")
    done
    printf '%-48s %12s events/s   peak %4s MB   (runs: %s)\n' "$label" \
        "$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${mems[@]}" | median)" "${rates[*]}"
}
