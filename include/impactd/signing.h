/* signing.h — the platform's Ed25519 keys and Standard Webhooks signatures.
 *
 * The key file holds every platform key, newest (current) first, so that `GET /v1/keys` can
 * list the older public keys and receivers can still verify messages signed before a
 * rotation. Signatures cover "{id}.{ts}.{body}" as Standard Webhooks defines it: `v1` is the
 * HMAC-SHA256 with a participant's whsec_ secret, `v1a` the Ed25519 signature with a platform
 * key. Everything here is synchronous and allocation-light; sodium_init() must have run. */
#ifndef IMPACTD_SIGNING_H
#define IMPACTD_SIGNING_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define SIGNING_MAX_KEYS 16
#define KID_LEN 17                      /* 16 hex + NUL */
#define SIGNING_SIG_LEN 96              /* room for "v1a,<88 base64>" and "v1,<44 base64>" */
#define SIGNING_WHPK_LEN 50             /* "whpk_" + 44 base64 + NUL */

struct signing_key {
    char kid[KID_LEN];
    int64_t created_at;                 /* Unix s */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
};

struct signing {
    struct signing_key keys[SIGNING_MAX_KEYS];
    size_t nkeys;                       /* keys[0] = current */
};

/* Loads the key file; when it does not exist, creates it (mode 0600, missing parent
 * directories 0700) with one new key. Refuses (returns -1, a message naming the file in err)
 * a file that is readable or writable by group or others, is not a regular file, or is
 * malformed (bad line, kid that does not match its key, no key, more than SIGNING_MAX_KEYS).
 * On failure *s is left as it was, so a reload (SIGHUP) that fails keeps the loaded keys.
 * Two processes creating the same missing file at once end up with the same key. */
int signing_load(struct signing *s, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Adds a new current key in front of s's keys, keeps the previous ones (the oldest beyond
 * SIGNING_MAX_KEYS are dropped) and writes the file atomically (temp file 0600 + rename).
 * On failure neither *s nor the file changes. */
int signing_rotate(struct signing *s, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Zeroes every key (sodium_memzero) and sets nkeys to 0. */
void signing_wipe(struct signing *s);

/* kid = the first 16 hex digits of BLAKE2b-256 (unkeyed) of the public key. */
void signing_kid(const unsigned char pk[crypto_sign_PUBLICKEYBYTES], char kid[KID_LEN]);

/* Writes "v1a,<base64 Ed25519 detached signature>" over "{id}.{ts}.{body}" with key k
 * (standard base64 with padding). outlen >= SIGNING_SIG_LEN. Returns -1 when out is too
 * small or memory runs out. */
int signing_v1a(const struct signing_key *k, const char *id, int64_t ts, const char *body,
                size_t body_len, char *out, size_t outlen) __attribute__((warn_unused_result));

/* Writes "v1,<base64 HMAC-SHA256>" over "{id}.{ts}.{body}", the HMAC key being the base64-
 * decoded part of "whsec_<base64>". outlen >= SIGNING_SIG_LEN. Returns -1 for a secret that is
 * not whsec_ + valid, non-empty standard base64, or when out is too small. */
int signing_v1(const char *whsec_secret, const char *id, int64_t ts, const char *body,
               size_t body_len, char *out, size_t outlen) __attribute__((warn_unused_result));

/* Parses Standard Webhooks' asymmetric secret "whsk_" + base64(64-byte Ed25519 secret key)
 * into a key (kid computed, created_at 0). Returns -1 when malformed or when the public half
 * does not match the seed. */
int signing_key_from_whsk(const char *whsk, struct signing_key *out)
    __attribute__((warn_unused_result));

/* A 32-byte secret for another use of the platform's key material, bound to `context` (a
 * fixed label naming the use) and to msg: BLAKE2b-256 keyed by the key's 32-byte seed over
 * context, NUL, msg. Knowing the outputs tells nothing of the key or of other contexts. */
void signing_derive(const struct signing_key *k, const char *context, const void *msg,
                    size_t len, unsigned char out[32]);
/* The key with that kid, or NULL. */
const struct signing_key *signing_find(const struct signing *s, const char *kid);

/* Writes "whpk_" + base64(public key); outlen >= SIGNING_WHPK_LEN (else out is set to ""). */
void signing_whpk(const struct signing_key *k, char *out, size_t outlen);

#endif
