#!/bin/sh
# The Compose topology of docker/compose.yaml without Docker: two network namespaces
# joined by a veth pair play the compose network, hisoka runs in one ("hisoka" service)
# and headless Chromium in the other ("browser-tests"), and a three-member call is
# checked (tests/compose/compose.test.mjs). Needs root (ip netns).
#   docker/compose-test.sh [HISOKA_BINARY]      (default build/hisoka)
# Ends with "N passed, N failed". The namespaces and the veth pair exist only while
# this runs and are removed on every exit (trap). Addresses: 10.203.0.0/24, only
# inside these namespaces (the host's own network is never touched).
set -u
cd "$(dirname "$0")/.." || exit 2

BIN=$(realpath "${1:-build/hisoka}")
if [ "$(id -u)" != 0 ]; then
    echo "compose-test: needs root (ip netns); run it as root or under sudo"
    echo "0 passed, 1 failed"
    exit 1
fi
for tool in ip node /usr/bin/chromium redis-server; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "compose-test: $tool is missing (make deps-test)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

tag=$$
NS_SERVER=hkc-srv-$tag
NS_BROWSER=hkc-brw-$tag
VETH_SERVER=hkcs$tag
VETH_BROWSER=hkcb$tag
SERVER_ADDR=10.203.0.1
BROWSER_ADDR=10.203.0.2

cleanup() {
    ip netns del "$NS_SERVER" 2>/dev/null
    ip netns del "$NS_BROWSER" 2>/dev/null # removing a namespace removes its veth end
    ip link del "$VETH_SERVER" 2>/dev/null
    true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail_setup() {
    echo "compose-test: network setup failed: $1"
    echo "0 passed, 1 failed"
    exit 1
}

ip netns add "$NS_SERVER" || fail_setup "ip netns add"
ip netns add "$NS_BROWSER" || fail_setup "ip netns add"
ip link add "$VETH_SERVER" type veth peer name "$VETH_BROWSER" || fail_setup "veth"
ip link set "$VETH_SERVER" netns "$NS_SERVER" || fail_setup "veth to $NS_SERVER"
ip link set "$VETH_BROWSER" netns "$NS_BROWSER" || fail_setup "veth to $NS_BROWSER"
ip -n "$NS_SERVER" addr add "$SERVER_ADDR/24" dev "$VETH_SERVER" || fail_setup "address"
ip -n "$NS_BROWSER" addr add "$BROWSER_ADDR/24" dev "$VETH_BROWSER" || fail_setup "address"
for ns in "$NS_SERVER" "$NS_BROWSER"; do
    ip -n "$ns" link set lo up
done
ip -n "$NS_SERVER" link set "$VETH_SERVER" up || fail_setup "link up"
ip -n "$NS_BROWSER" link set "$VETH_BROWSER" up || fail_setup "link up"

export HISOKA_BIN="$BIN" HK_NS_SERVER="$NS_SERVER" HK_NS_BROWSER="$NS_BROWSER" \
    HK_SERVER_ADDR="$SERVER_ADDR" HK_BROWSER_ADDR="$BROWSER_ADDR"
case "$BIN" in
*build-asan*) export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ;;
esac
out=$(mktemp)
node --test --test-concurrency=1 --test-reporter=tap tests/compose/*.test.mjs >"$out" 2>&1
rc=$?
cat "$out"
pass=$(grep -E '^# pass ' "$out" | awk '{print $3}')
fail=$(grep -E '^# fail ' "$out" | awk '{print $3}')
rm -f "$out"
if [ "$rc" -ne 0 ] && [ "${fail:-0}" -eq 0 ]; then
    fail=1
fi
echo "${pass:-0} passed, ${fail:-0} failed"
exit $rc
