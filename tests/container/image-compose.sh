#!/bin/sh
# docker/Dockerfile and docker/compose.yaml run for real, without Docker: the images are
# built by rootful podman from a clean clone, and Debian's docker-compose runs the
# Compose file against podman's Docker-compatible API on a unix socket of our own.
# Checks, one line each:
#   1. image       the runtime image passes its own HEALTHCHECK (and fails it when
#                  /health is not there), runs as uid and gid 10001, and is under 150 MB;
#   2. browser     the Compose browser test (service browser-tests) passes through the
#                  hisoka and hisoka-2 containers (a call through each, one Redis), which
#                  the compose healthcheck reports healthy;
#   3. offer       a WebSocket connect on the published signaling port gets an offer;
#                  only signaling and API are published, both on 127.0.0.1;
#   4. sigterm     SIGTERM (podman stop, docker-compose stop) ends hisoka with exit code 0.
# Ends with "N passed, N failed"; a step that cannot run (no root, no podman) fails.
# HK_CT_UNCOMMITTED=1 builds the working tree's uncommitted changes as well.
# The podman workarounds are described in docker/README.md ("Running it with podman").
# Containers, the compose network and the API socket are removed on every exit; the
# images stay in podman's storage (the next build reuses their layers).
set -u
# shellcheck disable=SC2034 # read by lib.sh
HK_CT_NAME=container-image
. "$(dirname "$0")/lib.sh"

START=$(date +%s)
W=$HK_CT_WORK/image-compose
SRC=$W/src
PROJECT=hkimagetest
NETWORK=${PROJECT}_hisoka-net
RUNTIME_IMAGE=docker.io/library/hisoka:dev
BROWSER_IMAGE=docker.io/library/hisoka-browser-tests:dev
REDIS_IMAGE=docker.io/library/hisoka-redis:dev
SIZE_LIMIT=150000000
ALONE=hkimagetest-alone
BROKEN=hkimagetest-broken

command -v docker-compose >/dev/null 2>&1 || hk_ct_fail "docker-compose is missing (make deps-test installs it)"
command -v curl >/dev/null 2>&1 || hk_ct_fail "curl is missing (make deps-test installs it)"
NODE=$HK_CT_ROOT/tools/node/node_modules/.bin/node
[ -x "$NODE" ] || NODE=$(command -v node) || hk_ct_fail "node is missing (make deps-test)"
[ -d "$HK_CT_ROOT/tests/node_modules/ws" ] || hk_ct_fail "tests/node_modules/ws is missing (make deps-test)"

passed=0
failed=0
check() { # check NAME OK|FAIL MESSAGE
    if [ "$2" = OK ]; then
        echo "ok - $1: $3"
        passed=$((passed + 1))
    else
        echo "not ok - $1: $3"
        failed=$((failed + 1))
    fi
}

SOCK_DIR=""
service_pid=""
health_pid=""
remove_containers() {
    podman rm -f -t 0 "$ALONE" "$BROKEN" >/dev/null 2>&1
    podman ps -aq --filter "label=com.docker.compose.project=$PROJECT" |
        xargs -r podman rm -f -t 0 >/dev/null 2>&1
    podman network exists "$NETWORK" 2>/dev/null && podman network rm -f "$NETWORK" >/dev/null 2>&1
    true
}
cleanup() {
    [ -n "$health_pid" ] && kill "$health_pid" 2>/dev/null
    remove_containers
    if [ -n "$service_pid" ]; then
        kill "$service_pid" 2>/dev/null
        wait "$service_pid" 2>/dev/null
    fi
    [ -n "$SOCK_DIR" ] && rm -rf "$SOCK_DIR"
    rm -rf "$SRC"
}

hk_ct_init
mkdir -p "$W"
# One run at a time: the compose network's subnet and the names are fixed.
exec 9>"$W.lock"
flock -w 900 9 || hk_ct_fail "another run of this test holds $W.lock"
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
remove_containers # what a killed run may have left

