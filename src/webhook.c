/* webhook.c — delivering messages to webhook URLs, at least once.
 *
 * A pipeline in which every step is batched:
 *  - claim: one delivery_claim takes up to CLAIM_MAX due deliveries on 30 s leases, so that
 *    a delivery a dead process had claimed comes due again for any process 30 s later;
 *  - load: one delivery_load per participant (up to LOAD_MAX messages) reads its URL and
 *    secret and the messages' states and bodies;
 *  - queue: each delivery joins its endpoint's queue (scheme, host, port) — unless the queue
 *    already holds what the endpoint should send in QUEUE_HORIZON_MS at its measured pace:
 *    then it is put back on the schedule for when the endpoint should have room (that is
 *    not an attempt), so a busy endpoint is neither claimed in a hot loop nor made to hold
 *    deliveries past their lease;
 *  - send: an endpoint runs at most webhook_max_per_endpoint attempts at once, each on a
 *    keep-alive connection of its pool (httpc.h; never more connections than that), reused
 *    across messages. A connection is opened when none is idle: the host is resolved (or
 *    given its address by webhook_resolve), refused when any of its addresses is not
 *    globally reachable (netaddr.h) unless allowed, https verified (certificate, host name).
 *    The next deliveries of each queue are signed while they wait, when the loop has nothing
 *    else to do, so that an answer is followed by the next request at once. A request that
 *    fails on a reused connection before any answer (the receiver closed it while it was
 *    idle) is sent once more on a new connection without counting as an attempt;
 *  - record: outcomes accumulate for FLUSH_MS, then one delivery_done per participant (the
 *    states, in its slot) and one delivery_settle (the schedule's slot: done, retry after the
 *    next delay ±10 % jitter, dead letter) write them.
 * Redirects are never followed. Ownership: a delivery belongs to its load, then to its
 * endpoint's queue, then to the connection its attempt is out on, and is freed once its
 * outcome is recorded; endpoints, connections and outcome batches belong to struct webhook.
 * Every member claimed and not yet settled is in webhook->held, so a lease renewed while
 * this process still holds the delivery does not start a second attempt. */
#include "impactd/webhook.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include "build_config.h"
#include "impactd/httpc.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/netaddr.h"
#include "impactd/server.h"
#include "impactd/signing.h"
#include "impactd/timeutil.h"

#define TICK_MS 200
#define LEASE_MS 30000
#define CLAIM_MAX 1024          /* deliveries one claim takes at most */
#define CLAIM_MIN 256           /* room wanted before claiming again after a full claim */
#define HELD_MAX 2048           /* deliveries claimed and not yet settled, per process */
#define LOAD_MAX 256            /* messages per delivery_load call */
#define WRITE_MAX 512           /* outcomes per delivery_done or delivery_settle call */
#define FLUSH_MS 2              /* outcomes wait this long for others to share their call */
#define MAX_INFLIGHT 1024       /* attempts at once, all endpoints together */
#define QUEUE_HORIZON_MS 5000   /* an endpoint queues what it should send within this */
#define FIRST_GUESS_US 100000   /* attempt duration assumed before an endpoint's first answer */
#define BUSY_MIN_MS 100         /* a delivery put back for a busy endpoint waits at least this */
#define BUSY_MAX_MS 60000       /* ... and at most this */
#define PRESIGN_BATCH 4         /* signatures made ahead per loop turn */
#define PRESIGN_SLACK_S 1       /* a fresh signature made ahead may be this much older */
#define IDLE_MAX_MS 4000        /* idle connections are closed after this (receivers commonly
                                 * close theirs after 5 s: never reuse one they are closing) */
#define MEMBER_LEN (2 * ID_MAX_LEN + 2)
#define INBOX_GONE \
    "its message left the inbox (inbox_max or inbox_retention) before it was delivered"

/* Why an attempt failed before it reached the receiver, beside enum httpc_error. */
enum { ERR_UNRESOLVED = -1, ERR_PRIVATE = -2, ERR_SETUP = -3 };

static char HELD;               /* the value of every webhook->held entry */

struct endpoint;

/* One claimed delivery, from its load to its outcome. */
struct delivery {
    struct endpoint *ep;
    struct delivery *next;              /* in ep's queue */
    char participant[ID_MAX_LEN];
    char msg_id[ID_MAX_LEN];
    int attempts;                       /* attempts made before this one */
    int64_t msg_ts;                     /* the message's Unix s */
    bool resent;                        /* already sent again after a stale connection */
    bool is_signed;                     /* sigs holds the signatures for sig_ts, key kid */
    int64_t sig_ts;
    char kid[KID_LEN];
    char sigs[2 * SIGNING_SIG_LEN + 2]; /* "v1,<HMAC> v1a,<Ed25519>" */
    const char *path, *secret, *type;   /* in text[], after the body */
    size_t body_len;
    char text[];                        /* body NUL path NUL secret NUL type NUL */
};

/* One connection of an endpoint's pool: out with an attempt (d), or idle. */
struct conn {
    struct endpoint *ep;
    struct conn *prev, *next;           /* in ep->conns */
    struct conn *next_idle;             /* in ep->idle while idle */
    struct httpc *http;                 /* NULL until the host is resolved (owned) */
    struct delivery *d;                 /* the attempt out on it (owned); NULL when idle */
    int64_t start_us;                   /* when that attempt was sent; 0 before */
    int64_t idle_since_ms;
};

