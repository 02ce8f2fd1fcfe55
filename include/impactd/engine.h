/* engine.h — create, change, act on, read and list any market resource, by its descriptor.
 *
 * A handler of offers, needs or allocations is one line: its resource's file says what is
 * particular to it (a struct item_kind: its create function, its reach, the rules its field
 * table cannot say) and calls the engine. The engine validates against the descriptor,
 * builds the stored record, calls the market function (market.h), and answers: 201 with the
 * object and the allocations made, 200 with the object, or 404/403/409/422/503. */
#ifndef IMPACTD_ENGINE_H
#define IMPACTD_ENGINE_H

#include <jansson.h>
#include <stdbool.h>

#include "market.h"
#include "record.h"
#include "request.h"
#include "resource.h"

struct product;

struct item_kind {
    const struct resource *res;
    enum store_fn create;           /* the market function that creates and matches it */
    enum market_reach reach;        /* REACH_NEED or REACH_OFFER */
    /* Rules beyond the field table: add to errors (p: the body's product, NULL if unknown). */
    void (*rules)(const struct req *r, const struct product *p, json_t *values,
                  json_t *errors);
};

void engine_create(struct req *r, const struct item_kind *k);
/* PATCH (remove false) or DELETE (true) of the caller's own offer or need. */
void engine_update(struct req *r, const struct resource *res, bool remove);
/* One of res's actions on the record of the path's id, by its participant. */
void engine_act(struct req *r, const struct resource *res, const char *action);
void engine_get(struct req *r, const struct resource *res);
/* One page, oldest first, across markets: the caller's own, or everything (ministry within
 * its regions, admin). Filters: status, region, product, and res's F_FILTER references. */
void engine_list(struct req *r, const struct resource *res);

/* Owner (an F_OWNER field), admin, or ministry within its regions (an F_SCOPE field). */
bool engine_visible(const struct principal *who, const struct resource *res,
                    const struct record *rec);
/* False only for a ministry token limited to regions that do not include code. */
bool principal_sees_region(const struct principal *who, const char *code);

#endif
