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
#include "http.h"
#include "metrics.h"
#include "notify.h"
#include "signing.h"
#include "store.h"
#include "webhook.h"

struct event_base;
struct event;

struct server {
    struct event_base *base;
    struct config cfg;
    struct catalog catalog;
    struct store store;
    struct metrics metrics;
    struct auth auth;
    struct http http;
    struct signing signing;         /* the platform's Ed25519 keys; keys[0] signs */
    struct notify notify;
    struct webhook webhook;
    struct event *sig_hup;          /* reloads the signing keys */
    const struct route *routes;     /* the route table (routes.c) */
    size_t nroutes;
    struct event *sig_term;
    struct event *sig_int;
    struct event *drain_timer;
    struct event *sweep_timer;      /* sweeper.c: lapse and expiry, every second */
    unsigned sweeps_in_flight;
    bool stopping;
    int64_t stop_deadline_us;
};

/* Builds everything from srv->cfg (already loaded). Errors are written to err. */
int server_init(struct server *srv, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Runs the loop until a signal has drained the server. Returns the exit status. */
int server_run(struct server *srv);
void server_free(struct server *srv);
/* sweeper.c: starts the periodic lapse/expiry sweep of every market. */
int sweeper_start(struct server *srv) __attribute__((warn_unused_result));
void sweeper_stop(struct server *srv);

/* Called by http.c when a request is freed, so a drain can finish. */
void server_request_done(struct server *srv);

#endif
