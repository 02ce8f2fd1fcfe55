# bench/lib.sh — process and HTTP helpers of bench/run (sourced, not run).
#
# Owns the list of processes the benchmark started (bench_pids) and their end: every one
# runs under `timeout` (a hard limit, so nothing outlives a stuck run) and bench_cleanup,
# called from run's EXIT trap, stops each by its own pid. Nothing here knows about impactd's
# API beyond `api`, a curl wrapper that fails on any status but the one expected.

bench_pids=()

# free_port: prints a TCP port free on 127.0.0.1 now.
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# spawn LIMIT LOG CMD...: starts CMD in the background under `timeout LIMIT`, output to LOG;
# sets spawned_pid (the pid of `timeout`, which passes SIGTERM on to CMD).
spawn() {
    local limit=$1 log=$2
    shift 2
    timeout --kill-after=5 "$limit" "$@" >"$log" 2>&1 &
    spawned_pid=$!
    bench_pids+=("$spawned_pid")
}

# child_of PID: the pid of PID's child (the command `timeout` runs).
child_of() {
    pgrep -P "$1" | head -n 1
}

# stop_pid PID: SIGTERM to a spawned `timeout` (it passes it on, and SIGKILLs its command 5 s
# later if need be); after ~10 s, SIGKILL to that command and to PID.
stop_pid() {
    local pid=$1 child
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        child=$(child_of "$pid")
        [ -z "$child" ] || kill -KILL "$child" 2>/dev/null || true
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: user + system CPU time PID has used, in clock ticks (getconf CLK_TCK).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

bench_cleanup() {
    local pid
    for pid in "${bench_pids[@]}"; do
        stop_pid "$pid"
    done
    bench_pids=()
}

# wait_until WHAT CMD...: polls CMD every 0.1 s, at most 10 s; dies naming WHAT.
wait_until() {
    local what=$1
    shift
    for _ in $(seq 1 100); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench: $what did not become ready" >&2
    return 1
}

# api STATUS METHOD URL TOKEN [BODY]: prints the answer body; fails unless the status is STATUS.
api() {
    local want=$1 method=$2 url=$3 token=$4 body=${5:-}
    local out status
    out=$(curl -sS --max-time 10 -X "$method" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' ${body:+--data-binary "$body"} \
        -w '\n%{http_code}' "$url") || return 1
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$status" != "$want" ]; then
        echo "bench: $method $url answered $status, not $want: $out" >&2
        return 1
    fi
    printf '%s\n' "$out"
}

# json FIELD.PATH: reads JSON on stdin, prints the value at the dotted path (list index ok).
json() {
    /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}
