/* notify.c — the transactional outbox: market events → one signed message per party.
 *
 * Every process is a consumer of the group "notify" on each market's event stream. An event
 * is acknowledged only after each of its messages is stored (msg_create.lua, idempotent by
 * message id) and its webhook delivery scheduled (schedule.lua "add"); until then it stays
 * pending, and XAUTOCLAIM hands pending entries idle for 15 s to whoever asks, so a process
 * that dies mid-way loses nothing. Message ids, bodies and timestamps derive from the event
 * alone, so handling an event twice stores nothing twice. */
#include "impactd/notify.h"

#include <event2/event.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/records.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/timeutil.h"

#define POLL_MS 100
#define CLAIM_EVERY_S 5
#define CLAIM_IDLE_MS 15000
#define READ_COUNT 64
#define INBOX_KEEP 10000

/* One event being turned into messages. */
struct event_job {
    struct server *srv;
    size_t market;
    char entry_id[48];
    unsigned pending;           /* store calls not yet back */
    bool failed;
};

/* One message of an event. */
struct msg_job {
    struct event_job *ev;
    char participant[ID_MAX_LEN];
    char msg_id[ID_MAX_LEN];
};

static void event_job_release(struct event_job *j);

static void stream_key(const struct server *srv, struct cmd *c, size_t market)
{
    store_key(&srv->store, c, KEY_MARKET, srv->catalog.markets[market].id, MKEY_EVENTS);
}

/* ---- acknowledging ---- */

static void on_ack(void *arg, enum store_status st, redisReply *reply)
{
    (void)arg;
    if (st != STORE_OK || reply_is_error(reply, NULL))
        log_warn("msg=\"event ack failed; it will be claimed again\"");
}

static void event_ack(struct server *srv, size_t market, const char *entry_id)
{
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "XACK");
    stream_key(srv, &c, market);
    cmd_add(&c, NOTIFY_GROUP);
    cmd_add(&c, entry_id);
    store_send(&srv->store, &c, on_ack, NULL);
}

static void event_job_release(struct event_job *j)
{
    if (--j->pending)
        return;
    if (!j->failed)
        event_ack(j->srv, j->market, j->entry_id);
    free(j);
}

/* ---- messages ---- */

static void on_scheduled(void *arg, enum store_status st, redisReply *reply)
{
    struct msg_job *m = arg;
    if (st != STORE_OK || reply_is_error(reply, NULL))
        m->ev->failed = true;
    else
        webhook_kick(m->ev->srv);
    event_job_release(m->ev);
    free(m);
}

static void on_msg_created(void *arg, enum store_status st, redisReply *reply)
{
    struct msg_job *m = arg;
    struct server *srv = m->ev->srv;
    json_t *a = NULL;
    if (st != STORE_OK || reply->type != REDIS_REPLY_STRING ||
        !(a = json_loadb(reply->str, reply->len, 0, NULL))) {
        if (st == STORE_OK)
            log_error("msg=\"message not stored\" reply=\"%s\"",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
        m->ev->failed = true;
        event_job_release(m->ev);
        free(m);
        return;
    }
    if (json_is_true(json_object_get(a, "created")))
        srv->notify.messages_created++;
    bool deliver = json_is_true(json_object_get(a, "deliver"));
    json_decref(a);
    if (!deliver) {
        event_job_release(m->ev);
        free(m);
        return;
    }
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_DUE);
    store_key(&srv->store, &c, KEY_DEAD);
    store_key(&srv->store, &c, KEY_DEADINFO);
    cmd_addf(&c, "%s|%s", m->participant, m->msg_id);
    cmd_add(&c, "add");
    cmd_addll(&c, time_now_ms() + srv->cfg.retry_schedule_ms[0]);
    cmd_add(&c, "");
    store_eval(&srv->store, SCRIPT_SCHEDULE, 3, &c, on_scheduled, m);
}

