#!/bin/sh
# Static checks of docker/Dockerfile in place of hadolint (not packaged in Debian 12),
# and `docker-compose config` of docker/compose.yaml when a compose tool is installed.
#   docker/lint.sh [DOCKERFILE [COMPOSE_FILE]]
# Prints FILE:LINE: message for each violation and exits 1 if there is any.
# Rules (hadolint's numbers where one exists):
#   base      every FROM is a Debian 12 image: debian:12, debian:12-slim or
#             debian:bookworm[-slim] (optionally @sha256:...), or an earlier stage of
#             this file; never untagged or :latest, and no node:* image (the test
#             image gets the pinned Node of tools/node from npm instead)
#   DL3015    apt-get install has --no-install-recommends
#   DL3009    a RUN that runs apt-get update/install ends with rm -rf /var/lib/apt/lists/*
#   DL3027    apt (not apt-get) is not used in RUN
#   DL3020    COPY, not ADD (and never ADD of a URL)
#   DL3004    no sudo
#   DL3000    WORKDIR is absolute
#   DL3025    CMD and ENTRYPOINT in exec (JSON) form
#   DL3002    the final stage switches to a USER that is not root before CMD
#   health    the final stage has a HEALTHCHECK that is not NONE
#   expose    the final stage EXPOSEs 5000/tcp, 3000/tcp and 5004/udp
#   ports     every port the compose file publishes names a host address, and with
#             the compose variables unset none is 0.0.0.0 or :: (the API has no
#             authentication)
set -u
cd "$(dirname "$0")/.." || exit 2
DOCKERFILE=${1:-docker/Dockerfile}
COMPOSE=${2:-docker/compose.yaml}

if [ ! -f "$DOCKERFILE" ]; then
    echo "$DOCKERFILE: no such file"
    exit 1
fi

