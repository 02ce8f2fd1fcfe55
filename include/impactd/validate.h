/* validate.h — one declarative validator for JSON request bodies and query strings.
 *
 * A handler declares its fields (name, type, bounds, allowed values, a custom check) in a
 * table; validate_object checks a body against it and collects one {field, message} per
 * fault, so the caller answers one 422 listing them all. Unknown fields are faults too. */
#ifndef IMPACTD_VALIDATE_H
#define IMPACTD_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum vtype {
    V_STRING,       /* min/max bound the length in characters (UTF-8 code points) */
    V_INTEGER,      /* min/max bound the value */
    V_NUMBER,       /* integer or real; min/max bound the value */
    V_BOOL,
    V_ENUM,         /* a string among `values` */
    V_TIME,         /* RFC 3339 date-time string */
    V_STRING_ARRAY, /* array of strings; min/max bound the item count */
};

/* A custom check: returns NULL when fine, else a message (static string). */
typedef const char *(*vcheck)(const json_t *value, const void *ctx);

struct vfield {
    const char *name;
    enum vtype type;
    bool required;
    bool nullable;
    double min, max;                /* both 0: unbounded */
    const char *const *values;      /* V_ENUM: NULL-terminated */
    vcheck check;                   /* run on non-null values after the type check */
};

/* Returns the number of faults added to errors (0 when the body is valid). */
int validate_object(json_t *obj, const struct vfield *fields, size_t nfields,
                    const void *ctx, json_t *errors);

/* Parses a decimal query parameter within bounds; NULL text gives `dflt`. */
int validate_query_int(const char *text, int64_t min, int64_t max, int64_t dflt, int64_t *out);

/* True when s is valid UTF-8 without control characters other than \t \n \r. */
bool validate_text(const char *s);
size_t validate_utf8_length(const char *s);

#endif
