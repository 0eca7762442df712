#!/bin/sh
# Replays every committed corpus (tests/fuzz/corpus/<target>/) and crash file
# (tests/fuzz/crashes/<target>/) through the ASan+UBSan replay build of each target.
# Ends with "N passed, N failed" (one count per target).
cd "$(dirname "$0")/../.." || exit 2
passed=0
failed=0
for target in "$@"; do
    dirs=""
    for d in tests/fuzz/corpus/$target tests/fuzz/crashes/$target; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    if [ -z "$dirs" ]; then
        echo "FAILED fuzz-replay $target: no corpus in tests/fuzz/corpus/$target"
        failed=$((failed + 1))
        continue
    fi
    if out=$(build-fuzz/replay-"$target" $dirs 2>&1); then
        echo "ok     fuzz-replay $target ($(echo "$out" | tail -1))"
        passed=$((passed + 1))
    else
        echo "$out" | tail -30
        echo "FAILED fuzz-replay $target"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
