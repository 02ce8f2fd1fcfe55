# scripts/deps.sh — sourced by scripts/run and scripts/test: installs the Debian 12 packages
# impactd needs, only those missing, with one `apt-get update` first. Needs root (or sudo).

IMPACTD_BUILD_PKGS="gcc pkg-config meson ninja-build libevent-dev libhiredis-dev libjansson-dev libsodium-dev libssl-dev libmsgpack-dev"
IMPACTD_RUN_PKGS="redis-server curl"
IMPACTD_TEST_PKGS="libcmocka-dev python3 python3-pytest python3-requests python3-nacl python3-jsonschema nodejs openssl"
# scripts/test's fuzz build (libFuzzer: clang, and the runtime clang only recommends) and its
# --valgrind mode
IMPACTD_FUZZ_PKGS="clang libclang-rt-14-dev"
IMPACTD_VALGRIND_PKGS="valgrind"

# deps_install PKG... : installs whichever of the packages are not installed yet.
deps_install() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "impactd: installing Debian packages: ${missing[*]}" >&2
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "impactd: need root (or sudo) to install: ${missing[*]}" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >&2 || return 1
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || return 1
}
