/* store.c — the only code that talks to Redis.
 *
 * One hiredis async context, attached to the server's event base. Life cycle:
 *   store_connect → (AUTH, SELECT, CLIENT SETNAME, FUNCTION LIST queued at once; FUNCTION
 *   LOAD when the library is missing) → ready → ... → disconnect or hang → store_drop →
 *   backoff timer → store_connect.
 * Calls are RESP text built by the caller (struct cmd) and handed to hiredis as they are.
 * Sent calls sit in a FIFO: hiredis answers them in that order, so the oldest one still
 * waiting is the only deadline that matters, and one timer per connection times them all. A
 * call whose timeout fired stays in the FIFO until hiredis hands its reply (or NULL, when the
 * context is freed) back, so hiredis never touches freed memory. When calls time out and
 * Redis has said nothing for a whole timeout, the connection is presumed dead and dropped,
 * which fails every call still queued on it. Logs name where Redis is, never its password. */
#include "impactd/store.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/buf.h"
#include "impactd/log.h"
#include "impactd/metrics.h"
#include "impactd/timeutil.h"

#define BACKOFF_START_MS 50
#define CMD_FIRST_CAP 512
#define SPARE_MAX 1024

struct store_call {
    struct store *st;
    store_cb cb;
    void *arg;
    struct cmd cmd;                 /* kept until the reply: a call may be sent again */
    int fn;                         /* enum store_fn, or -1 for a plain command */
    int nkeys;
    bool resent;                    /* already sent again after a library reload */
    bool done;                      /* cb has run */
    enum store_status deferred;     /* why a call that could not be sent failed */
    int64_t deadline_us;
    int64_t sent_us;
    struct store_call *next;
};

/* ---- commands ---- */

void cmd_init(struct cmd *c) { memset(c, 0, sizeof *c); }

static bool cmd_reserve(struct cmd *c, size_t more)
{
    if (c->failed)
        return false;
    if (!c->buf) {
        size_t cap = CMD_FIRST_CAP;
        while (cap < CMD_HEAD_ROOM + more)
            cap *= 2;
        c->buf = malloc(cap);
        if (!c->buf) {
            c->failed = true;
            return false;
        }
        c->cap = cap;
        c->len = CMD_HEAD_ROOM;
    }
    if (c->len + more <= c->cap)
        return true;
    size_t cap = c->cap;
    while (cap < c->len + more)
        cap *= 2;
    char *grown = realloc(c->buf, cap);
    if (!grown) {
        c->failed = true;
        return false;
    }
    c->buf = grown;
    c->cap = cap;
    return true;
}

void cmd_addn(struct cmd *c, const char *s, size_t n)
{
    if (!cmd_reserve(c, n + 32))
        return;
    c->buf[c->len++] = '$';
    c->len += buf_format_int((long long)n, c->buf + c->len);
    c->buf[c->len++] = '\r';
    c->buf[c->len++] = '\n';
    if (n)
        memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len++] = '\r';
    c->buf[c->len++] = '\n';
    c->argc++;
}

void cmd_add(struct cmd *c, const char *s) { cmd_addn(c, s, strlen(s)); }

static void cmd_vaddf(struct cmd *c, const char *prefix, const char *fmt, va_list ap)
{
    char small[256];
    va_list again;
    va_copy(again, ap);
    size_t plen = prefix ? strlen(prefix) : 0;
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        c->failed = true;
    } else if (plen + (size_t)n < sizeof small) {
        if (plen) {
            memmove(small + plen, small, (size_t)n + 1);
            memcpy(small, prefix, plen);
        }
        cmd_addn(c, small, plen + (size_t)n);
    } else {
        char *big = malloc(plen + (size_t)n + 1);
        if (!big) {
            c->failed = true;
        } else {
            if (plen)
                memcpy(big, prefix, plen);
            vsnprintf(big + plen, (size_t)n + 1, fmt, again);
            cmd_addn(c, big, plen + (size_t)n);
            free(big);
        }
    }
    va_end(again);
}

void cmd_addf(struct cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_vaddf(c, NULL, fmt, ap);
    va_end(ap);
}

void cmd_addll(struct cmd *c, long long v)
{
    char n[24];
    cmd_addn(c, n, buf_format_int(v, n));
}

void cmd_key(struct cmd *c, const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_vaddf(c, prefix, fmt, ap);
    va_end(ap);
}

