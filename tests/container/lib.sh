# Shared by the tests in tests/container/ (sourced, POSIX sh). Rootful podman on a
# machine with no Docker engine and no registry access:
#   - a Debian 12 base image made locally with debootstrap, tagged as the Docker Hub
#     names the Dockerfile uses (docker.io/library/debian:12-slim), so nothing is pulled;
#   - podman's own settings in a containers.conf of ours (CONTAINERS_CONF), never in /etc.
# Every workaround is described in docker/README.md ("Running it with podman").
#
# Callers set HK_CT_NAME (their name in messages) and call hk_ct_init first. A step that
# cannot run on this machine prints why and ends the test with "0 passed, 1 failed".

HK_CT_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HK_CT_WORK=${HK_CT_WORK:-$HK_CT_ROOT/build/container}
HK_CT_BASE=docker.io/library/debian:12-slim
HK_CT_MIRROR=${HK_CT_MIRROR:-http://deb.debian.org/debian}

hk_ct_fail() {
    echo "$HK_CT_NAME: $*"
    echo "0 passed, 1 failed"
    exit 1
}

hk_ct_log() {
    echo "$HK_CT_NAME: $(date -u +%H:%M:%S) $*"
}

# Checks privileges and tools, writes our containers.conf and exports CONTAINERS_CONF.
hk_ct_init() {
    if [ "$(id -u)" != 0 ]; then
        hk_ct_fail "needs rootful podman (debootstrap, network namespaces); run as root"
    fi
    for tool in podman runc debootstrap; do
        command -v "$tool" >/dev/null 2>&1 || hk_ct_fail "$tool is missing (make deps-test installs it)"
    done
    mkdir -p "$HK_CT_WORK"
    # runc, not crun: crun refuses the hybrid cgroup v1/v2 layout of some VMs (this one).
    # cgroupfs and file events: there is no systemd to talk to.
    # default_ulimits: podman gives root containers nofile/nproc of 1048576, which a
    # process without CAP_SYS_RESOURCE cannot set; ask for what this shell has, at most
    # 16384 (runc fails to set the host's own nproc hard limit here).
    nofile=$(ulimit -Hn)
    [ "$nofile" = unlimited ] || [ "$nofile" -gt 16384 ] && nofile=16384
    cat >"$HK_CT_WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=16384:16384"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    export CONTAINERS_CONF="$HK_CT_WORK/containers.conf"
    podman info >"$HK_CT_WORK/podman-info.txt" 2>&1 || {
        cat "$HK_CT_WORK/podman-info.txt"
        hk_ct_fail "podman info failed"
    }
    hk_ct_base_image
    podman run --rm --pull=never --network none "$HK_CT_BASE" true ||
        hk_ct_fail "podman cannot run a container from $HK_CT_BASE (see the error above)"
}

# The base image: Debian 12 minbase from debootstrap with the sources a Debian 12
# install has (main, updates, security). Made once and kept in podman's storage;
# HK_CT_REBUILD_BASE=1 makes it again.
hk_ct_base_image() {
    if [ "${HK_CT_REBUILD_BASE:-0}" != 1 ] && podman image exists "$HK_CT_BASE"; then
        return 0
    fi
    rootfs="$HK_CT_WORK/rootfs"
    rm -rf "$rootfs"
    hk_ct_log "debootstrap bookworm (minbase) from $HK_CT_MIRROR"
    debootstrap --variant=minbase bookworm "$rootfs" "$HK_CT_MIRROR" >"$HK_CT_WORK/debootstrap.log" 2>&1 || {
        tail -20 "$HK_CT_WORK/debootstrap.log"
        hk_ct_fail "debootstrap failed (log above)"
    }
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    # This workplace's machines reach the npm registry through a TLS proxy whose CA is a
    # site certificate in /usr/local/share/ca-certificates, with npm's cafile set in
    # /etc/npmrc. A fresh machine here has both; so does the image (ca-certificates,
    # when a later step installs it, adds the local certificates to the bundle).
    for f in /usr/local/share/ca-certificates/*.crt /etc/npmrc /usr/etc/npmrc; do
        [ -f "$f" ] || continue
        mkdir -p "$rootfs$(dirname "$f")"
        cp "$f" "$rootfs$f"
    done
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$HK_CT_BASE" >/dev/null ||
        hk_ct_fail "podman import of the debootstrap root file system failed"
    rm -rf "$rootfs"
    hk_ct_log "base image $HK_CT_BASE: $(podman image inspect --format '{{.Size}}' "$HK_CT_BASE") bytes"
}

# A clean clone of the committed tree (HEAD) into $1, with the working tree's
# uncommitted changes when HK_CT_UNCOMMITTED=1 (for trying a change before committing).
hk_ct_clone() {
    rm -rf "$1"
    git -C "$HK_CT_ROOT" clone -q --no-hardlinks "$HK_CT_ROOT" "$1" || hk_ct_fail "git clone failed"
    if [ "${HK_CT_UNCOMMITTED:-0}" = 1 ]; then
        (cd "$HK_CT_ROOT" && git diff HEAD) | (cd "$1" && git apply --allow-empty) ||
            hk_ct_fail "applying the uncommitted changes failed"
        (cd "$HK_CT_ROOT" && git ls-files --others --exclude-standard -z) |
            (cd "$HK_CT_ROOT" && xargs -0 -r cp --parents -t "$1")
    fi
}
