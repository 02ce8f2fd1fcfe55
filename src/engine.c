/* engine.c — the generic engine over market resources (engine.h).
 *
 * One flow for every resource: check the body against the descriptor (validate.c) and the
 * resource's own rules, pack the stored record (record.c), call the market function
 * (market.c), turn its answer into API objects (record.c) and answer (reply.c). Reading one
 * record is one HGET; a list is one list function call per market (a fan-out, request.h)
 * merged into one page (page.h). Visibility is read from the descriptor (F_OWNER, F_SCOPE). */
#include "impactd/calls.h"
#include "impactd/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/buf.h"
#include "impactd/catalog.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/notify.h"
#include "impactd/page.h"
#include "impactd/parties.h"
#include "impactd/problem.h"
#include "impactd/reply.h"
#include "impactd/router.h"
#include "impactd/server.h"
#include "impactd/sweeper.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"

#define LIST_BUDGET_FACTOR 8    /* index entries examined per market: limit × this + 64 */

/* The handler's state across its store calls. */
struct engine_job {
    const struct resource *res;
    const struct item_kind *kind;   /* a creation's */
    size_t market;
    int status;                 /* 201 for a creation, 200 otherwise */
    struct fanout fan;
    struct page page;
    int64_t limit;
};

static void engine_job_clear(void *v)
{
    struct engine_job *j = v;
    page_free(&j->page);
}

static const struct req_state_type ENGINE_JOB = {
    "engine", sizeof(struct engine_job), engine_job_clear,
};

static struct engine_job *job_start(struct req *r, const struct resource *res, size_t market)
{
    struct engine_job *j = req_state(r, &ENGINE_JOB);
    if (j) {
        j->res = res;
        j->market = market;
        page_init(&j->page);
    }
    return j;
}

/* ---- visibility ---- */

static bool region_in(const json_t *regions, const char *code, size_t len)
{
    size_t i;
    const json_t *v;
    json_array_foreach(regions, i, v) {
        if (json_is_string(v) && json_string_length(v) == len &&
            memcmp(json_string_value(v), code, len) == 0)
            return true;
    }
    return false;
}

bool principal_sees_region(const struct principal *who, const char *code)
{
    return who->role != ROLE_MINISTRY || !who->regions || region_in(who->regions, code,
                                                                     strlen(code));
}

bool engine_visible(const struct principal *who, const struct resource *res,
                    const struct record *rec)
{
    if (who->role == ROLE_ADMIN || (who->role == ROLE_MINISTRY && !who->regions))
        return true;
    unsigned want = who->role == ROLE_MINISTRY ? F_SCOPE : F_OWNER;
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        const char *s;
        size_t len;
        if (!(f->flags & want) || !record_str(rec, f, &s, &len))
            continue;
        if (want == F_SCOPE ? region_in(who->regions, s, len)
                            : len == strlen(who->participant_id) &&
                                  memcmp(s, who->participant_id, len) == 0)
            return true;
    }
    return false;
}

/* ---- answers of the market functions ---- */

/* Appends the API object of an id/record pair of a market answer; -1 if unreadable. */
static int object_json(const struct server *srv, const struct resource *res,
                       redisReply *const *pair, struct buf *out)
{
    return record_json_from(res, pair[0]->str, pair[1]->str, pair[1]->len, &srv->catalog, out);
}

static void reply_buf(struct req *r, int status, struct buf *b)
{
    if (b->failed)
        reply_problem(r, 500, NULL, "out of memory");
    else
        reply_raw(r, status, "application/json; charset=utf-8", b->data, b->len);
    buf_free(b);
}