void cmd_append(struct cmd *c, const struct cmd *args)
{
    if (args->failed) {
        c->failed = true;
        return;
    }
    if (!args->buf)
        return;
    size_t n = args->len - CMD_HEAD_ROOM;
    if (!cmd_reserve(c, n))
        return;
    memcpy(c->buf + c->len, args->buf + CMD_HEAD_ROOM, n);
    c->len += n;
    c->argc += args->argc;
}

void cmd_free(struct cmd *c)
{
    free(c->buf);
    cmd_init(c);
}

void store_key(const struct store *st, struct cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_vaddf(c, st->cfg->key_prefix, fmt, ap);
    va_end(ap);
}

/* Writes the RESP header in front of the arguments; returns where the command starts. */
static const char *cmd_finish(struct cmd *c, const char *fn, int nkeys, size_t *len)
{
    char head[CMD_HEAD_ROOM], num[24];
    size_t n = 0, fl = fn ? strlen(fn) : 0;
    if (fl + 64 > sizeof head)
        return NULL;
    /* hiredis 0.14's __redisAsyncCommand reads the formatted command as a C string (to find
     * the command's name): a NUL after it keeps it within what was written */
    if (!cmd_reserve(c, 1))
        return NULL;
    c->buf[c->len] = '\0';
    head[n++] = '*';
    n += buf_format_int(c->argc + (fn ? 3 : 0), head + n);
    memcpy(head + n, "\r\n", 2);
    n += 2;
    if (fn) {
        memcpy(head + n, "$5\r\nFCALL\r\n$", 12);
        n += 12;
        n += buf_format_int((long long)fl, head + n);
        memcpy(head + n, "\r\n", 2);
        n += 2;
        memcpy(head + n, fn, fl);
        n += fl;
        size_t kl = buf_format_int(nkeys, num);
        head[n++] = '\r';
        head[n++] = '\n';
        head[n++] = '$';
        n += buf_format_int((long long)kl, head + n);
        memcpy(head + n, "\r\n", 2);
        n += 2;
        memcpy(head + n, num, kl);
        n += kl;
        memcpy(head + n, "\r\n", 2);
        n += 2;
    }
    memcpy(c->buf + CMD_HEAD_ROOM - n, head, n);
    *len = c->len - (CMD_HEAD_ROOM - n);
    return c->buf + CMD_HEAD_ROOM - n;
}

/* ---- replies ---- */

const char *store_reply_field(const redisReply *r, const char *field)
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

const char *store_entry_field(const redisReply *fields, const char *name, size_t *len)
{
    for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
         i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            if (v->type != REDIS_REPLY_STRING)
                return NULL;
            if (len)
                *len = v->len;
            return v->str;
        }
    }
    return NULL;
}

bool store_reply_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (!prefix || strncmp(r->str, prefix, strlen(prefix)) == 0);
}

/* A full Redis refuses every write (requests, sweeps, the notifier, webhook outcomes) until
 * an operator acts: one warning opens a burst (refusals less than FULL_QUIET_US apart) and,
 * while it lasts, one more a minute carries the count. The process is single-threaded and
 * Redis is one: plain statics. */
#define FULL_QUIET_US INT64_C(10000000)
#define FULL_REPEAT_US INT64_C(60000000)

bool store_reply_full(const redisReply *r)
{
    static int64_t last_refused_us, last_logged_us;
    static long long refused;
    if (!store_reply_error(r, "OOM "))
        return false;
    int64_t now = time_mono_us();
    bool opens = last_refused_us == 0 || now - last_refused_us > FULL_QUIET_US;
    last_refused_us = now;
    refused++;
    if (opens || now - last_logged_us >= FULL_REPEAT_US) {
        log_warn("msg=\"redis is full (maxmemory): writes refused until memory is freed or "
                 "maxmemory raised\" refused=%lld error=\"%.200s\"", refused, r->str);
        last_logged_us = now;
        refused = 0;
    }
    return true;
}

/* ---- calls: allocation and completion ---- */

static struct store_call *call_new(struct store *st)
{
    struct store_call *call = st->spare;
    if (call) {
        st->spare = call->next;
        st->nspare--;
    } else if (!(call = malloc(sizeof *call)))
        return NULL;
    memset(call, 0, sizeof *call);
    call->st = st;
    call->fn = -1;
    return call;
}

