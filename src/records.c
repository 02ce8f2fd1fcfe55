/* records.c — converting stored records to API objects, visibility, and reading one.
 *
 * The market scripts store records with short field names and times in Unix ms; this file
 * is the one place that knows how they map to the API (docs/matching.md). */
#include "impactd/records.h"

#include <stdio.h>
#include <string.h>

#include "impactd/auth.h"
#include "impactd/catalog.h"
#include "impactd/http.h"
#include "impactd/ids.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/router.h"
#include "impactd/server.h"

enum rf_type { RF_STR, RF_INT, RF_TIME };

struct rfield {
    const char *api;
    const char *rec;
    enum rf_type type;
    bool nullable;
};

static const struct rfield OFFER_FIELDS[] = {
    { "id", "id", RF_STR, false }, { "participant_id", "participant_id", RF_STR, false },
    { "product", "product", RF_STR, false }, { "market", "market", RF_STR, false },
    { "quantity", "quantity", RF_INT, false }, { "remaining", "remaining", RF_INT, false },
    { "allocated", "allocated", RF_INT, false }, { "released", "released", RF_INT, false },
    { "region", "region", RF_STR, false }, { "ready_at", "ready_at", RF_TIME, false },
    { "expires_at", "expires_at", RF_TIME, true },
    { "delivery_scope", "scope", RF_STR, false }, { "min_lot", "min_lot", RF_INT, true },
    { "note", "note", RF_STR, true }, { "status", "status", RF_STR, false },
    { "created_at", "created_at", RF_TIME, false }, { "updated_at", "updated_at", RF_TIME, false },
};

static const struct rfield NEED_FIELDS[] = {
    { "id", "id", RF_STR, false }, { "participant_id", "participant_id", RF_STR, false },
    { "product", "product", RF_STR, false }, { "market", "market", RF_STR, false },
    { "quantity", "quantity", RF_INT, false }, { "remaining", "remaining", RF_INT, false },
    { "allocated", "allocated", RF_INT, false }, { "received", "received", RF_INT, false },
    { "urgency", "urgency", RF_STR, false }, { "needed_by", "needed_by", RF_TIME, true },
    { "expires_at", "expires_at", RF_TIME, true }, { "region", "region", RF_STR, false },
    { "note", "note", RF_STR, true }, { "status", "status", RF_STR, false },
    { "created_at", "created_at", RF_TIME, false }, { "updated_at", "updated_at", RF_TIME, false },
};

static const struct rfield ALLOC_FIELDS[] = {
    { "id", "id", RF_STR, false }, { "need_id", "need_id", RF_STR, false },
    { "offer_id", "offer_id", RF_STR, false }, { "product", "product", RF_STR, false },
    { "offer_product", "offer_product", RF_STR, false }, { "market", "market", RF_STR, false },
    { "quantity", "quantity", RF_INT, false }, { "tier", "tier", RF_STR, false },
    { "status", "status", RF_STR, false },
    { "need_participant_id", "need_participant_id", RF_STR, false },
    { "offer_participant_id", "offer_participant_id", RF_STR, false },
    { "need_region", "need_region", RF_STR, false },
    { "offer_region", "offer_region", RF_STR, false }, { "urgency", "urgency", RF_STR, false },
    { "lapse_at", "lapse_at", RF_TIME, true }, { "created_at", "created_at", RF_TIME, false },
    { "updated_at", "updated_at", RF_TIME, false },
};

static const struct {
    const struct rfield *fields;
    size_t n;
    const char *prefix;
    const char *name;
    const char *hash;
} KINDS[] = {
    { OFFER_FIELDS, sizeof OFFER_FIELDS / sizeof OFFER_FIELDS[0], "off_", "offer", MKEY_OFFERS },
    { NEED_FIELDS, sizeof NEED_FIELDS / sizeof NEED_FIELDS[0], "ned_", "need", MKEY_NEEDS },
    { ALLOC_FIELDS, sizeof ALLOC_FIELDS / sizeof ALLOC_FIELDS[0], "alc_", "allocation",
      MKEY_ALLOCS },
};

