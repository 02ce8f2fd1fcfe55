/* webhook.h — delivering messages to participants' webhook URLs (Standard Webhooks).
 *
 * webhook.c claims due deliveries from the schedule on 30 s leases (delivery_claim.lua),
 * loads each message and its participant's URL and secret, POSTs it with libevent's HTTP
 * client (OpenSSL for https, certificate and host name verified), and records the outcome:
 * 2xx ends it; anything else is retried after the next delay of the retry schedule (±10 %
 * jitter) and dead-lettered after the last. Redirects are never followed. */
#ifndef IMPACTD_WEBHOOK_H
#define IMPACTD_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "dict.h"

struct server;
struct event;
struct evdns_base;
struct ssl_ctx_st;
struct attempt;
struct evhttp_connection;

struct webhook {
    struct event *timer;            /* claims due deliveries, 5 times a second */
    struct event *kick;             /* one-shot: claim now (a kick must not delay the timer) */
    struct evdns_base *dns;         /* owned */
    struct ssl_ctx_st *ssl;         /* owned */
    struct dict endpoints;          /* "scheme://host:port" -> in-flight count (intptr_t) */
    unsigned inflight;              /* attempts under way in this process */
    struct attempt *active;         /* attempts with an HTTP request out (a list) */
    struct evhttp_connection **spent;   /* finished connections, freed at the next tick */
    size_t nspent, capspent;
    bool claiming;
};

int webhook_start(struct server *srv, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void webhook_stop(struct server *srv);
void webhook_kick(struct server *srv);

#endif