/* "scheme://host:port": its pool, its queue, and its pace so far. */
struct endpoint {
    struct server *srv;
    char key[300];
    char host[256];
    char host_header[300];
    int port;
    bool https;
    struct delivery *head, *tail;       /* waiting for a connection (owned) */
    unsigned queued;
    unsigned busy;                      /* attempts out */
    unsigned nconns;                    /* connections: busy + idle */
    struct conn *conns;                 /* every connection (owned) */
    struct conn *idle;                  /* the idle ones, most recently used first */
    int64_t est_us;                     /* how long an attempt takes (moving average) */
    int64_t progress_us;                /* an attempt last ended, or the pool got busy */
    bool paced;                         /* est_us is measured, not guessed */
    bool dispatching, stalled, signing;
    struct endpoint *next_stalled;      /* in webhook->stalled */
    struct endpoint *next_signing;      /* in webhook->signing */
};

/* Outcomes being gathered for one call: delivery_done (one participant) or delivery_settle. */
struct outcomes {
    struct cmd cmd;
    unsigned n;
};

/* One delivery_load call: a participant and the messages asked for, in order. */
struct load {
    struct server *srv;
    char participant[ID_MAX_LEN];
    struct cmd cmd;
    size_t n;
    char ids[LOAD_MAX][ID_MAX_LEN];
};

/* A webhook URL, parsed. */
struct target {
    bool https;
    int port;
    char host[256];
    char path[2048];
    char key[300];
};

static void endpoint_dispatch(struct server *srv, struct endpoint *ep);
static void conn_finish(struct server *srv, struct conn *c, int code, int error);

/* ---- small helpers ---- */

static const char *error_text(int error)
{
    switch (error) {
    case HTTPC_TIMEOUT: return "timeout";
    case HTTPC_CLOSED: return "connection closed before an answer";
    case HTTPC_INVALID: return "invalid answer";
    case HTTPC_TOO_LARGE: return "answer too large";
    case HTTPC_TLS: return "TLS handshake failed";
    case ERR_UNRESOLVED: return "host not resolved";
    case ERR_PRIVATE:
        return "private or not globally reachable address refused (not connected)";
    default: return "connection failed";
    }
}

/* A string element of a reply, or NULL (nil, or another type). */
static const redisReply *element_string(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i] : NULL;
}

static const char *element_str(const redisReply *r, size_t i)
{
    const redisReply *e = element_string(r, i);
    return e ? e->str : NULL;
}

static long long element_int(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                          : 0;
}

/* Parses url into t; returns -1 when it cannot be used. t->host is the name or address to
 * connect to (an IPv6 literal without its brackets). */
static int target_parse(struct target *t, const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return -1;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int rc = -1;
    if (scheme && host && netaddr_url_host(host, t->host, sizeof t->host) == 0 &&
        (!strcasecmp(scheme, "http") || !strcasecmp(scheme, "https"))) {
        t->https = !strcasecmp(scheme, "https");
        t->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : t->https ? 443 : 80;
        const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
        snprintf(t->path, sizeof t->path, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                 query ? query : "");
        bool v6 = strchr(t->host, ':') != NULL;
        snprintf(t->key, sizeof t->key, "%s://%s%s%s:%d", t->https ? "https" : "http",
                 v6 ? "[" : "", t->host, v6 ? "]" : "", t->port);
        rc = 0;
    }
    evhttp_uri_free(u);
    return rc;
}

/* ---- outcomes: gathered for FLUSH_MS, then written in a few calls ---- */

static void on_written(void *arg, enum store_status st, redisReply *reply)
{
    struct server *srv = arg;
    if (st != STORE_OK || (store_reply_error(reply, NULL) && !store_reply_full(reply)))
        log_warn("msg=\"webhook outcomes not recorded; their leases will bring them back\" "
                 "error=\"%s\"", st != STORE_OK ? "store unavailable" : reply->str);
    srv->webhook.inflight--;
}

static void outcomes_free(void *value)
{
    struct outcomes *o = value;
    cmd_free(&o->cmd);
    free(o);
}

/* Sends o (consumed). Its reply releases the hold it has on webhook->inflight. */
static void outcomes_send(struct server *srv, struct outcomes *o, enum store_fn fn, int nkeys)
{
    store_fcall(&srv->store, fn, nkeys, &o->cmd, on_written, srv);
    outcomes_free(o);
}

static int states_send(const char *key, void *value, void *arg)
{
    (void)key;
    outcomes_send(arg, value, FN_DELIVERY_DONE, 1);
    return 1;
}

/* The participants' states first, then the schedule: if the process dies in between, the
 * schedule still holds the lease and the delivery comes back. */
