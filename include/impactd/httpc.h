/* httpc.h — a small HTTP/1.1 client connection: one request at a time, kept alive.
 *
 * Owns one connection, over plain TCP or OpenSSL (a bufferevent, TCP_NODELAY), to an address
 * the caller has resolved and checked. The caller formats each request; httpc writes it at
 * once when the socket takes it (plain TCP: no wait for the next loop turn), reads the answer
 * — status line, headers, then a body delimited by Content-Length, chunked, or the close,
 * discarded and at most HTTPC_MAX_BODY bytes — and reports its status, or why there is none,
 * through the connection's callback, also when the request's deadline passes. Whether the
 * connection can carry another request follows HTTP/1.1 (Connection: close, HTTP/1.0, a body
 * ended by the close, the peer closing an idle connection): httpc_reusable says. A redirect
 * is an answer like any other, never followed. It knows nothing of webhooks. */
#ifndef IMPACTD_HTTPC_H
#define IMPACTD_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct event_base;
struct evbuffer;
struct ssl_st;
struct httpc;

#define HTTPC_MAX_LINE 8192         /* one line of an answer's head */
#define HTTPC_MAX_HEAD 65536        /* an answer's status line and headers together */
#define HTTPC_MAX_BODY 65536

enum httpc_error {
    HTTPC_OK = 0,
    HTTPC_CONNECT,      /* no connection (refused, unreachable, reset while connecting) */
    HTTPC_TLS,          /* the TLS handshake failed (certificate, host name, protocol) */
    HTTPC_CLOSED,       /* the connection closed or failed before the whole answer */
    HTTPC_TIMEOUT,      /* no whole answer by the request's deadline */
    HTTPC_INVALID,      /* not an HTTP/1.x answer */
    HTTPC_TOO_LARGE,    /* a head or body over the limits */
};

/* Called once per request, never from within httpc_send: `status` is the answer's (error
 * HTTPC_OK), or 0 with the error. It may send the next request, or free the connection. */
typedef void (*httpc_cb)(void *arg, int status, enum httpc_error error);

/* Starts connecting to sa. ssl (NULL: plain TCP), set up by the caller (verification, SNI),
 * belongs to the connection from now on, also when this fails. NULL when out of memory or
 * the socket cannot be made; a connection that fails later reports it to the request. */
struct httpc *httpc_new(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                        struct ssl_st *ssl, httpc_cb cb, void *arg);

/* Sends one request, the bytes of iov (copied where the socket does not take them at once);
 * its answer or error comes to the callback within timeout_ms. Returns -1, and there will be
 * no callback, when the connection is not reusable (see below) or memory runs out. */
int httpc_send(struct httpc *c, const struct iovec *iov, int iovcnt, int64_t timeout_ms)
    __attribute__((warn_unused_result));

/* True when no request is out and another may be sent (it may still be connecting). */
bool httpc_reusable(const struct httpc *c);
/* How many answers the connection has carried. */
unsigned httpc_answers(const struct httpc *c);

/* Closes and frees; a request still out gets no callback. May be called from the callback. */
void httpc_free(struct httpc *c);

/* The answer parser on its own (httpc.c feeds it; tests drive it directly). */
struct httpc_answer {
    int state;
    int status;             /* of the final answer (1xx ones are skipped) */
    int minor;              /* HTTP/1.<minor> */
    bool close;             /* the connection ends with this answer */
    bool chunked;
    bool has_length;
    int64_t length;         /* Content-Length */
    int64_t left;           /* bytes of the body, or of the chunk, still to come */
    size_t head;            /* bytes of head lines so far */
    size_t body;            /* bytes of body so far */
};

void httpc_answer_init(struct httpc_answer *a);
/* Parses what `in` holds and consumes it, up to the end of the answer. at_eof: the peer has
 * closed (nothing more will come). Returns 1 when the answer is whole (status and close are
 * set; bytes after it stay in `in`), 0 when more is needed, -1 (and *error) when it cannot be
 * one. */
int httpc_answer_feed(struct httpc_answer *a, struct evbuffer *in, bool at_eof,
                      enum httpc_error *error) __attribute__((warn_unused_result));

#endif
