/* notifications_api.c — the pull side of notifications and the operator's view of them:
 * GET /v1/notifications (a page of the caller's inbox), GET /v1/notifications/stream
 * (Server-Sent Events), GET /v1/keys (public keys), and the dead letters (admin).
 *
 * Inbox entries are stored unsigned (notify.c): each item is signed here, with the current
 * platform key, as it is served. Ed25519 signatures are deterministic, so an item read twice
 * carries the same signature, and it is the one its first webhook attempt carried (same id,
 * timestamp and body) unless the key was rotated in between; `kid` names the key.
 *
 * A stream polls the caller's inbox: every STREAM_POLL_MS while items come, backing off to
 * STREAM_IDLE_POLL_MS while none do. One stream per participant and at most sse_max_streams
 * in all (stream.c): a participant's new stream replaces its old one, which is told so and
 * asked to wait a while before reconnecting. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/calls.h"
#include "impactd/handlers.h"
#include "impactd/ids.h"
#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/page.h"
#include "impactd/problem.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/stream.h"
#include "impactd/timeutil.h"
#include "impactd/validate.h"
#include "impactd/webhook.h"

#define STREAM_POLL_MS 250
#define STREAM_IDLE_POLL_MS 1000
#define STREAM_REPLACED_RETRY_MS 60000
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
    req_set_header(r, "Cache-Control", "public, max-age=60");
    reply_json(r, 200, json_pack("{s:o}", "keys", keys));
}

/* ---- inbox items ---- */

/* The handler's state: a page's limit, or a stream's position. */
struct inbox {
    int64_t limit;
    struct event *timer;        /* the stream's poll (one-shot, armed after each poll) */
    int64_t interval_ms;        /* until the next poll */
    char cursor[48];            /* the stream: "" until the end of the inbox is known */
    int64_t last_write_us;
    bool polling;
    struct stream_slot slot;    /* the stream's place in srv->streams */
};

static void inbox_clear(void *v)
{
    struct inbox *in = v;
    if (in->timer)
        event_free(in->timer);
}

static const struct req_state_type INBOX = { "inbox", sizeof(struct inbox), inbox_clear };

/* A stream cursor: "<ms>-<seq>", range-checked (page.h). */
static bool cursor_valid(const char *s)
{
    int64_t ms, seq;
    return page_stream_id_parse(s, strlen(s), &ms, &seq) == 0;
}

/* The API item of one inbox entry [id, [field, value...]], signed now; *cursor points at its
 * entry id, *type at its type. */
static json_t *inbox_item(const struct server *srv, const redisReply *entry,
                          const char **cursor, const char **type)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    const redisReply *f = entry->element[1];
    *cursor = entry->element[0]->str;
    *type = store_entry_field(f, "type", NULL);
    size_t blen = 0;
    const char *id = store_entry_field(f, "id", NULL), *ts = store_entry_field(f, "ts", NULL);
    const char *body = store_entry_field(f, "body", &blen);
    if (!id || !ts || !body)
        return NULL;
    long long t;
    const struct signing_key *key = &srv->signing.keys[0];
    char sig[SIGNING_SIG_LEN];
    if (json_parse_ll(ts, &t) != 0 || signing_v1a(key, id, t, body, blen, sig, sizeof sig) != 0)
        return NULL;
    return json_pack("{s:s, s:I, s:s, s:s, s:s%}", "id", id, "timestamp", (json_int_t)t, "kid",
                     key->kid, "signature", sig, "body", body, blen);
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
    req_send(r, &c, cb);
}

static void on_inbox_page(struct req *r, enum store_status st, redisReply *reply)
{
    struct inbox *in = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        reply_store_failure(r, STORE_OK, reply);
        return;
    }
    json_t *items = json_array();
    const char *last = NULL;
    for (size_t i = 0; i < reply->elements && (int64_t)i < in->limit; i++) {
        const char *cursor = NULL, *type = NULL;
        json_t *item = inbox_item(r->srv, reply->element[i], &cursor, &type);
        if (item)
            json_array_append_new(items, item);
        last = cursor;
    }
    bool more = (int64_t)reply->elements > in->limit;
    reply_page(r, items, more ? last : NULL);
}

