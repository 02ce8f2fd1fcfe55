/* auth.c — bearer tokens: creation, hashing, lookup with a short cache, rate limiting.
 *
 * Owns the per-process token cache (token id → verified record + rate-limit bucket). A
 * token is checked against Redis at most once per auth_cache_ttl; the bucket lives as long
 * as the entry, which the sweep drops after a minute unused. The bootstrap admin token of
 * the config is compared in constant time and never touches Redis. */
#include "impactd/auth.h"

#include <event2/event.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impactd/keys.h"
#include "impactd/log.h"
#include "impactd/router.h"
#include "impactd/config.h"
#include "impactd/store.h"
#include "impactd/timeutil.h"

#define TOKEN_PREFIX "imp_"
#define TOKEN_RANDOM_BYTES 32
#define TOKEN_ID_HEX 24
#define ENTRY_IDLE_US (60LL * 1000000)
#define SWEEP_EVERY_S 10

struct auth_entry {
    char hash[TOKEN_HASH_HEX];
    char participant[ID_MAX_LEN];
    unsigned role;
    char region[8];
    json_t *regions;            /* owned */
    int64_t verified_us;
    int64_t used_us;
    struct bucket bucket;
};

static void entry_free(void *v)
{
    struct auth_entry *e = v;
    if (e)
        json_decref(e->regions);
    free(e);
}

/* ---- primitives ---- */