static void outcomes_flush(struct server *srv)
{
    struct webhook *w = &srv->webhook;
    dict_sweep(&w->states, states_send, srv);
    if (w->settle) {
        struct outcomes *o = w->settle;
        w->settle = NULL;
        outcomes_send(srv, o, FN_DELIVERY_SETTLE, 3);
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    outcomes_flush(arg);
}

/* Outcomes are written FLUSH_MS after the first of a batch: at full speed that gathers tens
 * of them per call rather than the few one loop turn sees. */
static void flush_soon(struct webhook *w)
{
    struct timeval soon = { 0, FLUSH_MS * 1000 };
    if (!evtimer_pending(w->flush, NULL))
        evtimer_add(w->flush, &soon);
}

/* A new batch; it holds webhook->inflight until its reply (the drain waits for it). */
static struct outcomes *outcomes_new(struct webhook *w)
{
    struct outcomes *o = calloc(1, sizeof *o);
    if (!o) {
        log_error("msg=\"out of memory; webhook outcomes lost, their leases will bring them back\"");
        return NULL;
    }
    cmd_init(&o->cmd);
    w->inflight++;
    return o;
}

/* Records a message's new state (delivery_done: delivered | retry | dead). */
static void state_add(struct server *srv, const char *prt, const char *msg_id,
                      const char *outcome, const char *error)
{
    struct webhook *w = &srv->webhook;
    struct outcomes *o = dict_get(&w->states, prt);
    if (!o) {
        if (!(o = outcomes_new(w)))
            return;
        store_key(&srv->store, &o->cmd, KEY_MESSAGES, prt);
        cmd_addll(&o->cmd, time_now_ms());
        if (dict_set(&w->states, prt, o) != 0) {
            w->inflight--;
            outcomes_free(o);
            log_error("msg=\"out of memory; a webhook outcome is lost, its lease will bring it back\"");
            return;
        }
    }
    cmd_add(&o->cmd, msg_id);
    cmd_add(&o->cmd, outcome);
    cmd_add(&o->cmd, error ? error : "");
    if (++o->n >= WRITE_MAX) {
        dict_del(&w->states, prt);
        outcomes_send(srv, o, FN_DELIVERY_DONE, 1);
    } else {
        flush_soon(w);
    }
}

/* Records a change to the schedule (delivery_settle: done | retry | dead at `at` ms). */
static void settle_add(struct server *srv, const char *action, int64_t at, const char *prt,
                       const char *msg_id, const char *info)
{
    struct webhook *w = &srv->webhook;
    if (!w->settle) {
        if (!(w->settle = outcomes_new(w)))
            return;
        store_key(&srv->store, &w->settle->cmd, KEY_DUE);
        store_key(&srv->store, &w->settle->cmd, KEY_DEAD);
        store_key(&srv->store, &w->settle->cmd, KEY_DEADINFO);
    }
    struct cmd *c = &w->settle->cmd;
    cmd_add(c, action);
    cmd_addll(c, at);
    cmd_addf(c, "%s|%s", prt, msg_id);
    cmd_add(c, info ? info : "");
    if (++w->settle->n >= WRITE_MAX)
        outcomes_flush(srv);
    else
        flush_soon(w);
}

/* Dead-letters a delivery: its state (outcome "dead"; "gone" when its message left the
 * inbox, which drops the state) and the dead letter an operator lists and redelivers. */
static void dead_letter(struct server *srv, const char *prt, const char *msg_id,
                        const char *type, int attempts, const char *error, int64_t now,
                        const char *outcome)
{
    srv->metrics.webhooks_dead++;
    state_add(srv, prt, msg_id, outcome, error);
    json_t *info = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "message_id", msg_id,
                             "participant_id", prt, "type", type, "attempts", attempts,
                             "last_error", error, "dead_at", (json_int_t)now);
    char *dumped = info ? json_dumps(info, JSON_COMPACT) : NULL;
    json_decref(info);
    settle_add(srv, "dead", now, prt, msg_id, dumped ? dumped : "{}");
    free(dumped);
}

/* The delivery is no longer this process's: claims may take it again. */
static void held_release(struct server *srv, const char *prt, const char *msg_id)
{
    struct webhook *w = &srv->webhook;
    char member[MEMBER_LEN];
    snprintf(member, sizeof member, "%s|%s", prt, msg_id);
    dict_del(&w->held, member);
    if (w->more && HELD_MAX - w->held.count >= CLAIM_MIN) {
        w->more = false;
        webhook_kick(srv);
    }
}

/* Puts a claimed delivery back on the schedule for `at`, without an attempt. */
static void put_back(struct server *srv, const char *prt, const char *msg_id, int64_t at)
{
    settle_add(srv, "retry", at, prt, msg_id, NULL);
    held_release(srv, prt, msg_id);
}

/* An attempt's outcome: the state, the schedule, the metrics. Frees d. */
static void attempt_done(struct server *srv, struct delivery *d, int code, int error,
                         int64_t dur_us)
{
    int64_t now = time_now_ms();
    double ms = dur_us >= 0 ? (double)dur_us / 1000 : 0;
    if (code >= 200 && code < 300) {
        srv->metrics.webhooks_delivered++;
        log_info("msg=\"webhook delivered\" msg_id=%s prt=%s status=%d attempt=%d dur_ms=%.1f",
                 d->msg_id, d->participant, code, d->attempts + 1, ms);
        state_add(srv, d->participant, d->msg_id, "delivered", NULL);
        settle_add(srv, "done", now, d->participant, d->msg_id, NULL);
    } else {
        char text[96];
        if (code > 0)
            snprintf(text, sizeof text, "HTTP %d", code);
        else
            snprintf(text, sizeof text, "%s", error_text(error));
        bool last = (size_t)(d->attempts + 1) >= srv->cfg.retry_count;
        log_warn("msg=\"webhook attempt failed\" msg_id=%s prt=%s error=\"%s\" attempt=%d%s",
                 d->msg_id, d->participant, text, d->attempts + 1, last ? " dead_letter=1" : "");
        if (last) {
            dead_letter(srv, d->participant, d->msg_id, d->type, d->attempts + 1, text, now,
                        "dead");
        } else {
            state_add(srv, d->participant, d->msg_id, "retry", text);
            srv->metrics.webhooks_retried++;
            int64_t delay = srv->cfg.retry_schedule_ms[d->attempts + 1];
            int64_t jitter = delay / 10;
            if (jitter > 0)
                delay += (int64_t)randombytes_uniform((uint32_t)(2 * jitter + 1)) - jitter;
            settle_add(srv, "retry", now + delay, d->participant, d->msg_id, NULL);
        }
    }
    held_release(srv, d->participant, d->msg_id);
    free(d);
}

