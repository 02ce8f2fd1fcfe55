/* idempotency.c — Idempotency-Key claims, records and replays (idempotency.h).
 *
 * Owns the record under the key: JSON {s: status, t: content type, h: body hash, b: body,
 * l: Location}, or {p: 1, h} while the first request runs. It hooks the request's answer
 * (request.h) to store it before it is sent. */
#include "impactd/calls.h"
#include "impactd/idempotency.h"

#include <event2/http.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/json_util.h"
#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/reply.h"
#include "impactd/server.h"

#define IDEM_PENDING_TTL_S 60
#define IDEM_TTL_S 86400

struct idem {
    char key[300];              /* the Redis key */
    char body_hash[65];
    struct req_answer answer;   /* the answer waiting for its record to be stored */
    char *content_type;
    char *body;
};

static void idem_free(void *v)
{
    struct idem *is = v;
    free(is->content_type);
    free(is->body);
    free(is);
}

static void on_released(struct req *r, enum store_status st, redisReply *reply)
{
    (void)r;
    (void)st;
    (void)reply;    /* a key we could not release expires within IDEM_PENDING_TTL_S */
}

static void on_stored(void *arg, enum store_status st, redisReply *reply)
{
    struct req *r = arg;
    if (st != STORE_OK || store_reply_error(reply, NULL))
        log_warn("msg=\"idempotency record not stored; a retry will run again\" req=%s", r->id);
    struct idem *is = r->hook_state;
    req_transmit(r, &is->answer);
    req_release(r);
}

/* The hook: stores the answer under the key before it is sent. */
static bool idem_record(struct req *r, const struct req_answer *a)
{
    struct idem *is = r->hook_state;
    struct server *srv = r->srv;
    r->hook = NULL;
    struct cmd c;
    cmd_init(&c);
    if (a->status >= 500 || a->status == 429) {
        cmd_add(&c, "DEL");
        cmd_add(&c, is->key);
        req_send(r, &c, on_released);
        return false;
    }
    const char *loc = evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Location");
    json_t *rec = json_pack("{s:i, s:s, s:s, s:s%, s:s}", "s", a->status, "t",
                            a->content_type ? a->content_type : "", "h", is->body_hash, "b",
                            a->body ? a->body : "", a->len, "l", loc ? loc : "");
    char *text = rec ? json_dump_compact(rec) : NULL;
    json_decref(rec);
    is->content_type = a->content_type ? strdup(a->content_type) : NULL;
    is->body = malloc(a->len + 1);
    if (!text || (a->content_type && !is->content_type) || !is->body) {
        free(text);
        return false;   /* answer now, unrecorded: a retry runs the request again */
    }
    if (a->len)
        memcpy(is->body, a->body, a->len);
    is->answer = (struct req_answer){ a->status, is->content_type, is->body, a->len };
    cmd_add(&c, "SET");
    cmd_add(&c, is->key);
    cmd_add(&c, text);
    cmd_add(&c, "XX");
    cmd_add(&c, "EX");
    cmd_addll(&c, IDEM_TTL_S);
    free(text);
    req_hold(r);    /* released in on_stored, after the answer is sent */
    store_send(&srv->store, &c, on_stored, r);
    return true;
}

struct idem_claim {
    struct req *r;
    void (*go)(struct req *r);
};

static void on_claim(void *arg, enum store_status st, redisReply *reply)
{
    struct idem_claim *cl = arg;
    struct req *r = cl->r;
    void (*go)(struct req *r) = cl->go;
    free(cl);
    struct idem *is = r->hook_state;
    if (reply_store_failed(r, st, reply))
        goto out;
    if (reply->type == REDIS_REPLY_NIL) {   /* ours: run the request */
        r->hook = idem_record;
        go(r);
        goto out;
    }
    json_t *rec = reply->type == REDIS_REPLY_STRING ? json_loadb(reply->str, reply->len, 0, NULL)
                                                     : NULL;
    const char *hash = json_string_value(json_object_get(rec, "h"));
    if (!rec || !hash) {
        reply_problem(r, 500, NULL, "unreadable idempotency record");
    } else if (strcmp(hash, is->body_hash) != 0) {
        reply_problem(r, 422, "idempotency-key-reuse",
                      "this Idempotency-Key was already used with a different request body");
    } else if (json_object_get(rec, "p")) {
        req_set_header(r, "Retry-After", "1");
        reply_problem(r, 409, "conflict",
                      "a request with this Idempotency-Key is still being processed");
    } else {
        const char *loc = json_string_value(json_object_get(rec, "l"));
        if (loc && *loc)
            req_set_header(r, "Location", loc);
        req_set_header(r, "Idempotent-Replayed", "true");
        json_t *b = json_object_get(rec, "b");
        const char *ctype = json_string_value(json_object_get(rec, "t"));
        struct req_answer a = { (int)json_integer_value(json_object_get(rec, "s")),
                                ctype && *ctype ? ctype : NULL, json_string_value(b),
                                json_string_length(b) };
        r->replied = true;
        req_transmit(r, &a);
    }
    json_decref(rec);
out:
    req_release(r);
}

void idem_begin(struct req *r, void (*go)(struct req *r))
{
    const char *key = req_header(r, "Idempotency-Key");
    if (!key || r->method != M_POST) {
        go(r);
        return;
    }
    size_t klen = strlen(key);
    bool ok = klen >= 1 && klen <= 255;
    for (const char *p = key; ok && *p; p++)
        ok = *p >= 0x21 && *p <= 0x7e;
    if (!ok) {
        reply_problem(r, 400, "bad-request", "Idempotency-Key must be 1-255 visible ASCII characters");
        return;
    }
    struct idem *is = calloc(1, sizeof *is);
    struct idem_claim *cl = malloc(sizeof *cl);
    if (!is || !cl) {
        free(is);
        free(cl);
        reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    r->hook_state = is;
    r->hook_free = idem_free;
    unsigned char d[16];
    char dhex[33];
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof d);
    crypto_generichash_update(&gs, (const unsigned char *)r->path, strlen(r->path) + 1);
    crypto_generichash_update(&gs, (const unsigned char *)key, klen);
    crypto_generichash_final(&gs, d, sizeof d);
    sodium_bin2hex(dhex, sizeof dhex, d, sizeof d);
    unsigned char bh[32];
    crypto_generichash(bh, sizeof bh, r->raw_body, r->raw_body_len, NULL, 0);
    sodium_bin2hex(is->body_hash, sizeof is->body_hash, bh, sizeof bh);
    char name[200];
    snprintf(name, sizeof name, KEY_IDEMPOTENCY, r->who.participant_id, dhex);
    snprintf(is->key, sizeof is->key, "%s%s", r->srv->cfg.key_prefix, name);

    struct cmd c;
    cmd_init(&c);
    char pending[100];
    snprintf(pending, sizeof pending, "{\"p\":1,\"h\":\"%s\"}", is->body_hash);
    cmd_add(&c, "SET");
    cmd_add(&c, is->key);
    cmd_add(&c, pending);
    cmd_add(&c, "NX");
    cmd_add(&c, "GET");
    cmd_add(&c, "EX");
    cmd_addll(&c, IDEM_PENDING_TTL_S);
    *cl = (struct idem_claim){ r, go };
    req_hold(r);
    store_send(&r->srv->store, &c, on_claim, cl);
}
