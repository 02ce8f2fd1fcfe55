/* auth.h — bearer tokens, their hashes, and who is calling.
 *
 * A token is "imp_" + 43 characters of base64url (32 random bytes). Only its BLAKE2b-256
 * digest is stored; the token id is "tok_" + the first 24 hex digits of that digest, so a
 * presented token finds its record without any index. Verified tokens are cached for
 * auth_cache_ttl (a revocation reaches other daemons within that delay, this one at once),
 * and the cache entry carries the token's rate-limit bucket. Token ids Redis did not know are
 * remembered for auth_negative_ttl, and each client address may fail to authenticate
 * auth_fail_rate times a second (burst auth_fail_burst) before it gets 429 without any
 * Redis call; both tables have auth_table_size entries (throttle.h). */
#ifndef IMPACTD_AUTH_H
#define IMPACTD_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dict.h"
#include "ids.h"
#include "throttle.h"

#define TOKEN_LEN 48        /* "imp_" + 43 + NUL, rounded */
#define TOKEN_HASH_HEX 65
#define WEBHOOK_SECRET_LEN 56   /* "whsec_" + base64 of 32 bytes + NUL, rounded */

struct event_base;
struct store;
struct config;
struct sockaddr;
struct auth_entry;

struct principal {
    char participant_id[ID_MAX_LEN];
    char token_id[ID_MAX_LEN];
    unsigned role;              /* one enum role bit */
    char region[8];             /* the participant's region, "" when none */
    json_t *regions;            /* owned; ministry scope, NULL = whole country */
    bool bootstrap;             /* the IMPACTD_ADMIN_TOKEN operator */
};

struct auth {
    struct dict cache;          /* token id -> struct auth_entry * (owned) */
    struct throttle unknown;    /* token id -> until when Redis is not asked again */
    struct throttle failures;   /* address key -> its allowance of failed authentications */
    uint64_t generation;        /* bumped by auth_forget */
    struct event *sweep_timer;
    struct store *store;        /* borrowed */
    const struct config *cfg;   /* borrowed: rate_limit, auth_*, admin_token */
};

enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING,       /* 401: no or malformed Authorization header */
    AUTH_UNKNOWN,       /* 401: no such token */
    AUTH_RATE_LIMITED,  /* 429: this token's rate limit */
    AUTH_THROTTLED,     /* 429: too many failed authentications from this address */
    AUTH_STORE_DOWN,    /* 503 */
};

/* Called once with the outcome: at once when the cache or the token's form settles it, else
 * when Redis answers. `who` (AUTH_OK only) is valid during the call: copy it with
 * principal_copy. retry_after_s for 429 and 503. */
typedef void (*auth_cb)(void *arg, enum auth_result result, const struct principal *who,
                        int retry_after_s);

int auth_init(struct auth *a, struct event_base *base, struct store *store,
              const struct config *cfg) __attribute__((warn_unused_result));
void auth_free(struct auth *a);
/* Who presents `authorization` (the header's value, NULL when absent), from `peer` (the
 * client's address, NULL when unknown: then not throttled). */
void auth_check(struct auth *a, const char *authorization, const struct sockaddr *peer,
                auth_cb cb, void *arg);
/* Drops what this process knows of a token, known or unknown (after a revocation, and when
 * a token is created), and makes every lookup then in flight cache nothing. */
void auth_forget(struct auth *a, const char *token_id);

/* The cache, as auth_check uses it (unit-tested). A token record's fields as Redis holds
 * them, borrowed, NULL when absent: */
struct auth_record {
    const char *hash, *participant, *role, *region, *regions;
};
uint64_t auth_generation(const struct auth *a);
/* Whether a stored digest is the 64 hex digits of hash (its length is checked first). */
bool auth_stored_hash_matches(const char *stored, const char hash[TOKEN_HASH_HEX]);
/* A record's ministry scope: NULL (the whole country) when absent or empty, the array when
 * it is a JSON array of strings, else an empty array (fail closed: no region) and
 * *unreadable. The caller owns the result. */
json_t *auth_regions_parse(const char *text, bool *unreadable);
/* The entry for a verified record looked up when the generation was `generation`: cached
 * (1) unless auth_forget ran since (0: *out is a transient entry the caller frees with
 * auth_entry_free once used); -1 when out of memory. */
int auth_remember(struct auth *a, const char *tid, uint64_t generation,
                  const char hash[TOKEN_HASH_HEX], const struct auth_record *rec,
                  int64_t now_us, struct auth_entry **out) __attribute__((warn_unused_result));
void auth_entry_free(struct auth_entry *e);
bool auth_cached(struct auth *a, const char *tid, const char hash[TOKEN_HASH_HEX],
                 int64_t now_us);
/* The negative cache: tid was not known to Redis (not kept when auth_forget ran since). */
void auth_remember_unknown(struct auth *a, const char *tid, uint64_t generation,
                           int64_t now_us);
bool auth_known_unknown(struct auth *a, const char *tid, int64_t now_us);

/* Token primitives (unit-tested). */
void auth_token_new(char token[TOKEN_LEN]);
int auth_token_hash(const char *token, char hex[TOKEN_HASH_HEX]) __attribute__((warn_unused_result));
void auth_token_id(const char hex[TOKEN_HASH_HEX], char id[ID_MAX_LEN]);
bool auth_token_wellformed(const char *token);
void auth_webhook_secret_new(char secret[WEBHOOK_SECRET_LEN]);
/* Extracts the token from "Bearer <token>" (scheme case-insensitive); NULL when malformed. */
const char *auth_bearer(const char *authorization);
void principal_clear(struct principal *p);
/* *dst = *src, regions shared (a new reference). */
void principal_copy(struct principal *dst, const struct principal *src);

/* Token bucket: `rate` per second, burst `rate`. Returns 0 when allowed, else seconds to wait. */
struct bucket { double tokens; int64_t at_us; };
int auth_bucket_take(struct bucket *b, int64_t rate, int64_t now_us);

#endif