# Logical instructions: continuation lines joined, comments and blank lines dropped;
# each printed as "LINE<TAB>INSTRUCTION ARGS" with the line it starts on.
logical=$(awk '
    BEGIN { cur = ""; start = 0 }
    {
        line = $0
        if (cur == "" && (line ~ /^[ \t]*#/ || line ~ /^[ \t]*$/)) next
        if (cur != "" && line ~ /^[ \t]*#/) next
        if (cur == "") start = NR
        cont = (line ~ /\\[ \t]*$/)
        sub(/\\[ \t]*$/, "", line)
        cur = cur " " line
        if (!cont) { sub(/^[ \t]+/, "", cur); print start "\t" cur; cur = "" }
    }
    END { if (cur != "") { sub(/^[ \t]+/, "", cur); print start "\t" cur } }
' "$DOCKERFILE")

errors=0
report() {
    echo "$DOCKERFILE:$1: $2"
    errors=$((errors + 1))
}

stages=""
final_user=""
final_health=""
final_expose=""
final_cmd_line=""
user_before_cmd=""
TAB=$(printf '\t')

while IFS="$TAB" read -r line instr; do
    keyword=$(echo "$instr" | awk '{print toupper($1)}')
    args=$(echo "$instr" | sed 's/^[^ ]*[ ]*//')
    case "$keyword" in
    FROM)
        # A new stage: the "final" facts restart.
        final_user=""
        final_health=""
        final_expose=""
        final_cmd_line=""
        user_before_cmd=""
        image=$(echo "$args" | awk '{ for (i = 1; i <= NF; i++) if ($i !~ /^--/) { print $i; exit } }')
        alias=$(echo "$args" | awk '{ for (i = 1; i < NF; i++) if (toupper($i) == "AS") print $(i + 1) }')
        case " $stages " in
        *" $image "*) ;; # an earlier stage
        *)
            ref=${image%%@*}
            case "$ref" in
            *:latest) report "$line" "FROM $image: the latest tag is not a pinned version" ;;
            debian:12 | debian:12-slim | debian:bookworm | debian:bookworm-slim) ;;
            *:*) report "$line" "FROM $image: base images must be Debian 12 (debian:12[-slim], debian:bookworm[-slim])" ;;
            *) report "$line" "FROM $image: untagged base image (pin debian:12 or debian:12-slim)" ;;
            esac
            ;;
        esac
        [ -n "$alias" ] && stages="$stages $alias"
        ;;
    RUN)
        if echo "$args" | grep -Eq '(^|[;&| ])apt-get( [^;&|]*)? install'; then
            echo "$args" | grep -q -- '--no-install-recommends' ||
                report "$line" "apt-get install without --no-install-recommends"
        fi
        if echo "$args" | grep -Eq '(^|[;&| ])apt-get( [^;&|]*)? (update|install)'; then
            echo "$args" | grep -Eq 'rm -rf /var/lib/apt/lists/\*?' ||
                report "$line" "apt-get in a RUN that does not end with rm -rf /var/lib/apt/lists/*"
        fi
        if echo "$args" | grep -Eq '(^|[;&| ])apt( |$)'; then
            report "$line" "use apt-get, not apt, in scripts"
        fi
        if echo "$args" | grep -Eq '(^|[;&| ])sudo( |$)'; then
            report "$line" "sudo in RUN (use USER)"
        fi
        ;;
    ADD)
        if echo "$args" | grep -Eq 'https?://|ftp://|git@'; then
            report "$line" "ADD of a URL (download in a RUN with a checksum, or COPY)"
        else
            report "$line" "ADD of local files: use COPY"
        fi
        ;;
    WORKDIR)
        case "$args" in
        /* | \$*) ;;
        *) report "$line" "WORKDIR $args is not absolute" ;;
        esac
        ;;
    USER)
        u=$(echo "$args" | cut -d: -f1 | tr -d ' ')
        final_user=$u
        ;;
    HEALTHCHECK)
        case "$(echo "$args" | awk '{print toupper($1)}')" in
        NONE) final_health="" ;;
        *) final_health=$line ;;
        esac
        ;;
    EXPOSE)
        final_expose="$final_expose $args"
        ;;
    CMD | ENTRYPOINT)
        case "$args" in
        \[*\]) ;;
        *) report "$line" "$keyword in shell form: use the exec form [\"...\"]" ;;
        esac
        if [ "$keyword" = CMD ]; then
            final_cmd_line=$line
            user_before_cmd=$final_user
        fi
        ;;
    esac
done <<EOT
$logical
EOT

last=$(echo "$logical" | tail -1 | cut -f1)
case "$user_before_cmd" in
"") report "${final_cmd_line:-$last}" "the final stage runs as root: add USER (not root) before CMD" ;;
root | 0) report "$final_cmd_line" "the final stage runs as root (USER $user_before_cmd)" ;;
esac
[ -n "$final_cmd_line" ] || report "$last" "the final stage has no CMD"
[ -n "$final_health" ] || report "$last" "the final stage has no HEALTHCHECK"
for port in 5000/tcp 3000/tcp 5004/udp; do
    bare=${port%/tcp}
    case " $final_expose " in
    *" $port "* | *" $bare "*) ;;
    *) report "$last" "the final stage does not EXPOSE $port" ;;
    esac
done

# The compose file, with whichever compose tool is installed; the published ports
# as it resolves them with the defaults of compose.yaml's variables.
check_ports() { # the output of `config`; ports come in the short or the long syntax
    printf '%s\n' "$1" | awk '
        function flush() {
            if (long) print "long " (ip == "" ? "-" : ip) " " published ":" target
            long = 0; ip = ""; published = ""; target = ""
        }
        function field(line) {
            sub(/^ *(- )?/, "", line); gsub(/[\047"]/, "", line)
            split(line, kv, ": ")
            if (kv[1] == "host_ip") ip = kv[2]
            if (kv[1] == "published") published = kv[2]
            if (kv[1] == "target") target = kv[2]
        }
        /^[^ ]/ { in_services = ($1 == "services:") }
        in_services && /^    ports:/ { in_ports = 1; next }
        in_ports && /^    - [a-z_]+: / { flush(); long = 1; field($0); next }
        in_ports && /^    - / { flush(); v = $2; gsub(/[\047"]/, "", v); print "short " v; next }
        in_ports && long && /^      [a-z_]+: / { field($0); next }
        { flush(); in_ports = 0 }
        END { flush() }
    ' | while read -r syntax port rest; do
        case "$syntax $port" in
        "long -") echo "$COMPOSE: port $rest is published without a host address (every interface)" ;;
        "long 0.0.0.0" | "long ::" | "short 0.0.0.0:"* | "short [::]:"* | "short ::"*)
            echo "$COMPOSE: port $port${rest:+ $rest} is published on every interface" ;;
        long\ *) ;;
        "short "*:*:*) ;;
        *) echo "$COMPOSE: port $port is published without a host address (every interface)" ;;
        esac
    done
}
unset_vars="-u HISOKA_BIND_ADDRESS -u HISOKA_API_BIND_ADDRESS -u HISOKA_SIGNALING_HOST_PORT -u HISOKA_API_HOST_PORT"
if [ -f "$COMPOSE" ]; then
    if command -v docker-compose >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        out=$(env $unset_vars docker-compose -f "$COMPOSE" config 2>&1) || {
            echo "$COMPOSE: docker-compose config: $out"
            errors=$((errors + 1))
            out=""
        }
    elif docker compose version >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        out=$(env $unset_vars docker compose -f "$COMPOSE" config 2>&1) || {
            echo "$COMPOSE: docker compose config: $out"
            errors=$((errors + 1))
            out=""
        }
    else
        out=""
        echo "$COMPOSE: not checked (neither docker-compose nor docker compose is installed)"
    fi
    if [ -n "$out" ]; then
        bad=$(check_ports "$out")
        if [ -n "$bad" ]; then
            echo "$bad"
            errors=$((errors + $(echo "$bad" | wc -l)))
        fi
    fi
fi

if [ "$errors" -ne 0 ]; then
    echo "docker-lint: $errors problem(s)"
    exit 1
fi
echo "docker-lint: $DOCKERFILE and $COMPOSE OK"
