#!/bin/sh
# Installs what hisoka needs, idempotently, from Debian 12 packages (and npm for tests).
#   tools/deps.sh run   — build and run dependencies
#   tools/deps.sh test  — additionally what the test suites need
#   tools/deps.sh bench — additionally Janus (the benchmark's comparison peer)
set -e
cd "$(dirname "$0")/.."

RUN_PKGS="build-essential pkg-config libssl-dev libsrtp2-dev libnice-dev libwebsockets-dev
libwebsockets-evlib-uv libjansson-dev libuv1-dev"
TEST_PKGS="clang libclang-rt-14-dev clang-format chromium chromium-driver iproute2 nftables
curl procps openssl docker-compose"

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi

missing=""
want="$RUN_PKGS"
if [ "$1" = bench ]; then
    want="$RUN_PKGS janus util-linux curl procps"
fi
if [ "$1" = test ]; then
    want="$RUN_PKGS $TEST_PKGS"
    command -v node >/dev/null 2>&1 || want="$want nodejs npm"
fi
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

if [ "$1" = test ]; then
    # npm packages for the integration and browser tests, pinned by the lock file.
    if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.stamp ]; then
        (cd tests && npm ci --no-audit --no-fund && touch node_modules/.stamp)
    fi
fi
