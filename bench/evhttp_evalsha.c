/* evhttp_evalsha.c — reference (b) of the benchmarks (bench/run): evhttp, a JSON parse and
 * one EVALSHA per request — "one request, one Lua round trip".
 *
 *   evhttp_evalsha PORT REDIS_PORT SCRIPT_FILE KEY
 *
 * For each POST (any path) it parses the body with jansson (duplicate keys rejected, as
 * impactd does; not a JSON object: 400), re-encodes it compactly, and runs ONE
 * `EVALSHA <SCRIPT_FILE's sha> 1 KEY <field> <that JSON>` on the Redis at
 * 127.0.0.1:REDIS_PORT over one hiredis async connection on the libevent adapter; from the
 * reply it builds a small JSON answer with jansson,
 *     {"id": "ref_<n>", "product": <the body's>, "quantity": <the body's>, "stored": <reply>}
 * and answers 201. bench/run gives it bench/evalsha_ref.lua (one HSET and a return) and a
 * key of its own; the field is the request's number modulo FIELDS, so the hash stays small
 * however long the run. The script is loaded once at start-up (SCRIPT LOAD on a blocking
 * connection). Set up as src/http.c sets up evhttp (bench_http.c). What impactd adds to
 * this is its routing, authentication, validation, its script's own work and its notifier.
 *
 * A reply that never comes (Redis gone) answers 503: hiredis calls every pending callback
 * with NULL when the connection drops, and the server then stops (a reference without its
 * Redis measures nothing). A client that left before its answer is still answered once:
 * libevent 2.1 detached the request and frees it then. Owns its process, the connection and
 * one `struct call` per request in flight (freed in its reply callback, which always runs).
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_http.h"

#define FIELDS 4096
#define SCRIPT_MAX (64 * 1024)

struct ref {
    struct event_base *base;
    redisAsyncContext *ac;      /* NULL once disconnected */
    char sha[48];
    const char *key;
    unsigned long long n;       /* requests taken */
};

/* One request waiting for its EVALSHA. */
struct call {
    struct ref *ref;
    struct evhttp_request *req;
    json_t *body;               /* owned */
    unsigned long long n;
};

static void reply_json(struct evhttp_request *req, int status, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    struct evbuffer *buf = text ? evbuffer_new() : NULL;
    if (!buf || evbuffer_add(buf, text, strlen(text)) != 0) {
        evhttp_send_error(req, 500, NULL);
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json; charset=utf-8");
        evhttp_send_reply(req, status, status == 201 ? "Created" : "OK", buf);
    }
    if (buf)
        evbuffer_free(buf);
    free(text);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct call *c = privdata;
    redisReply *reply = r;
    if (!reply) {
        evhttp_send_error(c->req, 503, NULL);
    } else if (reply->type != REDIS_REPLY_INTEGER) {
        if (reply->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "evhttp_evalsha: %s\n", reply->str);
        evhttp_send_error(c->req, 500, NULL);
    } else {
        char id[32];
        snprintf(id, sizeof id, "ref_%llu", c->n);
        json_t *a = json_pack("{s:s, s:O?, s:O?, s:I}", "id", id, "product",
                              json_object_get(c->body, "product"), "quantity",
                              json_object_get(c->body, "quantity"), "stored",
                              (json_int_t)reply->integer);
        reply_json(c->req, 201, a);
        json_decref(a);
    }
    json_decref(c->body);
    free(c);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct ref *ref = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, NULL);
        return;
    }
    if (!ref->ac) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *text = (const char *)evbuffer_pullup(in, -1);
    json_error_t err;
    json_t *body = text ? json_loadb(text, len, JSON_REJECT_DUPLICATES, &err) : NULL;
    char *value = json_is_object(body) ? json_dumps(body, JSON_COMPACT) : NULL;
    struct call *c = value ? calloc(1, sizeof *c) : NULL;
    if (!c) {
        evhttp_send_error(req, value ? 500 : 400, NULL);
        json_decref(body);
        free(value);
        return;
    }
    *c = (struct call){ ref, req, body, ref->n++ };
    char field[24];
    snprintf(field, sizeof field, "%llu", c->n % FIELDS);
    const char *argv[] = { "EVALSHA", ref->sha, "1", ref->key, field, value };
    size_t lens[] = { 7, strlen(ref->sha), 1, strlen(ref->key), strlen(field), strlen(value) };
    if (redisAsyncCommandArgv(ref->ac, on_reply, c, 6, argv, lens) != REDIS_OK) {
        evhttp_send_error(req, 503, NULL);
        json_decref(body);
        free(c);
    }
    free(value);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        fprintf(stderr, "evhttp_evalsha: cannot connect to Redis: %s\n", ac->errstr);
        event_base_loopexit(((struct ref *)ac->data)->base, NULL);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct ref *ref = ac->data;
    (void)status;
    ref->ac = NULL;     /* hiredis frees the context after this callback */
    fprintf(stderr, "evhttp_evalsha: Redis connection lost\n");
    event_base_loopexit(ref->base, NULL);
}

