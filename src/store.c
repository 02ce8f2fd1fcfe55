/* store.c — the only code that talks to Redis.
 *
 * One hiredis async context, attached to the server's event base. Life cycle:
 *   store_connect → (AUTH, SELECT, CLIENT SETNAME, SCRIPT LOAD × n queued at once) →
 *   ready → ... → disconnect or hang → store_drop → backoff timer → store_connect.
 * Every call carries a libevent timer (hiredis 0.14 has no command timeout) and its callback
 * runs exactly once. A call whose timer fired stays allocated until hiredis hands its reply
 * (or NULL, when the context is freed) back, so hiredis never touches freed memory. When
 * calls time out and Redis has said nothing for a whole timeout, the connection is presumed
 * dead and dropped, which fails every call still queued on it. */
#include "impactd/store.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/log.h"
#include "impactd/metrics.h"
#include "impactd/timeutil.h"

#define BACKOFF_START_MS 50

struct store_call {
    struct store *st;
    store_cb cb;
    void *arg;
    struct event *timer;
    struct cmd cmd;                 /* eval: kept for the EVAL fallback on NOSCRIPT */
    enum script_id script;
    int nkeys;
    bool is_eval;
    bool retried;                   /* already resent as EVAL */
    bool done;                      /* cb has run */
    bool in_redis;                  /* hiredis holds a pointer to this call */
    enum store_status deferred;     /* status to report from the timer when not sent */
    int64_t sent_us;
};

/* ---- argument vectors ---- */

void cmd_init(struct cmd *c) { memset(c, 0, sizeof *c); }

void cmd_addn(struct cmd *c, const char *s, size_t n)
{
    if (c->failed)
        return;
    if (c->argc >= CMD_MAX_ARGS) {
        c->failed = true;
        return;
    }
    char *copy = malloc(n + 1);
    if (!copy) {
        c->failed = true;
        return;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    c->argv[c->argc] = copy;
    c->len[c->argc] = n;
    c->argc++;
}

void cmd_add(struct cmd *c, const char *s) { cmd_addn(c, s, strlen(s)); }

void cmd_addf(struct cmd *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        c->failed = true;
        return;
    }
    cmd_addn(c, buf, (size_t)n);
}

void cmd_addll(struct cmd *c, long long v) { cmd_addf(c, "%lld", v); }

void cmd_free(struct cmd *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    cmd_init(c);
}

void store_key(const struct store *st, struct cmd *c, const char *fmt, ...)
{
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name) {
        c->failed = true;
        return;
    }
    cmd_addf(c, "%s%s", st->cfg->key_prefix, name);
}

/* ---- replies ---- */

const char *reply_hash_get(const redisReply *r, const char *field)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, field) == 0)
            return v->type == REDIS_REPLY_STRING ? v->str : NULL;
    }
    return NULL;
}

const char *reply_entry_field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1]->type == REDIS_REPLY_STRING
                       ? fields->element[i + 1]->str : NULL;
    return NULL;
}

bool reply_is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (!prefix || strncmp(r->str, prefix, strlen(prefix)) == 0);
}

/* ---- connection ---- */

static void store_connect(struct store *st);

static void store_schedule_reconnect(struct store *st)
{
    if (st->closing)
        return;
    int64_t ms = st->backoff_ms;
    int64_t jitter = ms / 5;
    if (jitter > 0)
        ms += (int64_t)(randombytes_uniform((uint32_t)(2 * jitter + 1))) - jitter;
    st->backoff_ms *= 2;
    if (st->backoff_ms > st->cfg->redis_reconnect_max_ms)
        st->backoff_ms = st->cfg->redis_reconnect_max_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(st->reconnect_timer, &tv);
    log_debug("msg=\"redis reconnect scheduled\" in_ms=%lld", (long long)ms);
}

static void store_set_down(struct store *st)
{
    if (st->ready)
        log_warn("msg=\"redis connection lost\"");
    st->ready = false;
    st->metrics->store_connected = 0;
    evtimer_del(st->connect_timer);
}

