/* store.h — the only code that talks to Redis.
 *
 * One hiredis async context on the server's event base. It connects by TCP or unix socket,
 * authenticates, selects the database, makes sure impactd's function library (library.h) is
 * loaded, and reconnects with backoff when Redis goes away. Every call's callback runs exactly
 * once, never before the call returns: with the reply, or with STORE_DOWN / STORE_TIMEOUT and
 * a NULL reply. The reply is owned by hiredis and valid only during the callback.
 *
 * Commands are built as RESP text in one growing buffer (struct cmd): no allocation per
 * argument, nothing for hiredis to format. Timeouts: replies come back in the order calls were
 * sent, so one timer per connection, armed for the oldest call still waiting, times them all.
 * This module knows nothing of HTTP or of the domain. */
#ifndef IMPACTD_STORE_H
#define IMPACTD_STORE_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "functions_gen.h"

struct event_base;
struct event;
struct metrics;
struct store_call;

enum store_status {
    STORE_OK = 0,       /* a reply (possibly a Redis error reply: check reply->type) */
    STORE_DOWN,         /* not sent: not connected, or refused before it ran */
    STORE_TIMEOUT,      /* no reply within redis_timeout: it may still run, or have run */
    STORE_LOST,         /* sent, then the connection dropped before the reply: it may have run */
};

typedef void (*store_cb)(void *arg, enum store_status status, redisReply *reply);

#define CMD_HEAD_ROOM 160   /* bytes kept in front of the arguments for the RESP header */

/* A command under construction: its arguments as RESP bulk strings, back to back, after
 * CMD_HEAD_ROOM bytes where the store writes the header ("*<argc>", and for FCALL the
 * function name and key count) when it is sent. Owned by its builder until store_* takes it. */
struct cmd {
    char *buf;
    size_t len;         /* bytes used, head room included */
    size_t cap;
    int argc;
    bool failed;        /* out of memory: store_* then fails the call with STORE_DOWN */
};

void cmd_init(struct cmd *c);
void cmd_addn(struct cmd *c, const char *s, size_t n);
void cmd_add(struct cmd *c, const char *s);
void cmd_addf(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmd_addll(struct cmd *c, long long v);
/* Appends the key prefix + the formatted name as one argument. */
void cmd_key(struct cmd *c, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends the arguments of `args` (built once, kept: a key block reused by many calls). */
void cmd_append(struct cmd *c, const struct cmd *args);
void cmd_free(struct cmd *c);

/* The function library every impactd of one build and catalogue shares (library.c). */
struct store_library {
    char *name;                         /* "impactd_<hash>", owned */
    char *code;                         /* the whole library, "#!lua name=..." first, owned */
    size_t code_len;
    char fn[FN_COUNT_][96];             /* "<name>_<function>" */
};

struct store {
    struct event_base *base;
    const struct config *cfg;
    struct metrics *metrics;
    const struct store_library *lib;
    redisAsyncContext *ac;          /* NULL while disconnected */
    bool ready;                     /* connected, set up, library loaded */
    bool closing;
    int64_t backoff_ms;
    struct event *reconnect_timer;
    struct event *connect_timer;    /* gives up a connection attempt that hangs */
    struct event *timeout_timer;    /* armed for the oldest call still waiting */
    struct event *deferred_timer;   /* reports calls that could not be sent, from the loop */
    unsigned pending_setup;         /* setup replies still awaited */
    uint64_t generation;            /* bumped on each connect, to ignore stale setup replies */
    int64_t last_reply_us;          /* when Redis last answered anything */
    struct store_call *head, *tail; /* calls sent, in order (hiredis answers in this order) */
    struct store_call *waiting;     /* the oldest of them whose timeout has not fired */
    struct store_call *deferred;    /* calls never sent, to fail from the loop */
    struct store_call *spare;       /* freed calls, kept for reuse */
    unsigned nspare;
    char redis_where[300];          /* host:port/db or the socket path: never credentials */
};

int store_init(struct store *st, struct event_base *base, const struct config *cfg,
               struct metrics *metrics, const struct store_library *lib)
    __attribute__((warn_unused_result));
void store_start(struct store *st);
/* Disconnects; pending calls get STORE_DOWN. Frees everything store_init made. */
void store_close(struct store *st);
bool store_ready(const struct store *st);

/* Sends the command in c (consumed: c is reset). */
void store_send(struct store *st, struct cmd *c, store_cb cb, void *arg);
/* FCALL of one of the library's functions: c holds its nkeys keys, then its arguments.
 * A library Redis lost (FUNCTION FLUSH) is loaded again and the call resent once. */
void store_fcall(struct store *st, enum store_fn fn, int nkeys, struct cmd *c, store_cb cb,
                 void *arg);

/* Builds a key: the configured prefix + formatted name, appended to c. */
void store_key(const struct store *st, struct cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Helpers to read replies. */
const char *store_reply_field(const redisReply *r, const char *field); /* HGETALL-shaped reply */
bool store_reply_error(const redisReply *r, const char *prefix);
/* True when Redis refused the call because it is at its maxmemory ("-OOM ...", noeviction):
 * the call did not run. Logs once per burst of refusals (store.c), so callers log nothing. */
bool store_reply_full(const redisReply *r);
/* The value of `name` in a stream entry's field list [field, value, ...]; NULL if absent.
 * *len, when given, receives its length (values may hold NUL bytes). */
const char *store_entry_field(const redisReply *fields, const char *name, size_t *len);

#endif
