/* notifications_api.c — the pull side of notifications and the operator's view of them:
 * GET /v1/notifications (a page of the caller's inbox), GET /v1/notifications/stream
 * (Server-Sent Events), GET /v1/keys (public keys), and the dead letters (admin). */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/ids.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/problem.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"
#include "impactd/webhook.h"

#define STREAM_POLL_MS 250
#define STREAM_KEEPALIVE_S 15
#define STREAM_BATCH 100

/* ---- keys ---- */

void keys_list(struct req *r)
{
    const struct signing *s = &r->srv->signing;
    json_t *keys = json_array();
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct signing_key *k = &s->keys[i];
        char b64[64], whpk[80];
        sodium_bin2base64(b64, sizeof b64, k->pk, sizeof k->pk, sodium_base64_VARIANT_ORIGINAL);
        signing_whpk(k, whpk, sizeof whpk);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "kid", k->kid, "alg", "Ed25519",
                              "public_key", b64, "public_key_whpk", whpk, "current", i == 0);
        json_set_time(o, "created_at", k->created_at * 1000);
        json_array_append_new(keys, o);
    }
    http_set_header(r, "Cache-Control", "public, max-age=60");
    http_reply_json(r, 200, json_pack("{s:o}", "keys", keys));
}

/* ---- inbox items ---- */

/* A stream cursor: "<ms>-<seq>". */
static bool cursor_valid(const char *s)
{
    size_t n = strlen(s);
    const char *dash = strchr(s, '-');
    if (n == 0 || n > 41 || !dash || dash == s || !dash[1])
        return false;
    for (const char *p = s; *p; p++)
        if (!(*p >= '0' && *p <= '9') && p != dash)
            return false;
    return true;
}

/* The API item of one inbox entry [id, [field, value...]]; *cursor points at its id. */
static json_t *inbox_item(const redisReply *entry, const char **cursor, const char **type)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2)
        return NULL;
    const redisReply *f = entry->element[1];
    *cursor = entry->element[0]->str;
    *type = reply_entry_field(f, "type");
    const char *id = reply_entry_field(f, "id"), *ts = reply_entry_field(f, "ts");
    const char *kid = reply_entry_field(f, "kid"), *sig = reply_entry_field(f, "sig");
    const char *body = reply_entry_field(f, "body");
    if (!id || !ts || !kid || !sig || !body)
        return NULL;
    return json_pack("{s:s, s:I, s:s, s:s, s:s}", "id", id, "timestamp",
                     (json_int_t)strtoll(ts, NULL, 10), "kid", kid, "signature", sig, "body",
                     body);
}

static void inbox_range(struct req *r, const char *after, int64_t count, req_store_cb cb)
{
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "XRANGE");
    store_key(&r->srv->store, &c, KEY_INBOX, r->who.participant_id);
    cmd_addf(&c, "(%s", after && *after ? after : "0-0");
    cmd_add(&c, "+");
    cmd_add(&c, "COUNT");
    cmd_addll(&c, count);
    http_store_send(r, &c, cb);
}

static void on_inbox_page(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    int64_t limit = r->arg;
    json_t *items = json_array();
    const char *last = NULL;
    for (size_t i = 0; i < reply->elements && (int64_t)i < limit; i++) {
        const char *cursor = NULL, *type = NULL;
        json_t *item = inbox_item(reply->element[i], &cursor, &type);
        if (item)
            json_array_append_new(items, item);
        last = cursor;
    }
    bool more = (int64_t)reply->elements > limit;
    json_t *body = json_pack("{s:o}", "items", items);
    json_object_set_new(body, "next_cursor", more && last ? json_string(last) : json_null());
    http_reply_json(r, 200, body);
}

/* `after` may also be a message id of the caller's inbox: its entry is the cursor. */
static void on_after_message(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    json_t *state = reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
    const char *entry = json_string_value(json_object_get(state, "entry"));
    if (!entry || !cursor_valid(entry)) {
        json_decref(state);
        json_t *errors = problem_errors_new();
        problem_errors_add(errors, "after", "is not a cursor or a message of this inbox");
        http_reply_invalid(r, errors);
        return;
    }
    inbox_range(r, entry, r->arg + 1, on_inbox_page);
    json_decref(state);
}