# --- the images, from a clean clone ------------------------------------------------
HK_CT_UNCOMMITTED=${HK_CT_UNCOMMITTED:-0} hk_ct_clone "$SRC"

# --format docker: the OCI format has no HEALTHCHECK, podman would drop it. The tags
# are the names docker-compose asks the API for (hisoka:dev is docker.io/library/...).
build_image() { # TARGET TAG
    old=$(podman image inspect --format '{{.Id}}' "$2" 2>/dev/null)
    hk_ct_log "podman build --target $1 (log: $W/build-$1.log)"
    podman build --format docker --layers -f "$SRC/docker/Dockerfile" --target "$1" \
        -t "$2" "$SRC" >"$W/build-$1.log" 2>&1 || {
        tail -30 "$W/build-$1.log"
        hk_ct_fail "podman build --target $1 failed (log above)"
    }
    new=$(podman image inspect --format '{{.Id}}' "$2")
    # The image this tag had before, now untagged: not worth keeping.
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        podman rmi "$old" >/dev/null 2>&1
    fi
    true
}
build_image runtime "$RUNTIME_IMAGE"
build_image browser-tests "$BROWSER_IMAGE"
build_image redis "$REDIS_IMAGE"
runtime_size=$(podman image inspect --format '{{.Size}}' "$RUNTIME_IMAGE")
browser_size=$(podman image inspect --format '{{.Size}}' "$BROWSER_IMAGE")
hk_ct_log "runtime image $((runtime_size / 1000000)) MB, browser-tests image $((browser_size / 1000000)) MB"

health_status() {
    podman inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null
}
# Runs the container's healthcheck until it passes, at most $2 seconds. Podman runs
# healthchecks from systemd timers; there is no systemd here, so this is the timer.
wait_healthy() { # CONTAINER SECONDS
    i=0
    while [ "$i" -lt "$2" ]; do
        podman healthcheck run "$1" >/dev/null 2>&1 && return 0
        sleep 1
        i=$((i + 1))
    done
    return 1
}

# --- 1. the runtime image on its own: its HEALTHCHECK, user and size ----------------
problems=""
podman run -d --name "$ALONE" --network none "$RUNTIME_IMAGE" >/dev/null 2>"$W/alone.err" ||
    problems="$problems; podman run failed: $(tail -1 "$W/alone.err")"
podman run -d --name "$BROKEN" --network none -e HISOKA_API_PORT=1 "$RUNTIME_IMAGE" >/dev/null 2>&1 ||
    problems="$problems; podman run (HISOKA_API_PORT=1) failed"
health_cmd=$(podman image inspect --format '{{.Config.Healthcheck.Test}}' "$RUNTIME_IMAGE" 2>/dev/null)
case "$health_cmd" in
*/health*) ;;
*) problems="$problems; the image has no HEALTHCHECK ($health_cmd)" ;;
esac
if wait_healthy "$ALONE" 20; then
    [ "$(health_status "$ALONE")" = healthy ] ||
        problems="$problems; health status '$(health_status "$ALONE")' after a passing check"
    # The same image, probing a port where nothing listens: the check must fail.
    if podman healthcheck run "$BROKEN" >/dev/null 2>&1; then
        problems="$problems; the healthcheck passes with HISOKA_API_PORT=1 (it checks nothing)"
    fi
else
    problems="$problems; HEALTHCHECK did not pass in 20 s ($(podman logs --tail 5 "$ALONE" 2>&1 | tr '\n' ' '))"
fi
ids=$(podman exec "$ALONE" id -u 2>&1):$(podman exec "$ALONE" id -g 2>&1)
[ "$ids" = 10001:10001 ] || problems="$problems; runs as uid:gid $ids, not 10001:10001"
[ "$runtime_size" -lt "$SIZE_LIMIT" ] ||
    problems="$problems; $((runtime_size / 1000000)) MB, the limit is $((SIZE_LIMIT / 1000000)) MB"
if [ -z "$problems" ]; then
    check image OK "healthy by its own HEALTHCHECK, unhealthy without /health, uid:gid 10001:10001, $((runtime_size / 1000000)) MB"
