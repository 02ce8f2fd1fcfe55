/* buf.h — a growing byte buffer and the writers the hot paths need: integers, RFC 3339
 * times and JSON strings written directly, without printf or an object tree in between.
 *
 * A write that cannot grow the buffer marks it failed and is dropped; the owner checks
 * `failed` once at the end. The buffer owns its bytes (buf_free). */
#ifndef IMPACTD_BUF_H
#define IMPACTD_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);          /* empties it, keeps the memory */
void buf_add(struct buf *b, const void *data, size_t n);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_add_int(struct buf *b, long long v);
/* "2026-03-27T08:00:00Z", with ".123" when ms % 1000 != 0 (as time_format_rfc3339). */
void buf_add_time(struct buf *b, int64_t ms);
/* A JSON string literal, quotes included, escaped per RFC 8259. */
void buf_add_json_string(struct buf *b, const char *s, size_t n);

/* Writes v in decimal into out (at least 21 bytes); returns the length. */
size_t buf_format_int(long long v, char *out);

#endif
