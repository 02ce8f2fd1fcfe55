/* server.h — the one server struct: everything the process holds, owned in one place.
 *
 * server.c builds it from a loaded config (catalogue, store, auth, metrics, HTTP, signals)
 * and tears it down in reverse order. Nothing else in impactd is global and mutable. */
#ifndef IMPACTD_SERVER_H
#define IMPACTD_SERVER_H

#include <stdbool.h>

#include "auth.h"
#include "catalog.h"
#include "config.h"
#include "feeds.h"
#include "parties.h"
#include "http.h"
#include "metrics.h"
#include "notify.h"
#include "router.h"
#include "signing.h"
#include "store.h"
#include "stream.h"
#include "sweeper.h"
#include "webhook.h"

struct event_base;
struct event;
struct market_keys;

struct server {
    struct event_base *base;
    struct config cfg;
    struct catalog catalog;
    struct store_library library;   /* the Redis function library (library.c) */
    struct store store;
    struct metrics metrics;
    struct auth auth;
    struct http http;
    struct signing signing;         /* the platform's Ed25519 keys; keys[0] signs */
    struct notify notify;
    struct webhook webhook;
    struct sweeper sweeper;
    struct feeds feeds;
    struct parties parties;         /* posters as their counterparts see them (parties.c) */
    struct streams streams;         /* the Server-Sent Events streams open (stream.c) */
    struct market_keys *market_keys;    /* per market (market.c), owned */
    char *openapi;                  /* the OpenAPI document served (schema.c), owned */
    size_t openapi_len;
    struct event *sig_hup;          /* reloads the signing keys */
    const struct route *routes;     /* the route table (routes.c) */
    size_t nroutes;
    struct event *sig_term;
    struct event *sig_int;
    struct event *drain_timer;
    bool stopping;
    int64_t stop_deadline_us;
};

/* Builds everything from srv->cfg (already loaded). Errors are written to err. */
int server_init(struct server *srv, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Runs the loop until a signal has drained the server. Returns the exit status. */
int server_run(struct server *srv);
void server_free(struct server *srv);
#endif