/* ---- signatures, made as a delivery waits when the loop has nothing else to do ---- */

/* The timestamp an attempt of d made at now_s carries: the first attempt the message's own
 * (its signatures then equal the inbox item's), later ones a fresh one, so that receivers'
 * tolerance accepts them. */
static int64_t attempt_ts(const struct delivery *d, int64_t now_s)
{
    return d->attempts == 0 && now_s - d->msg_ts < 60 ? d->msg_ts : now_s;
}

static int delivery_sign(const struct server *srv, struct delivery *d, int64_t ts)
{
    const struct signing_key *key = &srv->signing.keys[0];
    char v1[SIGNING_SIG_LEN], v1a[SIGNING_SIG_LEN];
    d->is_signed = false;
    if (signing_v1(d->secret, d->msg_id, ts, d->text, d->body_len, v1, sizeof v1) != 0 ||
        signing_v1a(key, d->msg_id, ts, d->text, d->body_len, v1a, sizeof v1a) != 0)
        return -1;
    snprintf(d->sigs, sizeof d->sigs, "%s %s", v1, v1a);
    snprintf(d->kid, sizeof d->kid, "%s", key->kid);
    d->sig_ts = ts;
    d->is_signed = true;
    return 0;
}

/* Signs d for an attempt now, unless it was signed ahead for this attempt: the same
 * timestamp (a fresh one: at most PRESIGN_SLACK_S older) with the current key. */
static int delivery_sign_now(const struct server *srv, struct delivery *d)
{
    int64_t now_s = time_now_ms() / 1000, ts = attempt_ts(d, now_s);
    bool ahead = d->is_signed && !strcmp(d->kid, srv->signing.keys[0].kid) &&
                 (d->sig_ts == ts || (ts == now_s && d->sig_ts <= now_s &&
                                      d->sig_ts >= now_s - PRESIGN_SLACK_S));
    return ahead ? 0 : delivery_sign(srv, d, ts);
}

/* ep's next deliveries (as many as two pools) should be signed before their turn. */
static void presign_soon(struct webhook *w, struct endpoint *ep)
{
    if (!ep->signing) {
        ep->signing = true;
        ep->next_signing = w->signing;
        w->signing = ep;
    }
    struct timeval zero = { 0, 0 };
    if (!evtimer_pending(w->presign, NULL))
        evtimer_add(w->presign, &zero);
}

static struct delivery *presign_next(const struct server *srv, const struct endpoint *ep)
{
    int64_t window = 2 * srv->cfg.webhook_max_per_endpoint;
    for (struct delivery *d = ep->head; d && window-- > 0; d = d->next)
        if (!d->is_signed)
            return d;
    return NULL;
}

/* A few signatures per loop turn: answers that came meanwhile are handled first (I/O
 * callbacks run before timers), and the next requests then go out without signing. */
static void on_presign(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    struct webhook *w = &srv->webhook;
    int budget = PRESIGN_BATCH;
    int64_t now_s = time_now_ms() / 1000;
    while (w->signing && budget > 0) {
        struct endpoint *ep = w->signing;
        struct delivery *d = presign_next(srv, ep);
        if (!d) {
            w->signing = ep->next_signing;
            ep->next_signing = NULL;
            ep->signing = false;
            continue;
        }
        if (delivery_sign(srv, d, attempt_ts(d, now_s)) != 0)
            d->is_signed = false;   /* tried again when it is sent, and fails then */
        budget--;
        if (!d->is_signed) {        /* do not spin on it */
            w->signing = ep->next_signing;
            ep->next_signing = NULL;
            ep->signing = false;
        }
    }
    if (w->signing) {
        struct timeval zero = { 0, 0 };
        evtimer_add(w->presign, &zero);
    }
}

/* ---- endpoints ---- */

static struct endpoint *endpoint_of(struct server *srv, const struct target *t)
{
    struct webhook *w = &srv->webhook;
    struct endpoint *ep = dict_get(&w->endpoints, t->key);
    if (ep)
        return ep;
    if (!(ep = calloc(1, sizeof *ep)))
        return NULL;
    ep->srv = srv;
    snprintf(ep->key, sizeof ep->key, "%s", t->key);
    snprintf(ep->host, sizeof ep->host, "%s", t->host);
    ep->port = t->port;
    ep->https = t->https;
    bool default_port = t->port == (t->https ? 443 : 80);
    if (strchr(t->host, ':'))
        snprintf(ep->host_header, sizeof ep->host_header, default_port ? "[%s]" : "[%s]:%d",
                 t->host, t->port);
    else
        snprintf(ep->host_header, sizeof ep->host_header, default_port ? "%s" : "%s:%d",
                 t->host, t->port);
    ep->est_us = FIRST_GUESS_US;
    if (dict_set(&w->endpoints, ep->key, ep) != 0) {
        free(ep);
        return NULL;
    }
    return ep;
}

/* How many more deliveries ep may queue now; *wait_ms: when one put back should return. */
static size_t endpoint_room(const struct server *srv, const struct endpoint *ep,
                            int64_t *wait_ms)
{
    int64_t cap = srv->cfg.webhook_max_per_endpoint;
    int64_t est = ep->est_us;
    int64_t stuck = ep->busy ? time_mono_us() - ep->progress_us : 0;
    if (stuck > est)
        est = stuck;        /* nothing ended for that long: it is at least that slow */
    if (est < 1)
        est = 1;
    int64_t limit = (int64_t)QUEUE_HORIZON_MS * 1000 * cap / est;
    if (!ep->paced && limit > 2 * cap)
        limit = 2 * cap;    /* one pool in flight and one queued, until its pace is known */
    if (limit < cap)
        limit = cap;
    int64_t have = (int64_t)ep->queued + ep->busy;
    int64_t wait = (have - limit + 1) * est / cap / 1000;  /* until the queue is below limit */
    *wait_ms = wait < BUSY_MIN_MS ? BUSY_MIN_MS : wait > BUSY_MAX_MS ? BUSY_MAX_MS : wait;
    return have < limit ? (size_t)(limit - have) : 0;
}

