/* ops.c — the operator endpoints: liveness, readiness, metrics and the OpenAPI document
 * (written at start-up from src/openapi.json and the descriptors: schema.c). */
#include <event2/buffer.h>
#include <stdlib.h>

#include "impactd/calls.h"
#include "impactd/handlers.h"
#include "impactd/log.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/server.h"

void ops_healthz(struct req *r)
{
    reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void on_ping(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || store_reply_error(reply, NULL)) {
        reply_store_failure(r, st == STORE_OK ? STORE_DOWN : st, reply);
        return;
    }
    reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

/* Ready when Redis answers a PING now, not merely when we believe we are connected. */
void ops_readyz(struct req *r)
{
    if (r->srv->stopping) {
        req_set_header(r, "Retry-After", "1");
        reply_problem(r, 503, NULL, "shutting down");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "PING");
    req_send(r, &c, on_ping);
}

void ops_metrics(struct req *r)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf || metrics_render(&r->srv->metrics, buf) != 0) {
        if (buf)
            evbuffer_free(buf);
        reply_problem(r, 500, NULL, "cannot render metrics");
        return;
    }
    size_t len = evbuffer_get_length(buf);
    const char *text = (const char *)evbuffer_pullup(buf, -1);
    reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    evbuffer_free(buf);
}

void ops_openapi(struct req *r)
{
    req_set_header(r, "Cache-Control", "public, max-age=300");
    reply_raw(r, 200, "application/json; charset=utf-8", r->srv->openapi, r->srv->openapi_len);
}