/* Frees the context (every queued call comes back with NULL) and schedules a reconnect. */
static void store_drop(struct store *st, const char *why)
{
    redisAsyncContext *ac = st->ac;
    if (!ac)
        return;
    log_warn("msg=\"dropping redis connection\" reason=\"%s\"", why);
    st->ac = NULL;
    store_set_down(st);
    redisAsyncFree(ac);
    store_schedule_reconnect(st);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct store *st = ac->data;
    if (st->ac != ac)
        return;     /* we dropped it ourselves */
    log_warn("msg=\"redis disconnected\" error=\"%s\"", status == REDIS_OK ? "none" : ac->errstr);
    st->ac = NULL;
    store_set_down(st);
    store_schedule_reconnect(st);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct store *st = ac->data;
    if (st->ac != ac)
        return;
    if (status != REDIS_OK) {
        log_warn("msg=\"redis connect failed\" error=\"%s\"", ac->errstr);
        st->ac = NULL;  /* hiredis frees the context after this callback */
        store_set_down(st);
        store_schedule_reconnect(st);
        return;
    }
    log_debug("msg=\"redis socket connected\"");
}

struct setup_ctx {
    struct store *st;
    uint64_t generation;
    const char *what;
    const char *expect;     /* SCRIPT LOAD: the SHA the reply must equal */
};

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct setup_ctx *sc = privdata;
    struct store *st = sc->st;
    redisReply *r = reply;
    bool current = sc->generation == st->generation && st->ac == ac;
    if (current && r) {
        st->last_reply_us = time_mono_us();
        bool ok = r->type != REDIS_REPLY_ERROR &&
                  (!sc->expect || (r->type == REDIS_REPLY_STRING && strcmp(r->str, sc->expect) == 0));
        if (!ok) {
            log_error("msg=\"redis setup failed\" step=\"%s\" reply=\"%s\"", sc->what,
                      r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STRING ? r->str : "?");
            free(sc);
            store_drop(st, "setup failed");
            return;
        }
        if (--st->pending_setup == 0) {
            st->ready = true;
            st->backoff_ms = BACKOFF_START_MS;
            st->metrics->store_connected = 1;
            evtimer_del(st->connect_timer);
            log_info("msg=\"redis ready\" url=\"%s\" scripts=%d", st->cfg->redis_url,
                     (int)SCRIPT_COUNT_);
        }
    }
    free(sc);
}

static int store_setup_cmd(struct store *st, const char *what, const char *expect, int argc,
                           const char **argv, const size_t *len)
{
    struct setup_ctx *sc = malloc(sizeof *sc);
    if (!sc)
        return -1;
    *sc = (struct setup_ctx){ st, st->generation, what, expect };
    if (redisAsyncCommandArgv(st->ac, on_setup_reply, sc, argc, argv, len) != REDIS_OK) {
        free(sc);
        return -1;
    }
    st->pending_setup++;
    return 0;
}

static int store_queue_setup(struct store *st)
{
    const struct redis_addr *a = &st->cfg->redis;
    char db[8];
    if (a->password[0]) {
        const char *argv[] = { "AUTH", a->username[0] ? a->username : a->password, a->password };
        if (store_setup_cmd(st, "AUTH", NULL, a->username[0] ? 3 : 2, argv, NULL))
            return -1;
    }
    if (a->db) {
        snprintf(db, sizeof db, "%d", a->db);
        if (store_setup_cmd(st, "SELECT", NULL, 2, (const char *[]){ "SELECT", db }, NULL))
            return -1;
    }
    if (store_setup_cmd(st, "CLIENT SETNAME", NULL, 3,
                        (const char *[]){ "CLIENT", "SETNAME", "impactd" }, NULL))
        return -1;
    for (int i = 0; i < SCRIPT_COUNT_; i++) {
        const char *argv[] = { "SCRIPT", "LOAD", SCRIPT_SRC[i].body };
        if (store_setup_cmd(st, SCRIPT_SRC[i].name, SCRIPT_SRC[i].sha, 3, argv, NULL))
            return -1;
    }
    return 0;
}