void auth_token_new(char token[TOKEN_LEN])
{
    unsigned char raw[TOKEN_RANDOM_BYTES];
    randombytes_buf(raw, sizeof raw);
    memcpy(token, TOKEN_PREFIX, 4);
    sodium_bin2base64(token + 4, TOKEN_LEN - 4, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

bool auth_token_wellformed(const char *token)
{
    if (strncmp(token, TOKEN_PREFIX, 4) != 0 || strlen(token) != 4 + 43)
        return false;
    for (const char *p = token + 4; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int auth_token_hash(const char *token, char hex[TOKEN_HASH_HEX])
{
    unsigned char d[32];
    if (crypto_generichash(d, sizeof d, (const unsigned char *)token, strlen(token), NULL, 0))
        return -1;
    sodium_bin2hex(hex, TOKEN_HASH_HEX, d, sizeof d);
    return 0;
}

void auth_token_id(const char hex[TOKEN_HASH_HEX], char id[ID_MAX_LEN])
{
    memcpy(id, "tok_", 4);
    memcpy(id + 4, hex, TOKEN_ID_HEX);
    id[4 + TOKEN_ID_HEX] = '\0';
}

void auth_webhook_secret_new(char secret[WEBHOOK_SECRET_LEN])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(secret, "whsec_", 6);
    sodium_bin2base64(secret + 6, WEBHOOK_SECRET_LEN - 6, raw, sizeof raw,
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(raw, sizeof raw);
}

const char *auth_bearer(const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    if (!*t || strlen(t) >= 256 || strchr(t, ' '))
        return NULL;
    return t;
}

void principal_clear(struct principal *p)
{
    json_decref(p->regions);
    memset(p, 0, sizeof *p);
}

void principal_copy(struct principal *dst, const struct principal *src)
{
    *dst = *src;
    if (dst->regions)
        json_incref(dst->regions);
}

int auth_bucket_take(struct bucket *b, int64_t rate, int64_t now_us)
{
    if (rate <= 0)
        return 0;
    if (b->at_us == 0) {
        b->tokens = (double)rate;
    } else {
        b->tokens += (double)(now_us - b->at_us) / 1e6 * (double)rate;
        if (b->tokens > (double)rate)
            b->tokens = (double)rate;
    }
    b->at_us = now_us;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    double wait = (1.0 - b->tokens) / (double)rate;     /* seconds until the next token */
    int s = (int)ceil(wait);
    return s < 1 ? 1 : s;
}

/* ---- cache ---- */

static int sweep_one(const char *key, void *value, void *arg)
{
    (void)key;
    struct auth_entry *e = value;
    if (*(int64_t *)arg - e->used_us > ENTRY_IDLE_US) {
        entry_free(e);
        return 1;
    }
    return 0;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct auth *a = arg;
    int64_t now = time_mono_us();
    dict_sweep(&a->cache, sweep_one, &now);
}

int auth_init(struct auth *a, struct event_base *base, struct store *store,
              const struct config *cfg)
{
    memset(a, 0, sizeof *a);
    a->store = store;
    a->cfg = cfg;
    if (dict_init(&a->cache) != 0)
        return -1;
    a->sweep_timer = event_new(base, -1, EV_PERSIST, on_sweep, a);
    struct timeval tv = { SWEEP_EVERY_S, 0 };
    if (!a->sweep_timer || event_add(a->sweep_timer, &tv) != 0)
        return -1;
    return 0;
}

void auth_free(struct auth *a)
{
    if (a->sweep_timer)
        event_free(a->sweep_timer);
    a->sweep_timer = NULL;
    dict_free(&a->cache, entry_free);
}

void auth_forget(struct auth *a, const char *token_id)
{
    entry_free(dict_del(&a->cache, token_id));
}

/* One check: on the stack when the cache or the token's form settles it, else until Redis
 * answers. */
struct auth_lookup {
    struct auth *a;
    auth_cb cb;
    void *arg;
    char hash[TOKEN_HASH_HEX];
    char tid[ID_MAX_LEN];
};

/* Admits the caller described by e: rate limit, then the principal. */
static void auth_admit(struct auth_lookup *l, struct auth_entry *e)
{
    int64_t now = time_mono_us();
    e->used_us = now;
    int wait = auth_bucket_take(&e->bucket, l->a->cfg->rate_limit, now);
    if (wait) {
        l->cb(l->arg, AUTH_RATE_LIMITED, NULL, wait);
        return;
    }
    struct principal who = { .role = e->role, .regions = e->regions };
    snprintf(who.participant_id, sizeof who.participant_id, "%s", e->participant);
    snprintf(who.token_id, sizeof who.token_id, "%s", l->tid);
    memcpy(who.region, e->region, sizeof who.region);
    l->cb(l->arg, AUTH_OK, &who, 0);
}

static void on_token_record(void *arg, enum store_status st, redisReply *reply)
{
    struct auth_lookup *l = arg;
    struct auth *a = l->a;
    if (st != STORE_OK || store_reply_error(reply, NULL)) {
        if (st == STORE_OK)
            log_error("msg=\"token lookup failed\" error=\"%s\"", reply->str);
        l->cb(l->arg, AUTH_STORE_DOWN, NULL, 1);
        free(l);
        return;
    }
    const char *stored = store_reply_field(reply, "hash");
    const char *prt = store_reply_field(reply, "participant");
    const char *role = store_reply_field(reply, "role");
    if (!stored || !prt || !role || strlen(stored) != TOKEN_HASH_HEX - 1 ||
        sodium_memcmp(stored, l->hash, TOKEN_HASH_HEX - 1) != 0 || !role_parse(role)) {
        auth_forget(a, l->tid);
        l->cb(l->arg, AUTH_UNKNOWN, NULL, 0);
        free(l);
        return;
    }
    struct auth_entry *e = dict_get(&a->cache, l->tid);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || dict_set(&a->cache, l->tid, e) != 0) {
            free(e);
            l->cb(l->arg, AUTH_STORE_DOWN, NULL, 1);
            free(l);
            return;
        }
    }
    memcpy(e->hash, l->hash, sizeof e->hash);
    snprintf(e->participant, sizeof e->participant, "%s", prt);
    e->role = role_parse(role);
    const char *region = store_reply_field(reply, "region");
    snprintf(e->region, sizeof e->region, "%s", region ? region : "");
    json_decref(e->regions);
    const char *regions = store_reply_field(reply, "regions");
    e->regions = regions && *regions ? json_loads(regions, 0, NULL) : NULL;
    e->verified_us = time_mono_us();
    auth_admit(l, e);
    free(l);
}

void auth_check(struct auth *a, const char *authorization, auth_cb cb, void *arg)
{
    struct auth_lookup now = { .a = a, .cb = cb, .arg = arg };
    const char *token = auth_bearer(authorization);
    const char *boot = a->cfg->admin_token;
    size_t blen = strlen(boot);
    if (!token) {
        cb(arg, AUTH_MISSING, NULL, 0);
        return;
    }
    if (blen && strlen(token) == blen && sodium_memcmp(token, boot, blen) == 0) {
        struct principal who = { .role = ROLE_ADMIN, .bootstrap = true };
        snprintf(who.participant_id, sizeof who.participant_id, "prt_bootstrap");
        snprintf(who.token_id, sizeof who.token_id, "tok_bootstrap");
        cb(arg, AUTH_OK, &who, 0);
        return;
    }
    if (!auth_token_wellformed(token) || auth_token_hash(token, now.hash) != 0) {
        cb(arg, AUTH_UNKNOWN, NULL, 0);
        return;
    }
    auth_token_id(now.hash, now.tid);
    struct auth_entry *e = dict_get(&a->cache, now.tid);
    if (e && sodium_memcmp(e->hash, now.hash, TOKEN_HASH_HEX) == 0 &&
        time_mono_us() - e->verified_us < a->cfg->auth_cache_ttl_ms * 1000) {
        auth_admit(&now, e);
        return;
    }
    struct auth_lookup *l = malloc(sizeof *l);
    if (!l) {
        cb(arg, AUTH_STORE_DOWN, NULL, 1);
        return;
    }
    *l = now;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(a->store, &c, KEY_TOKEN, l->tid);
    store_send(a->store, &c, on_token_record, l);
}
