/* notify.c — the transactional outbox: market events → one message per party.
 *
 * Every process is a consumer of the group "notify" on each market's event stream. A read
 * (up to READ_COUNT events) becomes one batch: its messages are grouped by participant and
 * stored with one msg_create call per participant (idempotent by message id), the webhook
 * deliveries still owed are scheduled with one schedule call, and only then are the batch's
 * events acknowledged, with one XACK. Until then they stay pending, and XAUTOCLAIM hands
 * entries idle for CLAIM_IDLE_MS to whoever asks, so a process that dies mid-way loses
 * nothing. Message ids, bodies and timestamps derive from the event alone, so handling an
 * event twice stores nothing twice. Messages are stored unsigned: a signature depends only
 * on the message and the platform key, so it is made where a message is served (the inbox,
 * the stream, each webhook attempt), once per reader rather than once per message stored. */
#include "impactd/notify.h"

#include <event2/event.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "impactd/buf.h"
#include "impactd/ids.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/record.h"
#include "impactd/resource.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

#define POLL_MS 100
#define CLAIM_EVERY_S 5
#define CLAIM_IDLE_MS 15000
#define READ_COUNT 256

/* The messages of one batch for one participant. */
struct party {
    char id[ID_MAX_LEN];
    struct cmd cmd;                 /* msg_create, being built */
    size_t messages;
};

/* One read of one market's stream, turned into messages. */
struct batch {
    struct server *srv;
    size_t market;
    struct cmd ack;                 /* XACK stream group <entries...> */
    size_t entries;
    struct party *parties;          /* owned */
    size_t nparties, capparties;
    struct cmd schedule;            /* schedule add <members...> */
    size_t owed;
    unsigned pending;               /* store calls not back yet, plus the builder's hold */
    bool failed;
    struct buf data, body;          /* scratch: an event's object, a message's payload */
};

static void stream_key(const struct server *srv, struct cmd *c, size_t market)
{
    store_key(&srv->store, c, KEY_MARKET, srv->catalog.markets[market].id, MKEY_EVENTS);
}

/* ---- finishing a batch ---- */

static void on_ack(void *arg, enum store_status st, redisReply *reply)
{
    (void)arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        log_warn("msg=\"event ack failed; they will be claimed again\"");
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->nparties; i++)
        cmd_free(&b->parties[i].cmd);
    free(b->parties);
    buf_free(&b->data);
    buf_free(&b->body);
    cmd_free(&b->ack);
    cmd_free(&b->schedule);
    free(b);
}

static void on_scheduled(void *arg, enum store_status st, redisReply *reply);

/* Called as each store call of the batch comes back: when the messages are all stored,
 * schedules what is owed; when that is stored too, acknowledges the events. */
static void batch_release(struct batch *b)
{
    if (--b->pending)
        return;
    struct server *srv = b->srv;
    if (!b->failed && b->owed) {
        b->owed = 0;
        b->pending = 1;
        store_fcall(&srv->store, FN_SCHEDULE, 3, &b->schedule, on_scheduled, b);
        return;
    }
    if (!b->failed && b->entries)
        store_send(&srv->store, &b->ack, on_ack, NULL);
    batch_free(b);
}

static void on_scheduled(void *arg, enum store_status st, redisReply *reply)
{
    struct batch *b = arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        b->failed = true;
    else
        webhook_kick(b->srv);
    batch_release(b);
}

/* ---- building a batch ---- */

/* msg_ + 10 base32 digits of the event's ms + 16 of BLAKE2b(market, entry, participant). */
static void message_id(const char *market, const char *entry, int64_t ms, const char *prt,
                       char out[ID_MAX_LEN])
{
    unsigned char d[10];
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof d);
    crypto_generichash_update(&gs, (const unsigned char *)market, strlen(market) + 1);
    crypto_generichash_update(&gs, (const unsigned char *)entry, strlen(entry) + 1);
    crypto_generichash_update(&gs, (const unsigned char *)prt, strlen(prt));
    crypto_generichash_final(&gs, d, sizeof d);
    id_digest("msg_", ms, d, sizeof d, out);
}

