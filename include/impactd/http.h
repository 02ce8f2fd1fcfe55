/* http.h — the evhttp server, the request context and every way to answer.
 *
 * http.c owns the listening socket, evhttp's limits and timeouts, the request life cycle
 * (route match → authentication and roles → body checks → handler → exactly one reply), the
 * request log line, Idempotency-Key replay and graceful drain. Handlers own nothing of it:
 * they read the request through these accessors and answer with one http_reply_* call. */
#ifndef IMPACTD_HTTP_H
#define IMPACTD_HTTP_H

#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "ids.h"
#include "router.h"
#include "store.h"

struct server;
struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct evhttp_bound_socket;
struct event;

struct http {
    struct evhttp *evh;
    struct evconnlistener *listener;
    struct evhttp_bound_socket *bound;  /* owns listener once bound */
    struct event *accept_retry;     /* re-enables accept after EMFILE */
    unsigned inflight;              /* requests not yet answered and freed */
};

struct idem_state;
struct req;
typedef void (*http_stream_closed_cb)(struct req *r);

/* One request, from evhttp's callback to the last store callback. Freed by http.c once it
 * has been answered and no store call refers to it. */
struct req {
    struct server *srv;
    struct evhttp_request *ev;
    size_t route_index;             /* index in the route table, or nroutes when unmatched */
    const struct route *route;
    struct route_match match;
    unsigned method;
    const char *path;               /* owned by uri */
    struct evhttp_uri *uri;         /* owned */
    struct evkeyvalq query;         /* owned */
    json_t *body;                   /* owned; NULL when the route takes none */
    const unsigned char *raw_body;  /* borrowed from evhttp's input buffer */
    size_t raw_body_len;
    struct principal who;
    char id[ID_MAX_LEN];
    int64_t start_us;
    int status;
    bool answering;                 /* a reply has been started (maybe awaiting its record) */
    bool replied;                   /* the reply went to evhttp */
    unsigned pending;               /* store calls in flight for this request */
    struct idem_state *idem;        /* owned; NULL when no Idempotency-Key */
    auth_done_cb auth_done;         /* set while the token is being looked up */
    bool streaming;                 /* http_stream_start was called, http_stream_end not yet */
    bool client_gone;               /* the connection closed under a stream */
    http_stream_closed_cb on_closed;
    int64_t arg;                    /* a handler's number across store calls (a limit, ...) */
    void *ctx;                      /* a handler's state across store calls, owned */
    void (*ctx_free)(void *ctx);    /* frees ctx with the request (free() when NULL) */
};

int http_start(struct server *srv) __attribute__((warn_unused_result));
/* Stops accepting; requests in flight finish. */
void http_stop_accepting(struct server *srv);
void http_free(struct server *srv);

/* Request accessors. */
const char *http_param(const struct req *r, size_t i);     /* path capture i */
const char *http_query(const struct req *r, const char *name);
const char *http_header(const struct req *r, const char *name);
void http_set_header(struct req *r, const char *name, const char *value);

/* Answers. Each request gets exactly one. Bodies passed as json_t are stolen. */
void http_reply_json(struct req *r, int status, json_t *body);
void http_reply_empty(struct req *r, int status);
void http_reply_raw(struct req *r, int status, const char *content_type, const char *body,
                    size_t len);
void http_reply_problem(struct req *r, int status, const char *slug, const char *detail);
void http_reply_problemf(struct req *r, int status, const char *slug, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 422 (or `status`) with field errors; errors is stolen. */
void http_reply_invalid(struct req *r, json_t *errors);
/* The answer to a failed store call: 503 + Retry-After when Redis is down or slow, 500 on a
 * Redis error reply (logged). */
void http_reply_store_failure(struct req *r, enum store_status status, const redisReply *reply);

/* Streamed answers (Server-Sent Events): headers now, chunks later, then the end. on_closed
 * runs once if the client goes away first; the handler must then stop writing and call
 * http_stream_end. Returns -1 (request answered 500) when the stream cannot start. */
int http_stream_start(struct req *r, const char *content_type, http_stream_closed_cb on_closed);
void http_stream_write(struct req *r, const char *data, size_t len);
void http_stream_end(struct req *r);

/* Store calls on behalf of a request: cb runs only while the request is unanswered, and the
 * request stays allocated until every call has come back. */
typedef void (*req_store_cb)(struct req *r, enum store_status status, redisReply *reply);
void http_store_send(struct req *r, struct cmd *c, req_store_cb cb);
void http_store_eval(struct req *r, enum script_id script, int nkeys, struct cmd *c,
                     req_store_cb cb);

/* Pagination: parses ?limit= and ?cursor= (cursor = decimal offset for static lists). */
int http_page_params(struct req *r, int64_t *limit, int64_t *offset)
    __attribute__((warn_unused_result));

#endif