static void call_free(struct store_call *call)
{
    struct store *st = call->st;
    cmd_free(&call->cmd);
    if (st->nspare < SPARE_MAX && !st->closing) {
        call->next = st->spare;
        st->spare = call;
        st->nspare++;
    } else {
        free(call);
    }
}

static void call_finish(struct store_call *call, enum store_status status, redisReply *reply)
{
    call->done = true;
    if (status != STORE_OK)
        call->st->metrics->store_errors[status]++;
    call->cb(call->arg, status, reply);
}

/* ---- connection ---- */

static void store_connect(struct store *st);
static int call_dispatch(struct store_call *call);

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
        log_warn("msg=\"redis connection lost\" redis=%s", st->redis_where);
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
    log_warn("msg=\"dropping redis connection\" redis=%s reason=\"%s\"", st->redis_where, why);
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
    log_warn("msg=\"redis disconnected\" redis=%s error=\"%s\"", st->redis_where,
             status == REDIS_OK ? "none" : ac->errstr);
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
        log_warn("msg=\"redis connect failed\" redis=%s error=\"%s\"", st->redis_where,
                 ac->errstr);
        st->ac = NULL;  /* hiredis frees the context after this callback */
        store_set_down(st);
        store_schedule_reconnect(st);
        return;
    }
    log_debug("msg=\"redis socket connected\" redis=%s", st->redis_where);
}

/* ---- setup ---- */

enum setup_step { SETUP_PLAIN, SETUP_LIBRARY_LIST, SETUP_LIBRARY_LOAD, SETUP_RELOAD };

struct setup_ctx {
    struct store *st;
    uint64_t generation;
    const char *what;
    enum setup_step step;
};

static int store_setup_cmd(struct store *st, const char *what, enum setup_step step, int argc,
                           const char **argv, const size_t *len);

static void setup_done_one(struct store *st)
{
    if (--st->pending_setup)
        return;
    st->ready = true;
    st->backoff_ms = BACKOFF_START_MS;
    st->metrics->store_connected = 1;
    evtimer_del(st->connect_timer);
    log_info("msg=\"redis ready\" redis=%s library=%s", st->redis_where, st->lib->name);
}

static int queue_library_load(struct store *st, enum setup_step step)
{
    const char *argv[] = { "FUNCTION", "LOAD", "REPLACE", st->lib->code };
    const size_t len[] = { 8, 4, 7, st->lib->code_len };
    return store_setup_cmd(st, "FUNCTION LOAD", step, 4, argv, len);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct setup_ctx *sc = privdata;
    struct store *st = sc->st;
    redisReply *r = reply;
    bool current = sc->generation == st->generation && st->ac == ac;
    if (!current || !r) {
        free(sc);
        return;
    }
    st->last_reply_us = time_mono_us();
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (ok && (sc->step == SETUP_LIBRARY_LOAD || sc->step == SETUP_RELOAD))
        ok = r->type == REDIS_REPLY_STRING && strcmp(r->str, st->lib->name) == 0;
    if (!ok) {
        log_error("msg=\"redis setup failed\" redis=%s step=\"%s\" reply=\"%.300s\"",
                  st->redis_where, sc->what,
                  r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STRING ? r->str : "?");
        enum setup_step failed = sc->step;
        free(sc);
        if (failed != SETUP_RELOAD)
            store_drop(st, "setup failed");
        return;
    }
    enum setup_step step = sc->step;
    free(sc);
    if (step == SETUP_RELOAD)
        return;
    if (step == SETUP_LIBRARY_LIST && r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        log_info("msg=\"loading the function library\" library=%s bytes=%zu", st->lib->name,
                 st->lib->code_len);
        if (queue_library_load(st, SETUP_LIBRARY_LOAD) != 0) {
            store_drop(st, "cannot queue FUNCTION LOAD");
            return;
        }
    }
    setup_done_one(st);
}

static int store_setup_cmd(struct store *st, const char *what, enum setup_step step, int argc,
                           const char **argv, const size_t *len)
{
    struct setup_ctx *sc = malloc(sizeof *sc);
    if (!sc)
        return -1;
    *sc = (struct setup_ctx){ st, st->generation, what, step };
    if (redisAsyncCommandArgv(st->ac, on_setup_reply, sc, argc, argv, len) != REDIS_OK) {
        free(sc);
        return -1;
    }
    if (step != SETUP_RELOAD)
        st->pending_setup++;
    return 0;
}

