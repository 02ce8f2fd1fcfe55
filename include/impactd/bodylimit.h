/* bodylimit.h — a request body over the limit is refused before any of it is read.
 *
 * libevent 2.1's evhttp reads a whole body before the server sees its request and offers no
 * per-request hook on the server side (evhttp_set_newreqcb is 2.2), and a filtering
 * bufferevent under evhttp loses answers (2.1 flushes a filter's output only when more is
 * written). So bodylimit.c makes each connection's socket bufferevent itself
 * (evhttp_set_bevcb) and watches its input buffer: an evbuffer callback runs on every read,
 * before evhttp parses what arrived, and follows each request's framing the way evhttp does.
 * When a header block declares a Content-Length over the limit, or a chunked body passes it,
 * the callback ends the request right there and marks it with this process's random mark:
 * Content-Length: 0 and a header BODYLIMIT_HEADER, or a last chunk that holds the mark
 * (evhttp 2.1 keeps no trailer headers). It drops whatever the client sends after. evhttp then hands the request over at once, and http.c
 * answers 413 and closes the connection. */
#ifndef IMPACTD_BODYLIMIT_H
#define IMPACTD_BODYLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;
struct evhttp_request;
struct bl_slot;
struct bl_linger;

#define BODYLIMIT_HEADER "Impactd-Body-Refused"
#define BODYLIMIT_TAIL 61       /* bytes of the mark that ends a cut chunked body */
#define BODYLIMIT_SLOTS 4096    /* connections followed at once (bodylimit.c) */

struct bodylimit {
    struct event_base *base;    /* borrowed */
    int64_t max_body;           /* bytes a body may have */
    size_t max_header;          /* bytes a request line and its headers may have */
    char mark[33];              /* random, per process: only bodylimit.c writes the header */
    struct bl_slot *slots;      /* owned; BODYLIMIT_SLOTS */
    uint64_t clock;             /* a use counter: the least recently used slot is reused */
    struct bl_linger *lingering;    /* owned: refused connections being drained */
    size_t nlingering;
};

int bodylimit_init(struct bodylimit *bl, struct event_base *base, int64_t max_body,
                   size_t max_header) __attribute__((warn_unused_result));
/* Closes the connections still being drained, and frees the table. */
void bodylimit_free(struct bodylimit *bl);

/* evhttp_set_bevcb's callback (arg: the struct bodylimit, which outlives every connection):
 * a socket bufferevent with the watch on its input, or NULL when out of memory (evhttp then
 * makes a plain one). */
struct bufferevent *bodylimit_bev_new(struct event_base *base, void *arg);

/* Whether bodylimit.c refused req's body; then *chunked and *bytes (the declared length, or
 * what the chunked body had reached). A client cannot forge that: it does not know the
 * mark. */
bool bodylimit_refused(const struct bodylimit *bl, struct evhttp_request *req, bool *chunked,
                       int64_t *bytes);
/* Call before answering a refused req (with Connection: close): once the answer is written,
 * the connection is half-closed and what the client still sends is read and dropped for a
 * while (at most BODYLIMIT_LINGER_MS, BODYLIMIT_LINGER_BYTES) before it is closed, so that
 * the client reads the answer instead of a reset. */
void bodylimit_linger(struct bodylimit *bl, struct evhttp_request *req);

#define BODYLIMIT_LINGER_MS 2000
#define BODYLIMIT_LINGER_BYTES (4 * 1024 * 1024)
#define BODYLIMIT_LINGER_MAX 256    /* connections drained at once; beyond, closed at once */

#endif