/* Reads a market function's answer; false after answering its failure or refusal. */
static bool answer_read(struct req *r, struct engine_job *j, enum store_status st,
                        redisReply *reply, struct market_answer *a)
{
    if (reply_store_failed(r, st, reply))
        return false;
    if (market_answer_read(reply, a) != 0) {
        log_error("msg=\"unreadable market answer\" req=%s type=%d", r->id, reply->type);
        reply_problem(r, 500, NULL, "the store answered unexpectedly; the error is logged");
        return false;
    }
    if (a->error) {
        int status = !strcmp(a->error, "not_found") ? 404 : !strcmp(a->error, "forbidden") ? 403
                     : !strcmp(a->error, "idem_reuse") || !strcmp(a->error, "invalid") ? 422
                                                                                        : 409;
        if (!strcmp(a->error, "invalid")) {     /* "<field>: <message>", a body rule */
            const char *colon = strstr(a->detail, ": ");
            char field[64];
            snprintf(field, sizeof field, "%.*s", colon ? (int)(colon - a->detail) : 0,
                     a->detail);
            json_t *errors = problem_errors_new();
            problem_errors_add(errors, field, "%s", colon ? colon + 2 : a->detail);
            if (!reply_if_invalid(r, errors))
                reply_problem(r, 422, NULL, a->detail);
            return false;
        }
        reply_problem(r, status, status == 409   ? "conflict"
                                 : status == 422 ? "idempotency-key-reuse" : NULL, a->detail);
        return false;
    }
    if (a->nobjects == 0) {
        reply_problem(r, 500, NULL, "the store answered without the object");
        return false;
    }
    if (a->replayed) {      /* a repeat: the first request's outcome, nothing changed now */
        req_set_header(r, "Idempotent-Replayed", "true");
        return true;
    }
    /* what follows a change: the notifier reads its events now; work a bounded call left
     * for later is swept now */
    notify_kick(r->srv, j->market);
    if (a->more)
        sweeper_kick(r->srv, j->market);
    r->srv->metrics.allocations_made += a->nobjects - 1;
    return true;
}

static void on_market_answer(struct req *r, enum store_status st, redisReply *reply)
{
    struct engine_job *j = r->state;
    struct market_answer a;
    if (!answer_read(r, j, st, reply, &a))
        return;
    struct buf body;
    buf_init(&body);
    if (j->status != 201) {
        object_json(r->srv, j->res, a.objects, &body);
        reply_buf(r, 200, &body);
        return;
    }
    buf_adds(&body, "{\"");
    buf_adds(&body, j->res->name);
    buf_adds(&body, "\":");
    object_json(r->srv, j->res, a.objects, &body);
    buf_adds(&body, ",\"allocations\":[");
    for (size_t i = 1; i < a.nobjects; i++) {
        if (i > 1)
            buf_addc(&body, ',');
        object_json(r->srv, &RESOURCE_ALLOCATION, a.objects + 2 * i, &body);
    }
    buf_adds(&body, "]}");
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/%s/%s", j->res->plural, a.objects[0]->str);
    req_set_header(r, "Location", loc);
    reply_buf(r, 201, &body);
}

/* ---- create ---- */

/* What the client left out: the participant's region, enum defaults; nulls that mean "not
 * given". Adds a fault when there is no region to take. */
static void complete_values(struct req *r, const struct resource *res, json_t *values,
                            json_t *errors)
{
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        json_t *v = json_object_get(values, f->name);
        if ((f->flags & F_NULL_DEFAULT) && json_is_null(v))
            json_object_del(values, f->name);
        else if (f->type == FT_ENUM && f->dflt && (f->flags & F_CREATE) && !v)
            json_object_set_new(values, f->name, json_string(f->dflt));
    }
    if (!json_object_get(values, "region")) {
        if (r->who.region[0])
            json_object_set_new(values, "region", json_string(r->who.region));
        else
            problem_errors_add(errors, "region", "is required: your participant has no region");
    }
    json_object_set_new(values, "participant_id", json_string(r->who.participant_id));
}

static void create_send(struct req *r);

/* The poster's party goes into the body (stored on the new record, copied into each of its
 * allocations); then the creation. false after answering 500. */