/* msg_ + 10 base32 digits of the event's ms + 16 of BLAKE2b(market, entry, participant). */
static void message_id(const char *market, const char *entry, int64_t ms, const char *prt,
                       char out[ID_MAX_LEN])
{
    static const char B32[] = "0123456789abcdefghjkmnpqrstvwxyz";
    unsigned char d[10];
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof d);
    crypto_generichash_update(&gs, (const unsigned char *)market, strlen(market) + 1);
    crypto_generichash_update(&gs, (const unsigned char *)entry, strlen(entry) + 1);
    crypto_generichash_update(&gs, (const unsigned char *)prt, strlen(prt));
    crypto_generichash_final(&gs, d, sizeof d);
    char *p = out + 4;
    memcpy(out, "msg_", 4);
    for (int i = 9; i >= 0; i--) {
        p[i] = B32[ms & 31];
        ms >>= 5;
    }
    uint64_t acc = 0;
    int bits = 0;
    size_t k = 10;
    for (size_t i = 0; i < sizeof d && k < 26; i++) {
        acc = (acc << 8) | d[i];
        bits += 8;
        while (bits >= 5 && k < 26) {
            p[k++] = B32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    p[k] = '\0';
}

/* Stores the message of one event for one participant. */
static void message_create(struct event_job *ev, const char *type, enum record_kind kind,
                           const json_t *rec, const char *participant, int64_t ms)
{
    struct server *srv = ev->srv;
    const struct signing_key *key = &srv->signing.keys[0];
    struct msg_job *m = calloc(1, sizeof *m);
    if (!m) {
        ev->failed = true;
        return;
    }
    m->ev = ev;
    snprintf(m->participant, sizeof m->participant, "%s", participant);
    message_id(srv->catalog.markets[ev->market].id, ev->entry_id, ms, participant, m->msg_id);
    json_t *payload = json_object();
    json_object_set_new(payload, "id", json_string(m->msg_id));
    json_object_set_new(payload, "type", json_string(type));
    json_set_time(payload, "timestamp", ms - ms % 1000);
    json_object_set_new(payload, "data", record_to_api(kind, rec));
    char *body = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    int64_t ts = ms / 1000;
    char sig[128];
    if (!body || signing_v1a(key, m->msg_id, ts, body, strlen(body), sig, sizeof sig) != 0) {
        free(body);
        free(m);
        ev->failed = true;
        return;
    }
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_PARTICIPANT, participant);
    store_key(&srv->store, &c, KEY_MESSAGES, participant);
    store_key(&srv->store, &c, KEY_INBOX, participant);
    cmd_add(&c, m->msg_id);
    cmd_addll(&c, ts);
    cmd_add(&c, key->kid);
    cmd_add(&c, sig);
    cmd_add(&c, type);
    cmd_add(&c, body);
    cmd_addll(&c, INBOX_KEEP);
    free(body);
    ev->pending++;
    store_eval(&srv->store, SCRIPT_MSG_CREATE, 3, &c, on_msg_created, m);
}

/* Turns one stream entry [id, [field, value, ...]] into messages, then acknowledges it. */
static void event_handle(struct server *srv, size_t market, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    struct event_job *ev = calloc(1, sizeof *ev);
    if (!ev)
        return;
    ev->srv = srv;
    ev->market = market;
    snprintf(ev->entry_id, sizeof ev->entry_id, "%s", entry->element[0]->str);
    ev->pending = 1;            /* this function's own hold, released at the end */
    const redisReply *fields = entry->element[1];
    const char *type = reply_entry_field(fields, "type");
    const char *data = reply_entry_field(fields, "data");
    json_t *rec = data ? json_loads(data, 0, NULL) : NULL;
    int64_t ms = strtoll(ev->entry_id, NULL, 10);
    if (type && rec) {
        bool alloc = strncmp(type, "allocation.", 11) == 0;
        bool notice = !strcmp(type, "need.expired") || !strcmp(type, "offer.expired") ||
                      !strcmp(type, "offer.depleted");
        if (alloc) {
            message_create(ev, type, RECORD_ALLOC, rec,
                           json_string_value(json_object_get(rec, "need_participant_id")), ms);
            message_create(ev, type, RECORD_ALLOC, rec,
                           json_string_value(json_object_get(rec, "offer_participant_id")), ms);
        } else if (notice) {
            message_create(ev, type, strncmp(type, "need", 4) ? RECORD_OFFER : RECORD_NEED, rec,
                           json_string_value(json_object_get(rec, "participant_id")), ms);
        }
    }
    json_decref(rec);
    event_job_release(ev);
}

/* ---- reading ---- */

struct read_job {
    struct server *srv;
    size_t market;
    bool claim;
};

/* XREADGROUP answers [[stream, [entry...]]]; XAUTOCLAIM answers [cursor, [entry...], ...]. */
static void on_read(void *arg, enum store_status st, redisReply *reply)
{
    struct read_job *rj = arg;
    struct server *srv = rj->srv;
    size_t market = rj->market;
    bool claim = rj->claim;
    free(rj);
    if (!claim)
        srv->notify.reading[market] = false;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        if (st == STORE_OK && reply_is_error(reply, "NOGROUP"))
            srv->notify.groups_generation = 0;   /* Redis lost them: create again */
        else if (st == STORE_OK && reply->type == REDIS_REPLY_ERROR)
            log_warn("msg=\"event read failed\" error=\"%s\"", reply->str);
        return;
    }
    const redisReply *entries = NULL;
    if (claim && reply->elements >= 2)
        entries = reply->element[1];
    else if (!claim && reply->elements >= 1 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
             reply->element[0]->elements >= 2)
        entries = reply->element[0]->element[1];
    for (size_t i = 0; entries && i < entries->elements; i++)
        event_handle(srv, market, entries->element[i]);
    if (!claim && entries && entries->elements == READ_COUNT)
        notify_kick(srv);
}

