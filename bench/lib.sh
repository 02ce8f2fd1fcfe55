# bench/lib.sh — the shared helpers of the benchmarks (bench/run, bench/notify; sourced, not
# run).
#
# Owns the list of processes a benchmark started (bench_pids) and their end: every one runs
# under `timeout` (a hard limit, so nothing outlives a stuck run) and bench_cleanup, called
# from the EXIT trap bench_session sets, stops each by its own pid. Also the session's shape,
# the same in every benchmark: the release build, the temp dir, the CPU placement (pinned:
# impactd and its Redis on one core, the load on another; unpinned: anything anywhere), a
# Redis with an append-only file and an impactd of its own on free loopback ports,
# participants, wrk runs, and the lines that say what was measured where.
#
# Of impactd it knows only the public HTTP API (`api`, a curl wrapper that fails on any
# status but the one expected; participants; /readyz) and its configuration's environment
# variables. What is read back from Redis goes through bench/redis_probe.py, which knows
# only generic Redis facts: impactd's storage format is not this harness's business.

bench_pids=()
py=/usr/bin/python3

# say MESSAGE...: a progress line on stderr, also kept in $tmp/progress.log with the time
# and the 1-minute load average (other work shares the machine).
say() {
    echo "bench: $*" >&2
    [ -z "${tmp:-}" ] || echo "$(date +%T) load $(cut -d' ' -f1 /proc/loadavg) $*" >>"$tmp/progress.log"
}

# free_port: prints a TCP port free on 127.0.0.1 now.
free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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

