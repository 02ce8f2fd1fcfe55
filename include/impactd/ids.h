/* ids.h — opaque, time-ordered identifiers with a type prefix ("prt_", "tok_", ...).
 *
 * An id is the prefix and 26 characters of Crockford base32 (lower case): 48 bits of
 * milliseconds then 80 random bits from libsodium, so ids sort by creation time. */
#ifndef IMPACTD_IDS_H
#define IMPACTD_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_MAX_LEN 40

void id_new(const char *prefix, int64_t now_ms, char out[ID_MAX_LEN]);

/* n (≤ 26) characters: 10 of time, then fresh random ones, never shared with another call
 * (unlike a truncated id_new, whose monotonic step is in its last characters). */
void id_base(int64_t now_ms, char *out, size_t n);

/* prefix + 10 base32 digits of ms + up to 16 of digest: a time-ordered id derived from a
 * digest (the same inputs give the same id). */
void id_digest(const char *prefix, int64_t ms, const unsigned char *digest, size_t n,
               char out[ID_MAX_LEN]);

/* The id of an object created by the market event at <ms>-<seq> of the market with `code`:
 * prefix + 11 hex digits of ms + 4 of seq + code (src/scripts/market.lua, id_of). */
void id_of_event(const char *prefix, long long ms, long long seq, const char *code,
                 char out[ID_MAX_LEN]);

/* One base32 alphabet for every id (Crockford's, lower case). */
extern const char ID_B32[33];

/* True when s is prefix followed by 1-32 characters of [0-9a-z]. */
bool id_valid(const char *s, const char *prefix);

#endif