else
    check image FAIL "${problems#; }"
fi
# podman stop (SIGTERM, STOPSIGNAL) of the image run on its own; reported in check 4.
podman rm -f -t 0 "$BROKEN" >/dev/null 2>&1
podman stop -t 15 "$ALONE" >/dev/null 2>&1
alone_exit=$(podman inspect --format '{{.State.ExitCode}}' "$ALONE" 2>/dev/null)
podman logs "$ALONE" >"$W/alone.log" 2>&1
podman rm -f -t 0 "$ALONE" >/dev/null 2>&1

# --- docker-compose on podman's API --------------------------------------------------
SOCK_DIR=$(mktemp -d /tmp/hk-podman-api.XXXXXX)
SOCK=$SOCK_DIR/podman.sock
# CONTAINERS_CONF (runc, cgroupfs, ulimits) is in the service's environment: hk_ct_init.
podman system service --time=0 "unix://$SOCK" >"$W/podman-service.log" 2>&1 &
service_pid=$!
i=0
until curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || hk_ct_fail "podman system service did not answer on $SOCK"
    sleep 0.2
done

free_port() {
    "$NODE" -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });"
}
SIGNALING_PORT=$(free_port)
API_PORT=$(free_port)
# docker-compose's settings; DOCKER_HOST means nothing to podman's own commands.
export DOCKER_HOST="unix://$SOCK" COMPOSE_PROJECT_NAME=$PROJECT \
    HISOKA_SIGNALING_HOST_PORT="$SIGNALING_PORT" HISOKA_API_HOST_PORT="$API_PORT"
COMPOSE_YAML=$SRC/docker/compose.yaml
compose() {
    timeout 300 docker-compose -f "$COMPOSE_YAML" --ansi never "$@"
}

# One `up` for both services: docker-compose 1.29 reads podman's IPAM option
# driver=host-local as a changed network on a second `up` and refuses to go on.
# up -d waits for both nodes to be healthy (depends_on: service_healthy) before it starts
# browser-tests; the loop below runs their healthchecks meanwhile, and until the end.
(while kill -0 $$ 2>/dev/null; do # ends with this script, even on SIGKILL
    for service in hisoka hisoka-2; do # the two nodes of the cluster
        ctr=$(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" \
            --filter label=com.docker.compose.service=$service)
        [ -n "$ctr" ] && podman healthcheck run "$ctr" >/dev/null 2>&1
    done
    sleep 1
done) &
health_pid=$!
hk_ct_log "docker-compose up -d (signaling 127.0.0.1:$SIGNALING_PORT, API 127.0.0.1:$API_PORT)"
compose up -d --no-build >"$W/compose-up.log" 2>&1 || {
    cat "$W/compose-up.log"
    hk_ct_fail "docker-compose up failed (log above)"
}
HISOKA=$(compose ps -q hisoka)
BROWSER=$(compose ps -q browser-tests)
if [ -z "$HISOKA" ] || [ -z "$BROWSER" ]; then
    hk_ct_fail "docker-compose ps: hisoka '$HISOKA', browser-tests '$BROWSER'"
fi
hisoka_health=$(health_status "$HISOKA")
# Podman 4.3 splits a ["CMD", ...] healthcheck at spaces (bash -c exec: always passes);
# compose.yaml's CMD-SHELL form must arrive as one command string.
health_words=$(podman inspect --format '{{len .Config.Healthcheck.Test}} {{index .Config.Healthcheck.Test 0}}' "$HISOKA")

# --- 2. the Compose browser test -------------------------------------------------------
hk_ct_log "waiting for browser-tests"
browser_exit=$(timeout 300 podman wait "$BROWSER" 2>&1)
compose logs --no-color browser-tests >"$W/browser-tests.log" 2>&1
tap_pass=$(grep -E '# pass [0-9]+' "$W/browser-tests.log" | tail -1 | sed 's/.*# pass //')
tap_fail=$(grep -E '# fail [0-9]+' "$W/browser-tests.log" | tail -1 | sed 's/.*# fail //')
if [ "$hisoka_health" = healthy ] && [ "$health_words" = "2 CMD-SHELL" ] && [ "$browser_exit" = 0 ] && [ "${tap_pass:-0}" -gt 0 ] &&
    [ "${tap_fail:-1}" = 0 ]; then
    check browser OK "hisoka healthy by the compose healthcheck; browser-tests exit 0, $tap_pass passed"
else
    grep -E 'not ok|Error|assert' "$W/browser-tests.log" | head -20
    tail -20 "$W/browser-tests.log"
    check browser FAIL "hisoka health '$hisoka_health' (healthcheck: $health_words); browser-tests exit ${browser_exit:-?}, pass ${tap_pass:-?}, fail ${tap_fail:-?} (log: $W/browser-tests.log)"
fi

# --- 3. a WebSocket connect on the published port gets an offer ----------------------
cat >"$W/offer.cjs" <<'EOF'
// Sends a Sora connect to argv[2] and prints the offer's first SDP line; exits 1 if
// no offer comes within 10 s.
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[2]);
const timer = setTimeout(() => { console.log('no offer within 10 s'); process.exit(1); }, 10000);
ws.on('open', () => ws.send(JSON.stringify({ type: 'connect', role: 'sendrecv', channel_id: 'x' })));
ws.on('message', (data) => {
  const msg = JSON.parse(data);
  if (msg.type !== 'offer') { console.log(`got ${msg.type}: ${String(data).slice(0, 200)}`); return; }
  console.log(`offer ${msg.connection_id || ''}: ${String(msg.sdp).split('\r\n')[0]}`);
  clearTimeout(timer);
  ws.close();
  process.exit(0);
});
ws.on('error', (e) => { console.log(`error: ${e.message}`); process.exit(1); });
EOF
problems=""
offer=$(NODE_PATH=$HK_CT_ROOT/tests/node_modules "$NODE" "$W/offer.cjs" \
    "ws://127.0.0.1:$SIGNALING_PORT/signaling" 2>&1) || problems="; $offer"