static void queue_push(struct webhook *w, struct endpoint *ep, struct delivery *d, bool front)
{
    d->ep = ep;
    if (front) {
        d->next = ep->head;
        ep->head = d;
        if (!ep->tail)
            ep->tail = d;
    } else {
        d->next = NULL;
        if (ep->tail)
            ep->tail->next = d;
        else
            ep->head = d;
        ep->tail = d;
    }
    ep->queued++;
    if (!d->is_signed)
        presign_soon(w, ep);
}

static struct delivery *queue_pop(struct endpoint *ep)
{
    struct delivery *d = ep->head;
    if (d) {
        ep->head = d->next;
        if (!ep->head)
            ep->tail = NULL;
        d->next = NULL;
        ep->queued--;
    }
    return d;
}

/* The next delivery of ep's queue to send; its successors move up into the signing window. */
static struct delivery *queue_take(struct webhook *w, struct endpoint *ep)
{
    struct delivery *d = queue_pop(ep);
    if (ep->head)
        presign_soon(w, ep);
    return d;
}

/* Hands back every queued delivery to the schedule, due now (the process is stopping). */
static void queue_release(struct server *srv, struct endpoint *ep)
{
    struct delivery *d;
    int64_t now = time_now_ms();
    while ((d = queue_pop(ep))) {
        put_back(srv, d->participant, d->msg_id, now);
        free(d);
    }
}

/* Waits for the process-wide cap on attempts. */
static void stall(struct webhook *w, struct endpoint *ep)
{
    if (ep->stalled)
        return;
    ep->stalled = true;
    ep->next_stalled = w->stalled;
    w->stalled = ep;
}

static void unstall(struct server *srv)
{
    struct webhook *w = &srv->webhook;
    while (w->stalled && w->attempts < MAX_INFLIGHT) {
        struct endpoint *ep = w->stalled;
        w->stalled = ep->next_stalled;
        ep->next_stalled = NULL;
        ep->stalled = false;
        endpoint_dispatch(srv, ep);
    }
}

/* ---- connections ---- */

static void conn_unlink(struct endpoint *ep, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        ep->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ep->nconns--;
}

/* Closes c (idle, or its attempt over) and frees it; also from httpc's callback. */
static void conn_retire(struct conn *c)
{
    conn_unlink(c->ep, c);
    httpc_free(c->http);
    free(c);
}

/* An idle connection still fit for use, else a new one (not connected yet), or NULL. */
static struct conn *conn_take(struct endpoint *ep)
{
    int64_t now = time_now_ms();
    struct conn *c;
    while ((c = ep->idle)) {
        ep->idle = c->next_idle;
        c->next_idle = NULL;
        if (httpc_reusable(c->http) && now - c->idle_since_ms < IDLE_MAX_MS)
            return c;
        conn_retire(c);
    }
    if (!(c = calloc(1, sizeof *c)))
        return NULL;
    c->ep = ep;
    c->next = ep->conns;
    if (ep->conns)
        ep->conns->prev = c;
    ep->conns = c;
    ep->nconns++;
    return c;
}

/* Closes the idle connections that have been idle too long, or that either side closed. */
static void conn_trim(struct endpoint *ep)
{
    int64_t now = time_now_ms();
    struct conn **pp = &ep->idle;
    while (*pp) {
        struct conn *c = *pp;
        if (!httpc_reusable(c->http) || now - c->idle_since_ms >= IDLE_MAX_MS) {
            *pp = c->next_idle;
            conn_retire(c);
        } else {
            pp = &c->next_idle;
        }
    }
}

static void on_answer(void *arg, int status, enum httpc_error error)
{
    struct conn *c = arg;
    conn_finish(c->ep->srv, c, status, (int)error);
}

/* Sends c's delivery, signed now, on c (connected, or connecting to a checked address). */
static void conn_send(struct server *srv, struct conn *c)
{
    struct delivery *d = c->d;
    struct endpoint *ep = c->ep;
    char head[4096];
    if (delivery_sign_now(srv, d) != 0) {
        conn_finish(srv, c, 0, ERR_SETUP);
        return;
    }
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Content-Type: application/json\r\n"
                     "User-Agent: impactd/" IMPACTD_VERSION "\r\n"
                     "webhook-id: %s\r\n"
                     "webhook-timestamp: %lld\r\n"
                     "webhook-signature: %s\r\n"
                     "webhook-key-id: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n",
                     d->path, ep->host_header, d->msg_id, (long long)d->sig_ts, d->sigs, d->kid,
                     d->body_len);
    struct iovec iov[2] = { { head, (size_t)n }, { d->text, d->body_len } };
    c->start_us = time_mono_us();
    if (n < 0 || (size_t)n >= sizeof head ||
        httpc_send(c->http, iov, 2, srv->cfg.webhook_timeout_ms) != 0)
        conn_finish(srv, c, 0, ERR_SETUP);
}