static struct party *party_of(struct batch *b, const char *id, size_t len)
{
    for (size_t i = 0; i < b->nparties; i++)
        if (strlen(b->parties[i].id) == len && memcmp(b->parties[i].id, id, len) == 0)
            return &b->parties[i];
    if (len >= ID_MAX_LEN)
        return NULL;
    if (b->nparties == b->capparties) {
        size_t cap = b->capparties ? b->capparties * 2 : 8;
        struct party *grown = realloc(b->parties, cap * sizeof *grown);
        if (!grown)
            return NULL;
        b->parties = grown;
        b->capparties = cap;
    }
    struct party *p = &b->parties[b->nparties++];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, len);
    p->id[len] = '\0';
    struct server *srv = b->srv;
    cmd_init(&p->cmd);
    store_key(&srv->store, &p->cmd, KEY_PARTICIPANT, p->id);
    store_key(&srv->store, &p->cmd, KEY_MESSAGES, p->id);
    store_key(&srv->store, &p->cmd, KEY_INBOX, p->id);
    cmd_addll(&p->cmd, srv->cfg.inbox_max);
    cmd_addll(&p->cmd, time_now_ms() - srv->cfg.inbox_retention_ms);
    return p;
}

/* Adds the message of one event for one participant. data: the object's JSON text. */
static void message_add(struct batch *b, const char *entry, int64_t ms, const char *type,
                        const struct buf *data, const char *prt, size_t prt_len)
{
    struct party *p = party_of(b, prt, prt_len);
    if (!p) {
        b->failed = true;
        return;
    }
    char id[ID_MAX_LEN];
    message_id(b->srv->catalog.markets[b->market].id, entry, ms, p->id, id);
    struct buf *body = &b->body;
    buf_reset(body);
    buf_adds(body, "{\"id\":\"");
    buf_adds(body, id);
    buf_adds(body, "\",\"type\":");
    buf_add_json_string(body, type, strlen(type));
    buf_adds(body, ",\"timestamp\":\"");
    buf_add_time(body, ms - ms % 1000);
    buf_adds(body, "\",\"data\":");
    buf_add(body, data->data, data->len);
    buf_addc(body, '}');
    if (body->failed) {
        b->failed = true;
        return;
    }
    cmd_add(&p->cmd, id);
    cmd_addll(&p->cmd, ms / 1000);
    cmd_add(&p->cmd, type);
    cmd_addn(&p->cmd, body->data, body->len);
    p->messages++;
}

/* The resource an event type is about, and who it notifies. */
static const struct resource *event_resource(const char *type, bool *notice)
{
    if (!strncmp(type, "allocation.", 11)) {
        *notice = true;
        return &RESOURCE_ALLOCATION;
    }
    *notice = !strcmp(type, "need.expired") || !strcmp(type, "offer.expired") ||
              !strcmp(type, "offer.depleted");
    return !strncmp(type, "need.", 5) ? &RESOURCE_NEED : &RESOURCE_OFFER;
}

/* One stream entry [id, [field, value, ...]]: its messages, and its place in the ack. */
static void batch_event(struct batch *b, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *eid = entry->element[0]->str;
    cmd_add(&b->ack, eid);
    b->entries++;
    const redisReply *fields = entry->element[1];
    const char *type = store_entry_field(fields, "t", NULL);
    size_t dlen = 0;
    const char *d = store_entry_field(fields, "d", &dlen);
    bool notice = false;
    const struct resource *res = type ? event_resource(type, &notice) : NULL;
    if (!res || !d || !notice)
        return;
    const struct market *m = &b->srv->catalog.markets[b->market];
    char id[ID_MAX_LEN];
    const char *given = store_entry_field(fields, "i", NULL);
    long long ms = 0, seq = 0;
    if (sscanf(eid, "%lld-%lld", &ms, &seq) != 2)
        return;
    if (given)
        snprintf(id, sizeof id, "%s", given);
    else
        id_of_event(res->prefix, ms, seq, m->code, id);
    struct record rec;
    if (record_decode(&rec, d, dlen) != 0) {
        record_release(&rec);
        log_error("msg=\"unreadable event record\" market=%s entry=%s", m->id, eid);
        return;
    }
    struct buf *data = &b->data;
    buf_reset(data);
    record_json(res, id, &rec, &b->srv->catalog, data);
    if (data->failed) {
        record_release(&rec);
        b->failed = true;
        return;
    }
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        const char *prt;
        size_t len;
        if ((f->flags & F_OWNER) && record_str(&rec, f, &prt, &len))
            message_add(b, eid, ms, type, data, prt, len);
    }
    record_release(&rec);
}

static void on_party_created(void *arg, enum store_status st, redisReply *reply);