void notifications_list(struct req *r)
{
    const char *after = http_query(r, "after");
    int64_t limit;
    json_t *errors = problem_errors_new();
    bool by_message = after && id_valid(after, "msg_");
    if (after && !by_message && !cursor_valid(after))
        problem_errors_add(errors, "after", "is not a cursor or a message of this inbox");
    if (validate_query_int(http_query(r, "limit"), 1, 500, 50, &limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (json_array_size(errors)) {
        http_reply_invalid(r, errors);
        return;
    }
    json_decref(errors);
    r->arg = limit;
    if (by_message) {
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "HGET");
        store_key(&r->srv->store, &c, KEY_MESSAGES, r->who.participant_id);
        cmd_add(&c, after);
        http_store_send(r, &c, on_after_message);
        return;
    }
    inbox_range(r, after, limit + 1, on_inbox_page);
}

/* ---- Server-Sent Events ---- */

struct sse {
    struct event *timer;
    char cursor[48];            /* "" until the end of the inbox at connection is known */
    int64_t last_write_us;
    bool polling;
};

static void sse_free(void *v)
{
    struct sse *s = v;
    if (s->timer)
        event_free(s->timer);
    free(s);
}

static void sse_finish(struct req *r)
{
    struct sse *s = r->ctx;
    if (s->timer)
        event_del(s->timer);
    http_stream_end(r);
}

static void on_sse_closed(struct req *r)
{
    struct sse *s = r->ctx;
    if (!s->polling)
        sse_finish(r);      /* else the poll's callback ends it */
}

/* A stream without Last-Event-ID starts after the newest item at connection time. */
static void on_sse_start(struct req *r, enum store_status st, redisReply *reply)
{
    struct sse *s = r->ctx;
    s->polling = false;
    if (r->client_gone || r->srv->stopping) {
        sse_finish(r);
        return;
    }
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY)
        return;     /* try again at the next tick */
    const char *last = reply->elements && reply->element[0]->type == REDIS_REPLY_ARRAY &&
                               reply->element[0]->elements
                           ? reply->element[0]->element[0]->str : "0-0";
    snprintf(s->cursor, sizeof s->cursor, "%s", last);
}

static void on_sse_page(struct req *r, enum store_status st, redisReply *reply)
{
    struct sse *s = r->ctx;
    s->polling = false;
    if (r->client_gone || r->srv->stopping) {
        sse_finish(r);
        return;
    }
    if (st == STORE_OK && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const char *cursor = NULL, *type = NULL;
            json_t *item = inbox_item(reply->element[i], &cursor, &type);
            if (cursor)
                snprintf(s->cursor, sizeof s->cursor, "%s", cursor);
            if (!item)
                continue;
            char *data = json_dumps(item, JSON_COMPACT);
            json_decref(item);
            if (!data)
                continue;
            size_t cap = strlen(data) + 160;
            char *frame = malloc(cap);
            if (frame) {
                int n = snprintf(frame, cap, "id: %s\nevent: %s\ndata: %s\n\n", cursor,
                                 type ? type : "message", data);
                http_stream_write(r, frame, (size_t)n);
                s->last_write_us = time_mono_us();
                free(frame);
            }
            free(data);
        }
    }
    if (time_mono_us() - s->last_write_us > STREAM_KEEPALIVE_S * 1000000LL) {
        http_stream_write(r, ": keep-alive\n\n", 14);
        s->last_write_us = time_mono_us();
    }
}

static void on_sse_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct req *r = arg;
    struct sse *s = r->ctx;
    if (r->client_gone || r->srv->stopping) {
        if (!s->polling)
            sse_finish(r);
        return;
    }
    if (s->polling || !store_ready(&r->srv->store))
        return;
    s->polling = true;
    if (!s->cursor[0]) {
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "XREVRANGE");
        store_key(&r->srv->store, &c, KEY_INBOX, r->who.participant_id);
        cmd_add(&c, "+");
        cmd_add(&c, "-");
        cmd_add(&c, "COUNT");
        cmd_add(&c, "1");
        http_store_send(r, &c, on_sse_start);
        return;
    }
    inbox_range(r, s->cursor, STREAM_BATCH, on_sse_page);
}

