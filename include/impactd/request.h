/* request.h — one HTTP request, from evhttp's callback to its last store call.
 *
 * request.c owns the request's life (it is freed once answered and once no store call or
 * other hold refers to it), its accessors, and the one place an answer leaves for evhttp
 * (req_transmit), with its log line and metrics. Handlers answer through reply.h or
 * stream.h, and make their store calls through calls.h; the pipeline that routes,
 * authenticates and parses is http.c. */
#ifndef IMPACTD_REQUEST_H
#define IMPACTD_REQUEST_H

#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "ids.h"
#include "router.h"
#include "store.h"

struct server;
struct evhttp_request;
struct evbuffer;
struct req;

/* A handler's state kept across store calls (calls.h, req_state): declared once per kind of
 * state, so a request only ever holds the state its handler asked for. */
struct req_state_type {
    const char *name;
    size_t size;
    void (*clear)(void *state);     /* releases what the state owns (not the state); or NULL */
};

/* An answer about to be sent. A hook (Idempotency-Key) may take it over: it then sends it
 * later with req_transmit. */
struct req_answer {
    int status;
    const char *content_type;       /* NULL: none (204, 304) */
    const char *body;
    size_t len;
};
/* A POST's Idempotency-Key as a market function records it beside its change, in the
 * market's slot: the digest names the record (participant and key), the fingerprint is what
 * a repeat must match (method, path, body). Both "" when the request carries no key. */
struct req_idem {
    char digest[33];
    char fingerprint[65];
};

typedef bool (*req_answer_hook)(struct req *r, const struct req_answer *a);
typedef void (*req_closed_cb)(struct req *r);

struct req {
    struct server *srv;
    struct evhttp_request *ev;      /* NULL once the answer has gone */
    const struct route *route;      /* NULL when no route matched */
    struct route_match match;
    unsigned method;
    const char *path;               /* owned by evhttp's request */
    struct evkeyvalq query;         /* owned */
    json_t *body;                   /* owned; NULL when the route takes none or none was sent */
    const unsigned char *raw_body;  /* borrowed from evhttp's input buffer */
    size_t raw_body_len;
    struct principal who;
    char id[ID_MAX_LEN];
    int64_t start_us;
    int status;
    bool replied;                   /* the answer is decided (sent, or held by the hook) */
    bool outcome_unknown;           /* a store call failed in a way it may still have run */
    struct req_idem idem;           /* the Idempotency-Key as store calls carry it (idempotency.c) */
    bool sent;                      /* the answer went to evhttp */
    unsigned holds;                 /* store calls in flight and other holds */
    req_answer_hook hook;           /* set by idempotency.c; NULL otherwise */
    void *hook_state;               /* owned by the hook's module, freed by hook_free */
    void (*hook_free)(void *state);
    void *state;                    /* owned; see req_state */
    const struct req_state_type *state_type;
    bool streaming;                 /* stream.c: headers sent, chunks may follow */
    bool client_gone;
    req_closed_cb on_closed;
};

/* Life cycle (http.c and the modules that hold a request across an asynchronous step). */
struct req *req_new(struct server *srv, struct evhttp_request *ev);
void req_hold(struct req *r);
void req_release(struct req *r);        /* may free r */
/* Frees r if it has been answered and nothing holds it. */
void req_maybe_free(struct req *r);

/* Accessors. */
const char *req_param(const struct req *r, size_t i);      /* path capture i, "" if none */
const char *req_query(const struct req *r, const char *name);
const char *req_header(const struct req *r, const char *name);
void req_set_header(struct req *r, const char *name, const char *value);
size_t req_route_index(const struct req *r);               /* for metrics; nroutes: none */

/* Sends an answer now (the hook is not asked): log line, metrics, evhttp. */
void req_transmit(struct req *r, const struct req_answer *a);
/* The same with a body already in an evbuffer (its contents move to evhttp). */
void req_transmit_buffer(struct req *r, int status, const char *content_type,
                         struct evbuffer *body);
/* Decides the answer: the hook may take it; else req_transmit. */
void req_answer(struct req *r, const struct req_answer *a);
/* The request log line and metrics of a stream's start (stream.c). */
void req_account(struct req *r, int status);

#endif
