/* listing.c — GET /v1/offers, /v1/needs, /v1/allocations: one page across markets.
 *
 * Each market answers from its own lexicographic index (own: "<participant>:<id>", or all:
 * "<id>") through list.lua, examining a bounded number of members. Ids sort by creation
 * time, so merging the markets' answers by id gives one oldest-first list. A market that
 * stopped before its end bounds the page: nothing after its last examined id is known yet,
 * so the page ends there and the cursor resumes from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/http.h"
#include "impactd/ids.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/problem.h"
#include "impactd/records.h"
#include "impactd/router.h"
#include "impactd/server.h"
#include "impactd/validate.h"

#define LIST_BUDGET_FACTOR 8    /* members examined per market: limit × this + 64 */

struct list_job {
    enum record_kind kind;
    int64_t limit;
    size_t waiting;
    bool failed;
    enum store_status status;
    json_t *items;              /* records from every market */
    char boundary[ID_MAX_LEN];  /* smallest last-examined id of an unfinished market */
};

static void list_job_free(void *v)
{
    struct list_job *j = v;
    json_decref(j->items);
    free(j);
}

static const char *strip_owner(const char *member)
{
    const char *colon = strrchr(member, ':');
    return colon ? colon + 1 : member;
}

static int by_id(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "id")),
                  json_string_value(json_object_get(y, "id")));
}

static void list_finish(struct req *r, struct list_job *j)
{
    size_t n = json_array_size(j->items);
    json_t **sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted) {
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(j->items, i);
    qsort(sorted, n, sizeof *sorted, by_id);
    size_t eligible = n;
    if (j->boundary[0]) {
        eligible = 0;
        while (eligible < n &&
               strcmp(json_string_value(json_object_get(sorted[eligible], "id")), j->boundary) <= 0)
            eligible++;
    }
    size_t take = eligible < (size_t)j->limit ? eligible : (size_t)j->limit;
    json_t *items = json_array();
    for (size_t i = 0; i < take; i++)
        json_array_append_new(items, record_to_api(j->kind, sorted[i]));
    const char *next = NULL;
    if (eligible > take)
        next = json_string_value(json_object_get(sorted[take - 1], "id"));
    else if (j->boundary[0])
        next = j->boundary;
    json_t *body = json_pack("{s:o, s:s?}", "items", items, "next_cursor", next);
    if (body && !next)
        json_object_set_new(body, "next_cursor", json_null());
    free(sorted);
    http_reply_json(r, 200, body);
}

static void on_market_page(struct req *r, enum store_status st, redisReply *reply)
{
    struct list_job *j = r->ctx;
    j->waiting--;
    json_t *a = NULL;
    if (st != STORE_OK || reply_is_error(reply, NULL) || reply->type != REDIS_REPLY_STRING ||
        !(a = json_loadb(reply->str, reply->len, 0, NULL))) {
        if (!j->failed)
            log_warn("msg=\"list page failed\" req=%s", r->id);
        j->failed = true;
        j->status = st;
    } else {
        json_t *items = json_object_get(a, "items");
        size_t i;
        json_t *text;
        json_array_foreach(items, i, text) {
            json_t *rec = json_is_string(text) ? json_loads(json_string_value(text), 0, NULL)
                                               : NULL;
            if (rec)
                json_array_append_new(j->items, rec);
        }
        const char *last = json_string_value(json_object_get(a, "last"));
        if (!json_is_true(json_object_get(a, "done")) && last && *last) {
            const char *id = strip_owner(last);
            if (!j->boundary[0] || strcmp(id, j->boundary) < 0)
                snprintf(j->boundary, sizeof j->boundary, "%s", id);
        }
        json_decref(a);
    }
    if (j->waiting)
        return;
    if (j->failed) {
        http_reply_store_failure(r, j->status == STORE_OK ? STORE_DOWN : j->status, NULL);
        return;
    }
    list_finish(r, j);
}

static const char *const OFFER_STATUSES[] = { "open", "depleted", "withdrawn", "expired", NULL };
static const char *const NEED_STATUSES[] = { "open", "allocated", "fulfilled", "cancelled",
                                             "expired", NULL };
