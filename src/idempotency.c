/* idempotency.c — Idempotency-Key claims, records and replays (idempotency.h).
 *
 * Owns the record under idem:{participant}:<digest of the key>: JSON
 *   {"p": 1, "h": fingerprint}            while the first request runs (pending_ttl_ms);
 *   {"p": 1, "h": fingerprint, "u": 1}    when its outcome is unknown (a store call timed out
 *                                         or its connection was lost after it was sent);
 *   {"s": status, "t": content type, "h": fingerprint, "l": Location,
 *    "k": kid, "n": nonce, "b": sealed body} once answered (24 h).
 * The fingerprint is BLAKE2b-256 of the method, path and body: the same key with another
 * request is a reuse (422). The stored body is sealed (crypto_secretbox) under a key derived
 * from the platform key `k` and the participant and Idempotency-Key, so neither Redis nor an
 * operator who reads it learns the tokens and secrets a POST /v1/participants answered:
 * only a client presenting the key can have it replayed.
 *
 * Market changes (routes flagged ROUTE_IDEM_ATOMIC) also record their outcome under the same
 * digest in the market's own slot, in the same function call as the change (market.lua): a
 * repeat after an unknown outcome runs again and gets the first outcome from there. Other
 * POSTs whose outcome is unknown keep the claim for 24 h: a repeat is refused (409) rather
 * than risk doing it twice. */
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
#include "impactd/signing.h"

#define IDEM_TTL_S 86400
#define SEAL_CONTEXT "impactd idempotency record v1"

struct idem {
    char key[300];              /* the Redis key */
    unsigned char seal_msg[512]; /* participant, NUL, Idempotency-Key: what the seal binds */
    size_t seal_len;
    struct req_answer answer;   /* the answer waiting for its record to be stored */
    char *content_type;
    char *body;
};

static void idem_free(void *v)
{
    struct idem *is = v;
    free(is->content_type);
    free(is->body);
    sodium_memzero(is->seal_msg, sizeof is->seal_msg);
    free(is);
}

/* ---- sealing the stored body ---- */

