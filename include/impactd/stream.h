/* stream.h — answers sent in pieces (Server-Sent Events): headers now, chunks later, an end;
 * and the registry of the streams open in this process, which caps them.
 *
 * A stream has an owner (a participant): one stream per owner, so a new stream of the same
 * owner replaces the old one (a client that reconnects must not be locked out by its own dead
 * connection), and at most `max` streams in all, beyond which stream_start answers 503.
 *
 * on_closed runs once if the client goes away first, or when a newer stream of the same
 * owner replaced this one (slot.replaced); the handler must then stop writing and call
 * stream_end. The request is freed after stream_end, once nothing else holds it. */
#ifndef IMPACTD_STREAM_H
#define IMPACTD_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "ids.h"
#include "request.h"

/* One open stream as the registry knows it; lives in the handler's state. */
struct stream_slot {
    struct stream_slot *prev, *next;
    struct req *r;
    char owner[ID_MAX_LEN];
    bool linked;                    /* counted in the registry */
    bool replaced;                  /* a newer stream of the same owner took its place */
};

/* The streams open in this process (one in struct server; all zero is empty). */
struct streams {
    struct stream_slot *head;
    size_t count;
};

/* Starts r's stream in slot s (zeroed, owned by the caller until stream_end), replacing the
 * owner's open stream if any. Returns -1 when the stream cannot start: the request was
 * answered (503 + Retry-After when `max` streams are open, 500 when the connection is gone). */
int stream_start(struct req *r, struct stream_slot *s, const char *owner, size_t max,
                 const char *content_type, req_closed_cb on_closed)
    __attribute__((warn_unused_result));
void stream_write(struct req *r, const char *data, size_t len);
/* Ends the stream and frees its place in the registry. */
void stream_end(struct stream_slot *s);

#endif