static const char *const ALLOC_STATUSES[] = { "proposed", "confirmed", "declined", "lapsed",
                                              "shipped", "received", NULL };

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Reads and checks the filters; answers 422 and returns NULL when one is wrong. */
static json_t *list_filters(struct req *r, enum record_kind kind, const struct market **only)
{
    const struct catalog *cat = &r->srv->catalog;
    json_t *f = json_object(), *errors = problem_errors_new();
    const char *status = http_query(r, "status");
    const char *const *statuses = kind == RECORD_OFFER ? OFFER_STATUSES
                                  : kind == RECORD_NEED ? NEED_STATUSES : ALLOC_STATUSES;
    if (status && !in_list(statuses, status))
        problem_errors_add(errors, "status", "is not a %s status", record_name(kind));
    else if (status)
        json_object_set_new(f, "status", json_string(status));
    const char *region = http_query(r, "region");
    if (region && !catalog_region(cat, region))
        problem_errors_add(errors, "region", "is not a region code of the catalogue");
    else if (region)
        json_object_set_new(f, "region", json_string(region));
    const char *product = http_query(r, "product");
    if (product) {
        const struct product *p = catalog_product(cat, product);
        if (!p)
            problem_errors_add(errors, "product", "is not a product of the catalogue");
        else {
            json_object_set_new(f, "product", json_string(product));
            *only = &cat->markets[p->market];
        }
    }
    static const char *const ID_FILTERS[][2] = { { "need_id", "ned_" }, { "offer_id", "off_" } };
    for (size_t i = 0; kind == RECORD_ALLOC && i < 2; i++) {
        const char *v = http_query(r, ID_FILTERS[i][0]);
        if (!v)
            continue;
        const struct market *m = catalog_market_of_id(cat, v);
        if (!m || !id_valid(v, ID_FILTERS[i][1]) || (*only && *only != m)) {
            problem_errors_add(errors, ID_FILTERS[i][0], "is not a %s id",
                               i == 0 ? "need" : "offer");
            continue;
        }
        json_object_set_new(f, ID_FILTERS[i][0], json_string(v));
        *only = m;
    }
    const char *cursor = http_query(r, "cursor");
    if (cursor && (!id_valid(cursor, record_prefix(kind)) || strlen(cursor) >= ID_MAX_LEN))
        problem_errors_add(errors, "cursor", "is not a cursor this server issued");
    int64_t limit;
    if (validate_query_int(http_query(r, "limit"), 1, 500, 50, &limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (json_array_size(errors)) {
        json_decref(f);
        http_reply_invalid(r, errors);
        return NULL;
    }
    json_decref(errors);
    if (r->who.role == ROLE_MINISTRY && r->who.regions)
        json_object_set(f, "regions", r->who.regions);
    json_object_set_new(f, "limit", json_integer(limit));
    return f;
}

static const char *const HASHES[] = { MKEY_OFFERS, MKEY_NEEDS, MKEY_ALLOCS };

void record_list(struct req *r, enum record_kind kind)
{
    const struct market *only = NULL;
    json_t *f = list_filters(r, kind, &only);
    if (!f)
        return;
    struct list_job *j = calloc(1, sizeof *j);
    if (!j || !(j->items = json_array())) {
        free(j);
        json_decref(f);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    j->kind = kind;
    j->limit = json_integer_value(json_object_get(f, "limit"));
    json_object_del(f, "limit");
    r->ctx = j;
    r->ctx_free = list_job_free;

    bool everyone = r->who.role == ROLE_ADMIN || r->who.role == ROLE_MINISTRY;
    char owner[ID_MAX_LEN + 1] = "";
    if (!everyone)
        snprintf(owner, sizeof owner, "%s:", r->who.participant_id);
    const char *cursor = http_query(r, "cursor");
    char start[128], end[128];
    if (cursor)
        snprintf(start, sizeof start, "(%s%s", owner, cursor);
    else
        snprintf(start, sizeof start, "[%s%s", owner, record_prefix(kind));
    snprintf(end, sizeof end, "[%s%s~", owner, record_prefix(kind));
    char *filters = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    const struct catalog *cat = &r->srv->catalog;
    for (size_t i = 0; i < cat->nmarkets; i++) {
        const struct market *m = &cat->markets[i];
        if (only && only != m)
            continue;
        struct cmd c;
        cmd_init(&c);
        store_key(&r->srv->store, &c, KEY_MARKET, m->id, everyone ? MKEY_ALL : MKEY_OWN);
        store_key(&r->srv->store, &c, KEY_MARKET, m->id, HASHES[kind]);
        cmd_add(&c, start);
        cmd_add(&c, end);
        cmd_addll(&c, j->limit);
        cmd_add(&c, filters ? filters : "{}");
        cmd_addll(&c, j->limit * LIST_BUDGET_FACTOR + 64);
        j->waiting++;
        http_store_eval(r, SCRIPT_LIST, 2, &c, on_market_page);
    }
    free(filters);
}
