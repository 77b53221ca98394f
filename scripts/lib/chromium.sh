# Sourced by scripts/test: the headless browser the status page's test loads the page in.
#
# ensure_chromium sets SPATE_CHROMIUM to a Chromium (or Chrome) binary: one on the PATH, or
# Debian's `chromium` package, installed with apt-get when missing (as root, or through sudo).
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
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "the status page test needs Chromium: install Debian's chromium package (apt-get install chromium) or set SPATE_CHROMIUM" >&2
            return 1
        fi
        sudo=sudo
    fi
    echo "installing Debian's chromium package (for the status page test)" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >&2
    SPATE_CHROMIUM=$(command -v chromium)
    export SPATE_CHROMIUM
}