const char *record_prefix(enum record_kind kind) { return KINDS[kind].prefix; }
const char *record_name(enum record_kind kind) { return KINDS[kind].name; }

static json_int_t as_int(const json_t *v)
{
    return json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_number_value(v);
}

json_t *record_to_api(enum record_kind kind, const json_t *rec)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < KINDS[kind].n; i++) {
        const struct rfield *f = &KINDS[kind].fields[i];
        const json_t *v = json_object_get(rec, f->rec);
        if (!v || json_is_null(v)) {
            json_object_set_new(o, f->api, f->type == RF_INT && !f->nullable ? json_integer(0)
                                                                               : json_null());
            continue;
        }
        switch (f->type) {
        case RF_STR:
            json_object_set_new(o, f->api, json_is_string(v) ? json_string(json_string_value(v))
                                                             : json_null());
            break;
        case RF_INT:
            json_object_set_new(o, f->api, json_integer(as_int(v)));
            break;
        case RF_TIME:
            json_set_time(o, f->api, (int64_t)as_int(v));
            break;
        }
    }
    return o;
}

json_t *record_array_to_api(enum record_kind kind, const json_t *recs)
{
    json_t *out = json_array();
    size_t i;
    const json_t *rec;
    json_array_foreach(recs, i, rec) json_array_append_new(out, record_to_api(kind, rec));
    return out;
}

static bool region_in(const json_t *regions, const char *code)
{
    size_t i;
    const json_t *v;
    if (!code)
        return false;
    json_array_foreach(regions, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), code) == 0)
            return true;
    }
    return false;
}

bool principal_sees_region(const struct principal *who, const char *code)
{
    return who->role != ROLE_MINISTRY || !who->regions || region_in(who->regions, code);
}

bool record_visible(const struct principal *who, enum record_kind kind, const json_t *rec)
{
    if (who->role == ROLE_ADMIN)
        return true;
    if (who->role == ROLE_MINISTRY) {
        if (!who->regions)
            return true;
        const char *r1 = json_string_value(json_object_get(rec, kind == RECORD_ALLOC
                                                                     ? "need_region" : "region"));
        const char *r2 = json_string_value(json_object_get(rec, "offer_region"));
        return region_in(who->regions, r1) || (kind == RECORD_ALLOC && region_in(who->regions, r2));
    }
    static const char *const OWNERS[] = { "participant_id", "need_participant_id",
                                          "offer_participant_id" };
    for (size_t i = 0; i < 3; i++) {
        const char *p = json_string_value(json_object_get(rec, OWNERS[i]));
        if (p && strcmp(p, who->participant_id) == 0)
            return true;
    }
    return false;
}

/* ---- GET one ---- */

static void on_record(struct req *r, enum store_status st, redisReply *reply)
{
    enum record_kind kind = (enum record_kind)r->arg;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    json_t *rec = reply->type == REDIS_REPLY_STRING ? json_loadb(reply->str, reply->len, 0, NULL)
                                                     : NULL;
    if (!rec || !record_visible(&r->who, kind, rec)) {
        json_decref(rec);
        http_reply_problemf(r, 404, NULL, "no such %s", record_name(kind));
        return;
    }
    http_reply_json(r, 200, record_to_api(kind, rec));
    json_decref(rec);
}

void record_get(struct req *r, enum record_kind kind)
{
    const char *id = http_param(r, 0);
    const struct market *m = catalog_market_of_id(&r->srv->catalog, id);
    if (!m || !id_valid(id, record_prefix(kind))) {
        http_reply_problemf(r, 404, NULL, "no such %s", record_name(kind));
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGET");
    store_key(&r->srv->store, &c, KEY_MARKET, m->id, KINDS[kind].hash);
    cmd_add(&c, id);
    r->arg = kind;
    http_store_send(r, &c, on_record);
}
