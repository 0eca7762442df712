#!/bin/sh
# Runs the Node test files (*.test.mjs) of one directory against one hisoka binary.
#   tests/node-suite.sh BINARY DIR [NAME...]
# Ends with "N passed, N failed" from node's test runner summary.
cd "$(dirname "$0")/.." || exit 2
HISOKA_BIN=$(realpath "$1")
export HISOKA_BIN
case "$HISOKA_BIN" in
*build-asan*) export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ;;
esac
out=$(mktemp)
dir=$2
shift 2
# Further arguments name test files of DIR (without .test.mjs); none: all of them.
files=""
for name in "$@"; do files="$files $dir/$name.test.mjs"; done
[ -n "$files" ] || files=$(ls "$dir"/*.test.mjs)
# shellcheck disable=SC2086
node --test --test-concurrency=1 --test-reporter=tap $files >"$out" 2>&1
rc=$?
cat "$out"
pass=$(grep -E '^# pass ' "$out" | awk '{print $3}')
fail=$(grep -E '^# fail ' "$out" | awk '{print $3}')
rm -f "$out"
echo "${pass:-0} passed, ${fail:-0} failed"
exit $rc