/* The TLS session of a connection to ep: certificate and host name (or IP) verified. */
static SSL *tls_for(struct server *srv, const struct endpoint *ep)
{
    SSL *ssl = SSL_new(srv->webhook.ssl);
    if (!ssl)
        return NULL;
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    int ok = netaddr_is_literal(ep->host)
                 ? X509_VERIFY_PARAM_set1_ip_asc(param, ep->host)
                 : SSL_set_tlsext_host_name(ssl, ep->host) == 1 &&
                       X509_VERIFY_PARAM_set1_host(param, ep->host, 0) == 1;
    if (ok != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    return ssl;
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct conn *c = arg;
    struct endpoint *ep = c->ep;
    struct server *srv = ep->srv;
    char ip[INET6_ADDRSTRLEN] = "";
    /* Every address the host resolves to is judged, not only the one connected to. */
    const char *why = NULL;
    const struct evutil_addrinfo *bad = result == 0 && res && !srv->cfg.webhook_allow_private
                                            ? netaddr_first_nonglobal(res, &why) : NULL;
    if (result == 0 && res)
        netaddr_ntop((bad ? bad : res)->ai_addr, ip, sizeof ip);
    int error = 0;
    if (!ip[0]) {
        log_warn("msg=\"webhook host not resolved\" host=%s", ep->host);
        error = ERR_UNRESOLVED;
    } else if (bad) {
        log_warn("msg=\"webhook refused: address not globally reachable\" host=%s ip=%s "
                 "block=\"%s\"", ep->host, ip, why);
        error = ERR_PRIVATE;
    } else {
        SSL *ssl = ep->https ? tls_for(srv, ep) : NULL;
        if (ep->https && !ssl)
            error = ERR_SETUP;
        else if (!(c->http = httpc_new(srv->base, res->ai_addr, (socklen_t)res->ai_addrlen, ssl,
                                       on_answer, c)))
            error = ERR_SETUP;
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (error)
        conn_finish(srv, c, 0, error);
    else
        conn_send(srv, c);
}

/* Resolves c's host, then connects and sends (the callback may run before this returns). */
static void conn_open(struct server *srv, struct conn *c)
{
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                     .ai_flags = EVUTIL_AI_ADDRCONFIG };
    char port[8], addr[INET6_ADDRSTRLEN];
    snprintf(port, sizeof port, "%d", c->ep->port);
    const char *name = c->ep->host;
    if (netaddr_override_find(srv->cfg.webhook_resolve, name, c->ep->port, addr, sizeof addr))
        name = addr;    /* webhook_resolve: this address, no DNS; judged like any other */
    /* An address is its own answer: AI_ADDRCONFIG would drop ::1 where no global IPv6
     * address is configured. */
    if (netaddr_is_literal(name))
        hints.ai_flags = EVUTIL_AI_NUMERICHOST;
    evdns_getaddrinfo(srv->webhook.dns, name, port, &hints, on_resolved, c);
}

/* c's attempt is over (code: the HTTP status, 0 for none, then error says why): keep or
 * close c, record the outcome (or send it once more, on a new connection, when a reused one
 * turned out closed), and start the next attempts. */
static void conn_finish(struct server *srv, struct conn *c, int code, int error)
{
    struct webhook *w = &srv->webhook;
    struct endpoint *ep = c->ep;
    struct delivery *d = c->d;
    c->d = NULL;
    ep->busy--;
    w->attempts--;
    w->inflight--;
    int64_t now_us = time_mono_us();
    int64_t dur = c->start_us ? now_us - c->start_us : -1;
    c->start_us = 0;
    bool stale = code == 0 && error == HTTPC_CLOSED && c->http && httpc_answers(c->http) > 0 &&
                 !d->resent;
    if (dur >= 0 && !stale) {
        metrics_observe(&srv->metrics.webhook_latency, (double)dur / 1e6);
        ep->est_us += (dur - ep->est_us) / 8;
        ep->progress_us = now_us;
        ep->paced = true;
    }
    if (!c->http || !httpc_reusable(c->http) || srv->stopping) {
        conn_retire(c);
    } else {
        c->idle_since_ms = time_now_ms();
        c->next_idle = ep->idle;
        ep->idle = c;
    }
    if (stale) {
        log_debug("msg=\"webhook request sent again on a new connection\" msg_id=%s prt=%s",
                  d->msg_id, d->participant);
        d->resent = true;
        queue_push(w, ep, d, true);
    } else {
        attempt_done(srv, d, code, error, dur);
    }
    endpoint_dispatch(srv, ep);
    unstall(srv);
}

/* Starts queued deliveries while ep and the process have room. Re-entry (an attempt that
 * fails before it is sent finishes inside this loop) returns at once: the loop goes on. */
static void endpoint_dispatch(struct server *srv, struct endpoint *ep)
{
    struct webhook *w = &srv->webhook;
    if (ep->dispatching)
        return;
    ep->dispatching = true;
    while (ep->head && ep->busy < (unsigned)srv->cfg.webhook_max_per_endpoint &&
           !srv->stopping) {
        if (w->attempts >= MAX_INFLIGHT) {
            stall(w, ep);
            break;
        }
        struct conn *c = conn_take(ep);
        if (!c)
            break;          /* out of memory: the tick tries again */
        c->d = queue_take(w, ep);
        if (ep->busy++ == 0)
            ep->progress_us = time_mono_us();
        w->attempts++;
        w->inflight++;
        if (c->http)
            conn_send(srv, c);
        else
            conn_open(srv, c);
    }
    ep->dispatching = false;
}

/* ---- loading ---- */

static struct delivery *delivery_new(const char *prt, const char *msg_id, int attempts,
                                     int64_t msg_ts, const char *type, const redisReply *body,
                                     const struct target *t, const char *secret)
{
    size_t plen = strlen(t->path), slen = strlen(secret), tlen = strlen(type);
    struct delivery *d = malloc(sizeof *d + body->len + plen + slen + tlen + 4);
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    snprintf(d->participant, sizeof d->participant, "%s", prt);
    snprintf(d->msg_id, sizeof d->msg_id, "%s", msg_id);
    d->attempts = attempts;
    d->msg_ts = msg_ts;
    d->body_len = body->len;
    char *p = d->text;
    memcpy(p, body->str, body->len);
    p[body->len] = '\0';
    p += body->len + 1;
    memcpy(p, t->path, plen + 1);
    d->path = p;
    p += plen + 1;
    memcpy(p, secret, slen + 1);
    d->secret = p;
    p += slen + 1;
    memcpy(p, type, tlen + 1);
    d->type = p;
    return d;
}

/* delivery_load answers {url, secret, then per message: status, attempts, Unix s, type, body}. */
static void on_loaded(void *arg, enum store_status st, redisReply *reply)
{
    struct load *l = arg;
    struct server *srv = l->srv;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 + 5 * l->n) {
        if (st == STORE_OK && reply->type == REDIS_REPLY_ERROR)
            log_warn("msg=\"webhook deliveries not loaded\" prt=%s error=\"%.300s\"",
                     l->participant, reply->str);
        for (size_t i = 0; i < l->n; i++)   /* their leases bring them back */
            held_release(srv, l->participant, l->ids[i]);
        free(l);
        return;
    }
    const char *url = element_str(reply, 0), *secret = element_str(reply, 1);
    struct target t;
    bool usable = url && secret && target_parse(&t, url) == 0;
    struct endpoint *ep = usable && !srv->stopping ? endpoint_of(srv, &t) : NULL;
    int64_t wait_ms = BUSY_MIN_MS;
    size_t room = ep ? endpoint_room(srv, ep, &wait_ms) : 0;
    int64_t now = time_now_ms();
    for (size_t i = 0; i < l->n; i++) {
        const char *id = l->ids[i];
        size_t at = 2 + 5 * i;
        const char *status = element_str(reply, at);
        const redisReply *body = element_string(reply, at + 4);
        if (usable && status && strcmp(status, "pending") == 0 && !body) {
            /* owed, but its message left the inbox (inbox_max, inbox_retention) */
            log_warn("msg=\"webhook dead-lettered: its message left the inbox\" msg_id=%s "
                     "prt=%s", id, l->participant);
            const char *type = element_str(reply, at + 3);
            dead_letter(srv, l->participant, id, type ? type : "",
                        (int)element_int(reply, at + 1), INBOX_GONE, now, "gone");
            held_release(srv, l->participant, id);
            continue;
        }
        if (!usable || !status || strcmp(status, "pending") != 0 || !body) {
            settle_add(srv, "done", now, l->participant, id, NULL);     /* nothing to deliver */
            held_release(srv, l->participant, id);
            continue;
        }
        if (srv->stopping) {
            put_back(srv, l->participant, id, now);
            continue;
        }
        if (room == 0) {        /* the endpoint has enough to do: back when it has room */
            put_back(srv, l->participant, id, now + (ep ? wait_ms : BUSY_MIN_MS));
            continue;
        }
        const char *type = element_str(reply, at + 3);
        struct delivery *d = delivery_new(l->participant, id, (int)element_int(reply, at + 1),
                                          element_int(reply, at + 2), type ? type : "", body,
                                          &t, secret);
        if (!d) {
            put_back(srv, l->participant, id, now + BUSY_MIN_MS);
            continue;
        }
        queue_push(&srv->webhook, ep, d, false);
        room--;
    }
    if (ep)
        endpoint_dispatch(srv, ep);
    free(l);
}

