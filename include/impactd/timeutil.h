/* timeutil.h — clocks and RFC 3339 timestamps.
 *
 * All times inside impactd are int64 milliseconds since the Unix epoch (UTC). */
#ifndef IMPACTD_TIMEUTIL_H
#define IMPACTD_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define RFC3339_LEN 64   /* room for any int year, so the compiler can prove no truncation */

int64_t time_now_ms(void);          /* wall clock */
int64_t time_mono_us(void);         /* monotonic, for durations */

/* Formats ms as "2026-03-27T08:00:00Z" (".123" added when ms % 1000 != 0). */
void time_format_rfc3339(int64_t ms, char out[RFC3339_LEN]);

/* Parses an RFC 3339 date-time with offset ("Z" or "+01:00"); returns -1 when invalid. */
/* The latest time a field may hold (exclusive): 10^13 ms, 2286-11-20T17:46:40Z. Indexes
 * keep a time in 13 decimal digits (need scores: urgency × 10^13 + deadline). */
#define TIME_MAX_MS 10000000000000LL
#define TIME_MAX_TEXT "2286-11-20T17:46:40Z"

int time_parse_rfc3339(const char *s, int64_t *ms_out) __attribute__((warn_unused_result));

#endif
