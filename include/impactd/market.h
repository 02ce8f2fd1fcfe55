/* market.h — calling the market scripts (src/scripts/market_lib.lua and the scripts that
 * require it): which keys a call passes, the arguments every call carries, and reading
 * their answers. One market is one Redis Cluster slot; see docs/ARCHITECTURE.md. */
#ifndef IMPACTD_MARKET_H
#define IMPACTD_MARKET_H

#include <jansson.h>

#include "catalog.h"
#include "http.h"
#include "store.h"

struct server;

/* Which index keys a call may touch. Creating a need reaches the offers of its tiers;
 * creating an offer the needs its scope reaches; anything else may rematch any need of the
 * market, so it gets every index key. */
enum market_reach { REACH_ALL, REACH_FOR_NEED, REACH_FOR_OFFER };

/* Appends the market's keys (the 9 fixed ones, then the index keys) and the common
 * arguments, then the operation (JSON, not stolen). Returns the number of keys. */
int market_command(const struct server *srv, const struct market *m, enum market_reach reach,
                   const char *region, const char *scope, const json_t *op, struct cmd *c);

/* Runs a market script for a request. */
void market_eval(struct req *r, enum script_id script, const struct market *m,
                 enum market_reach reach, const char *region, const char *scope,
                 const json_t *op, req_store_cb cb);

/* Reads a market script's answer. Returns the parsed object (caller owns it), or NULL after
 * having answered the request: 503/500 for store failures, 404/403/409 for the script's
 * {error} answers. */
json_t *market_answer(struct req *r, enum store_status st, const redisReply *reply);

/* The market of a product id, or NULL. */
const struct market *market_of_product(const struct server *srv, const char *product);

#endif
