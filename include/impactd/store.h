/* store.h — the only code that talks to Redis.
 *
 * One hiredis async context on the server's event base. It connects by TCP or unix socket,
 * selects the database, loads every embedded Lua script, and reconnects with backoff when
 * Redis goes away. Each call has its own timeout timer (hiredis 0.14 has none) and its
 * callback runs exactly once: with the reply, or with STORE_DOWN / STORE_TIMEOUT and a NULL
 * reply. The reply is owned by hiredis and valid only during the callback.
 * This module knows nothing of HTTP or of the domain. */
#ifndef IMPACTD_STORE_H
#define IMPACTD_STORE_H

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "scripts_gen.h"

struct event_base;
struct event;
struct metrics;

enum store_status {
    STORE_OK = 0,       /* a reply (possibly a Redis error reply: check reply->type) */
    STORE_DOWN,         /* not connected, or the connection dropped before the reply */
    STORE_TIMEOUT,      /* no reply within redis_timeout */
};

typedef void (*store_cb)(void *arg, enum store_status status, redisReply *reply);

#define CMD_MAX_ARGS 128

/* An argument vector under construction; every argument is an owned copy. */
struct cmd {
    int argc;
    char *argv[CMD_MAX_ARGS];
    size_t len[CMD_MAX_ARGS];
    bool failed;        /* out of memory or too many args: store_* then fail the call */
};

void cmd_init(struct cmd *c);
void cmd_add(struct cmd *c, const char *s);
void cmd_addn(struct cmd *c, const char *s, size_t n);
void cmd_addf(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmd_addll(struct cmd *c, long long v);
void cmd_free(struct cmd *c);

struct store {
    struct event_base *base;
    const struct config *cfg;
    struct metrics *metrics;
    redisAsyncContext *ac;          /* NULL while disconnected */
    bool ready;                     /* connected, database selected, scripts loaded */
    bool closing;
    int64_t backoff_ms;
    struct event *reconnect_timer;
    unsigned pending_setup;         /* setup replies still awaited */
    uint64_t generation;            /* bumped on each connect, to ignore stale setup replies */
    struct event *connect_timer;    /* gives up a connection attempt that hangs */
    int64_t last_reply_us;          /* when Redis last answered anything */
};

int store_init(struct store *st, struct event_base *base, const struct config *cfg,
               struct metrics *metrics) __attribute__((warn_unused_result));
void store_start(struct store *st);
/* Disconnects; pending calls get STORE_DOWN. */
void store_close(struct store *st);
bool store_ready(const struct store *st);

/* Sends the command in c (consumed: c is reset). cb runs exactly once, never before return. */
void store_send(struct store *st, struct cmd *c, store_cb cb, void *arg);
/* EVALSHA of an embedded script, EVAL on NOSCRIPT. c holds the keys then the arguments. */
void store_eval(struct store *st, enum script_id script, int nkeys, struct cmd *c, store_cb cb,
                void *arg);

/* Builds a key: prefix + formatted name, appended to c. */
void store_key(const struct store *st, struct cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Helpers to read replies. */
const char *reply_hash_get(const redisReply *r, const char *field); /* HGETALL-shaped reply */
bool reply_is_error(const redisReply *r, const char *prefix);
/* The value of `name` in a stream entry's field list [field, value, ...]; NULL if absent. */
const char *reply_entry_field(const redisReply *fields, const char *name);

#endif
