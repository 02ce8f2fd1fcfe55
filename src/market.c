/* market.c — the keys and arguments of a market function call, and reading its answer.
 *
 * Every market function gets the same layout (src/scripts/market.lua documents it): the
 * fixed keys, the function's own, then index keys in the layout match.lua reads — built here
 * from the catalogue in the same order the function library's prelude lists regions and
 * neighbours (library.c), so that a need-post passes only the offer indexes of its tiers. */
#include "impactd/market.h"

#include <stdio.h>
#include <string.h>

#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/resource.h"
#include "impactd/server.h"

static const char *const FIXED[MARKET_FIXED_KEYS] = {
    MKEY_RECORDS, MKEY_LOG_OFFERS, MKEY_LOG_NEEDS, MKEY_LOG_ALLOCS, MKEY_ALLOC_OWNERS,
    MKEY_EXCL, MKEY_AGG, MKEY_EVENTS, MKEY_DUE, MKEY_WALK,
};

static void index_key(const struct server *srv, struct market_call *mc, const char *mid,
                      const char *suffix)
{
    store_key(&srv->store, &mc->cmd, KEY_MARKET, mid, suffix);
    mc->nkeys++;
}

static void offer_index(const struct server *srv, struct market_call *mc, const char *mid,
                        const char *region, int scope)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, MKEY_OFFER_INDEX, region, ENUM_DELIVERY_SCOPE.values[scope]);
    index_key(srv, mc, mid, suffix);
}

static void need_index(const struct server *srv, struct market_call *mc, const char *mid,
                       const char *region)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, MKEY_NEED_INDEX, region);
    index_key(srv, mc, mid, suffix);
}

/* 0: the region itself, 1: a neighbour, 2: any other region. */
static int distance(const struct region *home, const struct region *r)
{
    return r == home ? 0 : catalog_neighbours(home, r->code) ? 1 : 2;
}

static void index_keys(const struct server *srv, struct market_call *mc, const char *mid,
                       enum market_reach reach, const struct region *home, int scope)
{
    const struct catalog *cat = &srv->catalog;
    if (reach == REACH_ALL || !home) {
        for (size_t i = 0; i < cat->nregions; i++) {
            for (int s = 0; s < 3; s++)
                offer_index(srv, mc, mid, cat->regions[i].code, s);
            need_index(srv, mc, mid, cat->regions[i].code);
        }
        return;
    }
    if (reach == REACH_NEED) {
        need_index(srv, mc, mid, home->code);
        for (int d = 0; d < 3; d++)     /* tiers in order: the region, neighbours, others */
            for (size_t i = 0; i < cat->nregions; i++) {
                const struct region *r = &cat->regions[i];
                if (distance(home, r) != d)
                    continue;
                for (int s = d; s < 3; s++)
                    offer_index(srv, mc, mid, r->code, s);
            }
        return;
    }
    offer_index(srv, mc, mid, home->code, scope);
    for (int d = 0; d <= scope; d++)
        for (size_t i = 0; i < cat->nregions; i++)
            if (distance(home, &cat->regions[i]) == d)
                need_index(srv, mc, mid, cat->regions[i].code);
}

void market_call_begin(const struct server *srv, struct market_call *mc, enum store_fn fn,
                       size_t market, const char *own, enum market_reach reach,
                       const char *region, int scope)
{
    const struct market *m = &srv->catalog.markets[market];
    cmd_init(&mc->cmd);
    mc->nkeys = 0;
    mc->fn = fn;
    mc->market = market;
    for (size_t i = 0; i < MARKET_FIXED_KEYS; i++, mc->nkeys++)
        store_key(&srv->store, &mc->cmd, KEY_MARKET, m->id, FIXED[i]);
    if (own) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, MKEY_OWN, own);
        store_key(&srv->store, &mc->cmd, KEY_MARKET, m->id, suffix);
        mc->nkeys++;
    }
    if (scope < 0 || scope > 2)
        scope = 0;
    index_keys(srv, mc, m->id, reach, region ? catalog_region(&srv->catalog, region) : NULL,
               scope);
    const int64_t *lapse = srv->cfg.lapse_after_ms;
    for (int u = 0; u < URGENCY_COUNT; u++)
        cmd_addll(&mc->cmd, lapse[u]);
    cmd_addll(&mc->cmd, srv->cfg.match_max_candidates);
    cmd_addll(&mc->cmd, srv->cfg.match_max_allocations);
    cmd_addll(&mc->cmd, srv->cfg.events_retention);
    cmd_add(&mc->cmd, m->code);
}

static void on_version_bumped(void *arg, enum store_status st, redisReply *reply)
{
    (void)arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        log_debug("msg=\"feed version not bumped\"");   /* cached feeds expire anyway */
}

static void bump_version(struct server *srv, enum store_fn fn)
{
    if (fn == FN_LIST)
        return;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "INCR");
    store_key(&srv->store, &c, KEY_FEED_VERSION);
    store_send(&srv->store, &c, on_version_bumped, NULL);
}

void market_req(struct req *r, struct market_call *mc, req_store_cb cb)
{
    req_fcall(r, mc->fn, mc->nkeys, &mc->cmd, cb);
    bump_version(r->srv, mc->fn);
}

void market_send(struct server *srv, struct market_call *mc, store_cb cb, void *arg)
{
    store_fcall(&srv->store, mc->fn, mc->nkeys, &mc->cmd, cb, arg);
    bump_version(srv, mc->fn);
}

int market_answer_read(const redisReply *reply, struct market_answer *a)
{
    memset(a, 0, sizeof *a);
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2)
        return -1;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            return -1;
    const char *code = reply->element[0]->str;
    if (strcmp(code, "ok") != 0) {
        a->error = code;
        a->detail = reply->element[1]->str;
        return 0;
    }
    if ((reply->elements - 2) % 2)
        return -1;
    a->more = strcmp(reply->element[1]->str, "more") == 0;
    a->nobjects = (reply->elements - 2) / 2;
    a->objects = reply->element + 2;
    return 0;
}
