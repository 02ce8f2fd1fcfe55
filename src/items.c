/* items.c — offers and needs: create, read, list, change, withdraw/cancel.
 *
 * The two kinds share every step; what differs is declared in one `struct item_kind` each:
 * field tables, the create script, which indexes a create may reach, and the rules the field
 * tables cannot say (a hospital needs finished goods only, min_lot ≤ quantity, ...).
 * The atomic work — storing, indexing, matching — is in the market scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/checks.h"
#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/market.h"
#include "impactd/problem.h"
#include "impactd/records.h"
#include "impactd/router.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

#define QMAX 1000000000

static const char *const SCOPES[] = { "region", "neighbours", "national", NULL };
static const char *const URGENCIES[] = { "stat", "asap", "urgent", "routine", NULL };

static const struct vfield OFFER_CREATE[] = {
    { "product", V_STRING, true, false, 0, 0, NULL, check_product },
    { "quantity", V_INTEGER, true, false, 1, QMAX, NULL, NULL },
    { "region", V_STRING, false, false, 0, 0, NULL, check_region },
    { "ready_at", V_TIME, false, true, 0, 0, NULL, NULL },
    { "expires_at", V_TIME, false, true, 0, 0, NULL, check_future },
    { "delivery_scope", V_ENUM, false, false, 0, 0, SCOPES, NULL },
    { "min_lot", V_INTEGER, false, true, 1, QMAX, NULL, NULL },
    { "note", V_STRING, false, true, 0, 1000, NULL, NULL },
};

static const struct vfield NEED_CREATE[] = {
    { "product", V_STRING, true, false, 0, 0, NULL, check_product },
    { "quantity", V_INTEGER, true, false, 1, QMAX, NULL, NULL },
    { "urgency", V_ENUM, true, false, 0, 0, URGENCIES, NULL },
    { "needed_by", V_TIME, false, true, 0, 0, NULL, NULL },
    { "expires_at", V_TIME, false, true, 0, 0, NULL, check_future },
    { "region", V_STRING, false, false, 0, 0, NULL, check_region },
    { "note", V_STRING, false, true, 0, 1000, NULL, NULL },
};

static const struct vfield OFFER_PATCH[] = {
    { "quantity", V_INTEGER, false, false, 1, QMAX, NULL, NULL },
    { "expires_at", V_TIME, false, true, 0, 0, NULL, check_future },
    { "note", V_STRING, false, true, 0, 1000, NULL, NULL },
};

static const struct vfield NEED_PATCH[] = {
    { "quantity", V_INTEGER, false, false, 1, QMAX, NULL, NULL },
    { "urgency", V_ENUM, false, false, 0, 0, URGENCIES, NULL },
    { "needed_by", V_TIME, false, true, 0, 0, NULL, NULL },
    { "expires_at", V_TIME, false, true, 0, 0, NULL, check_future },
    { "note", V_STRING, false, true, 0, 1000, NULL, NULL },
};

/* Rules beyond the field table; add to errors. */
static void offer_rules(const struct req *r, const struct product *p, json_t *errors)
{
    (void)r;
    (void)p;
    json_t *lot = json_object_get(r->body, "min_lot");
    json_t *q = json_object_get(r->body, "quantity");
    if (json_is_integer(lot) && json_is_integer(q) &&
        json_integer_value(lot) > json_integer_value(q))
        problem_errors_add(errors, "min_lot", "must not exceed quantity");
}

static void need_rules(const struct req *r, const struct product *p, json_t *errors)
{
    if (!p)
        return;
    bool ok = r->who.role == ROLE_HOSPITAL
                  ? p->category == CAT_FINISHED_GOOD
                  : p->category == CAT_RAW_MATERIAL || p->category == CAT_PACKAGING;
    if (!ok)
        problem_errors_add(errors, "product", "a %s may need only %s; %s is a %s",
                           role_name(r->who.role),
                           r->who.role == ROLE_HOSPITAL ? "finished goods"
                                                        : "raw materials and packaging",
                           p->id, catalog_category_name(p->category));
}

