/* auth.c — bearer tokens: creation, hashing, lookup with a short cache, rate limiting, and
 * the throttle on failed authentications.
 *
 * Owns the per-process token cache (token id → verified record + rate-limit bucket), the
 * negative cache (token ids Redis did not know, for auth_negative_ttl) and the allowance of
 * failed authentications per client address (auth_fail_rate, auth_fail_burst); the last
 * two are fixed-size tables (throttle.c). A token is checked against Redis at most once per
 * auth_cache_ttl; the bucket lives as long as the entry, which the sweep drops after a
 * minute unused. A request that the cache cannot settle borrows one of its address's
 * allowance before anything else (429 when there is none, without asking Redis); a success
 * gives it back. The bootstrap admin token of the config is compared in constant time and
 * never touches Redis. auth_forget (a revocation, a new token) bumps a generation: a lookup
 * that was in flight across it caches nothing. */
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
#include "impactd/throttle.h"
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
    bool transient;             /* not in the cache: freed once it has admitted its caller */
};

static void entry_free(void *v)
{
    struct auth_entry *e = v;
    if (e)
        json_decref(e->regions);
    free(e);
}

void auth_entry_free(struct auth_entry *e) { entry_free(e); }

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
    if (dict_init(&a->cache) != 0 ||
        throttle_init(&a->failures, (size_t)cfg->auth_table_size) != 0 ||
        throttle_init(&a->unknown, (size_t)cfg->auth_table_size) != 0)
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
    throttle_free(&a->failures);
    throttle_free(&a->unknown);
}

void auth_forget(struct auth *a, const char *token_id)
{
    a->generation++;
    entry_free(dict_del(&a->cache, token_id));
    throttle_drop(&a->unknown, token_id, strlen(token_id));
}

uint64_t auth_generation(const struct auth *a) { return a->generation; }

/* ---- what a token record says ---- */

bool auth_stored_hash_matches(const char *stored, const char hash[TOKEN_HASH_HEX])
{
    /* the length first: a short stored value must not be read past its end */
    return stored && strlen(stored) == TOKEN_HASH_HEX - 1 &&
           sodium_memcmp(stored, hash, TOKEN_HASH_HEX - 1) == 0;
}

json_t *auth_regions_parse(const char *text, bool *unreadable)
{
    *unreadable = false;
    if (!text || !*text)
        return NULL;        /* no scope: the whole country */
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_array(v);
    for (size_t i = 0; ok && i < json_array_size(v); i++)
        ok = json_is_string(json_array_get(v, i));
    if (ok)
        return v;
    json_decref(v);
    *unreadable = true;
    return json_array();    /* fail closed: regions that see nothing */
}

int auth_remember(struct auth *a, const char *tid, uint64_t generation,
                  const char hash[TOKEN_HASH_HEX], const struct auth_record *rec,
                  int64_t now_us, struct auth_entry **out)
{
    bool unreadable;
    json_t *regions = auth_regions_parse(rec->regions, &unreadable);
    if (rec->regions && *rec->regions && !regions)
        return -1;
    if (unreadable)
        log_warn("msg=\"token record has unreadable regions; it sees no region\" token=%s", tid);
    struct auth_entry *e = dict_get(&a->cache, tid);
    bool fresh = generation == a->generation;   /* no revocation while it was looked up */
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || (fresh && dict_set(&a->cache, tid, e) != 0)) {
            free(e);
            json_decref(regions);
            return -1;
        }
    } else if (!fresh) {
        entry_free(dict_del(&a->cache, tid));
        e = calloc(1, sizeof *e);
        if (!e) {
            json_decref(regions);
            return -1;
        }
    }
    memcpy(e->hash, hash, sizeof e->hash);
    snprintf(e->participant, sizeof e->participant, "%s", rec->participant);
    e->role = role_parse(rec->role);
    snprintf(e->region, sizeof e->region, "%s", rec->region ? rec->region : "");
    json_decref(e->regions);
    e->regions = regions;
    e->verified_us = now_us;
    e->transient = !fresh;
    *out = e;
    return fresh ? 1 : 0;
}

bool auth_cached(struct auth *a, const char *tid, const char hash[TOKEN_HASH_HEX],
                 int64_t now_us)
{
    struct auth_entry *e = dict_get(&a->cache, tid);
    return e && sodium_memcmp(e->hash, hash, TOKEN_HASH_HEX) == 0 &&
           now_us - e->verified_us < a->cfg->auth_cache_ttl_ms * 1000;
}

void auth_remember_unknown(struct auth *a, const char *tid, uint64_t generation,
                           int64_t now_us)
{
    if (a->cfg->auth_negative_ttl_ms <= 0 || generation != a->generation)
        return;
    struct throttle_slot *s = throttle_take(&a->unknown, tid, strlen(tid), now_us);
    if (s)
        s->at_us = now_us + a->cfg->auth_negative_ttl_ms * 1000;    /* until */
}

bool auth_known_unknown(struct auth *a, const char *tid, int64_t now_us)
{
    struct throttle_slot *s = throttle_find(&a->unknown, tid, strlen(tid), now_us);
    return s && s->at_us > now_us;
}

