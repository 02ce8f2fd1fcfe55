/* market.c — the keys and arguments of a market function call, and reading its answer.
 *
 * Every market function gets the same layout (src/scripts/market.lua documents it): the
 * fixed keys, the function's own, then index keys in the layout match.lua reads — built here
 * from the catalogue in the same order the function library's prelude lists regions and
 * neighbours (library.c), so that a need-post passes only the offer indexes of its tiers.
 * Owns the blocks of keys and arguments every call of a market repeats (market_keys), encoded
 * once as RESP and appended to each call. */
#include "impactd/market.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/resource.h"
#include "impactd/server.h"

static const char *const FIXED[MARKET_FIXED_KEYS] = {
    MKEY_RECORDS, MKEY_LOG_OFFERS, MKEY_LOG_NEEDS, MKEY_LOG_ALLOCS, MKEY_ALLOC_OWNERS,
    MKEY_EXCL, MKEY_AGG, MKEY_EVENTS, MKEY_DUE, MKEY_WALK, MKEY_PEERS,
    MKEY_OUTCOMES,
};

static void index_key(const struct server *srv, struct market_block *b, const char *mid,
                      const char *suffix)
{
    store_key(&srv->store, &b->cmd, KEY_MARKET, mid, suffix);
    b->nkeys++;
}

static void offer_index(const struct server *srv, struct market_block *b, const char *mid,
                        const char *region, int scope)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, MKEY_OFFER_INDEX, region, ENUM_DELIVERY_SCOPE.values[scope]);
    index_key(srv, b, mid, suffix);
}

static void need_index(const struct server *srv, struct market_block *b, const char *mid,
                       const char *region)
{
    char suffix[64];
    snprintf(suffix, sizeof suffix, MKEY_NEED_INDEX, region);
    index_key(srv, b, mid, suffix);
}

/* 0: the region itself, 1: a neighbour, 2: any other region. */
static int distance(const struct region *home, const struct region *r)
{
    return r == home ? 0 : catalog_neighbours(home, r->code) ? 1 : 2;
}

static void index_keys(const struct server *srv, struct market_block *b, const char *mid,
                       enum market_reach reach, const struct region *home, int scope)
{
    const struct catalog *cat = &srv->catalog;
    if (reach == REACH_ALL || !home) {
        for (size_t i = 0; i < cat->nregions; i++) {
            for (int s = 0; s < 3; s++)
                offer_index(srv, b, mid, cat->regions[i].code, s);
            need_index(srv, b, mid, cat->regions[i].code);
        }
        return;
    }
    if (reach == REACH_NEED) {
        need_index(srv, b, mid, home->code);
        for (int d = 0; d < 3; d++)     /* tiers in order: the region, neighbours, others */
            for (size_t i = 0; i < cat->nregions; i++) {
                const struct region *r = &cat->regions[i];
                if (distance(home, r) != d)
                    continue;
                for (int s = d; s < 3; s++)
                    offer_index(srv, b, mid, r->code, s);
            }
        return;
    }
    offer_index(srv, b, mid, home->code, scope);
    for (int d = 0; d <= scope; d++)
        for (size_t i = 0; i < cat->nregions; i++)
            if (distance(home, &cat->regions[i]) == d)
                need_index(srv, b, mid, cat->regions[i].code);
}

int market_init(struct server *srv)
{
    size_t n = srv->catalog.nmarkets, nr = srv->catalog.nregions;
    srv->market_keys = calloc(n ? n : 1, sizeof *srv->market_keys);
    if (!srv->market_keys)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct market_keys *k = &srv->market_keys[i];
        k->need = calloc(nr ? nr : 1, sizeof *k->need);
        k->offer = calloc(nr ? 3 * nr : 1, sizeof *k->offer);
        if (!k->need || !k->offer)
            return -1;
    }
    return 0;
}

void market_free(struct server *srv)
{
    for (size_t i = 0; srv->market_keys && i < srv->catalog.nmarkets; i++) {
        struct market_keys *k = &srv->market_keys[i];
        cmd_free(&k->fixed.cmd);
        cmd_free(&k->common.cmd);
        cmd_free(&k->all.cmd);
        for (size_t r = 0; k->need && r < srv->catalog.nregions; r++)
            cmd_free(&k->need[r].cmd);
        for (size_t r = 0; k->offer && r < 3 * srv->catalog.nregions; r++)
            cmd_free(&k->offer[r].cmd);
        free(k->need);
        free(k->offer);
    }
    free(srv->market_keys);
    srv->market_keys = NULL;
}

