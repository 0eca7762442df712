#!/bin/sh
# Runs each libFuzzer target for SECONDS seconds on its corpus; new crash inputs go to
# tests/fuzz/crashes/<target>/. Prints the executions per target and the total.
cd "$(dirname "$0")/../.." || exit 2
seconds=$1
shift
total=0
crashes=0
for target in "$@"; do
    mkdir -p tests/fuzz/corpus/"$target" build-fuzz/new-corpus/"$target" tests/fuzz/crashes/"$target"
    log=build-fuzz/fuzz-"$target".log
    build-fuzz/fuzz-"$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix=tests/fuzz/crashes/"$target"/ \
        build-fuzz/new-corpus/"$target" tests/fuzz/corpus/"$target" >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    execs=${execs:-0}
    total=$((total + execs))
    if [ $rc -ne 0 ]; then
        crashes=$((crashes + 1))
        echo "$target: CRASH (see $log)"
    else
        echo "$target: $execs executions, 0 crashes"
    fi
done
echo "total: $total executions, $crashes targets crashed"
[ "$crashes" -eq 0 ]
