/* ops.c — the operator endpoints: liveness, readiness, metrics and the OpenAPI document. */
#include <event2/buffer.h>
#include <stdlib.h>

#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/log.h"
#include "impactd/server.h"
#include "openapi_gen.h"

void ops_healthz(struct req *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void on_ping(struct req *r, enum store_status st, redisReply *reply)
{
    if (st != STORE_OK || reply_is_error(reply, NULL)) {
        http_reply_store_failure(r, st == STORE_OK ? STORE_DOWN : st, reply);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

/* Ready when Redis answers a PING now, not merely when we believe we are connected. */
void ops_readyz(struct req *r)
{
    if (r->srv->stopping) {
        http_set_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, NULL, "shutting down");
        return;
    }
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "PING");
    http_store_send(r, &c, on_ping);
}

void ops_metrics(struct req *r)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf || metrics_render(&r->srv->metrics, buf) != 0) {
        if (buf)
            evbuffer_free(buf);
        http_reply_problem(r, 500, NULL, "cannot render metrics");
        return;
    }
    size_t len = evbuffer_get_length(buf);
    const char *text = (const char *)evbuffer_pullup(buf, -1);
    http_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text ? text : "", len);
    evbuffer_free(buf);
}

void ops_openapi(struct req *r)
{
    http_set_header(r, "Cache-Control", "public, max-age=300");
    http_reply_raw(r, 200, "application/json; charset=utf-8", openapi_json, openapi_json_len);
}