static void store_connect(struct store *st)
{
    const struct redis_addr *a = &st->cfg->redis;
    redisAsyncContext *ac = a->is_unix ? redisAsyncConnectUnix(a->path)
                                       : redisAsyncConnect(a->host, a->port);
    if (!ac || ac->err) {
        log_warn("msg=\"redis connect failed\" error=\"%s\"", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        store_schedule_reconnect(st);
        return;
    }
    ac->data = st;
    st->ac = ac;
    st->generation++;
    st->pending_setup = 0;
    st->metrics->store_reconnects++;
    if (redisLibeventAttach(ac, st->base) != REDIS_OK ||
        redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK ||
        store_queue_setup(st) != 0) {
        store_drop(st, "cannot queue setup");
        return;
    }
    int64_t ms = st->cfg->redis_timeout_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(st->connect_timer, &tv);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    store_connect(arg);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *st = arg;
    if (!st->ready)
        store_drop(st, "connect or setup timed out");
}

int store_init(struct store *st, struct event_base *base, const struct config *cfg,
               struct metrics *metrics)
{
    memset(st, 0, sizeof *st);
    st->base = base;
    st->cfg = cfg;
    st->metrics = metrics;
    st->backoff_ms = BACKOFF_START_MS;
    st->reconnect_timer = evtimer_new(base, on_reconnect_timer, st);
    st->connect_timer = evtimer_new(base, on_connect_timeout, st);
    if (!st->reconnect_timer || !st->connect_timer)
        return -1;
    return 0;
}

void store_start(struct store *st) { store_connect(st); }

bool store_ready(const struct store *st) { return st->ready && st->ac; }

void store_close(struct store *st)
{
    st->closing = true;
    if (st->reconnect_timer)
        evtimer_del(st->reconnect_timer);
    redisAsyncContext *ac = st->ac;
    st->ac = NULL;
    st->ready = false;
    if (ac)
        redisAsyncFree(ac);
    if (st->reconnect_timer)
        event_free(st->reconnect_timer);
    if (st->connect_timer)
        event_free(st->connect_timer);
    st->reconnect_timer = st->connect_timer = NULL;
}

/* ---- calls ---- */

static void call_free(struct store_call *call)
{
    if (call->timer)
        event_free(call->timer);
    cmd_free(&call->cmd);
    free(call);
}

static void call_finish(struct store_call *call, enum store_status status, redisReply *reply)
{
    evtimer_del(call->timer);
    call->done = true;
    if (status != STORE_OK)
        call->st->metrics->store_errors[status]++;
    call->cb(call->arg, status, reply);
}

static int call_dispatch(struct store_call *call);

static void on_call_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct store_call *call = privdata;
    struct store *st = call->st;
    redisReply *r = reply;
    call->in_redis = false;
    if (r)
        st->last_reply_us = time_mono_us();
    if (call->done) {
        call_free(call);
        return;
    }
    if (!r) {
        call_finish(call, STORE_DOWN, NULL);
        call_free(call);
        return;
    }
    metrics_observe(&st->metrics->store_latency, (double)(time_mono_us() - call->sent_us) / 1e6);
    if (call->is_eval && !call->retried && reply_is_error(r, "NOSCRIPT")) {
        call->retried = true;
        log_info("msg=\"script missing in redis, sending it again\" script=%s",
                 SCRIPT_SRC[call->script].name);
        if (call_dispatch(call) == 0)
            return;
        call_finish(call, STORE_DOWN, NULL);
        call_free(call);
        return;
    }
    call_finish(call, STORE_OK, r);
    call_free(call);
}

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store_call *call = arg;
    struct store *st = call->st;
    if (!call->in_redis) {          /* never sent: report why, from the loop */
        call_finish(call, call->deferred, NULL);
        call_free(call);
        return;
    }
    call_finish(call, STORE_TIMEOUT, NULL);
    /* freed by on_call_reply. A Redis that has said nothing for a whole timeout is gone. */
    int64_t silent_ms = (time_mono_us() - st->last_reply_us) / 1000;
    if (st->ac && silent_ms >= st->cfg->redis_timeout_ms)
        store_drop(st, "no reply within the timeout");
}

