#!/bin/bash
# `make bench`: hisoka against Janus 1.1.2 (Debian's janus package, VideoRoom plugin) and
# the raw forwarding ceiling, each server pinned to core 0 and the generator to core 1
# (taskset). Scenarios: fan-out 1 -> 10/50/200 subscribers, meeting (10 sendrecv members,
# audio + video), join storm (100 subscribers join at once while 1 -> 10 media flows).
# Servers: hisoka; janus (Janus' default threading: one loop thread per handle); janus-el1
# (event_loops = 1: all media on one loop thread); raw.
# Prints one table; writes bench/results/<date>.md and .json.
#   BENCH_SECONDS=10   media window per scenario (default 10; the whole run stays well
#                      under 20 minutes)
#   BENCH_SCENARIOS="fanout10 fanout50 fanout200 meeting joinstorm"
#   BENCH_SERVERS="hisoka janus janus-el1 raw" (Janus is skipped when not installed)
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
SECONDS_PER=${BENCH_SECONDS:-10}
SCENARIOS=${BENCH_SCENARIOS:-"fanout10 fanout50 fanout200 meeting joinstorm"}
SERVERS=${BENCH_SERVERS:-"hisoka janus janus-el1 raw"}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
GEN_CPU=${BENCH_GEN_CPU:-1}
LOAD=$BUILD/hisoka-load
for b in "$BUILD/hisoka" "$LOAD" "$BUILD/hisoka-raw-relay"; do
    [ -x "$b" ] || { echo "bench: $b missing (make build)" >&2; exit 2; }
done
if [ "$(nproc)" -lt 2 ]; then
    SERVER_CPU=0 GEN_CPU=0
fi
JANUS_LIB=${JANUS_LIB:-/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/janus}
if ! command -v janus >/dev/null || [ ! -e "$JANUS_LIB/plugins/libjanus_videoroom.so" ]; then
    case " $SERVERS " in
    *" janus"*)
        echo "bench: janus not installed (apt-get install janus): Janus runs skipped" >&2
        SERVERS=$(echo "$SERVERS" | tr ' ' '\n' | grep -v '^janus' | tr '\n' ' ')
        ;;
    esac
fi
tmp=$(mktemp -d)
server_pid=
# SIGTERM, then SIGKILL after 5 s: Janus 1.1.2 sometimes hangs in its shutdown
# ("Stopping server, please wait...") after many handles.
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}
cleanup() {
    stop_server
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

# Janus can not gather loopback candidates (it skips loopback interfaces), so its ICE
# candidate is this host's first global IPv4 address and the generator binds its UDP
# sockets there: the traffic still never leaves the host (a local route).
host_ip() {
    ip -4 -o addr show scope global 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4; exit}'
}

# $1: "default" (Janus' own threading) or "el1" (event_loops = 1).
start_janus() {
    local ws ip dir=$tmp/janus loops=
    ws=$(free_port)
    ip=$(host_ip)
    if [ -z "$ip" ]; then
        echo "bench: no global IPv4 address for Janus' ICE candidate" >&2
        return 1
    fi
    [ "$1" = el1 ] && loops="event_loops = 1"
    mkdir -p "$dir"
    local plugins transports
    plugins=$(cd "$JANUS_LIB/plugins" && ls -- *.so | grep -vx libjanus_videoroom.so | paste -sd, -)
    transports=$(cd "$JANUS_LIB/transports" && ls -- *.so | grep -vx libjanus_websockets.so |
        paste -sd, -)
    cat >"$dir/janus.jcfg" <<CONF
general: {
	configs_folder = "$dir"
	plugins_folder = "$JANUS_LIB/plugins"
	transports_folder = "$JANUS_LIB/transports"
	events_folder = "$JANUS_LIB/events"
	loggers_folder = "$JANUS_LIB/loggers"
	debug_level = 3
	interface = "$ip"
	session_timeout = 60
	$loops
}
certificates: {
	# none given: Janus generates a self-signed ECDSA P-256 certificate, like hisoka's
	dtls_accept_selfsigned = true
}
media: {
	ipv6 = false
	dtls_mtu = 1200
}
nat: {
	nice_debug = false
	ice_lite = true
	full_trickle = false
	ice_enforce_list = "$ip"
	ignore_mdns = true
}
plugins: {
	disable = "$plugins"
}
transports: {
	disable = "$transports"
}
loggers: {
	disable = "libjanus_jsonlog.so"
}
events: {
}
CONF
    cat >"$dir/janus.transport.websockets.jcfg" <<CONF
general: {
	json = "plain"
	ws = true
	ws_port = $ws
	ws_ip = "127.0.0.1"
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
CONF
    # The E2EE room: publishers must publish with e2ee (jsep "e2ee": true); Opus + VP8;
    # no recording, no FIR timer, a bitrate cap well above the generator's 1 Mbit/s.
    cat >"$dir/janus.plugin.videoroom.jcfg" <<CONF
general: {
	events = false
}
room-1234: {
	description = "hisoka bench"
	publishers = 300
	bitrate = 4000000
	fir_freq = 0
	audiocodec = "opus"
	videocodec = "vp8"
	require_e2ee = true
	record = false
}
CONF
    taskset -c "$SERVER_CPU" janus -F "$dir" -C "$dir/janus.jcfg" >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$ws/" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && break
        sleep 0.1
    done
    target=(--mode janus --url "ws://127.0.0.1:$ws/" --janus-room 1234 --local-ip "$ip")
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
        janus) start_janus default || continue ;;
        janus-el1) start_janus el1 || continue ;;
        *)
            echo "bench: unknown server $server" >&2
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
        stop_server
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
// Efficiency: packets delivered to subscribers per server CPU second over the window.
const eff = (r) => (r && r.server_cpu_s > 0 ? r.window_packets_received / r.server_cpu_s : NaN);
const ratio = (r, other) => {
  const o = find(r.scenario, other);
  return o && eff(o) > 0 && eff(r) > 0 ? f(eff(r) / eff(o), 2) : '-';
};
const head = ['scenario', 'server', 'fwd pkt/s', 'pkt/CPU-s', 'CPU s/1M pkts', '÷janus', '÷janus-el1',
  '÷raw', 'lat p50 us', 'p99', 'p99.9', 'loss %', 'join p50 ms', 'p99', 'RSS KiB/leg', 'gen CPU s',
  'altered', 'exit', 'note'];