struct item_kind {
    enum record_kind record;
    const struct vfield *create;
    size_t ncreate;
    const struct vfield *patch;
    size_t npatch;
    enum script_id create_script;
    enum market_reach reach;
    void (*rules)(const struct req *r, const struct product *p, json_t *errors);
    const char *path;           /* "/v1/offers/" */
};

static const struct item_kind OFFER = {
    RECORD_OFFER, OFFER_CREATE, sizeof OFFER_CREATE / sizeof OFFER_CREATE[0], OFFER_PATCH,
    sizeof OFFER_PATCH / sizeof OFFER_PATCH[0], SCRIPT_OFFER_CREATE, REACH_FOR_OFFER,
    offer_rules, "/v1/offers/",
};

static const struct item_kind NEED = {
    RECORD_NEED, NEED_CREATE, sizeof NEED_CREATE / sizeof NEED_CREATE[0], NEED_PATCH,
    sizeof NEED_PATCH / sizeof NEED_PATCH[0], SCRIPT_NEED_CREATE, REACH_FOR_NEED, need_rules,
    "/v1/needs/",
};

/* Sets key to the Unix ms of an RFC 3339 field of the body (when present and not null). */
static void set_ms(json_t *rec, const char *key, const json_t *body, const char *field)
{
    int64_t ms;
    const char *s = json_string_value(json_object_get(body, field));
    if (s && time_parse_rfc3339(s, &ms) == 0)
        json_object_set_new(rec, key, json_integer(ms));
}

static void copy_field(json_t *rec, const char *key, const json_t *body, const char *field)
{
    json_t *v = json_object_get(body, field);
    if (v && !json_is_null(v))
        json_object_set(rec, key, v);
}

/* ---- answers ---- */

static void count_allocations(struct req *r, const json_t *answer)
{
    r->srv->metrics.allocations_made += json_array_size(json_object_get(answer, "allocations"));
}

/* {kind: api, allocations: [api...]} with `status`; Location on 201. */
static void reply_item(struct req *r, enum record_kind kind, int status, json_t *answer)
{
    const char *name = record_name(kind);
    json_t *rec = json_object_get(answer, name);
    count_allocations(r, answer);
    if (status == 201) {
        char loc[96];
        snprintf(loc, sizeof loc, "%s%s", kind == RECORD_OFFER ? "/v1/offers/" : "/v1/needs/",
                 json_string_value(json_object_get(rec, "id")));
        http_set_header(r, "Location", loc);
        json_t *body = json_object();
        json_object_set_new(body, name, record_to_api(kind, rec));
        json_object_set_new(body, "allocations",
                            record_array_to_api(RECORD_ALLOC, json_object_get(answer, "allocations")));
        http_reply_json(r, 201, body);
    } else {
        http_reply_json(r, status, record_to_api(kind, rec));
    }
    json_decref(answer);
}

/* r->arg holds the record kind; creation answers 201, changes 200. */
static void on_created(struct req *r, enum store_status st, redisReply *reply)
{
    json_t *a = market_answer(r, st, reply);
    if (a)
        reply_item(r, (enum record_kind)r->arg, 201, a);
}

static void on_updated(struct req *r, enum store_status st, redisReply *reply)
{
    json_t *a = market_answer(r, st, reply);
    if (a)
        reply_item(r, (enum record_kind)r->arg, 200, a);
}

/* ---- create ---- */