/* Hands the call to hiredis: EVALSHA (or EVAL after NOSCRIPT), or the plain command. */
static int call_dispatch(struct store_call *call)
{
    struct store *st = call->st;
    if (!st->ac || !st->ready)
        return -1;
    int argc = call->cmd.argc;
    const char *argv[CMD_MAX_ARGS + 3];
    size_t len[CMD_MAX_ARGS + 3];
    int off = 0;
    char nkeys[16];
    if (call->is_eval) {
        snprintf(nkeys, sizeof nkeys, "%d", call->nkeys);
        const char *body = SCRIPT_SRC[call->script].body;
        argv[0] = call->retried ? "EVAL" : "EVALSHA";
        argv[1] = call->retried ? body : SCRIPT_SRC[call->script].sha;
        argv[2] = nkeys;
        for (int i = 0; i < 3; i++)
            len[i] = strlen(argv[i]);
        off = 3;
    }
    for (int i = 0; i < argc; i++) {
        argv[off + i] = call->cmd.argv[i];
        len[off + i] = call->cmd.len[i];
    }
    if (redisAsyncCommandArgv(st->ac, on_call_reply, call, off + argc, argv, len) != REDIS_OK)
        return -1;
    call->in_redis = true;
    call->sent_us = time_mono_us();
    return 0;
}

static void store_submit(struct store *st, struct store_call *call)
{
    struct timeval tv;
    if (st->closing) {          /* shutting down: no timer will ever fire again */
        call_finish(call, STORE_DOWN, NULL);
        call_free(call);
        return;
    }
    if (call->cmd.failed)
        log_error("msg=\"command not built (out of memory or too many arguments)\" argc=%d",
                  call->cmd.argc);
    if (call->cmd.failed || call_dispatch(call) != 0) {
        call->deferred = STORE_DOWN;
        tv = (struct timeval){ 0, 0 };
    } else {
        int64_t ms = st->cfg->redis_timeout_ms;
        tv = (struct timeval){ (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    }
    evtimer_add(call->timer, &tv);
}

static struct store_call *call_new(struct store *st, struct cmd *c, store_cb cb, void *arg)
{
    struct store_call *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->st = st;
    call->cb = cb;
    call->arg = arg;
    call->cmd = *c;         /* take ownership of the arguments */
    cmd_init(c);
    call->timer = evtimer_new(st->base, on_call_timer, call);
    if (!call->timer) {
        call_free(call);
        return NULL;
    }
    return call;
}

/* Out of memory before a call exists: report from the loop all the same. */
struct oom_ctx { store_cb cb; void *arg; };

static void on_oom(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct oom_ctx ctx = *(struct oom_ctx *)arg;
    free(arg);
    ctx.cb(ctx.arg, STORE_DOWN, NULL);
}

static void store_fail_oom(struct store *st, struct cmd *c, store_cb cb, void *arg)
{
    cmd_free(c);
    struct oom_ctx *ctx = malloc(sizeof *ctx);
    struct timeval zero = { 0, 0 };
    if (ctx) {
        *ctx = (struct oom_ctx){ cb, arg };
        if (event_base_once(st->base, -1, EV_TIMEOUT, on_oom, ctx, &zero) == 0)
            return;
        free(ctx);
    }
    log_error("msg=\"out of memory in store call; aborting\"");
    abort();    /* the caller's request could never be answered */
}

void store_send(struct store *st, struct cmd *c, store_cb cb, void *arg)
{
    struct store_call *call = call_new(st, c, cb, arg);
    if (!call) {
        store_fail_oom(st, c, cb, arg);
        return;
    }
    store_submit(st, call);
}

void store_eval(struct store *st, enum script_id script, int nkeys, struct cmd *c, store_cb cb,
                void *arg)
{
    struct store_call *call = call_new(st, c, cb, arg);
    if (!call) {
        store_fail_oom(st, c, cb, arg);
        return;
    }
    call->is_eval = true;
    call->script = script;
    call->nkeys = nkeys;
    store_submit(st, call);
}
