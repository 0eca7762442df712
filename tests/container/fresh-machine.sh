#!/bin/sh
# The README's two commands on a fresh Debian 12 machine: a debootstrap'd Debian 12 root
# file system under podman (tests/container/lib.sh), a clean clone of this repository,
# and nothing installed but what a minimal system has plus make and sudo.
#   1. `make run` as a user who is not root (tools/deps.sh goes through sudo): the
#      packages are installed, hisoka is built and started, and /health answers 200.
#      SIGTERM then stops it with exit 0.
#   2. `make test` as root, with HISOKA_TEST_SUITES (default "unit client integration")
#      limiting the suites; every install and build step is the real one.
# Ends with "N passed, N failed" (one check per step). Needs root (rootful podman).
# Environment: HK_CT_UNCOMMITTED=1 also takes the working tree's uncommitted changes;
# HK_CT_FRESH_SUITES overrides the suites; HK_CT_KEEP=1 keeps the container.
HK_CT_NAME=container-fresh
. "$(dirname "$0")/lib.sh"
hk_ct_init

SUITES=${HK_CT_FRESH_SUITES:-unit client integration}
NAME=hk-fresh-$$
SRC=$HK_CT_WORK/fresh-src
LOGS=$HK_CT_WORK/fresh-logs
start=$(date +%s)
passed=0
failed=0

check() {
    if [ "$1" = 0 ]; then
        passed=$((passed + 1))
        echo "ok   $2"
    else
        failed=$((failed + 1))
        echo "FAILED $2"
    fi
}

cleanup() {
    if [ "${HK_CT_KEEP:-0}" != 1 ]; then
        podman rm -f -t 0 "$NAME" >/dev/null 2>&1
        rm -rf "$SRC"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

in_ct() {
    podman exec "$NAME" bash -c "$1"
}

# Process ids of hisoka in the container (a minimal system has no pgrep).
HISOKA_PIDS='for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = hisoka ] && echo ${d#/proc/}; done'

hk_ct_clone "$SRC"
rm -rf "$LOGS"
mkdir -p "$LOGS"
hk_ct_log "clean clone at $(git -C "$SRC" rev-parse --short HEAD)$([ "${HK_CT_UNCOMMITTED:-0}" = 1 ] && echo ' + uncommitted changes')"

podman run -d --pull=never --name "$NAME" --hostname fresh-debian12 "$HK_CT_BASE" sleep infinity >/dev/null ||
    hk_ct_fail "podman run of the base image failed"
podman cp "$SRC" "$NAME:/home-src" || hk_ct_fail "podman cp of the clone failed"

# What a minimal Debian 12 lacks before the README's first command can be typed: make
# itself, and sudo for a user who is not root (the README says so).
hk_ct_log "apt-get install make sudo"
in_ct 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends make sudo' \
    >"$LOGS/prereq.log" 2>&1 || {
    tail -20 "$LOGS/prereq.log"
    hk_ct_fail "installing make and sudo failed"
}
in_ct 'useradd --create-home --shell /bin/bash dev &&
       echo "dev ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/dev &&
       mv /home-src /home/dev/hisoka && chown -R dev:dev /home/dev/hisoka' ||
    hk_ct_fail "creating the user failed"
in_ct 'for p in libuv1-dev libnice-dev libsrtp2-dev libwebsockets-dev libjansson-dev pkg-config gcc; do
           dpkg-query -W -f="\${Status}" $p 2>/dev/null | grep -q "ok installed" && echo "$p is already installed"
       done; true' | grep . && hk_ct_fail "the base image is not fresh"

# 1. make run, as the README says, in the background; /health must answer.
hk_ct_log "make run (as user dev)"
podman exec -d "$NAME" bash -c 'cd /home/dev/hisoka && su dev -c "make run" >/tmp/make-run.log 2>&1; echo "make run exited $?" >>/tmp/make-run.log'
health=""
deadline=$(($(date +%s) + ${HK_CT_RUN_TIMEOUT:-900}))
while [ "$(date +%s)" -lt "$deadline" ]; do
    health=$(in_ct 'exec 3<>/dev/tcp/127.0.0.1/3000 && printf "GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 &&
                    IFS=" " read -r _ code _ <&3 && echo "$code"' 2>/dev/null)
    [ "$health" = 200 ] && break
    in_ct 'grep -q "^make run exited" /tmp/make-run.log' 2>/dev/null && break
    sleep 2
done
podman cp "$NAME:/tmp/make-run.log" "$LOGS/make-run.log" >/dev/null 2>&1
if [ "$health" = 200 ]; then
    check 0 "make run: /health 200 after $(($(date +%s) - start)) s"
else
    tail -30 "$LOGS/make-run.log"
    check 1 "make run: /health did not answer 200 (last: '${health}'; log above)"
fi
grep -q "deps: installing" "$LOGS/make-run.log"
check $? "make run installed the missing packages itself"

# SIGTERM to hisoka (make's child) stops it with exit 0, and make with it.
in_ct "kill -TERM \$($HISOKA_PIDS)" >/dev/null 2>&1
for _ in $(seq 1 30); do
    in_ct 'grep -q "^make run exited" /tmp/make-run.log' 2>/dev/null && break
    sleep 1
done
podman cp "$NAME:/tmp/make-run.log" "$LOGS/make-run.log" >/dev/null 2>&1
if grep -q "^make run exited 0" "$LOGS/make-run.log"; then
    check 0 "SIGTERM: hisoka stopped, make run ended without an error"
else
    tail -5 "$LOGS/make-run.log"
    check 1 "SIGTERM: hisoka did not stop cleanly"
fi

# 2. make test as root, the suites limited, the install and build steps real.
hk_ct_log "make test (HISOKA_TEST_SUITES=\"$SUITES\")"
in_ct "cd /home/dev/hisoka && HISOKA_TEST_SUITES='$SUITES' make test" >"$LOGS/make-test.log" 2>&1
rc=$?
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOGS/make-test.log" | tail -1)
tp=$(echo "$summary" | awk '{print $1}')
tf=$(echo "$summary" | awk '{print $3}')
if [ "$rc" = 0 ] && [ -n "$summary" ] && [ "${tp:-0}" -gt 0 ] && [ "$tf" = 0 ]; then
    check 0 "make test: exit 0, $summary"
else
    tail -40 "$LOGS/make-test.log"
    check 1 "make test: exit $rc, '${summary:-no summary line}'"
fi

hk_ct_log "done in $(($(date +%s) - start)) s; logs in $LOGS"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