static int store_queue_setup(struct store *st)
{
    const struct redis_addr *a = &st->cfg->redis;
    char db[8];
    if (a->password[0]) {
        const char *argv[] = { "AUTH", a->username[0] ? a->username : a->password, a->password };
        if (store_setup_cmd(st, "AUTH", SETUP_PLAIN, a->username[0] ? 3 : 2, argv, NULL))
            return -1;
    }
    if (a->db) {
        snprintf(db, sizeof db, "%d", a->db);
        if (store_setup_cmd(st, "SELECT", SETUP_PLAIN, 2, (const char *[]){ "SELECT", db }, NULL))
            return -1;
    }
    if (store_setup_cmd(st, "CLIENT SETNAME", SETUP_PLAIN, 3,
                        (const char *[]){ "CLIENT", "SETNAME", "impactd" }, NULL))
        return -1;
    return store_setup_cmd(st, "FUNCTION LIST", SETUP_LIBRARY_LIST, 4,
                           (const char *[]){ "FUNCTION", "LIST", "LIBRARYNAME", st->lib->name },
                           NULL);
}

static void store_connect(struct store *st)
{
    const struct redis_addr *a = &st->cfg->redis;
    redisAsyncContext *ac = a->is_unix ? redisAsyncConnectUnix(a->path)
                                       : redisAsyncConnect(a->host, a->port);
    if (!ac || ac->err) {
        log_warn("msg=\"redis connect failed\" redis=%s error=\"%s\"", st->redis_where,
                 ac ? ac->errstr : "out of memory");
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

/* ---- timeouts ---- */

static void arm_timeout(struct store *st)
{
    if (!st->waiting || evtimer_pending(st->timeout_timer, NULL))
        return;
    int64_t us = st->waiting->deadline_us - time_mono_us();
    if (us < 0)
        us = 0;
    struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
    evtimer_add(st->timeout_timer, &tv);
}

static void on_timeout_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *st = arg;
    int64_t now = time_mono_us();
    bool fired = false;
    while (st->waiting && st->waiting->deadline_us <= now) {
        struct store_call *call = st->waiting;
        st->waiting = call->next;
        if (!call->done) {
            call_finish(call, STORE_TIMEOUT, NULL);
            fired = true;
        }
    }
    /* a Redis that has said nothing for a whole timeout is gone */
    int64_t silent_ms = (now - st->last_reply_us) / 1000;
    if (fired && st->ac && silent_ms >= st->cfg->redis_timeout_ms)
        store_drop(st, "no reply within the timeout");
    arm_timeout(st);
}

/* ---- sending ---- */

static void fifo_push(struct store *st, struct store_call *call)
{
    call->next = NULL;
    if (st->tail)
        st->tail->next = call;
    else
        st->head = call;
    st->tail = call;
    if (!st->waiting)
        st->waiting = call;
}

/* Takes call off the FIFO: hiredis answers in order, so it is the head. */
static void fifo_pop(struct store *st, struct store_call *call)
{
    struct store_call **p = &st->head, *prev = NULL;
    while (*p && *p != call) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p) {
        log_error("msg=\"store call not in flight\"");
        return;
    }
    if (*p != st->head)
        log_error("msg=\"redis answered out of order\"");
    *p = call->next;
    if (st->tail == call)
        st->tail = prev;
    if (st->waiting == call)
        st->waiting = call->next;
    call->next = NULL;
}

static void on_call_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct store_call *call = privdata;
    struct store *st = call->st;
    redisReply *r = reply;
    fifo_pop(st, call);
    if (r)
        st->last_reply_us = time_mono_us();
    if (call->done) {
        call_free(call);
        return;
    }
    if (!r) {
        call_finish(call, STORE_LOST, NULL);
        call_free(call);
        return;
    }
    metrics_observe(&st->metrics->store_latency, (double)(time_mono_us() - call->sent_us) / 1e6);
    if (call->fn >= 0 && !call->resent && store_reply_error(r, "ERR Function not found")) {
        call->resent = true;
        log_warn("msg=\"function library missing in redis; loading it again\" library=%s",
                 st->lib->name);
        if (queue_library_load(st, SETUP_RELOAD) == 0 && call_dispatch(call) == 0)
            return;
        call_finish(call, STORE_DOWN, NULL);
        call_free(call);
        return;
    }
    call_finish(call, STORE_OK, r);
    call_free(call);
}