# bench_cleanup: stops every spawned process, the last started first (Redis goes last).
bench_cleanup() {
    local k
    for ((k = ${#bench_pids[@]} - 1; k >= 0; k--)); do
        stop_pid "${bench_pids[k]}"
    done
    bench_pids=()
}

# cpu_ticks PID: user + system CPU time PID has used, in clock ticks (getconf CLK_TCK).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

tick_us=$((1000000 / $(getconf CLK_TCK)))   # µs per clock tick

# cpu_us NAME PID TICKS_BEFORE REQUESTS: " NAME_cpu_us=<CPU µs PID spent per request since
# TICKS_BEFORE>" (a field of a results line).
cpu_us() {
    echo " $1_cpu_us=$((($(cpu_ticks "$2") - $3) * tick_us / ($4 > 0 ? $4 : 1)))"
}

# field NAME LINE: the number after " NAME=" in LINE (a results or RESULT line).
field() { sed -n "s/.*[[:space:]]$1=\([0-9.-]*\).*/\1/p" <<<" $2"; }

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
    "$py" -c '
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
        command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
    done
}

# bench_build TARGET...: builds TARGETs (e.g. bench/bare_evhttp) and sets impactd_bin.
# Without BENCH_IMPACTD: the release build of this tree in build-bench/ (-Dbench=true),
# impactd included. With BENCH_IMPACTD (another binary to measure): only the bench programs,
# through a project of their own in build-bench-harness/ that declares the dependencies and
# includes bench/meson.build, so this tree's daemon need not even configure (it may be
# mid-rewrite).
bench_build() {
    if [ -z "${BENCH_IMPACTD:-}" ]; then
        if [ -d build-bench/meson-private ]; then
            meson setup --reconfigure build-bench --buildtype=release -Dtests=false -Dbench=true >/dev/null
        else
            meson setup build-bench --buildtype=release -Dtests=false -Dbench=true >/dev/null
        fi
        ninja -C build-bench impactd "$@" >/dev/null
        impactd_bin=build-bench/impactd
        bench_bin=build-bench/bench
    else
        local src=build-bench-harness/src
        mkdir -p "$src"
        ln -sfn ../../bench "$src/bench"
        cat >"$src/meson.build.new" <<'MESON'
# Generated by bench/lib.sh: the bench programs alone (bench/meson.build), for measuring
# another impactd binary whatever state this tree's daemon is in.
project('impactd-bench', 'c', default_options : ['c_std=c11', 'warning_level=3'])
add_project_arguments('-D_GNU_SOURCE', language : 'c')
libevent = dependency('libevent', version : '>=2.1')
hiredis = dependency('hiredis', version : '>=0.14')
jansson = dependency('jansson', version : '>=2.12')
libsodium = dependency('libsodium', version : '>=1.0.18')
subdir('bench')
MESON
        cmp -s "$src/meson.build.new" "$src/meson.build" || mv "$src/meson.build.new" "$src/meson.build"
        rm -f "$src/meson.build.new"
        [ -d build-bench-harness/build/meson-private ] ||
            meson setup build-bench-harness/build "$src" --buildtype=release >/dev/null
        ninja -C build-bench-harness/build "$@" >/dev/null
        impactd_bin=$BENCH_IMPACTD
        bench_bin=build-bench-harness/build/bench
    fi
    [ -x "$impactd_bin" ] || { echo "bench: $impactd_bin is not an executable" >&2; exit 1; }
}

# bench_config_dir: the configuration and catalogue the daemon starts with: BENCH_CONFIG,
# else the config/ of the tree BENCH_IMPACTD was built in (a daemon of another tree may not
# accept this tree's settings: unknown keys are errors), else this tree's config/.
bench_config_dir() {
    local beside
    if [ -n "${BENCH_CONFIG:-}" ]; then
        echo "$BENCH_CONFIG"
        return
    fi
    beside=$(dirname "$impactd_bin")/../config
    if [ -n "${BENCH_IMPACTD:-}" ] && [ -f "$beside/impactd.conf" ]; then
        (cd "$beside" && pwd)
    else
        echo "$root/config"
    fi
}

# bench_session NAME: a temp dir /tmp/impactd-NAME.XXXXXX (sets tmp) holding a copy of the
# configuration as it is now, whatever happens to the tree during the run; the EXIT trap
# stops every spawned process, copies results.txt, report.txt and progress.log to
# BENCH_RESULTS (when set) as NAME.results.txt, ..., and removes the dir (BENCH_KEEP=1 keeps
# it: logs, raw results). Sets load_start (for bench_footer), the CPU sets (bench_cpus) and
# regions (the catalogue's codes, comma-separated), then moves this shell to the load CPUs:
# the harness's own curl, redis-cli and python never run on the server's core.
bench_session() {
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    config_dir=$(bench_config_dir)
    session_name=$1
    tmp=$(mktemp -d "/tmp/impactd-$1.XXXXXX")
    cp -r "$config_dir" "$tmp/config"
    trap bench_finish EXIT
    trap 'exit 130' INT TERM
    bench_cpus
    taskset -p -c "$load_cpus" $$ >/dev/null
    regions=$("$py" -c 'import json, sys; print(",".join(r["code"] for r in json.load(open(sys.argv[1]))["regions"]))' \
        "$tmp/config/regions.json")
}

bench_finish() {
    bench_cleanup
    if [ -n "${BENCH_RESULTS:-}" ] && [ -d "${tmp:-}" ]; then
        mkdir -p "$BENCH_RESULTS"
        local f
        for f in results.txt report.txt progress.log; do
            [ ! -f "$tmp/$f" ] || cp "$tmp/$f" "$BENCH_RESULTS/$session_name.$f"
        done
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# ---- CPU placement ----
#
# pinned, as a deployment is sized: impactd and its redis-server share the server CPUs
# (BENCH_SERVER_CPUS, default 0), the load generator and the harness get the load CPUs
# (BENCH_LOAD_CPUS, default 1). unpinned: every process may run on every CPU. Processes are
# moved between the two with taskset -a -p (every thread), so one impactd and one Redis keep
# their state across both.

# bench_cpus: sets server_cpus, load_cpus, all_cpus, and bench_modes (BENCH_MODES, default
# "pinned unpinned"; only "unpinned" on a machine with one CPU).
bench_cpus() {
    all_cpus=0-$((ncpus - 1))
    server_cpus=${BENCH_SERVER_CPUS:-0}
    load_cpus=${BENCH_LOAD_CPUS:-1}
    if [ "$ncpus" -lt 2 ]; then
        load_cpus=$all_cpus
        bench_modes=(unpinned)
        return
    fi
    read -r -a bench_modes <<<"${BENCH_MODES:-pinned unpinned}"
}

# set_mode MODE PID...: the CPUs of MODE for what starts from now on (mode_server,
# mode_load), and the server PIDs moved onto mode_server.
set_mode() {
    mode=$1
    shift
    case $mode in
        pinned) mode_server=$server_cpus mode_load=$load_cpus ;;
        unpinned) mode_server=$all_cpus mode_load=$all_cpus ;;
        *) echo "bench: unknown mode $mode (pinned or unpinned)" >&2; return 1 ;;
    esac
    pin_to "$mode_server" "$@"
}

# pin_to CPUS PID...: every thread of each PID onto CPUS.
pin_to() {
    local cpus=$1 pid
    shift
    for pid in "$@"; do
        taskset -a -p -c "$cpus" "$pid" >/dev/null
    done
}
ncpus=$(nproc)                           # before bench_session moves this shell
mode=unpinned                            # until bench_session: anything anywhere
mode_server=0-$((ncpus - 1)) mode_load=0-$((ncpus - 1))

# on_load CMD...: CMD on the load CPUs of the current mode.
on_load() { taskset -c "$mode_load" "$@"; }

# ---- Redis ----

# redis_start LIMIT: a redis-server on a free port, persistence as a deployment has it —
# `appendonly yes`, `appendfsync everysec`, the AOF in $tmp, no RDB snapshots — on the
# current mode's server CPUs; sets rport and redis_pid (the server itself, for cpu_ticks
# and set_mode). rcli talks to it, probe reads it (bench/redis_probe.py, key prefix
# BENCH_KEY_PREFIX, default impact:).
redis_start() {
    rport=$(free_port)
    spawn "$1" "$tmp/redis.log" taskset -c "$mode_server" redis-server --port "$rport" \
        --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dir "$tmp"
    wait_until redis-server rcli ping
    redis_pid=$(child_of "$spawned_pid")
}
rcli() { redis-cli -p "$rport" "$@"; }
key_prefix=${BENCH_KEY_PREFIX:-impact:}
probe() { "$py" bench/redis_probe.py "$rport" "$key_prefix" "$@"; }

