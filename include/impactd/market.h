/* market.h — calling the market functions (src/scripts/market.lua and the files after it):
 * which keys a call passes, the arguments every call carries, and reading the answers.
 * One market is one Redis Cluster slot; see docs/ARCHITECTURE.md. This module answers no
 * HTTP request: the engine (engine.c) and the sweeper decide what an answer means. */
#ifndef IMPACTD_MARKET_H
#define IMPACTD_MARKET_H

#include <stdbool.h>
#include <stddef.h>

#include "calls.h"
#include "store.h"

struct server;

/* Which index keys a call passes (match.lua, "layouts"): a need being created reaches the
 * offers of its tiers; an offer being created the needs its scope reaches; anything else may
 * match any item of the market again, so it gets every index key. */
enum market_reach { REACH_ALL, REACH_NEED, REACH_OFFER };

struct market_call {
    struct cmd cmd;
    int nkeys;
    enum store_fn fn;
    size_t market;
};

/* The key blocks and common arguments of each market's calls, encoded once (they depend only
 * on the catalogue and the configuration) and appended to every call. */
struct market_block {
    struct cmd cmd;                 /* empty (buf NULL) until first built */
    int nkeys;
};
struct market_keys {
    struct market_block fixed;      /* the MARKET_FIXED_KEYS keys */
    struct market_block common;     /* the arguments every market function takes */
    struct market_block all;        /* REACH_ALL */
    struct market_block *need;      /* REACH_NEED, by region index (owned) */
    struct market_block *offer;     /* REACH_OFFER, by region index × 3 + scope (owned) */
};

int market_init(struct server *srv) __attribute__((warn_unused_result));
void market_free(struct server *srv);

/* Starts a call: the fixed keys, the Idempotency-Key's record (`idem`: the request's, or
 * NULL), `own` (a participant's list; NULL: none), the index keys of `reach` (region and
 * scope: the item's own, for REACH_NEED and REACH_OFFER), then the arguments every market
 * function takes. The caller appends the function's own. */
void market_call_begin(struct server *srv, struct market_call *mc, enum store_fn fn,
                       size_t market, const struct req_idem *idem, const char *own,
                       enum market_reach reach, const char *region, int scope);
/* Sends it on behalf of a request, or of the daemon itself. Every call but a list or a sweep
 * also bumps the stock feed's version, right behind it on the same connection; a sweep's
 * caller bumps it with market_changed when the answer says so. */
void market_req(struct req *r, struct market_call *mc, req_store_cb cb);
void market_send(struct server *srv, struct market_call *mc, store_cb cb, void *arg);
/* Bumps the stock feed's version after a call whose answer said `changed`. */
void market_changed(struct server *srv);

/* A market function's answer: {'ok', flags, id, record, ...} or {code, detail}. */
struct market_answer {
    const char *error;              /* NULL, or "not_found" | "forbidden" | "conflict" |
                                     * "idem_reuse" (the key came with another request) */
    const char *detail;
    bool more;                      /* matching goes on in a later call */
    bool changed;                   /* records were written */
    bool replayed;                  /* the outcome recorded under the Idempotency-Key */
    size_t nobjects;                /* id/record pairs: the main object, then allocations */
    redisReply *const *objects;     /* objects[2i] id, objects[2i + 1] record */
};
/* 0, or -1 when the reply is not a market answer. */
int market_answer_read(const redisReply *reply, struct market_answer *a)
    __attribute__((warn_unused_result));

#endif
