#!/bin/bash
# Churn soak (make soak, outside make test): CYCLES join/leave cycles with media flowing,
# against the ASan+LSan build of hisoka. Each round runs the load generator with 10
# sendrecv members in one channel for a few seconds (they join, exchange media, leave)
# while a steady pair keeps media flowing all along. At the end: LSan must report no leak
# (hisoka exits on SIGTERM), RSS must be back within 5% of the baseline taken after the
# first round, and open file descriptors back to that baseline.
#   tests/load/soak.sh [CYCLES]   (default 1000)
set -u
cd "$(dirname "$0")/../.." || exit 2
cycles=${1:-1000}
members=10
rounds=$(((cycles + members - 1) / members))
bin=build-asan/hisoka
load=build/hisoka-load
[ -x "$bin" ] && [ -x "$load" ] || { echo "build first: make build asan"; exit 2; }

dir=$(mktemp -d)
. tests/load/lib.sh
hisoka_conf "$dir/sora.conf"
# No quarantine: freed memory is reused at once, so RSS measures what is held.
ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=0 "$bin" --config "$dir/sora.conf" >"$dir/server.log" 2>&1 &
pid=$!
wait_healthy "$api"
url="ws://127.0.0.1:$sig/signaling"

rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }

# A steady pair keeps media flowing through the whole soak.
"$load" --url "$url" --channels 1 --publishers 0 --subscribers 0 --members 2 \
    --channel-prefix steady --duration $((rounds * 6 + 30)) --sample 0 --json "$dir/steady.json" \
    >"$dir/steady.log" 2>&1 &
steady=$!
sleep 2

failed=0
baseline_rss=0
baseline_fds=0
for round in $(seq "$rounds"); do
    if ! timeout 60 "$load" --url "$url" --channels 1 --publishers 0 --subscribers 0 \
        --members "$members" --channel-prefix "churn$round" --duration 2 --sample 10 \
        --connect-interval-ms 20 --json "$dir/round.json" >"$dir/round.log" 2>&1; then
        failed=$((failed + 1))
        echo "round $round failed:"; tail -3 "$dir/round.log"
    fi
    sleep 0.5
    if [ "$round" -eq 1 ]; then
        baseline_rss=$(rss)
        baseline_fds=$(fds)
        echo "baseline after round 1: RSS ${baseline_rss} KiB, ${baseline_fds} fds"
    fi
    if [ $((round % 10)) -eq 0 ]; then
        echo "round $round/$rounds: $((round * members)) cycles, RSS $(rss) KiB, $(fds) fds"
    fi
done
wait "$steady"
steady_rc=$?
sleep 1
final_rss=$(rss)
final_fds=$(fds)
kill -TERM "$pid"
wait "$pid"
server_rc=$?
leaks=$(grep -c "ERROR: LeakSanitizer" "$dir/server.log")
asan=$(grep -c "ERROR: AddressSanitizer\|runtime error:" "$dir/server.log")
growth=$(awk -v a="$baseline_rss" -v b="$final_rss" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')

echo "soak: $((rounds * members)) join/leave cycles in $rounds rounds, $failed failed rounds"
echo "soak: RSS baseline ${baseline_rss} KiB -> end ${final_rss} KiB (${growth}%)"
echo "soak: fds baseline ${baseline_fds} -> end ${final_fds}"
echo "soak: steady pair exit ${steady_rc}; hisoka exit ${server_rc}; LSan leak reports ${leaks}; ASan/UBSan reports ${asan}"
ok=1
[ "$failed" -eq 0 ] || ok=0
[ "$steady_rc" -eq 0 ] || ok=0
[ "$server_rc" -eq 0 ] || ok=0
[ "$leaks" -eq 0 ] && [ "$asan" -eq 0 ] || { ok=0; tail -40 "$dir/server.log"; }
awk -v g="$growth" 'BEGIN { exit !(g <= 5.0) }' || ok=0
[ "$final_fds" -le "$baseline_fds" ] || ok=0
rm -rf "$dir"
if [ "$ok" -eq 1 ]; then echo "soak: PASS"; else echo "soak: FAIL"; exit 1; fi
