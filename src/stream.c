/* stream.c — streamed answers over evhttp's chunked replies (Server-Sent Events), and the
 * registry of open streams (stream.h): one per owner, at most a configured number in all.
 *
 * Owns the connection's close callback while a stream is open, so a client that leaves is
 * noticed at once, and the slots' links; what is streamed is the handler's
 * (notifications_api.c). The registry is a list: it is walked only when a stream opens. */
#include "impactd/stream.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "impactd/reply.h"
#include "impactd/server.h"

#define STREAM_FULL_RETRY_AFTER "5"

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

static void slot_link(struct streams *all, struct stream_slot *s)
{
    s->prev = NULL;
    s->next = all->head;
    if (all->head)
        all->head->prev = s;
    all->head = s;
    s->linked = true;
    all->count++;
}

static void slot_unlink(struct streams *all, struct stream_slot *s)
{
    if (!s->linked)
        return;
    if (s->prev)
        s->prev->next = s->next;
    else
        all->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->linked = false;
    all->count--;
}

static struct stream_slot *slot_of(const struct streams *all, const char *owner)
{
    for (struct stream_slot *s = all->head; s; s = s->next)
        if (!strcmp(s->owner, owner))
            return s;
    return NULL;
}

int stream_start(struct req *r, struct stream_slot *s, const char *owner, size_t max,
                 const char *content_type, req_closed_cb on_closed)
{
    struct streams *all = &r->srv->streams;
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    if (!evcon) {
        reply_problem(r, 500, NULL, "the connection is gone");
        return -1;
    }
    struct stream_slot *old = slot_of(all, owner);
    if (!old && all->count >= max) {
        req_set_header(r, "Retry-After", STREAM_FULL_RETRY_AFTER);
        reply_problemf(r, 503, NULL, "this server has %zu streams open, the most it serves "
                       "(sse_max_streams); try again later or read GET /v1/notifications",
                       all->count);
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
    s->r = r;
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    if (old) {
        /* the old one may end (and be freed) in its callback: nothing touches it after */
        slot_unlink(all, old);
        old->replaced = true;
        if (old->r->on_closed)
            old->r->on_closed(old->r);
    }
    slot_link(all, s);
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

void stream_end(struct stream_slot *s)
{
    struct req *r = s->r;
    if (!r || !r->streaming)
        return;
    slot_unlink(&r->srv->streams, s);
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
