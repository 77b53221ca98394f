# Sourced by scripts/test: the Debian packages the tests need, installed when missing.
#
# apt_install PACKAGE WHY installs PACKAGE with apt-get (as root, or through sudo), saying WHY;
# without either it fails naming the package.
apt_install() {
    local package=$1 why=$2 sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "$why needs Debian's $package package: install it (apt-get install $package)" >&2
            return 1
        fi
        sudo=sudo
    fi
    echo "installing Debian's $package package ($why)" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$package" >&2
}

# ensure_openssl makes sure the `openssl` command is there: the PostgreSQL sink's TLS test makes
# its certificates with it.
ensure_openssl() {
    command -v openssl >/dev/null || apt_install openssl "the PostgreSQL TLS test's certificates"
}