static void invalid_after(struct req *r)
{
    json_t *errors = problem_errors_new();
    problem_errors_add(errors, "after", "is not a cursor or a message of this inbox");
    reply_invalid(r, errors);
}

/* `after` may also be a message id of the caller's inbox: its entry is the cursor. */
static void on_after_message(struct req *r, enum store_status st, redisReply *reply)
{
    struct inbox *in = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    if (reply->type != REDIS_REPLY_STRING || !cursor_valid(reply->str)) {
        invalid_after(r);
        return;
    }
    inbox_range(r, reply->str, in->limit + 1, on_inbox_page);
}

void notifications_list(struct req *r)
{
    const char *after = req_query(r, "after");
    struct inbox in = { 0 };
    json_t *errors = problem_errors_new();
    bool by_message = after && id_valid(after, "msg_");
    if (after && !by_message && !cursor_valid(after))
        problem_errors_add(errors, "after", "is not a cursor or a message of this inbox");
    if (validate_query_int(req_query(r, "limit"), 1, 500, 50, &in.limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (reply_if_invalid(r, errors))
        return;
    struct inbox *state = req_state(r, &INBOX);
    if (!state)
        return;
    state->limit = in.limit;
    if (by_message) {
        struct cmd c;
        cmd_init(&c);
        store_key(&r->srv->store, &c, KEY_MESSAGES, r->who.participant_id);
        cmd_add(&c, after);
        req_fcall(r, FN_MSG_ENTRY, 1, &c, on_after_message);
        return;
    }
    inbox_range(r, after, in.limit + 1, on_inbox_page);
}

/* ---- Server-Sent Events ---- */

/* The stream must end: its client left, the server is draining, or a newer stream of the
 * same participant replaced it. */
static bool sse_over(const struct req *r)
{
    const struct inbox *s = r->state;
    return r->client_gone || r->srv->stopping || s->slot.replaced;
}

static void sse_finish(struct req *r)
{
    struct inbox *s = r->state;
    if (s->timer)
        event_del(s->timer);
    stream_end(&s->slot);
}

static void sse_schedule(struct req *r)
{
    struct inbox *s = r->state;
    struct timeval tv = { s->interval_ms / 1000, (s->interval_ms % 1000) * 1000 };
    if (evtimer_add(s->timer, &tv) != 0) {
        log_error("msg=\"cannot arm a stream's poll; ending it\" req=%s", r->id);
        sse_finish(r);
    }
}

static void on_sse_closed(struct req *r)
{
    struct inbox *s = r->state;
    if (s->slot.replaced && !r->client_gone) {
        char frame[200];
        int n = snprintf(frame, sizeof frame, "event: replaced\nretry: %d\ndata: {\"detail\":"
                         "\"a newer stream of this participant replaced this one\"}\n\n",
                         STREAM_REPLACED_RETRY_MS);
        stream_write(r, frame, (size_t)n);
    }
    if (!s->polling)
        sse_finish(r);      /* else the poll's callback ends it */
}

/* The stream's store calls come back even after the stream started (r->replied is set):
 * they are plain store calls holding the request, not req_send's. */
static void sse_call(struct req *r, struct cmd *c, store_cb cb)
{
    req_hold(r);
    store_send(&r->srv->store, c, cb, r);
}

/* A stream without Last-Event-ID starts after the newest item at connection time. */
static void on_sse_start(void *arg, enum store_status st, redisReply *reply)
{
    struct req *r = arg;
    struct inbox *s = r->state;
    s->polling = false;
    if (sse_over(r)) {
        sse_finish(r);
    } else {
        if (st == STORE_OK && reply->type == REDIS_REPLY_ARRAY) {
            const char *last = reply->elements && reply->element[0]->type == REDIS_REPLY_ARRAY &&
                                       reply->element[0]->elements
                                   ? reply->element[0]->element[0]->str : "0-0";
            snprintf(s->cursor, sizeof s->cursor, "%s", last);
        }   /* else: try again at the next tick */
        sse_schedule(r);
    }
    req_release(r);
}

static void on_sse_page(void *arg, enum store_status st, redisReply *reply)
{
    struct req *r = arg;
    struct inbox *s = r->state;
    s->polling = false;
    if (sse_over(r)) {
        sse_finish(r);
        req_release(r);
        return;
    }
    size_t got = st == STORE_OK && reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
    for (size_t i = 0; i < got; i++) {
        const char *cursor = NULL, *type = NULL;
        json_t *item = inbox_item(r->srv, reply->element[i], &cursor, &type);
        if (cursor)
            snprintf(s->cursor, sizeof s->cursor, "%s", cursor);
        char *data = item ? json_dumps(item, JSON_COMPACT) : NULL;
        json_decref(item);
        if (!data)
            continue;
        size_t cap = strlen(data) + 160;
        char *frame = malloc(cap);
        if (frame) {
            int n = snprintf(frame, cap, "id: %s\nevent: %s\ndata: %s\n\n", cursor,
                             type ? type : "message", data);
            stream_write(r, frame, (size_t)n);
            s->last_write_us = time_mono_us();
            free(frame);
        }
        free(data);
    }
    if (time_mono_us() - s->last_write_us > STREAM_KEEPALIVE_S * 1000000LL) {
        stream_write(r, ": keep-alive\n\n", 14);
        s->last_write_us = time_mono_us();
    }
    /* idle: poll less often, down to once every STREAM_IDLE_POLL_MS */
    s->interval_ms = got ? STREAM_POLL_MS
                         : s->interval_ms * 2 > STREAM_IDLE_POLL_MS ? STREAM_IDLE_POLL_MS
                                                                    : s->interval_ms * 2;
    sse_schedule(r);
    req_release(r);
}

static void on_sse_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct req *r = arg;
    struct inbox *s = r->state;
    if (s->polling)
        return;
    if (sse_over(r)) {
        sse_finish(r);
        return;
    }
    if (!store_ready(&r->srv->store)) {
        sse_schedule(r);
        return;
    }
    s->polling = true;
    struct cmd c;
    cmd_init(&c);
    if (!s->cursor[0]) {
        cmd_add(&c, "XREVRANGE");
        store_key(&r->srv->store, &c, KEY_INBOX, r->who.participant_id);
        cmd_add(&c, "+");
        cmd_add(&c, "-");
        cmd_add(&c, "COUNT");
        cmd_add(&c, "1");
        sse_call(r, &c, on_sse_start);
        return;
    }
    cmd_add(&c, "XRANGE");
    store_key(&r->srv->store, &c, KEY_INBOX, r->who.participant_id);
    cmd_addf(&c, "(%s", s->cursor);
    cmd_add(&c, "+");
    cmd_add(&c, "COUNT");
    cmd_addll(&c, STREAM_BATCH);
    sse_call(r, &c, on_sse_page);
}

void notifications_stream(struct req *r)
{
    const char *header = req_header(r, "Last-Event-ID");
    const char *after = header ? header : req_query(r, "after");
    if (after && !cursor_valid(after)) {
        json_t *errors = problem_errors_new();
        problem_errors_add(errors, header ? "Last-Event-ID" : "after",
                           "is not a cursor this server issued");
        reply_invalid(r, errors);
        return;
    }
    struct inbox *s = req_state(r, &INBOX);
    if (!s)
        return;
    snprintf(s->cursor, sizeof s->cursor, "%s", after ? after : "");
    s->interval_ms = STREAM_POLL_MS;
    s->timer = evtimer_new(r->srv->base, on_sse_tick, r);
    if (!s->timer) {
        reply_problem(r, 500, NULL, "cannot start the stream");
        return;
    }
    if (stream_start(r, &s->slot, r->who.participant_id, (size_t)r->srv->cfg.sse_max_streams,
                     "text/event-stream; charset=utf-8", on_sse_closed) != 0)
        return;
    stream_write(r, ": impactd notifications\n\n", 25);
    s->last_write_us = time_mono_us();
    event_active(s->timer, EV_TIMEOUT, 0);
}

/* ---- dead letters (admin) ---- */

struct dead {
    int64_t limit, offset;
    json_t *info;               /* redeliver: the dead letter's details */
};

static void dead_clear(void *v)
{
    json_decref(((struct dead *)v)->info);
}

static const struct req_state_type DEAD = { "dead letters", sizeof(struct dead), dead_clear };

static json_t *dead_view(json_t *info)
{
    json_t *dead = json_object_get(info, "dead_at");
    json_set_time(info, "dead_at", json_is_integer(dead) ? json_integer_value(dead) : -1);
    return info;
}

static void on_dead_page(struct req *r, enum store_status st, redisReply *reply)
{
    struct dead *d = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    json_t *items = json_array();
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements &&
                       (int64_t)i < d->limit; i++) {
        const redisReply *v = reply->element[i];
        json_t *info = v->type == REDIS_REPLY_STRING ? json_loads(v->str, 0, NULL) : NULL;
        if (info)
            json_array_append_new(items, dead_view(info));
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)(d->offset + d->limit));
    reply_page(r, items, reply->type == REDIS_REPLY_ARRAY && (int64_t)reply->elements > d->limit
                             ? cur : NULL);
}

