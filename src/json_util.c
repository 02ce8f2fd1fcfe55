/* json_util.c — small jansson helpers shared by handlers. */
#include "impactd/json_util.h"

#include <errno.h>
#include <stdlib.h>

#include "impactd/timeutil.h"

int json_set_str_or_null(json_t *obj, const char *key, const char *s)
{
    return json_object_set_new(obj, key, (s && *s) ? json_string(s) : json_null());
}

int json_set_time(json_t *obj, const char *key, int64_t ms)
{
    if (ms < 0)
        return json_object_set_new(obj, key, json_null());
    char buf[RFC3339_LEN];
    time_format_rfc3339(ms, buf);
    return json_object_set_new(obj, key, json_string(buf));
}

int json_parse_ll(const char *s, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

char *json_dump_compact(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}
