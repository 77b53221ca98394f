# Sourced by scripts/test, scripts/kafka-broker and bench/kafka.sh. ensure_tansu sets SPATE_TANSU
# to a tansu 0.6.0 binary on its sqlite engine (the broker of most Kafka tests),
# building it once into target/tools when none answers (20-30 min on 2 cores; cached there like
# the rest of the build). Both builds share one target directory, target/tools/build, so the
# second reuses the dependencies the first compiled (on a new machine the two builds took 22
# and 20 min one after the other with separate directories). Expects the working directory to be
# the repository root.
ensure_tansu() {
    local tools="$PWD/target/tools"
    if [ -n "${SPATE_TANSU:-}" ]; then
        return
    elif "$tools/bin/tansu" --version >/dev/null 2>&1; then
        SPATE_TANSU="$tools/bin/tansu"
    elif command -v tansu >/dev/null 2>&1 && tansu --version >/dev/null 2>&1; then
        SPATE_TANSU="$(command -v tansu)"
    else
        echo "installing the Kafka-compatible broker tansu 0.6.0 into target/tools (once; 20-30 min on 2 cores)" >&2
        CARGO_TARGET_DIR="$PWD/target/tools/build" cargo install tansu --version 0.6.0 --locked \
            --features libsql,dynostore --root "$tools" >&2
        SPATE_TANSU="$tools/bin/tansu"
    fi
    export SPATE_TANSU
}

# Sets SPATE_TANSU_PG to tansu 0.6.0 built with its postgres storage engine (the broker of the
# 300,000-record tests, scripts/kafka-broker and bench/kafka.sh), building it once into
# target/tools/tansu-pg when missing (20-30 min on 2 cores). It needs PostgreSQL 16 or later:
# scripts/lib/postgres.sh.
ensure_tansu_pg() {
    local tools="$PWD/target/tools/tansu-pg"
    if [ -n "${SPATE_TANSU_PG:-}" ]; then
        return
    elif ! "$tools/bin/tansu" --version >/dev/null 2>&1; then
        echo "building tansu 0.6.0 with its postgres engine into target/tools/tansu-pg (once; 20-30 min on 2 cores)" >&2
        CARGO_TARGET_DIR="$PWD/target/tools/build" cargo install tansu --version 0.6.0 --locked \
            --features postgres --root "$tools" >&2
    fi
    SPATE_TANSU_PG="$tools/bin/tansu"
    export SPATE_TANSU_PG
}