static void on_dead_ids(struct req *r, enum store_status st, redisReply *reply)
{
    if (reply_store_failed(r, st, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        reply_page(r, json_array(), NULL);
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HMGET");
    store_key(&r->srv->store, &c, KEY_DEADINFO);
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            cmd_add(&c, reply->element[i]->str);
    req_send(r, &c, on_dead_page);
}

void deadletters_list(struct req *r)
{
    struct dead q = { 0 };
    json_t *errors = problem_errors_new();
    if (validate_query_int(req_query(r, "limit"), 1, 500, 50, &q.limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (validate_query_int(req_query(r, "cursor"), 0, 1000000000, 0, &q.offset) != 0)
        problem_errors_add(errors, "cursor", "is not a cursor this server issued");
    if (reply_if_invalid(r, errors))
        return;
    struct dead *d = req_state(r, &DEAD);
    if (!d)
        return;
    *d = q;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "ZRANGE");
    store_key(&r->srv->store, &c, KEY_DEAD);
    cmd_addll(&c, q.offset);
    cmd_addll(&c, q.offset + q.limit);      /* one more than a page: is there a next one? */
    req_send(r, &c, on_dead_ids);
}

/* Redeliver: the dead letter's details → reset the message → schedule it again. */
static void on_rescheduled(struct req *r, enum store_status st, redisReply *reply)
{
    struct dead *d = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    webhook_kick(r->srv);
    reply_json(r, 202, dead_view(json_incref(d->info)));
}

static void on_message_reset(struct req *r, enum store_status st, redisReply *reply)
{
    struct dead *d = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    if (reply->type == REDIS_REPLY_NIL) {
        reply_problem(r, 404, NULL, "no such message");
        return;
    }
    const char *prt = json_string_value(json_object_get(d->info, "participant_id"));
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_DUE);
    store_key(&r->srv->store, &c, KEY_DEAD);
    store_key(&r->srv->store, &c, KEY_DEADINFO);
    cmd_add(&c, "redeliver");
    cmd_addll(&c, time_now_ms());
    cmd_add(&c, "");
    cmd_addf(&c, "%s|%s", prt, req_param(r, 0));
    req_fcall(r, FN_SCHEDULE, 3, &c, on_rescheduled);
}

static void on_dead_info(struct req *r, enum store_status st, redisReply *reply)
{
    struct dead *d = r->state;
    if (reply_store_failed(r, st, reply))
        return;
    json_t *info = reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
    const char *prt = json_string_value(json_object_get(info, "participant_id"));
    if (!info || !prt || !id_valid(prt, "prt_")) {
        json_decref(info);
        reply_problem(r, 404, NULL, "no such dead-lettered message");
        return;
    }
    d->info = info;
    struct cmd c;
    cmd_init(&c);
    store_key(&r->srv->store, &c, KEY_MESSAGES, prt);
    cmd_add(&c, req_param(r, 0));
    cmd_addll(&c, time_now_ms());
    req_fcall(r, FN_MSG_REDELIVER, 1, &c, on_message_reset);
}

void deadletters_redeliver(struct req *r)
{
    const char *id = req_param(r, 0);
    if (!id_valid(id, "msg_")) {
        reply_problem(r, 404, NULL, "no such dead-lettered message");
        return;
    }
    if (!req_state(r, &DEAD))
        return;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGET");
    store_key(&r->srv->store, &c, KEY_DEADINFO);
    cmd_add(&c, id);
    req_send(r, &c, on_dead_info);
}