/* Seals body under the current platform key; a JSON object {k, n, b} (b64), or NULL. */
static json_t *seal(const struct idem *is, const struct signing *sg, const char *body,
                    size_t len)
{
    if (sg->nkeys == 0)
        return NULL;
    unsigned char key[crypto_secretbox_KEYBYTES], nonce[crypto_secretbox_NONCEBYTES];
    signing_derive(&sg->keys[0], SEAL_CONTEXT, is->seal_msg, is->seal_len, key);
    randombytes_buf(nonce, sizeof nonce);
    size_t clen = len + crypto_secretbox_MACBYTES;
    unsigned char *c = malloc(clen);
    size_t b64len = sodium_base64_encoded_len(clen, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64len);
    char n64[sodium_base64_ENCODED_LEN(crypto_secretbox_NONCEBYTES,
                                       sodium_base64_VARIANT_ORIGINAL)];
    json_t *out = NULL;
    if (c && b64 && crypto_secretbox_easy(c, (const unsigned char *)body, len, nonce, key) == 0) {
        sodium_bin2base64(b64, b64len, c, clen, sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2base64(n64, sizeof n64, nonce, sizeof nonce, sodium_base64_VARIANT_ORIGINAL);
        out = json_pack("{s:s, s:s, s:s}", "k", sg->keys[0].kid, "n", n64, "b", b64);
    }
    sodium_memzero(key, sizeof key);
    free(c);
    free(b64);
    return out;
}

/* Opens the body of a stored record into *body (malloc'd, NUL-terminated); -1 when it
 * cannot be (its key is gone, or the record was not sealed for this key). */
static int unseal(const struct idem *is, const struct signing *sg, const json_t *rec,
                  char **body, size_t *len)
{
    const char *kid = json_string_value(json_object_get(rec, "k"));
    const char *n64 = json_string_value(json_object_get(rec, "n"));
    const char *b64 = json_string_value(json_object_get(rec, "b"));
    const struct signing_key *k = kid ? signing_find(sg, kid) : NULL;
    if (!k || !n64 || !b64)
        return -1;
    unsigned char nonce[crypto_secretbox_NONCEBYTES];
    size_t nlen = 0, b64len = strlen(b64), clen = 0;
    unsigned char *c = malloc(b64len + 1);
    if (!c || sodium_base642bin(nonce, sizeof nonce, n64, strlen(n64), NULL, &nlen, NULL,
                                sodium_base64_VARIANT_ORIGINAL) != 0 ||
        nlen != sizeof nonce ||
        sodium_base642bin(c, b64len + 1, b64, b64len, NULL, &clen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        clen < crypto_secretbox_MACBYTES) {
        free(c);
        return -1;
    }
    unsigned char key[crypto_secretbox_KEYBYTES];
    signing_derive(k, SEAL_CONTEXT, is->seal_msg, is->seal_len, key);
    *len = clen - crypto_secretbox_MACBYTES;
    *body = malloc(*len + 1);
    int rc = *body && crypto_secretbox_open_easy((unsigned char *)*body, c, clen, nonce,
                                                 key) == 0 ? 0 : -1;
    sodium_memzero(key, sizeof key);
    free(c);
    if (rc != 0) {
        free(*body);
        *body = NULL;
        return -1;
    }
    (*body)[*len] = '\0';
    return 0;
}

/* ---- the first request's answer ---- */

static void on_released(struct req *r, enum store_status st, redisReply *reply)
{
    (void)r;
    (void)st;
    (void)reply;    /* a key we could not release expires within pending_ttl_ms */
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

/* A failed first request: the key is released for a retry, or, when the failure leaves its
 * outcome unknown, kept as such (idem_begin decides what a repeat then does). */
static void release_claim(struct req *r, struct idem *is)
{
    struct cmd c;
    cmd_init(&c);
    if (!r->outcome_unknown) {
        cmd_add(&c, "DEL");
        cmd_add(&c, is->key);
    } else {
        char unknown[120];
        snprintf(unknown, sizeof unknown, "{\"p\":1,\"u\":1,\"h\":\"%s\"}", r->idem.fingerprint);
        cmd_add(&c, "SET");
        cmd_add(&c, is->key);
        cmd_add(&c, unknown);
        cmd_add(&c, "XX");
        cmd_add(&c, "EX");
        cmd_addll(&c, IDEM_TTL_S);
    }
    req_send(r, &c, on_released);
}

/* The hook: stores the answer under the key before it is sent. */
static bool idem_record(struct req *r, const struct req_answer *a)
{
    struct idem *is = r->hook_state;
    struct server *srv = r->srv;
    r->hook = NULL;
    if (a->status >= 500 || a->status == 429) {
        release_claim(r, is);
        return false;
    }
    const char *loc = evhttp_find_header(evhttp_request_get_output_headers(r->ev), "Location");
    json_t *rec = seal(is, &srv->signing, a->body ? a->body : "", a->len);
    if (rec && json_object_update_missing_new(rec, json_pack("{s:i, s:s, s:s, s:s}", "s",
                                                             a->status, "t",
                                                             a->content_type ? a->content_type
                                                                             : "",
                                                             "h", r->idem.fingerprint, "l",
                                                             loc ? loc : "")) != 0) {
        json_decref(rec);
        rec = NULL;
    }
    char *text = rec ? json_dump_compact(rec) : NULL;
    json_decref(rec);
    is->content_type = a->content_type ? strdup(a->content_type) : NULL;
    is->body = malloc(a->len + 1);
    if (!text || (a->content_type && !is->content_type) || !is->body) {
        free(text);
        release_claim(r, is);
        return false;   /* answer now, unrecorded: a retry runs the request again */
    }
    if (a->len)
        memcpy(is->body, a->body, a->len);
    is->answer = (struct req_answer){ a->status, is->content_type, is->body, a->len };
    struct cmd c;
    cmd_init(&c);
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

/* ---- a repeat ---- */

static void replay(struct req *r, struct idem *is, const json_t *rec)
{
    char *body = NULL;
    size_t len = 0;
    if (unseal(is, &r->srv->signing, rec, &body, &len) != 0) {
        reply_problem(r, 409, "conflict",
                      "the first answer to this Idempotency-Key can no longer be read (the "
                      "platform key that sealed it is gone); it is not run again");
        return;
    }
    const char *loc = json_string_value(json_object_get(rec, "l"));
    if (loc && *loc)
        req_set_header(r, "Location", loc);
    req_set_header(r, "Idempotent-Replayed", "true");
    const char *ctype = json_string_value(json_object_get(rec, "t"));
    struct req_answer a = { (int)json_integer_value(json_object_get(rec, "s")),
                            ctype && *ctype ? ctype : NULL, body, len };
    r->replied = true;
    req_transmit(r, &a);
    sodium_memzero(body, len);
    free(body);
}

/* How long a claim protects a first request that runs: every store call it makes is bounded
 * by redis_timeout, and it makes a few; a claim whose request died (or whose release was
 * lost) then frees itself soon, so a retry is not refused for long. */
static int64_t pending_ttl_ms(const struct server *srv)
{
    int64_t ms = 4 * srv->cfg.redis_timeout_ms;
    return ms < 1000 ? 1000 : ms > 60000 ? 60000 : ms;
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
        goto out;       /* a claim that may have been made expires within pending_ttl_ms */
    if (reply->type == REDIS_REPLY_NIL) {   /* ours: run the request */
        r->hook = idem_record;
        go(r);
        goto out;
    }
    json_t *rec = reply->type == REDIS_REPLY_STRING ? json_loadb(reply->str, reply->len, 0, NULL)
                                                     : NULL;
    const char *hash = json_string_value(json_object_get(rec, "h"));
    bool atomic = r->route && (r->route->flags & ROUTE_IDEM_ATOMIC);
    if (!rec || !hash) {
        reply_problem(r, 500, NULL, "unreadable idempotency record");
    } else if (strcmp(hash, r->idem.fingerprint) != 0) {
        reply_problem(r, 422, "idempotency-key-reuse",
                      "this Idempotency-Key was already used with a different request");
    } else if (json_object_get(rec, "u") && atomic) {
        r->hook = idem_record;  /* the change itself knows whether it was made (market.lua) */
        go(r);
    } else if (json_object_get(rec, "u")) {
        reply_problem(r, 409, "conflict",
                      "the first request with this Idempotency-Key failed in the store in a "
                      "way that may have taken effect; check before trying again with a new "
                      "key");
    } else if (json_object_get(rec, "p")) {
        req_set_header(r, "Retry-After", "1");
        reply_problem(r, 409, "conflict",
                      "a request with this Idempotency-Key is still being processed");
    } else {
        replay(r, is, rec);
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
    size_t klen = strlen(key), plen = strlen(r->who.participant_id);
    bool ok = klen >= 1 && klen <= 255;
    for (const char *p = key; ok && *p; p++)
        ok = *p >= 0x21 && *p <= 0x7e;
    if (!ok) {
        reply_problem(r, 400, "bad-request", "Idempotency-Key must be 1-255 visible ASCII characters");
        return;
    }
    struct idem *is = calloc(1, sizeof *is);
    struct idem_claim *cl = malloc(sizeof *cl);
    if (!is || !cl || plen + 1 + klen > sizeof is->seal_msg) {
        free(is);
        free(cl);
        reply_problem(r, 500, NULL, "out of memory");
        return;
    }
    r->hook_state = is;
    r->hook_free = idem_free;
    /* the key's identity: the participant and the key (a key is the participant's own, on
     * any path); what a repeat must match: method, path and body */
    memcpy(is->seal_msg, r->who.participant_id, plen);
    is->seal_msg[plen] = '\0';
    memcpy(is->seal_msg + plen + 1, key, klen);
    is->seal_len = plen + 1 + klen;
    unsigned char d[16], fp[32];
    crypto_generichash(d, sizeof d, is->seal_msg, is->seal_len, NULL, 0);
    sodium_bin2hex(r->idem.digest, sizeof r->idem.digest, d, sizeof d);
    crypto_generichash_state gs;
    crypto_generichash_init(&gs, NULL, 0, sizeof fp);
    crypto_generichash_update(&gs, (const unsigned char *)"POST", 5);
    crypto_generichash_update(&gs, (const unsigned char *)r->path, strlen(r->path) + 1);
    crypto_generichash_update(&gs, r->raw_body, r->raw_body_len);
    crypto_generichash_final(&gs, fp, sizeof fp);
    sodium_bin2hex(r->idem.fingerprint, sizeof r->idem.fingerprint, fp, sizeof fp);
    char name[200];
    snprintf(name, sizeof name, KEY_IDEMPOTENCY, r->who.participant_id, r->idem.digest);
    snprintf(is->key, sizeof is->key, "%s%s", r->srv->cfg.key_prefix, name);

    struct cmd c;
    cmd_init(&c);
    char pending[100];
    snprintf(pending, sizeof pending, "{\"p\":1,\"h\":\"%s\"}", r->idem.fingerprint);
    cmd_add(&c, "SET");
    cmd_add(&c, is->key);
    cmd_add(&c, pending);
    cmd_add(&c, "NX");
    cmd_add(&c, "GET");
    cmd_add(&c, "PX");
    cmd_addll(&c, pending_ttl_ms(r->srv));
    *cl = (struct idem_claim){ r, go };
    req_hold(r);
    store_send(&r->srv->store, &c, on_claim, cl);
}
