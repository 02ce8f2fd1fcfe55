/* market.c — the key plan of a market call, its common arguments and its answers.
 *
 * Every market script gets the same layout (market_lib.lua documents it): 9 fixed keys,
 * then the index keys the call may touch, chosen here from the catalogue's region graph so
 * that a need-post passes only the offer indexes of its tiers. */
#include "impactd/market.h"

#include <stdio.h>
#include <string.h>

#include "impactd/ids.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/notify.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

static const char *const FIXED[] = { MKEY_OFFERS, MKEY_NEEDS, MKEY_ALLOCS, MKEY_OWN, MKEY_ALL,
                                     MKEY_EXCL, MKEY_AGG, MKEY_EVENTS, MKEY_DUE };
static const char *const SCOPES[] = { "region", "neighbours", "national" };

static int scope_rank(const char *scope)
{
    for (int i = 0; i < 3; i++)
        if (scope && strcmp(scope, SCOPES[i]) == 0)
            return i;
    return 0;
}

static void add_offer_index(const struct server *srv, struct cmd *c, const char *mid,
                            const char *region, const char *scope, int *n)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, MKEY_OFFER_INDEX, region, scope);
    store_key(&srv->store, c, KEY_MARKET, mid, suffix);
    (*n)++;
}

static void add_need_index(const struct server *srv, struct cmd *c, const char *mid,
                           const char *region, int *n)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, MKEY_NEED_INDEX, region);
    store_key(&srv->store, c, KEY_MARKET, mid, suffix);
    (*n)++;
}

/* The index keys: see enum market_reach. */
static int market_index_keys(const struct server *srv, const char *mid, enum market_reach reach,
                             const char *region, const char *scope, struct cmd *c)
{
    const struct catalog *cat = &srv->catalog;
    const struct region *home = region ? catalog_region(cat, region) : NULL;
    int n = 0;
    if (reach == REACH_ALL || !home) {
        for (size_t i = 0; i < cat->nregions; i++) {
            for (int s = 0; s < 3; s++)
                add_offer_index(srv, c, mid, cat->regions[i].code, SCOPES[s], &n);
            add_need_index(srv, c, mid, cat->regions[i].code, &n);
        }
        return n;
    }
    if (reach == REACH_FOR_NEED) {
        add_need_index(srv, c, mid, home->code, &n);
        for (size_t i = 0; i < cat->nregions; i++) {
            const struct region *r = &cat->regions[i];
            int from = r == home ? 0 : catalog_neighbours(home, r->code) ? 1 : 2;
            for (int s = from; s < 3; s++)
                add_offer_index(srv, c, mid, r->code, SCOPES[s], &n);
        }
        return n;
    }
    int reach_rank = scope_rank(scope);
    add_offer_index(srv, c, mid, home->code, SCOPES[reach_rank], &n);
    for (size_t i = 0; i < cat->nregions; i++) {
        const struct region *r = &cat->regions[i];
        int needed = r == home ? 0 : catalog_neighbours(home, r->code) ? 1 : 2;
        if (needed <= reach_rank)
            add_need_index(srv, c, mid, r->code, &n);
    }
    return n;
}

int market_command(const struct server *srv, const struct market *m, enum market_reach reach,
                   const char *region, const char *scope, const json_t *op, struct cmd *c)
{
    int nkeys = 0;
    for (size_t i = 0; i < sizeof FIXED / sizeof FIXED[0]; i++, nkeys++)
        store_key(&srv->store, c, KEY_MARKET, m->id, FIXED[i]);
    nkeys += market_index_keys(srv, m->id, reach, region, scope, c);
    int64_t now = time_now_ms();
    cmd_addll(c, now);
    cmd_add(c, srv->catalog.region_graph);
    const int64_t *lapse = srv->cfg.lapse_after_ms;
    cmd_addf(c, "%lld.%lld.%lld.%lld", (long long)lapse[0], (long long)lapse[1],
             (long long)lapse[2], (long long)lapse[3]);
    char base[ID_MAX_LEN];
    id_base(now, base, 22);     /* market_lib.lua appends a 4-character counter */
    cmd_add(c, base);
    cmd_add(c, m->code);
    char *text = json_dumps(op, JSON_COMPACT);
    if (!text) {
        c->failed = true;
        return nkeys;
    }
    cmd_add(c, text);
    free(text);
    cmd_addll(c, srv->cfg.events_retention);
    return nkeys;
}

void market_eval(struct req *r, enum script_id script, const struct market *m,
                 enum market_reach reach, const char *region, const char *scope,
                 const json_t *op, req_store_cb cb)
{
    struct cmd c;
    cmd_init(&c);
    int nkeys = market_command(r->srv, m, reach, region, scope, op, &c);
    http_store_eval(r, script, nkeys, &c, cb);
}

json_t *market_answer(struct req *r, enum store_status st, const redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL) || reply->type != REDIS_REPLY_STRING) {
        http_reply_store_failure(r, st, reply);
        return NULL;
    }
    json_error_t je;
    json_t *a = json_loadb(reply->str, reply->len, 0, &je);
    if (!json_is_object(a)) {
        log_error("msg=\"unreadable script answer\" req=%s error=\"%s\"", r->id, je.text);
        json_decref(a);
        http_reply_problem(r, 500, NULL, "the store answered unexpectedly; the error is logged");
        return NULL;
    }
    const char *err = json_string_value(json_object_get(a, "error"));
    if (err) {
        const char *detail = json_string_value(json_object_get(a, "detail"));
        int status = !strcmp(err, "not_found") ? 404 : !strcmp(err, "forbidden") ? 403 : 409;
        http_reply_problem(r, status, status == 409 ? "conflict" : NULL, detail);
        json_decref(a);
        return NULL;
    }
    notify_kick(r->srv);        /* a change was made: its events are waiting */
    /* cjson encodes an empty Lua table as {}: make the allocations list an array */
    if (!json_is_array(json_object_get(a, "allocations")))
        json_object_set_new(a, "allocations", json_array());
    return a;
}

const struct market *market_of_product(const struct server *srv, const char *product)
{
    const struct product *p = catalog_product(&srv->catalog, product);
    return p ? &srv->catalog.markets[p->market] : NULL;
}