/* SCRIPT LOAD of the file's text on a blocking connection; sets ref->sha. */
static int load_script(struct ref *ref, int redis_port, const char *path)
{
    static char text[SCRIPT_MAX];
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t len = fread(text, 1, sizeof text, f);
    bool bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "evhttp_evalsha: %s: unreadable or over %d bytes\n", path, SCRIPT_MAX);
        return -1;
    }
    struct timeval tv = { 5, 0 };
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    redisReply *reply = rc && !rc->err ? redisCommand(rc, "SCRIPT LOAD %b", text, len) : NULL;
    int status = -1;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len < (int)sizeof ref->sha) {
        memcpy(ref->sha, reply->str, (size_t)reply->len + 1);
        status = 0;
    } else {
        fprintf(stderr, "evhttp_evalsha: SCRIPT LOAD failed: %s\n",
                rc && rc->err ? rc->errstr : reply && reply->str ? reply->str : "?");
    }
    if (reply)
        freeReplyObject(reply);
    if (rc)
        redisFree(rc);
    return status;
}

int main(int argc, char **argv)
{
    static struct ref ref;
    if (argc != 5) {
        fprintf(stderr, "usage: evhttp_evalsha PORT REDIS_PORT SCRIPT_FILE KEY\n");
        return 2;
    }
    int port = bench_http_port(argv[1]), redis_port = bench_http_port(argv[2]);
    ref.key = argv[4];
    if (port < 0 || redis_port < 0 || load_script(&ref, redis_port, argv[3]) != 0)
        return 2;

    int status = 1;
    struct evhttp *evh = NULL;
    ref.base = event_base_new();
    if (!ref.base)
        goto fail;
    ref.ac = redisAsyncConnect("127.0.0.1", redis_port);
    if (!ref.ac || ref.ac->err) {
        fprintf(stderr, "evhttp_evalsha: cannot connect to Redis: %s\n",
                ref.ac ? ref.ac->errstr : "out of memory");
        if (ref.ac)
            redisAsyncFree(ref.ac);
        ref.ac = NULL;
        goto fail;
    }
    ref.ac->data = &ref;
    if (redisLibeventAttach(ref.ac, ref.base) != REDIS_OK ||
        redisAsyncSetConnectCallback(ref.ac, on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ref.ac, on_disconnect) != REDIS_OK)
        goto fail;
    evh = bench_http_listen(ref.base, port, on_request, &ref);
    if (evh)
        status = bench_http_run(ref.base);
fail:
    if (ref.ac)
        redisAsyncFree(ref.ac);     /* pending callbacks run with NULL: each answers 503 */
    if (evh)
        evhttp_free(evh);
    if (ref.base)
        event_base_free(ref.base);
    return status;
}