static bool set_party(struct req *r, json_t *party)
{
    if (!party || json_object_set_new(r->body, "party", party) != 0) {
        reply_problem(r, 500, NULL, "out of memory");
        return false;
    }
    return true;
}

static void on_poster(struct req *r, enum store_status st, redisReply *reply)
{
    if (reply_store_failed(r, st, reply))
        return;
    json_t *party = parties_from_record(r->who.participant_id, role_name(r->who.role), reply);
    if (party)
        parties_put(&r->srv->parties, r->who.participant_id, party, time_now_ms());
    if (set_party(r, party))
        create_send(r);
}

void engine_create(struct req *r, const struct item_kind *k)
{
    struct server *srv = r->srv;
    const struct resource *res = k->res;
    json_t *values = r->body, *errors = problem_errors_new();
    validate_object(values, res->fields, res->nfields, F_CREATE, srv, errors);
    const char *product = json_string_value(json_object_get(values, "product"));
    const struct product *p = product ? catalog_product(&srv->catalog, product) : NULL;
    k->rules(r, p, values, errors);
    if (!json_array_size(errors))
        complete_values(r, res, values, errors);
    if (reply_if_invalid(r, errors))
        return;
    struct engine_job *j = job_start(r, res, p->market);
    if (!j)
        return;
    j->status = 201;
    j->kind = k;
    json_t *known = parties_get(&srv->parties, r->who.participant_id, time_now_ms(),
                                srv->cfg.auth_cache_ttl_ms);
    if (known) {        /* posted here recently: no read */
        if (set_party(r, known))
            create_send(r);
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(&srv->store, &c, KEY_PARTICIPANT, r->who.participant_id);
    req_send(r, &c, on_poster);
}

/* The creation itself, once the poster's party is in the body. */
static void create_send(struct req *r)
{
    struct server *srv = r->srv;
    struct engine_job *j = r->state;
    const struct item_kind *k = j->kind;
    const struct resource *res = k->res;
    json_t *values = r->body;
    const struct product *p = catalog_product(&srv->catalog,
                                              json_string_value(json_object_get(values, "product")));
    if (!p) {       /* checked before the read: never */
        reply_problem(r, 500, NULL, "the product went missing");
        return;
    }
    struct packbuf pb;
    packbuf_init(&pb);
    const struct market *m = &srv->catalog.markets[p->market];
    if (record_pack(res, values, m->id, &pb) != 0) {
        packbuf_free(&pb);
        reply_problem(r, 500, NULL, "cannot pack the record");
        return;
    }
    int scope = enum_code(&ENUM_DELIVERY_SCOPE,
                          json_string_value(json_object_get(values, "delivery_scope")));
    struct market_call mc;
    market_call_begin(srv, &mc, k->create, p->market, &r->idem, r->who.participant_id,
                      k->reach,
                      json_string_value(json_object_get(values, "region")), scope);
    cmd_addn(&mc.cmd, pb.sb.data, pb.sb.size);
    packbuf_free(&pb);
    market_req(r, &mc, on_market_answer);
}

/* ---- change, act ---- */

/* The market of the path's id, or -1 after answering 404. */
static long path_market(struct req *r, const struct resource *res)
{
    const char *id = req_param(r, 0);
    const struct market *m = catalog_market_of_id(&r->srv->catalog, id);
    if (!m || !id_valid(id, res->prefix)) {
        reply_problemf(r, 404, NULL, "no such %s", res->name);
        return -1;
    }
    return (long)catalog_market_index(&r->srv->catalog, m);
}

void engine_update(struct req *r, const struct resource *res, bool remove)
{
    struct packbuf pb;
    packbuf_init(&pb);
    if (!remove) {
        json_t *errors = problem_errors_new();
        validate_object(r->body, res->fields, res->nfields, F_PATCH, r->srv, errors);
        if (reply_if_invalid(r, errors)) {
            packbuf_free(&pb);
            return;
        }
        if (record_pack_patch(res, r->body, &pb) != 0) {
            packbuf_free(&pb);
            reply_problem(r, 500, NULL, "cannot pack the change");
            return;
        }
    }
    long market = path_market(r, res);
    struct engine_job *j = market >= 0 ? job_start(r, res, (size_t)market) : NULL;
    if (!j) {
        packbuf_free(&pb);
        return;
    }
    j->status = 200;
    struct market_call mc;
    market_call_begin(r->srv, &mc, FN_ITEM_UPDATE, (size_t)market, NULL, NULL, REACH_ALL, NULL,
                      0);
    cmd_add(&mc.cmd, req_param(r, 0));
    cmd_add(&mc.cmd, r->who.participant_id);
    cmd_add(&mc.cmd, remove ? "delete" : "patch");
    if (!remove)
        cmd_addn(&mc.cmd, pb.sb.data, pb.sb.size);
    packbuf_free(&pb);
    market_req(r, &mc, on_market_answer);
}

/* An action's body against its table: the fields, then the action's own reasons. */
static bool act_body_invalid(struct req *r, const struct action *act)
{
    json_t *errors = problem_errors_new();
    if (r->body)
        validate_object(r->body, act->body, act->nbody, F_CREATE, r->srv, errors);
    const json_t *reason = r->body ? json_object_get(r->body, "reason") : NULL;
    if (json_is_string(reason) && act->reasons) {
        bool known = false;
        for (size_t i = 0; act->reasons[i] && !known; i++)
            known = !strcmp(act->reasons[i], json_string_value(reason));
        if (!known) {
            char list[256] = "";
            for (size_t i = 0; act->reasons[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         act->reasons[i]);
            problem_errors_add(errors, "reason", "must be one of %s (to %s)", list, act->name);
        }
    }
    if (act->reason_required && !json_is_string(reason) && json_array_size(errors) == 0)
        problem_errors_add(errors, "reason", "is required to %s", act->name);
    return reply_if_invalid(r, errors);
}

void engine_act(struct req *r, const struct resource *res, const char *action)
{
    const struct action *act = resource_action(res, action);
    if (!act) {
        reply_problem(r, 500, NULL, "no such action");
        return;
    }
    if (act_body_invalid(r, act))
        return;
    struct packbuf pb;
    packbuf_init(&pb);
    if (record_pack_set(act->body, act->nbody, F_CREATE, r->body, &pb) != 0) {
        packbuf_free(&pb);
        reply_problem(r, 500, NULL, "cannot pack the action's body");
        return;
    }
    long market = path_market(r, res);
    struct engine_job *j = market >= 0 ? job_start(r, res, (size_t)market) : NULL;
    if (!j) {
        packbuf_free(&pb);
        return;
    }
    j->status = 200;
    struct market_call mc;
    market_call_begin(r->srv, &mc, FN_ALLOC_ACTION, (size_t)market, &r->idem, NULL, REACH_ALL,
                      NULL, 0);
    cmd_add(&mc.cmd, req_param(r, 0));
    cmd_add(&mc.cmd, action);
    cmd_add(&mc.cmd, r->who.participant_id);
    for (size_t u = 0; u < URGENCY_COUNT; u++)
        cmd_addll(&mc.cmd, r->srv->cfg.ship_within_ms[u]);
    cmd_addll(&mc.cmd, r->srv->cfg.receive_within_ms);
    cmd_addn(&mc.cmd, pb.sb.data, pb.sb.size);
    packbuf_free(&pb);
    market_req(r, &mc, on_market_answer);
}

/* ---- read one ---- */

static void on_record(struct req *r, enum store_status st, redisReply *reply)
{
    struct engine_job *j = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    struct record rec;
    bool found = reply->type == REDIS_REPLY_STRING &&
                 record_decode(&rec, reply->str, reply->len) == 0;
    if (!found || !engine_visible(&r->who, j->res, &rec)) {
        if (found)
            record_release(&rec);
        reply_problemf(r, 404, NULL, "no such %s", j->res->name);
        return;
    }
    struct buf body;
    buf_init(&body);
    record_json(j->res, req_param(r, 0), &rec, &r->srv->catalog, &body);
    record_release(&rec);
    reply_buf(r, 200, &body);
}

void engine_get(struct req *r, const struct resource *res)
{
    long market = path_market(r, res);
    struct engine_job *j = market >= 0 ? job_start(r, res, (size_t)market) : NULL;
    if (!j)
        return;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGET");
    store_key(&r->srv->store, &c, KEY_MARKET, r->srv->catalog.markets[market].id, MKEY_RECORDS);
    cmd_add(&c, req_param(r, 0));
    req_send(r, &c, on_record);
}

/* ---- lists ---- */

struct list_query {
    const char *status;         /* the status's code as text, "" for any */
    const char *region, *product, *need_id, *offer_id;
    const char *cursor;
    long only;                  /* the one market a filter names, or -1 */
    int64_t limit;
    char code[16];
};

/* Reads the query's filters against the descriptor; answers 422 and returns -1 on a bad one. */
static int list_query(struct req *r, const struct resource *res, struct list_query *q)
{
    const struct catalog *cat = &r->srv->catalog;
    json_t *errors = problem_errors_new();
    memset(q, 0, sizeof *q);
    q->only = -1;
    q->status = q->region = q->product = q->need_id = q->offer_id = "";
    const char *status = req_query(r, "status");
    int code = status ? enum_code(res->statuses, status) : -1;
    if (status && code < 0)
        problem_errors_add(errors, "status", "is not a %s status", res->name);
    snprintf(q->code, sizeof q->code, "%d", code);
    if (status && code >= 0)
        q->status = q->code;
    const char *region = req_query(r, "region");
    if (region && !catalog_region(cat, region))
        problem_errors_add(errors, "region", "is not a region code of the catalogue");
    else if (region)
        q->region = region;
    const char *product = req_query(r, "product");
    const struct product *p = product ? catalog_product(cat, product) : NULL;
    if (product && !p)
        problem_errors_add(errors, "product", "is not a product of the catalogue");
    else if (p) {
        q->product = product;
        q->only = (long)p->market;
    }
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        if (f->type != FT_REF || !(f->flags & F_FILTER))
            continue;
        const char *v = req_query(r, f->name);
        if (!v)
            continue;
        const struct market *m = catalog_market_of_id(cat, v);
        long mi = m ? (long)catalog_market_index(cat, m) : -1;
        if (!m || !id_valid(v, f->ref) || (q->only >= 0 && q->only != mi)) {
            problem_errors_add(errors, f->name, "is not an id of this kind (%s...)", f->ref);
            continue;
        }
        q->only = mi;
        if (!strcmp(f->name, "need_id"))
            q->need_id = v;
        else
            q->offer_id = v;
    }
    q->cursor = req_query(r, "cursor");
    if (q->cursor && (!page_id_cursor_valid(q->cursor, res->prefix, MARKET_CODE_LEN) ||
                      !catalog_market_of_id(cat, q->cursor)))
        problem_errors_add(errors, "cursor", "is not a cursor this server issued");
    if (validate_query_int(req_query(r, "limit"), 1, 500, 50, &q->limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    return reply_if_invalid(r, errors) ? -1 : 0;
}

static void on_list_part(struct req *r, size_t market, redisReply *reply)
{
    struct engine_job *j = r->state;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        j->fan.failed = true;
        log_error("msg=\"unreadable list answer\" req=%s", r->id);
        return;
    }
    (void)market;
    struct buf item;
    buf_init(&item);
    for (size_t i = 2; i + 1 < reply->elements; i += 2) {
        redisReply *const *pair = reply->element + i;
        if (pair[0]->type != REDIS_REPLY_STRING || pair[1]->type != REDIS_REPLY_STRING)
            continue;
        buf_reset(&item);
        if (object_json(r->srv, j->res, pair, &item) != 0)
            continue;
        if (item.failed || page_add(&j->page, pair[0]->str, pair[0]->str, item.data,
                                    item.len) != 0)
            j->fan.failed = true;
    }
    buf_free(&item);
    const redisReply *done = reply->element[0], *last = reply->element[1];
    bool finished = done->type == REDIS_REPLY_INTEGER ? done->integer != 0
                                                      : (done->str && done->str[0] == '1');
    if (!finished && last->type == REDIS_REPLY_STRING && last->len)
        page_bound(&j->page, last->str, last->str);
}

static void on_list_done(struct req *r)
{
    struct engine_job *j = r->state;
    struct buf body;
    buf_init(&body);
    page_settle(&j->page);
    page_body(&j->page, (size_t)j->limit, &body);
    reply_buf(r, 200, &body);
}

static const char *list_log(const struct resource *res)
{
    return res == &RESOURCE_OFFER ? MKEY_LOG_OFFERS
           : res == &RESOURCE_NEED ? MKEY_LOG_NEEDS : MKEY_LOG_ALLOCS;
}

void engine_list(struct req *r, const struct resource *res)
{
    struct list_query q;
    if (list_query(r, res, &q) != 0)
        return;
    struct engine_job *j = job_start(r, res, 0);
    if (!j)
        return;
    j->limit = q.limit;
    bool everyone = r->who.role == ROLE_ADMIN || r->who.role == ROLE_MINISTRY;
    const char *mode = everyone ? "log" : res == &RESOURCE_ALLOCATION ? "aown" : "own";
    char owner[ID_MAX_LEN + 2] = "", own[ID_MAX_LEN + 8], regions[512] = "";
    if (!everyone)
        snprintf(owner, sizeof owner, "%s:", r->who.participant_id);
    snprintf(own, sizeof own, MKEY_OWN, r->who.participant_id);
    if (r->who.role == ROLE_MINISTRY && r->who.regions) {
        size_t i, k = 0;
        json_t *v;
        json_array_foreach(r->who.regions, i, v) {
            int n = snprintf(regions + k, sizeof regions - k, "%s%s", k ? "," : "",
                             json_string_value(v));
            if (n < 0 || (size_t)n >= sizeof regions - k)
                break;
            k += (size_t)n;
        }
        if (!regions[0])
            strcpy(regions, "-");   /* regions that see nothing: no record matches "-" */
    }
    const char *index = everyone ? list_log(res) : res == &RESOURCE_ALLOCATION ? MKEY_ALLOC_OWNERS
                                                                                : own;
    const struct catalog *cat = &r->srv->catalog;
    fanout_begin(&j->fan, on_list_part, on_list_done);
    for (size_t i = 0; i < cat->nmarkets; i++) {
        if (q.only >= 0 && (size_t)q.only != i)
            continue;
        const struct market *m = &cat->markets[i];
        struct cmd c;
        cmd_init(&c);
        store_key(&r->srv->store, &c, KEY_MARKET, m->id, index);
        store_key(&r->srv->store, &c, KEY_MARKET, m->id, MKEY_RECORDS);
        cmd_add(&c, mode);
        cmd_add(&c, q.cursor ? q.cursor : "");
        cmd_add(&c, res->prefix);
        cmd_add(&c, owner);
        cmd_addll(&c, q.limit);
        cmd_addll(&c, q.limit * LIST_BUDGET_FACTOR + 64);
        cmd_add(&c, m->code);
        cmd_add(&c, q.status);
        cmd_add(&c, q.region);
        cmd_add(&c, q.product);
        cmd_add(&c, q.need_id);
        cmd_add(&c, q.offer_id);
        cmd_add(&c, regions);
        fanout_fcall(r, &j->fan, i, FN_LIST, 2, &c);
    }
    fanout_end(r, &j->fan);
}
