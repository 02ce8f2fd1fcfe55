/* stream.c — streamed answers over evhttp's chunked replies (Server-Sent Events).
 *
 * Owns the connection's close callback while a stream is open, so a client that leaves is
 * noticed at once; what is streamed is the handler's (notifications_api.c). */
#include "impactd/stream.h"

#include <event2/buffer.h>
#include <event2/http.h>

#include "impactd/reply.h"

static void on_stream_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct req *r = arg;
    if (!r->streaming || r->client_gone)
        return;
    r->client_gone = true;
    if (r->on_closed)
        r->on_closed(r);
}

int stream_start(struct req *r, const char *content_type, req_closed_cb on_closed)
{
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    if (!evcon) {
        reply_problem(r, 500, NULL, "the connection is gone");
        return -1;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "X-Request-Id", r->id);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    r->streaming = true;
    r->replied = true;
    r->on_closed = on_closed;
    evhttp_connection_set_closecb(evcon, on_stream_conn_closed, r);
    req_account(r, 200);
    evhttp_send_reply_start(r->ev, 200, NULL);
    return 0;
}

void stream_write(struct req *r, const char *data, size_t len)
{
    if (!r->streaming || r->client_gone || !r->ev)
        return;
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        return;
    evbuffer_add(buf, data, len);
    evhttp_send_reply_chunk(r->ev, buf);
    evbuffer_free(buf);
}

void stream_end(struct req *r)
{
    if (!r->streaming)
        return;
    r->streaming = false;
    if (r->ev) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        if (evcon)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
        evhttp_send_reply_end(r->ev);     /* frees a request whose connection is gone */
        r->ev = NULL;
    }
    r->sent = true;
    req_maybe_free(r);
}
