/* throttle.h — bounded tables of short-lived facts about clients: how many failed
 * authentications an address may still make, and which token ids are known to be unknown.
 *
 * A table has a fixed number of slots, fixed at start: a hostile client cannot grow it. A
 * key's slot is one of THROTTLE_WAYS of a set chosen by a keyed hash (SipHash, with a key
 * drawn at start, so a client cannot aim many keys at one set); a new key takes a free slot
 * of its set, else the one used least recently. auth.c uses two of them. */
#ifndef IMPACTD_THROTTLE_H
#define IMPACTD_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define THROTTLE_KEY_MAX 32
#define THROTTLE_WAYS 8

struct throttle_slot {
    unsigned char key[THROTTLE_KEY_MAX];
    unsigned char klen;             /* 0: free */
    int64_t used_us;                /* last found or taken */
    double tokens;                  /* a bucket's tokens (throttle_bucket_*) */
    int64_t at_us;                  /* when tokens was last brought up to date; or an expiry */
};

struct throttle {
    struct throttle_slot *slots;    /* owned; nsets * THROTTLE_WAYS */
    size_t nsets;
    unsigned char hash_key[16];
};

/* At least `entries` slots (rounded up to a whole number of sets). */
int throttle_init(struct throttle *t, size_t entries) __attribute__((warn_unused_result));
void throttle_free(struct throttle *t);
/* The slot of key, or NULL. */
struct throttle_slot *throttle_find(struct throttle *t, const void *key, size_t len,
                                    int64_t now_us);
/* The slot of key, taken (zeroed but for the key) when it had none. */
struct throttle_slot *throttle_take(struct throttle *t, const void *key, size_t len,
                                    int64_t now_us);
void throttle_drop(struct throttle *t, const void *key, size_t len);

/* A token bucket in a slot: `rate` per second up to `burst`; a new slot starts full.
 * throttle_bucket_take takes one token when there is one and returns 0, else returns the
 * whole seconds until there is one (at least 1). throttle_bucket_give puts one back. */
int throttle_bucket_take(struct throttle_slot *s, double rate, double burst, int64_t now_us);
void throttle_bucket_give(struct throttle_slot *s, double burst);

/* The key under which a client address is counted: an IPv4 address (also when written as
 * IPv4-mapped IPv6), or the /64 prefix of an IPv6 one (a client usually holds a whole /64).
 * Returns its length, 0 for another family. */
size_t throttle_addr_key(const struct sockaddr *sa, unsigned char key[THROTTLE_KEY_MAX]);

#endif