struct party_call {
    struct batch *b;
    struct party *p;
};

static void batch_send(struct batch *b)
{
    struct server *srv = b->srv;
    b->pending = 1;         /* this function's hold */
    cmd_init(&b->schedule);
    store_key(&srv->store, &b->schedule, KEY_DUE);
    store_key(&srv->store, &b->schedule, KEY_DEAD);
    store_key(&srv->store, &b->schedule, KEY_DEADINFO);
    cmd_add(&b->schedule, "add");
    cmd_addll(&b->schedule, time_now_ms() + srv->cfg.retry_schedule_ms[0]);
    cmd_add(&b->schedule, "");
    for (size_t i = 0; i < b->nparties && !b->failed; i++) {
        struct party_call *pc = malloc(sizeof *pc);
        if (!pc) {
            b->failed = true;
            break;
        }
        *pc = (struct party_call){ b, &b->parties[i] };
        b->pending++;
        store_fcall(&srv->store, FN_MSG_CREATE, 3, &b->parties[i].cmd, on_party_created, pc);
    }
    batch_release(b);
}

static void on_party_created(void *arg, enum store_status st, redisReply *reply)
{
    struct party_call *pc = arg;
    struct batch *b = pc->b;
    struct party *p = pc->p;
    free(pc);
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY) {
        if (st == STORE_OK && !store_reply_full(reply))
            log_error("msg=\"messages not stored\" prt=%s error=\"%.300s\"", p->id,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "?");
        b->failed = true;
        batch_release(b);
        return;
    }
    for (size_t i = 0; i + 1 < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        cmd_addf(&b->schedule, "%s|%s", p->id, e->str);
        b->owed++;
    }
    const redisReply *created = reply->elements ? reply->element[reply->elements - 1] : NULL;
    if (created && created->type == REDIS_REPLY_INTEGER)
        b->srv->metrics.messages_created += (uint64_t)created->integer;
    batch_release(b);
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
        if (st == STORE_OK && store_reply_error(reply, "NOGROUP"))
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
    if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0)
        return;
    struct batch *b = calloc(1, sizeof *b);
    if (!b)
        return;     /* the entries stay pending: claimed again later */
    b->srv = srv;
    b->market = market;
    cmd_init(&b->ack);
    cmd_add(&b->ack, "XACK");
    stream_key(srv, &b->ack, market);
    cmd_add(&b->ack, NOTIFY_GROUP);
    for (size_t i = 0; i < entries->elements; i++)
        batch_event(b, entries->element[i]);
    batch_send(b);
    if (!claim && entries->elements == READ_COUNT)
        notify_kick(srv, market);       /* a full read: more may be waiting */
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
    bool ok = st == STORE_OK && (!store_reply_error(reply, NULL) ||
                                 store_reply_error(reply, "BUSYGROUP"));
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

/* Reads every market (the periodic poll: events other daemons wrote), or only those a kick
 * named (events this daemon just wrote). */
static void poll_markets(struct server *srv, bool all)
{
    struct notify *n = &srv->notify;
    if (!notify_usable(srv))
        return;
    for (size_t i = 0; i < srv->catalog.nmarkets; i++) {
        if ((all || n->kicked[i]) && !n->reading[i]) {
            n->kicked[i] = false;
            read_market(srv, i, false);
        }
    }
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_markets(arg, true);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_markets(arg, false);
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

void notify_kick(struct server *srv, size_t market)
{
    struct notify *n = &srv->notify;
    struct timeval zero = { 0, 0 };
    if (!n->kick || market >= srv->catalog.nmarkets)
        return;
    n->kicked[market] = true;
    if (!evtimer_pending(n->kick, NULL))
        evtimer_add(n->kick, &zero);
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
    n->kicked = calloc(srv->catalog.nmarkets ? srv->catalog.nmarkets : 1, sizeof *n->kicked);
    n->poll_timer = event_new(srv->base, -1, EV_PERSIST, on_poll, srv);
    n->claim_timer = event_new(srv->base, -1, EV_PERSIST, on_claim, srv);
    n->kick = evtimer_new(srv->base, on_kick, srv);
    struct timeval poll = { 0, POLL_MS * 1000 }, claim = { CLAIM_EVERY_S, 0 };
    if (!n->reading || !n->kicked || !n->poll_timer || !n->claim_timer || !n->kick ||
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
    free(n->kicked);
    memset(n, 0, sizeof *n);
}