/* One check: on the stack when the cache or the token's form settles it, else until Redis
 * answers. */
struct auth_lookup {
    struct auth *a;
    auth_cb cb;
    void *arg;
    char hash[TOKEN_HASH_HEX];
    char tid[ID_MAX_LEN];
    uint64_t generation;        /* a->generation when the lookup was sent */
    unsigned char peer[THROTTLE_KEY_MAX];   /* the address's key, when it borrowed */
    size_t peer_len;
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

/* Borrows one failed authentication of the caller's address: 0, or the seconds to wait. */
static int allowance_borrow(struct auth_lookup *l, const struct sockaddr *peer)
{
    const struct config *cfg = l->a->cfg;
    if (cfg->auth_fail_rate <= 0)
        return 0;
    l->peer_len = throttle_addr_key(peer, l->peer);
    struct throttle_slot *s = l->peer_len ? throttle_take(&l->a->failures, l->peer, l->peer_len,
                                                          time_mono_us())
                                          : NULL;
    if (!s)
        return 0;
    return throttle_bucket_take(s, (double)cfg->auth_fail_rate, (double)cfg->auth_fail_burst,
                                time_mono_us());
}

/* Not a failed authentication after all (a success, or Redis could not say). */
static void allowance_return(struct auth_lookup *l)
{
    if (!l->peer_len)
        return;
    struct throttle_slot *s = throttle_find(&l->a->failures, l->peer, l->peer_len,
                                            time_mono_us());
    if (s)
        throttle_bucket_give(s, (double)l->a->cfg->auth_fail_burst);
}

static void on_token_record(void *arg, enum store_status st, redisReply *reply)
{
    struct auth_lookup *l = arg;
    struct auth *a = l->a;
    if (st != STORE_OK || store_reply_error(reply, NULL)) {
        if (st == STORE_OK)
            log_error("msg=\"token lookup failed\" error=\"%s\"", reply->str);
        allowance_return(l);
        l->cb(l->arg, AUTH_STORE_DOWN, NULL, 1);
        free(l);
        return;
    }
    struct auth_record rec = {
        .hash = store_reply_field(reply, "hash"),
        .participant = store_reply_field(reply, "participant"),
        .role = store_reply_field(reply, "role"),
        .region = store_reply_field(reply, "region"),
        .regions = store_reply_field(reply, "regions"),
    };
    int64_t now = time_mono_us();
    if (!auth_stored_hash_matches(rec.hash, l->hash) || !rec.participant || !rec.role ||
        !role_parse(rec.role)) {
        entry_free(dict_del(&a->cache, l->tid));
        auth_remember_unknown(a, l->tid, l->generation, now);
        l->cb(l->arg, AUTH_UNKNOWN, NULL, 0);
        free(l);
        return;
    }
    allowance_return(l);
    struct auth_entry *e;
    if (auth_remember(a, l->tid, l->generation, l->hash, &rec, now, &e) < 0) {
        l->cb(l->arg, AUTH_STORE_DOWN, NULL, 1);
        free(l);
        return;
    }
    auth_admit(l, e);
    if (e->transient)
        entry_free(e);
    free(l);
}

void auth_check(struct auth *a, const char *authorization, const struct sockaddr *peer,
                auth_cb cb, void *arg)
{
    struct auth_lookup now = { .a = a, .cb = cb, .arg = arg };
    const char *token = auth_bearer(authorization);
    const char *boot = a->cfg->admin_token;
    size_t blen = strlen(boot);
    if (token && blen && strlen(token) == blen && sodium_memcmp(token, boot, blen) == 0) {
        struct principal who = { .role = ROLE_ADMIN, .bootstrap = true };
        snprintf(who.participant_id, sizeof who.participant_id, "prt_bootstrap");
        snprintf(who.token_id, sizeof who.token_id, "tok_bootstrap");
        cb(arg, AUTH_OK, &who, 0);
        return;
    }
    bool wellformed = token && auth_token_wellformed(token) &&
                      auth_token_hash(token, now.hash) == 0;
    if (wellformed) {
        auth_token_id(now.hash, now.tid);
        if (auth_cached(a, now.tid, now.hash, time_mono_us())) {
            auth_admit(&now, dict_get(&a->cache, now.tid));
            return;
        }
    }
    /* not settled by the cache: a failure, or a Redis call, either way on the allowance */
    int wait = allowance_borrow(&now, peer);
    if (wait) {
        cb(arg, AUTH_THROTTLED, NULL, wait);
        return;
    }
    if (!token) {
        cb(arg, AUTH_MISSING, NULL, 0);
        return;
    }
    if (!wellformed || auth_known_unknown(a, now.tid, time_mono_us())) {
        cb(arg, AUTH_UNKNOWN, NULL, 0);
        return;
    }
    struct auth_lookup *l = malloc(sizeof *l);
    if (!l) {
        allowance_return(&now);
        cb(arg, AUTH_STORE_DOWN, NULL, 1);
        return;
    }
    *l = now;
    l->generation = a->generation;
    struct cmd c;
    cmd_init(&c);
    cmd_add(&c, "HGETALL");
    store_key(a->store, &c, KEY_TOKEN, l->tid);
    store_send(a->store, &c, on_token_record, l);
}
