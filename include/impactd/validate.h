/* validate.h — one declarative validator for JSON request bodies and query strings.
 *
 * Bodies are checked against a resource's field table (resource.h): the fields a create or a
 * PATCH body may carry, their types, bounds, allowed values and custom checks. Every fault is
 * collected as one {field, message}, so the caller answers one 422 listing them all. Unknown
 * fields are faults too. */
#ifndef IMPACTD_VALIDATE_H
#define IMPACTD_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "resource.h"

/* Checks obj against the fields whose flags include `mask` (F_CREATE or F_PATCH): with
 * F_CREATE, F_REQUIRED fields must be present. Returns the number of faults added. */
int validate_object(json_t *obj, const struct field *fields, size_t nfields, unsigned mask,
                    const void *ctx, json_t *errors);

/* Parses a decimal query parameter within bounds; NULL text gives `dflt`. */
int validate_query_int(const char *text, int64_t min, int64_t max, int64_t dflt, int64_t *out);

/* True when s is valid UTF-8 without control characters other than \t \n \r. */
bool validate_text(const char *s);
size_t validate_utf8_length(const char *s);

#endif