static struct load *load_new(struct server *srv, const char *prt)
{
    struct load *l = malloc(sizeof *l);
    if (!l)
        return NULL;
    l->srv = srv;
    snprintf(l->participant, sizeof l->participant, "%s", prt);
    l->n = 0;
    cmd_init(&l->cmd);
    store_key(&srv->store, &l->cmd, KEY_PARTICIPANT, prt);
    store_key(&srv->store, &l->cmd, KEY_MESSAGES, prt);
    store_key(&srv->store, &l->cmd, KEY_INBOX, prt);
    return l;
}

static void load_send(struct load *l)
{
    store_fcall(&l->srv->store, FN_DELIVERY_LOAD, 3, &l->cmd, on_loaded, l);
}

static int load_send_each(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    load_send(value);
    return 1;
}

/* One claimed member "<prt>|<msg>": into its participant's load, unless already held. */
static void claim_member(struct server *srv, struct dict *loads, const char *member)
{
    struct webhook *w = &srv->webhook;
    const char *bar = strchr(member, '|');
    if (!bar || bar == member || (size_t)(bar - member) >= ID_MAX_LEN || !bar[1] ||
        strlen(bar + 1) >= ID_MAX_LEN)
        return;
    if (dict_get(&w->held, member))
        return;             /* still ours: the claim renewed its lease */
    char prt[ID_MAX_LEN];
    memcpy(prt, member, (size_t)(bar - member));
    prt[bar - member] = '\0';
    struct load *l = dict_get(loads, prt);
    if (!l) {
        if (!(l = load_new(srv, prt)))
            return;
        if (dict_set(loads, prt, l) != 0) {
            cmd_free(&l->cmd);
            free(l);
            return;
        }
    }
    if (dict_set(&w->held, member, &HELD) != 0)
        return;             /* out of memory: its lease brings it back */
    snprintf(l->ids[l->n++], ID_MAX_LEN, "%s", bar + 1);
    cmd_add(&l->cmd, bar + 1);
    if (l->n == LOAD_MAX) {
        dict_del(loads, prt);
        load_send(l);
    }
}

