# bench/lib.sh — the shared helpers of the benchmarks (bench/run, bench/notify, bench/feeds;
# sourced, not run).
#
# Owns the list of processes a benchmark started (bench_pids) and their end: every one runs
# under `timeout` (a hard limit, so nothing outlives a stuck run) and bench_cleanup, called
# from the EXIT trap bench_session sets, stops each by its own pid. Also the session's
# shape, the same in every benchmark: the release build, the temp dir, a Redis and an
# impactd of its own on free loopback ports, participants, filler open items, the lines
# that say what was measured where. Of impactd's API it knows `api` (a curl wrapper that
# fails on any status but the one expected), creating participants and /readyz.

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

tick_us=$((1000000 / $(getconf CLK_TCK)))   # µs per clock tick

# cpu_us NAME PID TICKS_BEFORE REQUESTS: " NAME_cpu_us=<CPU µs PID spent per request since
# TICKS_BEFORE>" (a field of a results line).
cpu_us() {
    echo " $1_cpu_us=$((($(cpu_ticks "$2") - $3) * tick_us / $4))"
}

# field NAME LINE: the number after " NAME=" in LINE (a results or RESULT line).
field() { sed -n "s/.*[[:space:]]$1=\([0-9.]*\).*/\1/p" <<<" $2"; }

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

# ---- the session ----

# bench_need TOOL...: dies naming the first TOOL that is not installed.
bench_need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk?)" >&2; exit 1; }
    done
}

# bench_build TARGET...: the release build in build-bench/ (-Dbench=true: impactd and the
# programs of bench/meson.build), then ninja TARGETs (e.g. impactd bench/bare_evhttp).
bench_build() {
    if [ -d build-bench/meson-private ]; then
        meson setup --reconfigure build-bench --buildtype=release -Dtests=false -Dbench=true >/dev/null
    else
        meson setup build-bench --buildtype=release -Dtests=false -Dbench=true >/dev/null
    fi
    ninja -C build-bench "$@" >/dev/null
}

# bench_session NAME: a temp dir /tmp/impactd-NAME.XXXXXX (sets tmp) holding a copy of config/
# as it is now, whatever happens to the tree during the run; the EXIT trap stops every
# spawned process and removes the dir (BENCH_KEEP=1 keeps it: logs, raw results). Sets
# load_start (the load averages, for bench_footer).
bench_session() {
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    tmp=$(mktemp -d "/tmp/impactd-$1.XXXXXX")
    cp -r config "$tmp/config"
    trap bench_finish EXIT
    trap 'exit 130' INT TERM
}

bench_finish() {
    bench_cleanup
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# redis_start LIMIT: a redis-server without persistence on a free port, its files in $tmp;
# sets rport and redis_pid (the server itself, for cpu_ticks). rcli talks to it.
redis_start() {
    rport=$(free_port)
    spawn "$1" "$tmp/redis.log" redis-server --port "$rport" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$tmp"
    wait_until redis-server rcli ping
    redis_pid=$(child_of "$spawned_pid")
}
rcli() { redis-cli -p "$rport" "$@"; }

# impactd_setup: picks impactd's port (hport, url) and its bootstrap admin token (admin).
impactd_setup() {
    hport=$(free_port)
    url="http://127.0.0.1:$hport"
    admin=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
}

# impactd_start LIMIT [NAME=VALUE...]: starts impactd ($BENCH_IMPACTD, default
# build-bench/impactd) on $url with the bench's Redis, data and catalogue in $tmp,
# IMPACTD_RATE_LIMIT=0 and IMPACTD_LOG_LEVEL=warn, plus the NAME=VALUE settings given;
# waits for /readyz. Sets impactd_pid (its `timeout`, for stop_pid) and impactd_cpid (impactd).
impactd_start() {
    local limit=$1
    shift
    spawn "$limit" "$tmp/impactd.$(date +%s%N).log" env IMPACTD_LISTEN="127.0.0.1:$hport" \
        IMPACTD_REDIS_URL="redis://127.0.0.1:$rport/0" IMPACTD_ADMIN_TOKEN="$admin" \
        IMPACTD_DATA_DIR="$tmp" IMPACTD_CATALOG_DIR="$tmp/config" IMPACTD_RATE_LIMIT=0 \
        IMPACTD_LOG_LEVEL=warn "$@" "${BENCH_IMPACTD:-build-bench/impactd}" \
        --config "$tmp/config/impactd.conf"
    impactd_pid=$spawned_pid
    wait_until impactd curl -fsS "$url/readyz"
    impactd_cpid=$(child_of "$impactd_pid")
}

# participant ROLE NAME [REGION [WEBHOOK_URL]]: creates one with the admin token; prints
# "<participant id> <token> <webhook secret or ->".
participant() {
    local body="{\"role\":\"$1\",\"name\":\"$2\"${3:+,\"region\":\"$3\"}${4:+,\"webhook_url\":\"$4\"}}"
    api 201 POST "$url/v1/participants" "$admin" "$body" | /usr/bin/python3 -c '
import json, sys
a = json.load(sys.stdin)
print(a["participant"]["id"], a["token"], a.get("webhook_secret") or "-")'
}

# populate KIND COUNT START PARTICIPANT: COUNT filler open KIND (need|offer) of $market
# (code $code) owned by PARTICIPANT, ordinals from START, written straight into Redis by
# bench/populate.py (read it for what "filler" is).
populate() {
    local out
    out=$(/usr/bin/python3 bench/populate.py --kind "$1" --count "$2" --start "$3" \
        --market "$market" --code "$code" --regions "$tmp/config/regions.json" \
        --now "$(date +%s%3N)" --participant "$4" | rcli --pipe)
    grep -q 'errors: 0,' <<<"$out" || { echo "bench: populate: $out" >&2; return 1; }
}

# bench_footer: the lines that say what ran where (tree, machine, load averages).
bench_footer() {
    echo "tree:    $(git describe --always --dirty 2>/dev/null || echo unknown) (built at the start of the run)${BENCH_IMPACTD:+; impactd: $BENCH_IMPACTD}"
    echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2), $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    echo "load:    $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15-minute load averages: anything else running shares the cores)"
}

# wrk_result SCRIPT URL CONNS DURATION: one wrk run (-t1 --latency -s SCRIPT; the script's
# settings come from the caller's BENCH_* environment, bench/request.lua), its whole output
# appended to $tmp/wrk.log; prints "conns=CONNS <the RESULT fields>", and any FIRST_NON
# line to stderr. Fails when wrk printed no RESULT.
wrk_result() {
    local out
    out=$(timeout 120 wrk -t1 -c"$3" -d"$4" --latency -s "$1" "$2")
    printf '%s\n' "$out" >>"$tmp/wrk.log"
    grep '^FIRST_NON' <<<"$out" >&2 || true
    out=$(sed -n 's/^RESULT //p' <<<"$out")
    [ -n "$out" ] || { echo "bench: wrk printed no RESULT (see $tmp/wrk.log)" >&2; return 1; }
    printf 'conns=%s %s\n' "$3" "$out"
}