/* The block of a market's fixed keys, common arguments, or index keys of one reach; built the
 * first time it is asked for. */
static const struct market_block *block_fixed(struct server *srv, size_t market)
{
    struct market_block *b = &srv->market_keys[market].fixed;
    const struct market *m = &srv->catalog.markets[market];
    if (!b->cmd.buf)
        for (size_t i = 0; i < MARKET_FIXED_KEYS; i++)
            index_key(srv, b, m->id, FIXED[i]);
    return b;
}

static const struct market_block *block_common(struct server *srv, size_t market)
{
    struct market_block *b = &srv->market_keys[market].common;
    if (!b->cmd.buf) {
        const int64_t *lapse = srv->cfg.lapse_after_ms;
        for (int u = 0; u < URGENCY_COUNT; u++)
            cmd_addll(&b->cmd, lapse[u]);
        cmd_addll(&b->cmd, srv->cfg.match_max_candidates);
        cmd_addll(&b->cmd, srv->cfg.match_max_allocations);
        cmd_addll(&b->cmd, srv->cfg.events_retention);
        cmd_add(&b->cmd, srv->catalog.markets[market].code);
    }
    return b;
}

static const struct market_block *block_index(struct server *srv, size_t market,
                                              enum market_reach reach, const char *region,
                                              int scope)
{
    const struct catalog *cat = &srv->catalog;
    struct market_keys *k = &srv->market_keys[market];
    const struct region *home = region ? catalog_region(cat, region) : NULL;
    size_t ri = home ? (size_t)(home - cat->regions) : 0;
    struct market_block *b = !home || reach == REACH_ALL ? &k->all
                             : reach == REACH_NEED ? &k->need[ri] : &k->offer[3 * ri + scope];
    if (!b->cmd.buf)
        index_keys(srv, b, cat->markets[market].id, b == &k->all ? REACH_ALL : reach, home,
                   scope);
    return b;
}

void market_call_begin(struct server *srv, struct market_call *mc, enum store_fn fn,
                       size_t market, const struct req_idem *idem, const char *own,
                       enum market_reach reach, const char *region, int scope)
{
    const struct market *m = &srv->catalog.markets[market];
    bool keyed = idem && idem->digest[0];
    cmd_init(&mc->cmd);
    mc->fn = fn;
    mc->market = market;
    const struct market_block *fixed = block_fixed(srv, market);
    cmd_append(&mc->cmd, &fixed->cmd);
    mc->nkeys = fixed->nkeys;
    char suffix[64];
    snprintf(suffix, sizeof suffix, MKEY_IDEM, keyed ? idem->digest : "");
    store_key(&srv->store, &mc->cmd, KEY_MARKET, m->id, suffix);   /* never written unkeyed */
    mc->nkeys++;
    if (own) {
        snprintf(suffix, sizeof suffix, MKEY_OWN, own);
        store_key(&srv->store, &mc->cmd, KEY_MARKET, m->id, suffix);
        mc->nkeys++;
    }
    if (scope < 0 || scope > 2)
        scope = 0;
    const struct market_block *index = block_index(srv, market, reach, region, scope);
    cmd_append(&mc->cmd, &index->cmd);
    mc->nkeys += index->nkeys;
    cmd_append(&mc->cmd, &block_common(srv, market)->cmd);
    cmd_add(&mc->cmd, keyed ? idem->fingerprint : "");
}

static void on_version_bumped(void *arg, enum store_status st, redisReply *reply)
{
    (void)arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        log_debug("msg=\"feed version not bumped\"");   /* cached feeds expire anyway */
}

void market_changed(struct server *srv)
{
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "INCR");
    store_key(&srv->store, &c, KEY_FEED_VERSION);
    store_send(&srv->store, &c, on_version_bumped, NULL);
}

static void bump_version(struct server *srv, enum store_fn fn)
{
    if (fn != FN_LIST && fn != FN_SWEEP)
        market_changed(srv);
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
    const char *flags = reply->element[1]->str;
    a->more = strstr(flags, "more") != NULL;
    a->changed = strstr(flags, "changed") != NULL;
    a->replayed = strstr(flags, "replayed") != NULL;
    a->nobjects = (reply->elements - 2) / 2;
    a->objects = reply->element + 2;
    return 0;
}
