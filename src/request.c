/* request.c — the life of one request, its state, and the calls made on its behalf.
 *
 * Owns: allocating and freeing a struct req (freed once its answer went to evhttp and no
 * store call or other hold refers to it), the accessors handlers read, and the one place
 * where an answer leaves for evhttp: req_transmit, with the request's log line and its
 * metrics. It does not decide what to answer (reply.c, stream.c), make store calls (calls.c)
 * nor route (http.c). A client that leaves early does not free the request under us: libevent 2.1
 * detaches an unanswered request from its dead connection and frees it when we answer. */
#include "impactd/request.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/log.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

/* ---- life cycle ---- */

struct req *req_new(struct server *srv, struct evhttp_request *ev)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = srv;
    r->ev = ev;
    r->start_us = time_mono_us();
    r->query.tqh_first = NULL;     /* TAILQ_INIT, without sys/queue.h */
    r->query.tqh_last = &r->query.tqh_first;
    srv->http.inflight++;
    srv->metrics.inflight++;
    return r;
}

void req_maybe_free(struct req *r)
{
    if (!r->sent || r->holds)
        return;
    struct server *srv = r->srv;
    evhttp_clear_headers(&r->query);
    json_decref(r->body);
    principal_clear(&r->who);
    if (r->hook_state && r->hook_free)
        r->hook_free(r->hook_state);
    if (r->state) {
        if (r->state_type->clear)
            r->state_type->clear(r->state);
        free(r->state);
    }
    free(r);
    srv->http.inflight--;
    srv->metrics.inflight--;
}

void req_hold(struct req *r) { r->holds++; }

void req_release(struct req *r)
{
    r->holds--;
    req_maybe_free(r);
}

/* ---- accessors ---- */

const char *req_param(const struct req *r, size_t i)
{
    return i < r->match.nparams ? r->match.params[i] : "";
}

const char *req_query(const struct req *r, const char *name)
{
    return evhttp_find_header(&r->query, name);
}

const char *req_header(const struct req *r, const char *name)
{
    return r->ev ? evhttp_find_header(evhttp_request_get_input_headers(r->ev), name) : NULL;
}

void req_set_header(struct req *r, const char *name, const char *value)
{
    if (!r->ev)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_remove_header(h, name);
    evhttp_add_header(h, name, value);
}

size_t req_route_index(const struct req *r)
{
    return r->route ? (size_t)(r->route - r->srv->routes) : r->srv->nroutes;
}

/* ---- the answer ---- */

static void log_path(const char *path, char *out, size_t outlen)
{
    size_t k = 0;
    for (const char *p = path; *p && k + 5 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", c);
        else
            out[k++] = (char)c;
    }
    out[k] = '\0';
}

void req_account(struct req *r, int status)
{
    r->status = status;
    double secs = (double)(time_mono_us() - r->start_us) / 1e6;
    metrics_request(&r->srv->metrics, req_route_index(r), status, secs);
    enum log_level level = status >= 500 ? LOG_WARN : LOG_INFO;
    if (!log_enabled(level))
        return;
    char path[256];
    log_path(r->path ? r->path : "?", path, sizeof path);
    const char *peer = "?";
    ev_uint16_t port = 0;
    char *peer_host = NULL;
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    if (evcon) {
        evhttp_connection_get_peer(evcon, &peer_host, &port);
        if (peer_host)
            peer = peer_host;
    }
    log_msg(level, "req=%s method=%s path=\"%s\" route=\"%s\" status=%d dur_ms=%.3f prt=%s "
            "peer=%s", r->id, router_method_name(r->method), path,
            r->route ? r->route->pattern : "-", status, secs * 1000.0,
            r->who.participant_id[0] ? r->who.participant_id : "-", peer);
}

static void add_common_headers(struct req *r, int status, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (!evhttp_find_header(h, "Cache-Control"))
        evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (content_type && status != 204 && status != 304)
        evhttp_add_header(h, "Content-Type", content_type);
}

void req_transmit_buffer(struct req *r, int status, const char *content_type,
                         struct evbuffer *body)
{
    if (r->sent || !r->ev) {
        log_error("msg=\"second answer ignored\" req=%s status=%d", r->id, status);
        return;
    }
    r->replied = true;
    struct evhttp_request *ev = r->ev;
    add_common_headers(r, status, content_type);
    bool bodyless = status == 204 || status == 304;
    if (r->method == M_HEAD && !bodyless) {
        char cl[24];
        snprintf(cl, sizeof cl, "%zu", body ? evbuffer_get_length(body) : 0);
        evhttp_add_header(evhttp_request_get_output_headers(ev), "Content-Length", cl);
        if (body)
            evbuffer_drain(body, evbuffer_get_length(body));
    } else if (bodyless && body) {
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    req_account(r, status);
    evhttp_send_reply(ev, status, NULL, body);   /* NULL: libevent's standard phrase */
    r->ev = NULL;
    r->sent = true;
    req_maybe_free(r);
}

void req_transmit(struct req *r, const struct req_answer *a)
{
    struct evbuffer *buf = evbuffer_new();
    if (buf && a->len && a->body)
        evbuffer_add(buf, a->body, a->len);
    req_transmit_buffer(r, a->status, a->content_type, buf);
    if (buf)
        evbuffer_free(buf);
}

void req_answer(struct req *r, const struct req_answer *a)
{
    if (r->replied) {
        log_error("msg=\"second answer ignored\" req=%s status=%d", r->id, a->status);
        return;
    }
    r->replied = true;
    if (r->hook && r->hook(r, a))
        return;     /* the hook sends it later */
    req_transmit(r, a);
}