void notifications_stream(struct req *r)
{
    const char *after = http_header(r, "Last-Event-ID");
    if (!after)
        after = http_query(r, "after");
    if (after && !cursor_valid(after)) {
        json_t *errors = problem_errors_new();
        problem_errors_add(errors, "Last-Event-ID", "is not a cursor this server issued");
        http_reply_invalid(r, errors);
        return;
    }
    struct sse *s = calloc(1, sizeof *s);
    if (!s) {
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    snprintf(s->cursor, sizeof s->cursor, "%s", after ? after : "");
    r->ctx = s;
    r->ctx_free = sse_free;
    s->timer = event_new(r->srv->base, -1, EV_PERSIST, on_sse_tick, r);
    struct timeval tv = { 0, STREAM_POLL_MS * 1000 };
    if (!s->timer || event_add(s->timer, &tv) != 0) {
        http_reply_problem(r, 500, NULL, "cannot start the stream");
        return;
    }
    if (http_stream_start(r, "text/event-stream; charset=utf-8", on_sse_closed) != 0)
        return;
    http_stream_write(r, ": impactd notifications\n\n", 25);
    s->last_write_us = time_mono_us();
    event_active(s->timer, EV_TIMEOUT, 0);
}

/* ---- dead letters (admin) ---- */

static void on_dead_page(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    int64_t limit = r->arg, offset = 0;
    (void)validate_query_int(http_query(r, "cursor"), 0, 1000000000, 0, &offset);
    json_t *items = json_array();
    for (size_t i = 0; i < reply->elements && (int64_t)i < limit; i++) {
        const redisReply *v = reply->element[i];
        json_t *info = v->type == REDIS_REPLY_STRING ? json_loads(v->str, 0, NULL) : NULL;
        if (!info)
            continue;
        json_t *dead = json_object_get(info, "dead_at");
        json_set_time(info, "dead_at", json_is_integer(dead) ? json_integer_value(dead) : -1);
        json_array_append_new(items, info);
    }
    json_t *body = json_pack("{s:o}", "items", items);
    if ((int64_t)reply->elements > limit) {
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", (long long)(offset + limit));
        json_object_set_new(body, "next_cursor", json_string(cur));
    } else {
        json_object_set_new(body, "next_cursor", json_null());
    }
    http_reply_json(r, 200, body);
}

static void on_dead_ids(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    struct cmd c;
    cmd_init(&c);
    if (reply->elements == 0) {
        on_dead_page(r, STORE_OK, reply);
        return;
    }
    cmd_add(&c, "HMGET");
    store_key(&r->srv->store, &c, KEY_DEADINFO);
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            cmd_add(&c, reply->element[i]->str);
    http_store_send(r, &c, on_dead_page);
}

void deadletters_list(struct req *r)
{
    int64_t limit, offset;
    if (http_page_params(r, &limit, &offset) != 0)
        return;
    r->arg = limit;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "ZRANGE");
    store_key(&r->srv->store, &c, KEY_DEAD);
    cmd_addll(&c, offset);
    cmd_addll(&c, offset + limit);      /* one more than a page: is there a next one? */
    http_store_send(r, &c, on_dead_ids);
}

/* Redeliver: the dead letter's details → reset the message → schedule it again. */
struct redeliver {
    json_t *info;
};

static void redeliver_free(void *v)
{
    struct redeliver *rd = v;
    json_decref(rd->info);
    free(rd);
}

static void on_rescheduled(struct req *r, enum store_status st, redisReply *reply)
{
    struct redeliver *rd = r->ctx;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    webhook_kick(r->srv);
    json_t *info = json_incref(rd->info);
    json_t *dead = json_object_get(info, "dead_at");
    json_set_time(info, "dead_at", json_is_integer(dead) ? json_integer_value(dead) : -1);
    http_reply_json(r, 202, info);
}

static void on_message_reset(struct req *r, enum store_status st, redisReply *reply)
{
    struct redeliver *rd = r->ctx;
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        http_reply_problem(r, 404, NULL, "no such message");
        return;
    }
    const char *prt = json_string_value(json_object_get(rd->info, "participant_id"));
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_DUE);
    store_key(&r->srv->store, &c, KEY_DEAD);
    store_key(&r->srv->store, &c, KEY_DEADINFO);
    cmd_addf(&c, "%s|%s", prt, http_param(r, 0));
    cmd_add(&c, "redeliver");
    cmd_addll(&c, time_now_ms());
    cmd_add(&c, "");
    http_store_eval(r, SCRIPT_SCHEDULE, 3, &c, on_rescheduled);
}

static void on_dead_info(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st, reply);
        return;
    }
    json_t *info = reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
    const char *prt = json_string_value(json_object_get(info, "participant_id"));
    if (!info || !prt || !id_valid(prt, "prt_")) {
        json_decref(info);
        http_reply_problem(r, 404, NULL, "no such dead-lettered message");
        return;
    }
    struct redeliver *rd = calloc(1, sizeof *rd);
    if (!rd) {
        json_decref(info);
        http_reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    rd->info = info;
    r->ctx = rd;
    r->ctx_free = redeliver_free;
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_MESSAGES, prt);
    cmd_add(&c, http_param(r, 0));
    cmd_addll(&c, time_now_ms());
    http_store_eval(r, SCRIPT_MSG_REDELIVER, 1, &c, on_message_reset);
}

void deadletters_redeliver(struct req *r)
{
    const char *id = http_param(r, 0);
    if (!id_valid(id, "msg_")) {
        http_reply_problem(r, 404, NULL, "no such dead-lettered message");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGET");
    store_key(&r->srv->store, &c, KEY_DEADINFO);
    cmd_add(&c, id);
    http_store_send(r, &c, on_dead_info);
}
