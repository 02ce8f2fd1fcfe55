/* sweeper.c — every second, each market's due items (sweep.lua): proposed allocations whose
 * lapse delay has passed, offers and needs whose expires_at has come, and matching walks a
 * bounded call left to go on; and what retention ends: events older than events_max_age
 * (trimmed in the same sweep), dead letters older than dead_letter_retention (once a
 * minute, delivery.lua's dead_prune).
 *
 * Every impactd sweeps; the function takes each due member once and checks each item again,
 * so concurrent sweeps are safe and a dead daemon's share is simply done by the others. A
 * market with more than one batch due, or with a walk to go on, is swept again at once.
 * Nothing is swept while Redis is unavailable or while the daemon stops. */
#include "impactd/sweeper.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/market.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

#define SWEEP_BATCH 100
#define PRUNE_EVERY_TICKS 60
#define PRUNE_MOST 1000

static void sweep_market(struct server *srv, size_t market);

struct sweep_call {
    struct server *srv;
    size_t market;
};

static void on_swept(void *arg, enum store_status st, redisReply *reply)
{
    struct sweep_call *sc = arg;
    struct server *srv = sc->srv;
    size_t market = sc->market;
    free(sc);
    struct sweeper *sw = &srv->sweeper;
    sw->busy[market] = false;
    sw->in_flight--;
    struct market_answer a;
    if (st != STORE_OK || store_reply_error(reply, NULL) || market_answer_read(reply, &a) != 0 ||
        a.error) {
        if (st == STORE_OK && !store_reply_full(reply))
            log_error("msg=\"sweep failed\" market=%s error=\"%.300s\"",
                      srv->catalog.markets[market].id,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        sw->again[market] = false;
        return;
    }
    srv->metrics.allocations_made += a.nobjects;
    if (a.changed) {
        market_changed(srv);
        notify_kick(srv, market);
    }
    if ((a.more || sw->again[market]) && !srv->stopping)
        sweep_market(srv, market);
    sw->again[market] = false;
}

static void sweep_market(struct server *srv, size_t market)
{
    struct sweeper *sw = &srv->sweeper;
    if (sw->busy[market]) {
        sw->again[market] = true;
        return;
    }
    struct sweep_call *sc = malloc(sizeof *sc);
    if (!sc)
        return;
    *sc = (struct sweep_call){ srv, market };
    struct market_call mc;
    market_call_begin(srv, &mc, FN_SWEEP, market, NULL, NULL, REACH_ALL, NULL, 0);
    cmd_addll(&mc.cmd, SWEEP_BATCH);
    if (srv->cfg.events_max_age_ms > 0)
        cmd_addll(&mc.cmd, time_now_ms() - srv->cfg.events_max_age_ms);
    else
        cmd_add(&mc.cmd, "");
    sw->busy[market] = true;
    sw->in_flight++;
    market_send(srv, &mc, on_swept, sc);
}

void sweeper_kick(struct server *srv, size_t market)
{
    if (srv->sweeper.busy && !srv->stopping && store_ready(&srv->store))
        sweep_market(srv, market);
}

static void on_pruned(void *arg, enum store_status st, redisReply *reply)
{
    (void)arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        log_warn("msg=\"expired dead letters not dropped; next minute\"");
    else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        log_info("msg=\"expired dead letters dropped\" count=%lld", reply->integer);
}

/* Dead letters past dead_letter_retention (their slot is the schedule's, not a market's). */
static void prune_dead_letters(struct server *srv)
{
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_DEAD);
    store_key(&srv->store, &c, KEY_DEADINFO);
    cmd_addll(&c, time_now_ms() - srv->cfg.dead_letter_retention_ms);
    cmd_addll(&c, PRUNE_MOST);
    store_fcall(&srv->store, FN_DEAD_PRUNE, 2, &c, on_pruned, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    if (srv->stopping || !store_ready(&srv->store))
        return;
    for (size_t i = 0; i < srv->catalog.nmarkets; i++)
        if (!srv->sweeper.busy[i])
            sweep_market(srv, i);
    if (srv->sweeper.ticks++ % PRUNE_EVERY_TICKS == 0)
        prune_dead_letters(srv);
}

int sweeper_start(struct server *srv)
{
    struct sweeper *sw = &srv->sweeper;
    size_t n = srv->catalog.nmarkets ? srv->catalog.nmarkets : 1;
    sw->busy = calloc(n, sizeof *sw->busy);
    sw->again = calloc(n, sizeof *sw->again);
    sw->timer = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
    struct timeval tv = { 1, 0 };
    if (!sw->busy || !sw->again || !sw->timer || event_add(sw->timer, &tv) != 0)
        return -1;
    return 0;
}

void sweeper_stop(struct server *srv)
{
    struct sweeper *sw = &srv->sweeper;
    if (sw->timer)
        event_free(sw->timer);
    free(sw->busy);
    free(sw->again);
    memset(sw, 0, sizeof *sw);
}
