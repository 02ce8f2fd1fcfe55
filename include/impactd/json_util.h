/* json_util.h — small jansson helpers shared by handlers. */
#ifndef IMPACTD_JSON_UTIL_H
#define IMPACTD_JSON_UTIL_H

#include <jansson.h>
#include <stdint.h>

/* Sets key to a string, or to null when s is NULL or "". Returns 0 or -1 (out of memory). */
int json_set_str_or_null(json_t *obj, const char *key, const char *s);
/* Sets key to an RFC 3339 timestamp, or null when ms < 0. */
int json_set_time(json_t *obj, const char *key, int64_t ms);
/* Parses a decimal integer string; returns -1 when invalid. */
int json_parse_ll(const char *s, long long *out);
/* Dumps compactly; caller frees. */
char *json_dump_compact(const json_t *v);

#endif
