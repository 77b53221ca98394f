# Sourced by scripts/test: the headless browser the status page's test loads the page in.
#
# ensure_chromium sets SPATE_CHROMIUM to a Chromium (or Chrome) binary: one on the PATH, or
# Debian's `chromium` package, installed with apt-get when missing (scripts/lib/apt.sh; or set
# SPATE_CHROMIUM).
ensure_chromium() {
    [ -n "${SPATE_CHROMIUM:-}" ] && return
    local name
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null; then
            SPATE_CHROMIUM=$(command -v "$name")
            export SPATE_CHROMIUM
            return
        fi
    done
    apt_install chromium "the status page test"
    SPATE_CHROMIUM=$(command -v chromium)
    export SPATE_CHROMIUM
}

