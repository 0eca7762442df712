# Shell helpers shared by bench.sh and soak.sh (sourced).

# A free TCP/UDP port number on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# hisoka_conf FILE [KEY = VALUE lines...]: a sora.conf for an E2EE hisoka on loopback with
# fresh ports, in the globals sig, api and media; extra lines are appended.
hisoka_conf() {
    local file=$1
    shift
    sig=$(free_port) api=$(free_port) media=$(free_port)
    {
        printf '%s\n' "listen_address = 127.0.0.1" "signaling_port = $sig" "api_port = $api" \
            "media_port = $media" "public_ipv4_address = 127.0.0.1" "e2ee = true" \
            "log_level = warn"
        [ $# -gt 0 ] && printf '%s\n' "$@"
    } >"$file"
}

# wait_healthy API_PORT: until /health answers (at most 5 s).
wait_healthy() {
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}
