# bench/probe.sh — what bench/run reads back from Redis (sourced after the market exists).
#
# Memory, the market's indexes, the big offer, the notifier's backlog on the market's event
# stream and Redis' own timing of EVALSHA. Reads only; changes nothing. Expects from
# bench/run: rcli (redis-cli on the bench's Redis), mkey (the market's key prefix), events
# (its stream), offer_id (the big offer), drain_limit (seconds), json (bench/lib.sh).

used_memory() { rcli info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
hash_field() { rcli hget "${mkey}offers" "$offer_id" | json "$1"; }
index_total() {   # sum of ZCARD over the index keys matching $1 (oi or ni)
    local total=0 k
    while read -r k; do
        total=$((total + $(rcli zcard "$k")))
    done < <(rcli --scan --pattern "${mkey}$1:*")
    echo "$total"
}
info_field() {   # field, then the output of an XINFO as redis-cli prints it (name, value, ...)
    awk -v f="$1" 'NR % 2 { k = $0; next } k == f { print; exit }'
}
backlog() {   # events the notifier has not read plus those not yet acknowledged (-1: unknown)
    local groups lag
    groups=$(rcli xinfo groups "$events")
    lag=$(info_field lag <<<"$groups")
    [ -n "$lag" ] || { echo -1; return; }
    echo $((lag + $(info_field pending <<<"$groups")))
}
drained() {
    local groups
    groups=$(rcli xinfo groups "$events")
    [ "$(info_field pending <<<"$groups")" = 0 ] &&
        [ "$(info_field last-delivered-id <<<"$groups")" = \
          "$(rcli xinfo stream "$events" | info_field last-generated-id)" ]
}
wait_drained() {   # prints the seconds it took (0.1 s resolution); fails after $drain_limit s
    local start_ms ms
    start_ms=$(date +%s%3N)
    until drained; do
        sleep 0.1
        if [ $(($(date +%s%3N) - start_ms)) -ge $((drain_limit * 1000)) ]; then
            echo "bench: the notifier did not catch up within $drain_limit s" >&2
            return 1
        fi
    done
    ms=$(($(date +%s%3N) - start_ms))
    echo "$((ms / 1000)).$((ms % 1000 / 100))"
}

script_stats() {   # " script_us=… script_p50_us=… script_p99_us=…": EVALSHA as Redis timed it
    local info per_call pct
    info=$(rcli info everything | tr -d '\r')
    per_call=$(sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/ script_us=\1/p' <<<"$info")
    pct=$(sed -n 's/^latency_percentiles_usec_evalsha:p50=\([0-9.]*\),p99=\([0-9.]*\).*/ script_p50_us=\1 script_p99_us=\2/p' <<<"$info")
    echo "$per_call$pct"
}
