# Sourced by scripts/test: the Python `deltalake` package the Delta Lake sink's test reads tables
# back with (a second, independent reader next to delta-rs).
#
# ensure_deltalake sets SPATE_DELTALAKE_PYTHON to a Python that imports deltalake and pyarrow:
# the venv target/tools/deltalake-venv, created with pinned versions when missing (once, ~60 MB
# from PyPI). Expects the working directory to be the repository root.
DELTALAKE_PACKAGES="deltalake==1.6.6 pyarrow==26.0.1"

ensure_deltalake() {
    [ -n "${SPATE_DELTALAKE_PYTHON:-}" ] && return
    local venv="$PWD/target/tools/deltalake-venv"
    if ! "$venv/bin/python" -c "import deltalake, pyarrow" 2>/dev/null; then
        echo "installing $DELTALAKE_PACKAGES into target/tools/deltalake-venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q $DELTALAKE_PACKAGES >&2
    fi
    SPATE_DELTALAKE_PYTHON="$venv/bin/python"
    export SPATE_DELTALAKE_PYTHON
}