static void on_claimed(void *arg, enum store_status st, redisReply *reply)
{
    struct server *srv = arg;
    struct webhook *w = &srv->webhook;
    w->claiming = false;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY)
        return;
    struct dict loads;
    if (dict_init(&loads) != 0)
        return;             /* their leases bring them back */
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            claim_member(srv, &loads, reply->element[i]->str);
    /* a load left empty (an allocation failed) is sent all the same: it answers {url, secret} */
    dict_sweep(&loads, load_send_each, NULL);
    dict_free(&loads, NULL);
    if (reply->elements > 0 && reply->elements >= w->asked) {
        w->more = true;     /* a full claim: more may be due now */
        if (HELD_MAX - w->held.count >= CLAIM_MIN) {
            w->more = false;
            webhook_kick(srv);
        }
    }
}

/* ---- claiming and the tick ---- */

static void claim(struct server *srv)
{
    struct webhook *w = &srv->webhook;
    size_t room = HELD_MAX - w->held.count;
    if (w->claiming || srv->stopping || !store_ready(&srv->store))
        return;
    if (room < CLAIM_MIN) {
        w->more = true;     /* claim as soon as there is room */
        return;
    }
    w->claiming = true;
    w->asked = room < CLAIM_MAX ? (unsigned)room : CLAIM_MAX;
    struct cmd c;
    cmd_init(&c);
    store_key(&srv->store, &c, KEY_DUE);
    cmd_addll(&c, time_now_ms());
    cmd_addll(&c, LEASE_MS);
    cmd_addll(&c, w->asked);
    store_fcall(&srv->store, FN_DELIVERY_CLAIM, 1, &c, on_claimed, srv);
}

static int endpoint_sweep(const char *key, void *value, void *arg)
{
    (void)key;
    struct server *srv = arg;
    struct endpoint *ep = value;
    if (srv->stopping)
        queue_release(srv, ep);
    conn_trim(ep);
    endpoint_dispatch(srv, ep);         /* after an allocation failure */
    if (ep->nconns || ep->head || ep->stalled || ep->signing)
        return 0;
    free(ep);
    return 1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *srv = arg;
    dict_sweep(&srv->webhook.endpoints, endpoint_sweep, srv);
    claim(srv);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    claim(arg);
}

void webhook_kick(struct server *srv)
{
    struct timeval zero = { 0, 0 };
    if (srv->webhook.kick && !evtimer_pending(srv->webhook.kick, NULL))
        evtimer_add(srv->webhook.kick, &zero);
}

int webhook_start(struct server *srv, char *err, size_t errlen)
{
    struct webhook *w = &srv->webhook;
    if (dict_init(&w->endpoints) != 0 || dict_init(&w->held) != 0 ||
        dict_init(&w->states) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->dns = evdns_base_new(srv->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                           EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!w->dns)
        w->dns = evdns_base_new(srv->base, 0);  /* no resolv.conf: literal addresses only */
    w->ssl = SSL_CTX_new(TLS_client_method());
    if (!w->dns || !w->ssl) {
        snprintf(err, errlen, "cannot set up DNS or TLS for webhooks");
        return -1;
    }
    SSL_CTX_set_min_proto_version(w->ssl, TLS1_2_VERSION);
    SSL_CTX_set_verify(w->ssl, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(w->ssl) != 1)
        log_warn("msg=\"no system CA store; https webhooks need webhook_ca_file\"");
    if (srv->cfg.webhook_ca_file[0] &&
        SSL_CTX_load_verify_locations(w->ssl, srv->cfg.webhook_ca_file, NULL) != 1) {
        snprintf(err, errlen, "webhook_ca_file %s: cannot load the certificates",
                 srv->cfg.webhook_ca_file);
        return -1;
    }
    w->timer = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
    w->kick = evtimer_new(srv->base, on_kick, srv);
    w->flush = evtimer_new(srv->base, on_flush, srv);
    w->presign = evtimer_new(srv->base, on_presign, srv);
    struct timeval tv = { 0, TICK_MS * 1000 };
    if (!w->timer || !w->kick || !w->flush || !w->presign || event_add(w->timer, &tv) != 0) {
        snprintf(err, errlen, "cannot start the webhook timer");
        return -1;
    }
    return 0;
}

/* At exit, after the loop: requests still out are abandoned (their leases bring them back). */
static void endpoint_destroy(void *value)
{
    struct endpoint *ep = value;
    struct delivery *d;
    while ((d = queue_pop(ep)))
        free(d);
    while (ep->conns) {
        struct conn *c = ep->conns;
        free(c->d);
        c->d = NULL;
        conn_retire(c);
    }
    free(ep);
}

void webhook_stop(struct server *srv)
{
    struct webhook *w = &srv->webhook;
    if (w->timer)
        event_free(w->timer);
    if (w->kick)
        event_free(w->kick);
    if (w->flush)
        event_free(w->flush);
    if (w->presign)
        event_free(w->presign);
    dict_free(&w->endpoints, endpoint_destroy);
    dict_free(&w->states, outcomes_free);
    if (w->settle)
        outcomes_free(w->settle);
    dict_free(&w->held, NULL);
    if (w->dns)
        evdns_base_free(w->dns, 1);
    if (w->ssl)
        SSL_CTX_free(w->ssl);
    memset(w, 0, sizeof *w);
}
