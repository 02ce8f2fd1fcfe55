/* http.h — the evhttp server: the listening socket and the request pipeline.
 *
 * http.c owns the listener, evhttp's limits and timeouts, and the pipeline every request
 * follows: route match (404/405/OPTIONS) → query parse → authentication and the route's
 * roles (401/403/429/503) → body checks (413/415/400/422) → Idempotency-Key → handler.
 * What a request is and how it is answered: request.h, reply.h, stream.h. */
#ifndef IMPACTD_HTTP_H
#define IMPACTD_HTTP_H

#include <stdbool.h>

#include "bodylimit.h"

struct server;
struct evhttp;
struct evconnlistener;
struct evhttp_bound_socket;
struct event;

struct http {
    struct evhttp *evh;
    struct evconnlistener *listener;
    struct evhttp_bound_socket *bound;  /* owns listener once bound */
    struct event *accept_retry;     /* re-enables accept after EMFILE */
    unsigned inflight;              /* requests allocated and not yet freed (request.c) */
    struct bodylimit bodylimit;     /* what every connection's filter refuses (bodylimit.c) */
};

int http_start(struct server *srv) __attribute__((warn_unused_result));
/* Stops accepting; requests in flight finish. */
void http_stop_accepting(struct server *srv);
void http_free(struct server *srv);

#endif
