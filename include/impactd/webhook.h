/* webhook.h — delivering messages to participants' webhook URLs (Standard Webhooks).
 *
 * webhook.c claims due deliveries from the schedule in batches on 30 s leases, loads many
 * messages of one participant at a time, POSTs each over a keep-alive connection of its
 * endpoint's pool (httpc.h; OpenSSL for https, certificate and host name verified; at most
 * webhook_max_per_endpoint attempts at once per endpoint), and records the outcomes in
 * batches a couple of milliseconds later: 2xx ends a delivery; anything else is retried after
 * the next delay of the retry schedule (±10 % jitter) and dead-lettered after the last.
 * Redirects are never followed. */
#ifndef IMPACTD_WEBHOOK_H
#define IMPACTD_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dict.h"

struct server;
struct event;
struct evdns_base;
struct ssl_ctx_st;
struct endpoint;
struct outcomes;

struct webhook {
    struct event *timer;            /* claims, and closes idle connections, 5 times a second */
    struct event *kick;             /* one-shot: claim now (a kick must not delay the timer) */
    struct event *flush;            /* one-shot: write the outcomes gathered meanwhile */
    struct event *presign;          /* one-shot: sign a few waiting deliveries ahead */
    struct evdns_base *dns;         /* owned */
    struct ssl_ctx_st *ssl;         /* owned */
    struct dict endpoints;          /* "scheme://host:port" -> struct endpoint * (owned) */
    struct dict held;               /* "<prt>|<msg>" claimed and not yet settled (no value) */
    struct dict states;             /* participant -> struct outcomes * being built (owned) */
    struct outcomes *settle;        /* the schedule's outcomes being built (owned) */
    struct endpoint *stalled;       /* endpoints waiting for the process-wide cap (a list) */
    struct endpoint *signing;       /* endpoints with deliveries to sign ahead (a list) */
    unsigned attempts;              /* attempts under way in this process */
    unsigned inflight;              /* attempts under way, plus outcome batches not yet
                                     * written: what the drain at shutdown waits for */
    unsigned asked;                 /* how many the last claim asked for */
    bool claiming;                  /* a claim is out */
    bool more;                      /* the last claim was full: claim again when there is room */
};

int webhook_start(struct server *srv, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void webhook_stop(struct server *srv);
/* Claims now rather than at the next tick (deliveries were just scheduled). */
void webhook_kick(struct server *srv);

#endif
