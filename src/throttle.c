/* throttle.c — bounded, set-associative tables of per-client facts (throttle.h), their
 * token buckets, and the key a client address is counted under. Nothing here knows what the
 * facts mean: auth.c decides. Memory is fixed at throttle_init. */
#include "impactd/throttle.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int throttle_init(struct throttle *t, size_t entries)
{
    memset(t, 0, sizeof *t);
    t->nsets = (entries + THROTTLE_WAYS - 1) / THROTTLE_WAYS;
    if (t->nsets == 0)
        t->nsets = 1;
    t->slots = calloc(t->nsets * THROTTLE_WAYS, sizeof *t->slots);
    if (!t->slots)
        return -1;
    randombytes_buf(t->hash_key, sizeof t->hash_key);
    return 0;
}

void throttle_free(struct throttle *t)
{
    free(t->slots);
    t->slots = NULL;
    t->nsets = 0;
}

static struct throttle_slot *set_of(struct throttle *t, const void *key, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, len, t->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return t->slots + (size_t)(v % t->nsets) * THROTTLE_WAYS;
}

static bool slot_is(const struct throttle_slot *s, const void *key, size_t len)
{
    return s->klen == len && memcmp(s->key, key, len) == 0;
}

struct throttle_slot *throttle_find(struct throttle *t, const void *key, size_t len,
                                    int64_t now_us)
{
    if (len == 0 || len > THROTTLE_KEY_MAX)
        return NULL;
    struct throttle_slot *set = set_of(t, key, len);
    for (size_t i = 0; i < THROTTLE_WAYS; i++)
        if (slot_is(&set[i], key, len)) {
            set[i].used_us = now_us;
            return &set[i];
        }
    return NULL;
}

struct throttle_slot *throttle_take(struct throttle *t, const void *key, size_t len,
                                    int64_t now_us)
{
    if (len == 0 || len > THROTTLE_KEY_MAX)
        return NULL;
    struct throttle_slot *set = set_of(t, key, len), *victim = set;
    for (size_t i = 0; i < THROTTLE_WAYS; i++) {
        if (slot_is(&set[i], key, len)) {
            set[i].used_us = now_us;
            return &set[i];
        }
        if (victim->klen && (!set[i].klen || set[i].used_us < victim->used_us))
            victim = &set[i];
    }
    memset(victim, 0, sizeof *victim);
    memcpy(victim->key, key, len);
    victim->klen = (unsigned char)len;
    victim->used_us = now_us;
    return victim;
}

void throttle_drop(struct throttle *t, const void *key, size_t len)
{
    struct throttle_slot *s = throttle_find(t, key, len, 0);
    if (s)
        memset(s, 0, sizeof *s);
}

static void bucket_refill(struct throttle_slot *s, double rate, double burst, int64_t now_us)
{
    if (s->at_us == 0)
        s->tokens = burst;
    else if (now_us > s->at_us)
        s->tokens += (double)(now_us - s->at_us) / 1e6 * rate;
    if (s->tokens > burst)
        s->tokens = burst;
    s->at_us = now_us;
}

int throttle_bucket_take(struct throttle_slot *s, double rate, double burst, int64_t now_us)
{
    bucket_refill(s, rate, burst, now_us);
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        return 0;
    }
    double wait = rate > 0 ? (1.0 - s->tokens) / rate : 1.0;
    int secs = (int)wait;
    if ((double)secs < wait)
        secs++;
    return secs < 1 ? 1 : secs;
}

void throttle_bucket_give(struct throttle_slot *s, double burst)
{
    s->tokens += 1.0;
    if (s->tokens > burst)
        s->tokens = burst;
}

size_t throttle_addr_key(const struct sockaddr *sa, unsigned char key[THROTTLE_KEY_MAX])
{
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
        return 5;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            key[0] = 4;
            memcpy(key + 1, a + 12, 4);
            return 5;
        }
        key[0] = 6;
        memcpy(key + 1, a, 8);
        return 9;
    }
    return 0;
}