const lines = [head];
for (const r of rows) {
  const joins = r.late > 0 ? r.late_join_ms : r.join_ms;
  const notes = [];
  const srvCpu = r.server_cpu_s / (r.window_s || 1);
  if (r.loss_pct > 1) notes.push(`saturated: ${f(r.loss_pct, 0)}% lost, server ${f(srvCpu, 2)} CPU`);
  if (r.peers_failed > 0) notes.push(`${r.peers_failed} peers failed`);
  if (r.peers_without_media > 0) notes.push(`${r.peers_without_media} without media`);
  lines.push([r.scenario, r.server, f(r.forwarded_pps, 0), f(eff(r), 0),
    f(r.server_cpu_s_per_1M_forwarded, 2), ratio(r, 'janus'), ratio(r, 'janus-el1'), ratio(r, 'raw'),
    f(r.latency_us.p50, 0), f(r.latency_us.p99, 0), f(r.latency_us.p999, 0), f(r.loss_pct, 3),
    f(joins.p50, 1), f(joins.p99, 1), f(r.server_rss_kb_per_leg, 1), f(r.generator_cpu_s, 2),
    String(r.integrity_failures), String(r.exit_code), notes.join('; ') || '-']);
}
const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
const table = lines.map((l) => l.map((c, i) => c.padStart(widths[i])).join('  ')).join('\n');
console.log(table);
const md = [`# Benchmark ${stamp}`, '',
  `Media window ${secs} s per scenario; server pinned to one core, generator to the other (taskset).`,
  'pkt/CPU-s: packets delivered to subscribers per server CPU second (utime+stime of all its',
  'threads, /proc/PID/stat, over the media window); ÷janus, ÷janus-el1, ÷raw: this row\'s pkt/CPU-s',
  'divided by that server\'s in the same scenario (hisoka ÷janus = 3 means hisoka forwards 3x',
  'as many packets per CPU second). CPU s/1M pkts is the inverse. Latency: publisher send to',
  'subscriber receipt of the last packet of sampled frames (every 5th), generator included.',
  'Join: WebSocket connect to first forwarded RTP (join storm: the 100 late joiners). RSS/leg:',
  'VmRSS growth from before the first connect to media start, divided by receiving streams.',
  'janus: Debian\'s Janus 1.1.2, VideoRoom, ICE-lite, E2EE room, default threading (a loop',
  'thread per handle); janus-el1: the same with event_loops = 1. A saturated server (note) is',
  'at one full core: its pkt/CPU-s is still what one core carries.', '',
  '| ' + head.join(' | ') + ' |', '|' + head.map(() => '---').join('|') + '|',
  ...lines.slice(1).map((l) => '| ' + l.join(' | ') + ' |'), ''].join('\n');
fs.writeFileSync(`${base}.md`, md);
fs.writeFileSync(`${base}.json`, JSON.stringify(rows, null, 1) + '\n');
console.log(`\nwritten ${base}.md and ${base}.json`);
JS
