/* parties.h — who posts an offer or a need, as the other side of its allocations will see
 * it (need_party, offer_party): built from the participant record, and kept by each process
 * for a while so that a participant posting again costs no Redis read.
 *
 * An entry is trusted for auth_cache_ttl, like a verified token: a PATCH through this
 * process forgets it at once, one through another process is seen within that delay (the
 * party is a snapshot at posting time anyway). The table is bounded: past PARTIES_MAX
 * entries it starts over. */
#ifndef IMPACTD_PARTIES_H
#define IMPACTD_PARTIES_H

#include <jansson.h>
#include <stdint.h>

#include "dict.h"

struct redisReply;

#define PARTIES_MAX 65536

struct parties {
    struct dict cache;              /* participant id -> struct party_entry * (owned) */
};

int parties_init(struct parties *p) __attribute__((warn_unused_result));
void parties_free(struct parties *p);

/* The party of participant id (role: its role's name) from its HGETALL reply; the caller
 * owns it. NULL when out of memory. */
json_t *parties_from_record(const char *id, const char *role, const struct redisReply *hash);
/* A copy of the cached party of id if it was stored less than ttl_ms ago, else NULL. */
json_t *parties_get(struct parties *p, const char *id, int64_t now_ms, int64_t ttl_ms);
/* Keeps a copy of party (borrowed) for id. Out of memory: nothing is kept. */
void parties_put(struct parties *p, const char *id, const json_t *party, int64_t now_ms);
void parties_forget(struct parties *p, const char *id);

#endif
