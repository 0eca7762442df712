#!/bin/bash
# Runs every test suite and ends with one line "N passed, N failed".
# Each suite prints its own "N passed, N failed" last; a suite that exits non-zero
# without such a line counts as one failure. Logs: build/test-logs/<suite>.log
# HISOKA_TEST_SUITES="unit client ..." runs only the suites named (the fresh-machine
# check in tests/container uses it); the others are listed as skipped.
cd "$(dirname "$0")/.." || exit 2
mkdir -p build/test-logs
total_passed=0
total_failed=0

skipped=""
run_suite() {
    local name=$1
    shift
    if [ -n "${HISOKA_TEST_SUITES:-}" ] && ! [[ " $HISOKA_TEST_SUITES " == *" $name "* ]]; then
        skipped="$skipped $name"
        return
    fi
    local log=build/test-logs/$name.log
    echo "=== $name: $*"
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    local p=0 f=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | awk '{print $1}')
        f=$(echo "$line" | awk '{print $3}')
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    grep -E '^(FAILED|not ok)' "$log" | head -40
    grep -E '# SKIP' "$log" | sed 's/^ */skipped: /' | head -10
    if [ "$f" -ne 0 ]; then
        echo "--- last lines of $log:"
        tail -40 "$log"
    fi
    echo "=== $name: $p passed, $f failed ($((SECONDS - start)) s)"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
}

# Runs a node --test command with the TAP reporter and ends with "N passed, N failed".
node-summary() {
    local out
    out=$(mktemp)
    "$@" >"$out" 2>&1
    local rc=$?
    cat "$out"
    echo "$(grep -E '^# pass ' "$out" | awk '{print $3}') passed, $(grep -E '^# fail ' "$out" | awk '{print $3}') failed"
    rm -f "$out"
    return $rc
}

# docker/Dockerfile lint and `docker-compose config` (no Docker engine here).
docker_checks() {
    local p=0 f=0
    if docker/lint.sh; then p=$((p + 1)); else f=$((f + 1)); fi
    if docker-compose -f docker/compose.yaml config >/dev/null; then p=$((p + 1)); else
        echo "FAILED docker-compose config"
        f=$((f + 1))
    fi
    echo "$p passed, $f failed"
    [ "$f" -eq 0 ]
}

format_check() {
    if make -s format-check; then
        echo "1 passed, 0 failed"
    else
        echo "0 passed, 1 failed"
        return 1
    fi
}

run_suite format format_check
run_suite layers tools/check-layers.sh
run_suite unit build/unit-tests
run_suite unit-asan build-asan/unit-tests
run_suite fuzz-replay make -s fuzz-replay
run_suite client node-summary node --test --test-reporter=tap tests/client/*.test.mjs
run_suite docker docker_checks
run_suite integration tests/node-suite.sh build/hisoka tests/integration
run_suite integration-asan tests/node-suite.sh build-asan/hisoka tests/integration
# ThreadSanitizer, two media workers: the integration suite, the browser calls that put
# media on both workers at once (and a channel over both, through relays), and the load
# generator's 1 -> 60 over both workers.
run_suite integration-tsan env HISOKA_TEST_WORKERS=2 tests/node-suite.sh build-tsan/hisoka tests/integration
run_suite browser-tsan env HISOKA_TEST_WORKERS=2 tests/node-suite.sh build-tsan/hisoka tests/browser \
    workers call
run_suite load-tsan env HISOKA_TEST_WORKERS=2 tests/node-suite.sh build-tsan/hisoka tests/load smoke
run_suite abuse tests/node-suite.sh build/hisoka tests/abuse
run_suite abuse-asan tests/node-suite.sh build-asan/hisoka tests/abuse
run_suite load-smoke tests/node-suite.sh build/hisoka tests/load
run_suite browser tests/node-suite.sh build/hisoka tests/browser
run_suite interop tests/node-suite.sh build/hisoka tests/interop
run_suite compose-test make -s compose-test
run_suite container-image tests/container/image-compose.sh
run_suite container-fresh tests/container/fresh-machine.sh

if [ -n "$skipped" ]; then
    echo "=== skipped (HISOKA_TEST_SUITES=\"$HISOKA_TEST_SUITES\"):$skipped"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
