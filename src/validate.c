/* validate.c — the declarative validator every handler uses for bodies and query strings.
 *
 * It reads a resource's field table (resource.h): presence, type, bounds and allowed values,
 * then each field's custom check,
 * adding one {field, message} per fault. It never stops at the first fault: a client fixing
 * a request sees everything wrong with it at once. */
#include "impactd/validate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/ids.h"
#include "impactd/problem.h"
#include "impactd/timeutil.h"

size_t validate_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

bool validate_text(const char *s)
{
    /* jansson has already rejected invalid UTF-8 and NUL; refuse other control characters. */
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
            return false;
    }
    return true;
}

static bool bounded(const struct field *f) { return f->min != 0 || f->max != 0; }

static const char *type_name(enum ftype t)
{
    switch (t) {
    case FT_INT: return "an integer";
    case FT_NUMBER: return "a number";
    case FT_BOOL: return "a boolean";
    case FT_STRING_ARRAY: return "an array of strings";
    case FT_JSON: return "an object";
    default: return "a string";
    }
}

/* Checks one present, non-null value; returns 1 when a fault was added. */
static int validate_value(const json_t *v, const struct field *f, const void *ctx,
                          json_t *errors)
{
    const char *name = f->name;
    switch (f->type) {
    case FT_ID:
    case FT_CREATED:
    case FT_MARKET:
    case FT_REF:
    case FT_PRODUCT:
    case FT_REGION:
    case FT_STRING:
    case FT_ENUM:
    case FT_TIME: {
        if (!json_is_string(v))
            goto wrong_type;
        const char *s = json_string_value(v);
        if (!validate_text(s))
            return problem_errors_add(errors, name, "must not contain control characters"), 1;
        if (f->type == FT_STRING && bounded(f)) {
            size_t n = validate_utf8_length(s);
            if (n < (size_t)f->min || n > (size_t)f->max)
                return problem_errors_add(errors, name, "must be %.0f to %.0f characters long",
                                          f->min, f->max), 1;
        }
        if (f->type == FT_ENUM && enum_code(f->enumtype, s) < 0) {
            char list[256];
            enum_list(f->enumtype, list, sizeof list);
            return problem_errors_add(errors, name, "must be one of: %s", list), 1;
        }
        if (f->type == FT_REF && f->ref && !id_valid(s, f->ref))
            return problem_errors_add(errors, name, "must be an id that starts with %s", f->ref), 1;
        if (f->type == FT_TIME) {
            int64_t ms;
            if (time_parse_rfc3339(s, &ms) != 0)
                return problem_errors_add(errors, name,
                                          "must be an RFC 3339 date-time, e.g. 2026-03-27T08:00:00Z"), 1;
            if (ms >= TIME_MAX_MS)
                return problem_errors_add(errors, name, "must be before %s", TIME_MAX_TEXT), 1;
        }
        break;
    }
    case FT_INT:
        if (!json_is_integer(v))
            goto wrong_type;
        if (bounded(f)) {
            json_int_t i = json_integer_value(v);
            if ((double)i < f->min || (double)i > f->max)
                return problem_errors_add(errors, name, "must be between %.0f and %.0f", f->min,
                                          f->max), 1;
        }
        break;
    case FT_NUMBER:
        if (!json_is_number(v))
            goto wrong_type;
        if (bounded(f)) {
            double d = json_number_value(v);
            if (!isfinite(d) || d < f->min || d > f->max)
                return problem_errors_add(errors, name, "must be between %g and %g", f->min,
                                          f->max), 1;
        }
        break;
    case FT_BOOL:
        if (!json_is_boolean(v))
            goto wrong_type;
        break;
    case FT_STRING_ARRAY: {
        if (!json_is_array(v))
            goto wrong_type;
        size_t n = json_array_size(v);
        if (bounded(f) && (n < (size_t)f->min || n > (size_t)f->max))
            return problem_errors_add(errors, name, "must hold %.0f to %.0f items", f->min,
                                      f->max), 1;
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item) || !validate_text(json_string_value(item)))
                goto wrong_type;
        }
        break;
    }
    case FT_JSON: {
        if (!json_is_object(v))
            goto wrong_type;
        if (!f->sub)
            break;
        /* the members, as an object of their own (a PATCH replaces it whole) */
        json_t *inner = json_array();
        /* validate_object only reads it; jansson's iterators take no const */
        json_t *members = (json_t *)(uintptr_t)v;
        int n = validate_object(members, f->sub, f->nsub, F_CREATE, ctx, inner);
        size_t i;
        json_t *e;
        json_array_foreach(inner, i, e) {
            char path[128];
            snprintf(path, sizeof path, "%s.%s", name,
                     json_string_value(json_object_get(e, "field")));
            problem_errors_add(errors, path, "%s", json_string_value(json_object_get(e, "message")));
        }
        json_decref(inner);
        if (n)
            return n;
        break;
    }
    }
    if (f->check) {
        const char *msg = f->check(v, ctx);
        if (msg)
            return problem_errors_add(errors, name, "%s", msg), 1;
    }
    return 0;
wrong_type:
    problem_errors_add(errors, name, "must be %s%s", type_name(f->type),
                       f->flags & F_NULLABLE ? " or null" : "");
    return 1;
}

int validate_object(json_t *obj, const struct field *fields, size_t nfields, unsigned mask,
                    const void *ctx, json_t *errors)
{
    int faults = 0;
    if (!json_is_object(obj)) {
        problem_errors_add(errors, "", "the body must be a JSON object");
        return 1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool known = false;
        for (size_t i = 0; i < nfields && !known; i++)
            known = (fields[i].flags & mask) && strcmp(fields[i].name, key) == 0;
        if (!known) {
            problem_errors_add(errors, validate_text(key) ? key : "?", "is not a known field");
            faults++;
        }
    }
    for (size_t i = 0; i < nfields; i++) {
        const struct field *f = &fields[i];
        if (!(f->flags & mask))
            continue;
        const json_t *val = json_object_get(obj, f->name);
        if (!val) {
            if (mask == F_CREATE && (f->flags & F_REQUIRED)) {
                problem_errors_add(errors, f->name, "is required");
                faults++;
            }
            continue;
        }
        if (json_is_null(val)) {
            bool ok = (f->flags & F_NULLABLE) ||
                      (mask == F_CREATE && (f->flags & F_NULL_DEFAULT) && !(f->flags & F_REQUIRED));
            if (!ok) {
                problem_errors_add(errors, f->name, "must not be null");
                faults++;
            }
            continue;
        }
        faults += validate_value(val, f, ctx, errors);
    }
    return faults;
}

int validate_query_int(const char *text, int64_t min, int64_t max, int64_t dflt, int64_t *out)
{
    if (!text) {
        *out = dflt;
        return 0;
    }
    if (*text == '\0' || strlen(text) > 19)
        return -1;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    errno = 0;
    long long v = strtoll(text, NULL, 10);
    if (errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