static void read_market(struct server *srv, size_t market, bool claim)
{
    struct read_job *rj = malloc(sizeof *rj);
    if (!rj)
        return;
    *rj = (struct read_job){ srv, market, claim };
    struct cmd c;
    cmd_init(&c);
    if (claim) {
        cmd_add(&c, "XAUTOCLAIM");
        stream_key(srv, &c, market);
        cmd_add(&c, NOTIFY_GROUP);
        cmd_add(&c, srv->notify.consumer);
        cmd_addll(&c, CLAIM_IDLE_MS);
        cmd_add(&c, "0-0");
        cmd_add(&c, "COUNT");
        cmd_addll(&c, READ_COUNT);
    } else {
        srv->notify.reading[market] = true;
        cmd_add(&c, "XREADGROUP");
        cmd_add(&c, "GROUP");
        cmd_add(&c, NOTIFY_GROUP);
        cmd_add(&c, srv->notify.consumer);
        cmd_add(&c, "COUNT");
        cmd_addll(&c, READ_COUNT);
        cmd_add(&c, "STREAMS");
        stream_key(srv, &c, market);
        cmd_add(&c, ">");
    }
    store_send(&srv->store, &c, on_read, rj);
}

/* ---- consumer groups ---- */

static void on_group(void *arg, enum store_status st, redisReply *reply)
{
    struct server *srv = arg;
    bool ok = st == STORE_OK && (!reply_is_error(reply, NULL) || reply_is_error(reply, "BUSYGROUP"));
    if (!ok && st == STORE_OK)
        log_error("msg=\"cannot create consumer group\" error=\"%s\"", reply->str);
    if (--srv->notify.groups_pending == 0 && ok)
        srv->notify.groups_generation = srv->store.generation;
}

static void groups_create(struct server *srv)
{
    srv->notify.groups_pending = (unsigned)srv->catalog.nmarkets;
    for (size_t i = 0; i < srv->catalog.nmarkets; i++) {
        struct cmd c;
        cmd_init(&c);
        cmd_add(&c, "XGROUP");
        cmd_add(&c, "CREATE");
        stream_key(srv, &c, i);
        cmd_add(&c, NOTIFY_GROUP);
        cmd_add(&c, "0");
        cmd_add(&c, "MKSTREAM");
        store_send(&srv->store, &c, on_group, srv);
    }
}

static bool notify_usable(struct server *srv)
{
    if (!store_ready(&srv->store) || srv->stopping)
        return false;
    if (srv->notify.groups_generation != srv->store.generation) {
        if (!srv->notify.groups_pending)
            groups_create(srv);
        return false;
    }
    return true;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    if (!notify_usable(srv))
        return;
    for (size_t i = 0; i < srv->catalog.nmarkets; i++)
        if (!srv->notify.reading[i])
            read_market(srv, i, false);
}

static void on_claim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    if (!notify_usable(srv))
        return;
    for (size_t i = 0; i < srv->catalog.nmarkets; i++)
        read_market(srv, i, true);
}

void notify_kick(struct server *srv)
{
    struct timeval zero = { 0, 0 };
    if (srv->notify.kick && !evtimer_pending(srv->notify.kick, NULL))
        evtimer_add(srv->notify.kick, &zero);
}

int notify_start(struct server *srv)
{
    struct notify *n = &srv->notify;
    char host[64] = "impactd";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(n->consumer, sizeof n->consumer, "%s-%ld-%08x", host, (long)getpid(),
             randombytes_random());
    n->reading = calloc(srv->catalog.nmarkets ? srv->catalog.nmarkets : 1, sizeof *n->reading);
    n->poll_timer = event_new(srv->base, -1, EV_PERSIST, on_poll, srv);
    n->claim_timer = event_new(srv->base, -1, EV_PERSIST, on_claim, srv);
    n->kick = evtimer_new(srv->base, on_poll, srv);
    struct timeval poll = { 0, POLL_MS * 1000 }, claim = { CLAIM_EVERY_S, 0 };
    if (!n->reading || !n->poll_timer || !n->claim_timer || !n->kick ||
        event_add(n->poll_timer, &poll) ||
        event_add(n->claim_timer, &claim))
        return -1;
    return 0;
}

void notify_stop(struct server *srv)
{
    struct notify *n = &srv->notify;
    if (n->poll_timer)
        event_free(n->poll_timer);
    if (n->claim_timer)
        event_free(n->claim_timer);
    if (n->kick)
        event_free(n->kick);
    free(n->reading);
    memset(n, 0, sizeof *n);
}
