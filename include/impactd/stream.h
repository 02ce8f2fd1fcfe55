/* stream.h — answers sent in pieces (Server-Sent Events): headers now, chunks later, an end.
 *
 * on_closed runs once if the client goes away first; the handler must then stop writing and
 * call stream_end. The request is freed after stream_end, once nothing else holds it. */
#ifndef IMPACTD_STREAM_H
#define IMPACTD_STREAM_H

#include <stddef.h>

#include "request.h"

/* Returns -1 (the request answered 500) when the stream cannot start. */
int stream_start(struct req *r, const char *content_type, req_closed_cb on_closed)
    __attribute__((warn_unused_result));
void stream_write(struct req *r, const char *data, size_t len);
void stream_end(struct req *r);

#endif