static void items_create(struct req *r, const struct item_kind *k)
{
    struct server *srv = r->srv;
    json_t *errors = problem_errors_new();
    validate_object(r->body, k->create, k->ncreate, srv, errors);
    const char *product = json_string_value(json_object_get(r->body, "product"));
    const struct product *p = product ? catalog_product(&srv->catalog, product) : NULL;
    k->rules(r, p, errors);
    const char *region = json_string_value(json_object_get(r->body, "region"));
    if (!region && !json_object_get(r->body, "region")) {
        region = r->who.region[0] ? r->who.region : NULL;
        if (!region)
            problem_errors_add(errors, "region", "is required: your participant has no region");
    }
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return;
    }
    json_decref(errors);

    const struct market *m = &srv->catalog.markets[p->market];
    int64_t now = time_now_ms();
    char base[ID_MAX_LEN], id[ID_MAX_LEN + 8];
    id_new(record_prefix(k->record), now, base);
    snprintf(id, sizeof id, "%s%s", base, m->code);
    json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s}", "id", id, "participant_id",
                            r->who.participant_id, "product", p->id, "market", m->id,
                            "quantity", json_object_get(r->body, "quantity"), "region", region);
    copy_field(rec, "note", r->body, "note");
    set_ms(rec, "expires_at", r->body, "expires_at");
    const char *scope = NULL;
    if (k->record == RECORD_OFFER) {
        scope = json_string_value(json_object_get(r->body, "delivery_scope"));
        if (!scope)
            scope = "neighbours";
        json_object_set_new(rec, "scope", json_string(scope));
        json_object_set_new(rec, "ready_at", json_integer(now));
        set_ms(rec, "ready_at", r->body, "ready_at");
        copy_field(rec, "min_lot", r->body, "min_lot");
    } else {
        copy_field(rec, "urgency", r->body, "urgency");
        set_ms(rec, "needed_by", r->body, "needed_by");
    }
    json_t *op = json_pack("{s:o}", record_name(k->record), rec);
    r->arg = k->record;
    market_eval(r, k->create_script, m, k->reach, region, scope, op, on_created);
    json_decref(op);
}

/* ---- change ---- */

static void items_update(struct req *r, const struct item_kind *k, bool delete)
{
    const char *id = http_param(r, 0);
    const struct market *m = catalog_market_of_id(&r->srv->catalog, id);
    json_t *set = json_object(), *clear = json_array();
    if (!delete) {
        json_t *errors = problem_errors_new();
        validate_object(r->body, k->patch, k->npatch, r->srv, errors);
        if (json_array_size(errors)) {
            json_decref(set);
            json_decref(clear);
            http_reply_invalid(r, errors);
            return;
        }
        json_decref(errors);
        for (size_t i = 0; i < k->npatch; i++) {
            const char *f = k->patch[i].name;
            json_t *v = json_object_get(r->body, f);
            if (!v)
                continue;
            if (json_is_null(v))
                json_array_append_new(clear, json_string(f));
            else if (k->patch[i].type == V_TIME)
                set_ms(set, f, r->body, f);
            else
                json_object_set(set, f, v);
        }
    }
    if (!m || !id_valid(id, record_prefix(k->record))) {
        json_decref(set);
        json_decref(clear);
        http_reply_problemf(r, 404, NULL, "no such %s", record_name(k->record));
        return;
    }
    json_t *op = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "kind", record_name(k->record),
                           "id", id, "actor", r->who.participant_id, "action",
                           delete ? "delete" : "patch", "set", set, "clear", clear);
    r->arg = k->record;
    market_eval(r, SCRIPT_ITEM_UPDATE, m, REACH_ALL, NULL, NULL, op, on_updated);
    json_decref(op);
}

/* ---- handlers ---- */

void offers_create(struct req *r) { items_create(r, &OFFER); }
void offers_list(struct req *r) { record_list(r, RECORD_OFFER); }
void offers_get(struct req *r) { record_get(r, RECORD_OFFER); }
void offers_patch(struct req *r) { items_update(r, &OFFER, false); }
void offers_delete(struct req *r) { items_update(r, &OFFER, true); }
void needs_create(struct req *r) { items_create(r, &NEED); }
void needs_list(struct req *r) { record_list(r, RECORD_NEED); }
void needs_get(struct req *r) { record_get(r, RECORD_NEED); }
void needs_patch(struct req *r) { items_update(r, &NEED, false); }
void needs_delete(struct req *r) { items_update(r, &NEED, true); }