published=$(podman port "$HISOKA" | sort | tr '\n' ' ')
expected="3000/tcp -> 127.0.0.1:$API_PORT 5000/tcp -> 127.0.0.1:$SIGNALING_PORT "
[ "$published" = "$expected" ] || problems="$problems; published: $published(want $expected)"
if [ -z "$problems" ]; then
    check offer OK "$offer; published: $published"
else
    check offer FAIL "${problems#; }"
fi

# --- 4. SIGTERM ends hisoka with exit code 0 -----------------------------------------
kill "$health_pid" 2>/dev/null
health_pid=""
t0=$(date +%s)
compose stop hisoka >"$W/compose-stop.log" 2>&1
stop_seconds=$(($(date +%s) - t0))
compose_exit=$(podman inspect --format '{{.State.ExitCode}}' "$HISOKA" 2>/dev/null)
compose logs --no-color hisoka >"$W/hisoka.log" 2>&1
if [ "$alone_exit" = 0 ] && [ "$compose_exit" = 0 ]; then
    check sigterm OK "podman stop: exit 0; docker-compose stop: exit 0 in $stop_seconds s"
else
    tail -5 "$W/hisoka.log"
    check sigterm FAIL "podman stop: exit ${alone_exit:-?}; docker-compose stop: exit ${compose_exit:-?} in $stop_seconds s (logs: $W/alone.log, $W/hisoka.log)"
fi

compose down --timeout 5 >/dev/null 2>&1
storage=$(du -sh "$(podman info --format '{{.Store.GraphRoot}}')" 2>/dev/null | cut -f1)
elapsed=$(($(date +%s) - START))
hk_ct_log "runtime image $((runtime_size / 1000000)) MB, browser-tests image $((browser_size / 1000000)) MB, podman storage ${storage:-?}, elapsed $((elapsed / 60)) min $((elapsed % 60)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
