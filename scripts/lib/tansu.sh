# Sourced by scripts/test and scripts/kafka-broker: sets SPATE_TANSU to a tansu 0.6.0 binary,
# building it once into target/tools when none answers (20-30 min on 2 cores; cached there like
# the rest of the build). Expects the working directory to be the repository root.
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
        cargo install tansu --version 0.6.0 --locked --features libsql,dynostore --root "$tools" >&2
        SPATE_TANSU="$tools/bin/tansu"
    fi
    export SPATE_TANSU
}