# ---- impactd ----

# impactd_setup: picks impactd's port (hport, url) and its bootstrap admin token (admin).
impactd_setup() {
    hport=$(free_port)
    url="http://127.0.0.1:$hport"
    admin=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
}

# impactd_start LIMIT [NAME=VALUE...]: starts impactd ($impactd_bin) on the current mode's
# server CPUs, on $url with the bench's Redis, data and catalogue in $tmp,
# IMPACTD_RATE_LIMIT=0 and IMPACTD_LOG_LEVEL=warn, plus the NAME=VALUE settings given;
# waits for /readyz. Sets impactd_pid (its `timeout`, for stop_pid) and impactd_cpid
# (impactd itself).
impactd_start() {
    local limit=$1
    shift
    local prefix_env=()
    [ -z "${BENCH_KEY_PREFIX:-}" ] || prefix_env=(IMPACTD_KEY_PREFIX="$BENCH_KEY_PREFIX")
    spawn "$limit" "$tmp/impactd.$(date +%s%N).log" taskset -c "$mode_server" env \
        IMPACTD_LISTEN="127.0.0.1:$hport" IMPACTD_REDIS_URL="redis://127.0.0.1:$rport/0" \
        IMPACTD_ADMIN_TOKEN="$admin" IMPACTD_DATA_DIR="$tmp" \
        IMPACTD_CATALOG_DIR="$tmp/config" IMPACTD_RATE_LIMIT=0 IMPACTD_LOG_LEVEL=warn \
        "${prefix_env[@]}" "$@" "$impactd_bin" --config "$tmp/config/impactd.conf"
    impactd_pid=$spawned_pid
    wait_until impactd curl -fsS "$url/readyz"
    impactd_cpid=$(child_of "$impactd_pid")
}

# participant ROLE NAME [REGION [WEBHOOK_URL]]: creates one with the admin token; prints
# "<participant id> <token> <webhook secret or ->".
participant() {
    local body="{\"role\":\"$1\",\"name\":\"$2\"${3:+,\"region\":\"$3\"}${4:+,\"webhook_url\":\"$4\"}}"
    api 201 POST "$url/v1/participants" "$admin" "$body" | "$py" -c '
import json, sys
a = json.load(sys.stdin)
print(a["participant"]["id"], a["token"], a.get("webhook_secret") or "-")'
}

# allocated OFFER_ID TOKEN: the offer's `allocated`, as GET /v1/offers/{id} answers it.
allocated() { api 200 GET "$url/v1/offers/$1" "$2" | json allocated; }

# ---- load ----

# wrk_result SCRIPT URL CONNS DURATION: one wrk run on the load CPUs (-t1 --latency -s
# SCRIPT; the script's settings come from the caller's BENCH_* environment,
# bench/request.lua), its whole output appended to $tmp/wrk.log; prints "conns=CONNS <the
# RESULT fields>", and any FIRST_NON line to stderr. Fails when wrk printed no RESULT.
wrk_result() {
    local out
    out=$(on_load timeout 120 wrk -t1 -c"$3" -d"$4" --latency -s "$1" "$2")
    printf '%s\n' "$out" >>"$tmp/wrk.log"
    grep '^FIRST_NON' <<<"$out" >&2 || true
    out=$(sed -n 's/^RESULT //p' <<<"$out")
    [ -n "$out" ] || { echo "bench: wrk printed no RESULT (see $tmp/wrk.log)" >&2; return 1; }
    printf 'conns=%s %s\n' "$3" "$out"
}

# ---- the report's header ----

# tree_of DIR: git describe of the tree DIR is in, or "unknown".
tree_of() { git -C "$1" describe --always --dirty 2>/dev/null || echo unknown; }

# bench_footer: the lines that say what ran where (trees, machine, placement, Redis, load).
bench_footer() {
    local bin_tree
    bin_tree=$(tree_of "$(dirname "$impactd_bin")")
    echo "harness: $(tree_of "$root") (bench/ of this tree)"
    echo "impactd: $impactd_bin (tree $bin_tree; config $config_dir)"
    echo "machine: $ncpus cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2), $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    echo "cpus:    pinned = impactd and redis-server on CPU $server_cpus, load (wrk -t1, redis-benchmark, clients) and harness on CPU $load_cpus; unpinned = all on $all_cpus"
    echo "redis:   appendonly yes, appendfsync everysec, AOF in the temp dir, no RDB; $(grep -c 'Background AOF rewrite finished successfully' "$tmp/redis.log") AOF rewrites during the run; at the end $(probe info aof_current_size used_memory_human)"
    echo "load:    $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (1/5/15-minute load averages: anything else running shares the cores)"
}