static int call_dispatch(struct store_call *call)
{
    struct store *st = call->st;
    if (!st->ac || !st->ready || call->cmd.failed || !call->cmd.buf)
        return -1;
    size_t len;
    const char *text = cmd_finish(&call->cmd, call->fn >= 0 ? st->lib->fn[call->fn] : NULL,
                                  call->nkeys, &len);
    if (!text || redisAsyncFormattedCommand(st->ac, on_call_reply, call, text, len) != REDIS_OK)
        return -1;
    call->sent_us = time_mono_us();
    call->deadline_us = call->sent_us + st->cfg->redis_timeout_ms * 1000;
    fifo_push(st, call);
    arm_timeout(st);
    return 0;
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct store *st = arg;
    struct store_call *list = st->deferred;
    st->deferred = NULL;
    while (list) {
        struct store_call *call = list;
        list = call->next;
        call_finish(call, call->deferred, NULL);
        call_free(call);
    }
}

static void defer_failure(struct store *st, struct store_call *call, enum store_status status)
{
    call->deferred = status;
    call->next = st->deferred;
    st->deferred = call;
    struct timeval zero = { 0, 0 };
    if (!evtimer_pending(st->deferred_timer, NULL))
        evtimer_add(st->deferred_timer, &zero);
}

static void store_submit(struct store *st, struct cmd *c, int fn, int nkeys, store_cb cb,
                         void *arg)
{
    struct store_call *call = call_new(st);
    if (!call) {
        cmd_free(c);
        log_error("msg=\"out of memory in a store call; aborting\"");
        abort();    /* the caller's request could never be answered */
    }
    call->cb = cb;
    call->arg = arg;
    call->cmd = *c;         /* take ownership of the arguments */
    cmd_init(c);
    call->fn = fn;
    call->nkeys = nkeys;
    if (st->closing) {
        call_finish(call, STORE_DOWN, NULL);
        call_free(call);
        return;
    }
    if (call->cmd.failed)
        log_error("msg=\"command not built (out of memory)\" argc=%d", call->cmd.argc);
    if (call_dispatch(call) != 0)
        defer_failure(st, call, STORE_DOWN);
}

void store_send(struct store *st, struct cmd *c, store_cb cb, void *arg)
{
    store_submit(st, c, -1, 0, cb, arg);
}

void store_fcall(struct store *st, enum store_fn fn, int nkeys, struct cmd *c, store_cb cb,
                 void *arg)
{
    store_submit(st, c, (int)fn, nkeys, cb, arg);
}

/* ---- life cycle ---- */

int store_init(struct store *st, struct event_base *base, const struct config *cfg,
               struct metrics *metrics, const struct store_library *lib)
{
    memset(st, 0, sizeof *st);
    st->base = base;
    st->cfg = cfg;
    st->metrics = metrics;
    st->lib = lib;
    st->backoff_ms = BACKOFF_START_MS;
    const struct redis_addr *a = &cfg->redis;
    if (a->is_unix)
        snprintf(st->redis_where, sizeof st->redis_where, "unix:%s/%d", a->path, a->db);
    else
        snprintf(st->redis_where, sizeof st->redis_where, "%s:%d/%d", a->host, a->port, a->db);
    st->reconnect_timer = evtimer_new(base, on_reconnect_timer, st);
    st->connect_timer = evtimer_new(base, on_connect_timeout, st);
    st->timeout_timer = evtimer_new(base, on_timeout_timer, st);
    st->deferred_timer = evtimer_new(base, on_deferred, st);
    if (!st->reconnect_timer || !st->connect_timer || !st->timeout_timer || !st->deferred_timer)
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
        redisAsyncFree(ac);         /* every call in flight comes back with NULL now */
    if (st->deferred_timer)
        on_deferred(-1, 0, st);
    struct event **timers[] = { &st->reconnect_timer, &st->connect_timer, &st->timeout_timer,
                                &st->deferred_timer };
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        if (*timers[i])
            event_free(*timers[i]);
        *timers[i] = NULL;
    }
    while (st->spare) {
        struct store_call *call = st->spare;
        st->spare = call->next;
        free(call);
    }
    st->nspare = 0;
}
