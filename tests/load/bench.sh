#!/bin/bash
# `make bench`: hisoka against the raw forwarding ceiling (and Janus once --mode janus
# exists), each server pinned to core 0 and the generator to core 1 (taskset).
# Scenarios: fan-out 1 -> 10/50/200 subscribers, meeting (10 sendrecv members, audio +
# video), join storm (100 subscribers join at once while 1 -> 10 media flows).
# Prints one table; writes bench/results/<date>.md and .json.
#   BENCH_SECONDS=10   media window per scenario (default 10; the whole run stays well
#                      under 20 minutes)
#   BENCH_SCENARIOS="fanout10 fanout50 fanout200 meeting joinstorm"
#   BENCH_SERVERS="hisoka raw"
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
SECONDS_PER=${BENCH_SECONDS:-10}
SCENARIOS=${BENCH_SCENARIOS:-"fanout10 fanout50 fanout200 meeting joinstorm"}
SERVERS=${BENCH_SERVERS:-"hisoka raw"}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
GEN_CPU=${BENCH_GEN_CPU:-1}
LOAD=$BUILD/hisoka-load
for b in "$BUILD/hisoka" "$LOAD" "$BUILD/hisoka-raw-relay"; do
    [ -x "$b" ] || { echo "bench: $b missing (make build)" >&2; exit 2; }
done
if [ "$(nproc)" -lt 2 ]; then
    SERVER_CPU=0 GEN_CPU=0
fi
tmp=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

scenario_args() {
    case $1 in
    fanout10) echo "--publishers 1 --subscribers 10" ;;
    fanout50) echo "--publishers 1 --subscribers 50" ;;
    fanout200) echo "--publishers 1 --subscribers 200" ;;
    meeting) echo "--publishers 0 --subscribers 0 --members 10 --connect-interval-ms 300" ;;
    joinstorm) echo "--publishers 1 --subscribers 10 --late 100 --late-at $((SECONDS_PER / 3))" ;;
    esac
}

start_hisoka() {
    local sig api media
    sig=$(free_port) api=$(free_port) media=$(free_port)
    cat >"$tmp/sora.conf" <<CONF
listen_address = 127.0.0.1
signaling_port = $sig
api_port = $api
media_port = $media
public_ipv4_address = 127.0.0.1
e2ee = true
max_connections_per_channel = 500
max_connections = 1000
log_level = warn
CONF
    taskset -c "$SERVER_CPU" "$BUILD/hisoka" --config "$tmp/sora.conf" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$api/health" >/dev/null 2>&1 && break
        sleep 0.05
    done
    target=(--url "ws://127.0.0.1:$sig/signaling")
}

start_raw() {
    local port
    port=$(free_port)
    taskset -c "$SERVER_CPU" "$BUILD/hisoka-raw-relay" --port "$port" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    sleep 0.2
    target=(--mode raw --relay "127.0.0.1:$port")
}

results=()
for scenario in $SCENARIOS; do
    for server in $SERVERS; do
        case $server in
        hisoka) start_hisoka ;;
        raw) start_raw ;;
        janus)
            echo "bench: janus skipped: hisoka-load --mode janus is not implemented" >&2
            continue
            ;;
        esac
        out="$tmp/$scenario-$server.json"
        echo "=== $scenario on $server" >&2
        # shellcheck disable=SC2046
        timeout $((SECONDS_PER + 90)) taskset -c "$GEN_CPU" "$LOAD" "${target[@]}" \
            $(scenario_args "$scenario") --duration "$SECONDS_PER" --sample 5 \
            --server-pid "$server_pid" --channel-prefix "$scenario" --json "$out"
        rc=$?
        [ $rc -ne 0 ] && echo "bench: generator exited $rc on $scenario/$server" >&2
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=
        if [ -s "$out" ]; then
            node -e '
              const fs = require("fs");
              const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
              r.scenario = process.argv[2]; r.server = process.argv[3]; r.exit_code = +process.argv[4];
              fs.writeFileSync(process.argv[1], JSON.stringify(r));
            ' "$out" "$scenario" "$server" "$rc"
            results+=("$out")
        fi
    done
done

mkdir -p bench/results
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
node - "$stamp" "bench/results/$stamp" "$SECONDS_PER" "${results[@]}" <<'JS'
const fs = require('fs');
const [stamp, base, secs, ...files] = process.argv.slice(2);
const rows = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const find = (sc, sv) => rows.find((r) => r.scenario === sc && r.server === sv);
const f = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? '-' : Number(x).toFixed(d));
const head = ['scenario', 'server', 'fwd pkt/s', 'CPU s/1M pkts', 'vs raw', 'vs janus',
  'lat p50 us', 'p99', 'p99.9', 'loss %', 'join p50 ms', 'p99', 'RSS KiB/leg', 'gen CPU s', 'altered', 'exit'];
const lines = [head];
for (const r of rows) {
  const cpu = r.server_cpu_s_per_1M_forwarded;
  const raw = find(r.scenario, 'raw');
  const janus = find(r.scenario, 'janus');
  const joins = r.late > 0 ? r.late_join_ms : r.join_ms;
  lines.push([r.scenario, r.server, f(r.forwarded_pps, 0), f(cpu, 2),
    raw && raw.server_cpu_s_per_1M_forwarded ? f(cpu / raw.server_cpu_s_per_1M_forwarded, 2) : '-',
    janus && janus.server_cpu_s_per_1M_forwarded ? f(cpu / janus.server_cpu_s_per_1M_forwarded, 2) : '-',
    f(r.latency_us.p50, 0), f(r.latency_us.p99, 0), f(r.latency_us.p999, 0), f(r.loss_pct, 3),
    f(joins.p50, 1), f(joins.p99, 1), f(r.server_rss_kb_per_leg, 1), f(r.generator_cpu_s, 2),
    String(r.integrity_failures), String(r.exit_code)]);
}
const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
const table = lines.map((l) => l.map((c, i) => c.padStart(widths[i])).join('  ')).join('\n');
console.log(table);
const md = [`# Benchmark ${stamp}`, '',
  `Media window ${secs} s per scenario; server pinned to one core, generator to the other (taskset).`,
  'CPU s/1M pkts: server CPU seconds (utime+stime from /proc/PID/stat over the media window) per',
  'million packets delivered to subscribers. Latency: publisher send to subscriber receipt of the',
  'last packet of sampled frames (every 5th), generator included. Join: WebSocket connect to first',
  'forwarded RTP (join storm: the 100 late joiners). RSS/leg: VmRSS growth from before the first',
  'connect to media start, divided by receiving streams.', '',
  '| ' + head.join(' | ') + ' |', '|' + head.map(() => '---').join('|') + '|',
  ...lines.slice(1).map((l) => '| ' + l.join(' | ') + ' |'), ''].join('\n');
fs.writeFileSync(`${base}.md`, md);
fs.writeFileSync(`${base}.json`, JSON.stringify(rows, null, 1) + '\n');
console.log(`\nwritten ${base}.md and ${base}.json`);
JS
