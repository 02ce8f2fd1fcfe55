/* sweeper.c — every second, each market's due items: proposed allocations whose lapse
 * delay has passed, offers and needs whose expires_at has come (sweep.lua).
 *
 * Every impactd sweeps; the script re-checks each item, so concurrent sweeps are safe and a
 * dead daemon's share is simply done by the others. A market with more than one batch due
 * is swept again at once. Nothing is swept while Redis is unavailable. */
#include <event2/event.h>
#include <stdlib.h>

#include "impactd/log.h"
#include "impactd/market.h"
#include "impactd/server.h"

#define SWEEP_BATCH 100

struct sweep_call {
    struct server *srv;
    size_t market;
};

static void sweep_market(struct server *srv, size_t market);

static void on_swept(void *arg, enum store_status st, redisReply *reply)
{
    struct sweep_call *sc = arg;
    struct server *srv = sc->srv;
    size_t market = sc->market;
    free(sc);
    srv->sweeps_in_flight--;
    if (st != STORE_OK || reply->type != REDIS_REPLY_STRING) {
        if (st == STORE_OK)
            log_error("msg=\"sweep failed\" market=%s error=\"%s\"",
                      srv->catalog.markets[market].id,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    json_t *a = json_loadb(reply->str, reply->len, 0, NULL);
    json_int_t processed = json_integer_value(json_object_get(a, "processed"));
    bool more = json_is_true(json_object_get(a, "more"));
    srv->metrics.allocations_made += json_array_size(json_object_get(a, "allocations"));
    json_decref(a);
    if (processed)
        log_debug("msg=\"swept\" market=%s items=%lld", srv->catalog.markets[market].id,
                  (long long)processed);
    if (more && !srv->stopping)
        sweep_market(srv, market);
}

static void sweep_market(struct server *srv, size_t market)
{
    struct sweep_call *sc = malloc(sizeof *sc);
    json_t *op = json_pack("{s:i}", "limit", SWEEP_BATCH);
    if (!sc || !op) {
        free(sc);
        json_decref(op);
        return;
    }
    *sc = (struct sweep_call){ srv, market };
    struct cmd c;
    cmd_init(&c);
    int nkeys = market_command(srv, &srv->catalog.markets[market], REACH_ALL, NULL, NULL, op, &c);
    json_decref(op);
    srv->sweeps_in_flight++;
    store_eval(&srv->store, SCRIPT_SWEEP, nkeys, &c, on_swept, sc);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    if (srv->stopping || srv->sweeps_in_flight || !store_ready(&srv->store))
        return;
    for (size_t i = 0; i < srv->catalog.nmarkets; i++)
        sweep_market(srv, i);
}

int sweeper_start(struct server *srv)
{
    srv->sweep_timer = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
    struct timeval tv = { 1, 0 };
    if (!srv->sweep_timer || event_add(srv->sweep_timer, &tv) != 0)
        return -1;
    return 0;
}

void sweeper_stop(struct server *srv)
{
    if (srv->sweep_timer)
        event_free(srv->sweep_timer);
    srv->sweep_timer = NULL;
}
